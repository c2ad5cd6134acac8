#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch Debian's own x86-64 kernel for the end-to-end tests and the demo,
# and print the path of its vmlinuz on the last line of stdout.
#
# The version is the one the linux-image-amd64 metapackage of the running
# release depends on (Debian 12: 6.1; in the Debian 13 root of
# scripts/debian13-root.sh: 6.12, so Debian 13's QEMU boots Debian 13's
# kernel); the package is fetched with "apt-get download" and only its
# /boot is unpacked into
# ${QEMU_BACKDOOR_CACHE:-${XDG_CACHE_HOME:-~/.cache}/qemu-backdoor}/,
# so a second run reuses it. Offline, the newest cached kernel is used.
set -eu

prog=fetch-guest-kernel.sh
cache=${QEMU_BACKDOOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-backdoor}

die() {
    echo "$prog: $*" >&2
    exit 1
}

case ${1:-} in
-h|--help)
    cat <<USAGE
Usage: $prog [PACKAGE]

Print the path of a cached vmlinuz of Debian's linux-image-amd64 kernel
(or of PACKAGE, e.g. linux-image-6.1.0-26-amd64), downloading it first
with apt-get download if it is not cached yet. Cache: $cache
USAGE
    exit 0 ;;
-*) die "unknown option '$1' (see --help)" ;;
esac

newest_cached() {
    ls -d "$cache"/kernel-linux-image-*/boot/vmlinuz-* 2>/dev/null |
        sort -V | tail -n 1
}

pkg=${1:-}
if [ -z "$pkg" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
          sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
fi
if [ -z "$pkg" ]; then
    cached=$(newest_cached)
    if [ -n "$cached" ]; then
        echo "$prog: apt does not know linux-image-amd64; using the cached $cached" >&2
        echo "$cached"
        exit 0
    fi
    die "apt does not know linux-image-amd64 and nothing is cached: run 'apt-get update' (as root) first"
fi

dir=$cache/kernel-$pkg
kernel=$(ls "$dir"/boot/vmlinuz-* 2>/dev/null | head -n 1) || kernel=
if [ -n "$kernel" ] && [ -f "$kernel" ]; then
    echo "$kernel"
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get is missing (a Debian system is needed)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing"
mkdir -p "$cache" || die "cannot create $cache"
tmp=$(mktemp -d "$cache/.kernel-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "$prog: downloading $pkg (about 70 MB) into $cache" >&2
# apt's download sandbox user cannot write a private directory: that is a
# warning only, the download runs unsandboxed.
(cd "$tmp" && apt-get download -q "$pkg" 2>&1 |
    grep -v '^W: Download is performed unsandboxed' >&2) || :
deb=$(ls "$tmp"/*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || die "apt-get download $pkg failed (run 'apt-get update' first?)"
mkdir -p "$tmp/x"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" ./boot ||
    die "cannot unpack $deb"
ls "$tmp"/x/boot/vmlinuz-* >/dev/null 2>&1 || die "$deb has no /boot/vmlinuz"
rm -rf "$dir"
mkdir -p "$dir"
mv "$tmp/x/boot" "$dir/boot"
ls "$dir"/boot/vmlinuz-* | head -n 1
