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

# ---- other guest architectures (arm64, ppc64el, s390x) ---------------------
# fetch-guest-kernel.sh --arch ARCH [--busybox]: Debian 12's kernel for ARCH
# (the one linux-image-ARCH depends on), or with --busybox the static
# busybox of that architecture. Last line of stdout: the vmlinuz (or busybox)
# path. The packages come through a private apt setup under $cache/apt-ARCH
# (own sources, lists, cache and an empty dpkg status), so the host's dpkg
# architectures and apt configuration are left as they are.
foreign_arch() {
    arch=$1
    what=${2:-kernel}
    case $arch in
    arm64|ppc64el|s390x) ;;
    *) die "--arch: '$arch' is not one of arm64, ppc64el, s390x" ;;
    esac
    case $what in
    kernel|--busybox) ;;
    *) die "--arch $arch: unknown argument '$what' (only --busybox)" ;;
    esac
    apt_dir=$cache/apt-$arch
    apt_private() {
        apt-get -q -o APT::Architecture="$arch" \
            -o APT::Architectures="$arch" \
            -o Dir::Etc::SourceList="$apt_dir/etc/sources.list" \
            -o Dir::Etc::SourceParts="$apt_dir/etc/sources.list.d" \
            -o Dir::Etc::Preferences="$apt_dir/etc/preferences" \
            -o Dir::Etc::PreferencesParts="$apt_dir/etc/preferences.d" \
            -o Dir::State::Lists="$apt_dir/lists" \
            -o Dir::State::Status="$apt_dir/status" \
            -o Dir::Cache="$apt_dir/cache" \
            -o Dir::Cache::Archives="$apt_dir/archives" "$@"
    }
    # Unpack ./PATH of package $1 into $cache/$2 (kept when already there).
    unpack() {
        if [ -e "$cache/$2/$3" ]; then
            return 0
        fi
        tmp=$(mktemp -d "$cache/.$arch-XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        echo "$prog: downloading $1 ($arch) into $cache" >&2
        (cd "$tmp" && apt_private download "$1" 2>&1 |
            grep -v '^W: Download is performed unsandboxed' >&2) || :
        deb=$(ls "$tmp"/*.deb 2>/dev/null | head -n 1)
        [ -n "$deb" ] || die "apt-get download $1 for $arch failed"
        mkdir -p "$tmp/x"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" "./$4" ||
            die "cannot unpack $deb"
        rm -rf "${cache:?}/$2"
        mkdir -p "$cache/$2"
        mv "$tmp/x/$4" "$cache/$2/"
        rm -rf "$tmp"
        trap - EXIT
    }
    command -v apt-get >/dev/null || die "apt-get is missing (a Debian system is needed)"
    command -v dpkg-deb >/dev/null || die "dpkg-deb is missing"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" \
             "$apt_dir/cache" "$apt_dir/etc/sources.list.d" \
             "$apt_dir/etc/preferences.d" || die "cannot create $apt_dir"
    [ -e "$apt_dir/status" ] || : > "$apt_dir/status"
    if [ ! -e "$apt_dir/etc/sources.list" ]; then
        keyring=/usr/share/keyrings/debian-archive-keyring.gpg
        cat > "$apt_dir/etc/sources.list" <<SOURCES
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
SOURCES
    fi
    # Lists are refreshed once a day at most (also after a failed try);
    # offline, old lists or the cached files are used.
    if [ -z "$(find "$apt_dir/updated" -mtime -1 2>/dev/null)" ]; then
        apt_private update >"$apt_dir/update.log" 2>&1 ||
            echo "$prog: apt-get update of the private $arch lists failed (see $apt_dir/update.log)" >&2
        touch "$apt_dir/updated"
    fi
    if [ "$what" = --busybox ]; then
        unpack busybox-static "busybox-$arch" busybox bin/busybox
        echo "$cache/busybox-$arch/busybox"
        return 0
    fi
    flavour=$arch
    [ "$arch" = ppc64el ] && flavour=powerpc64le
    meta=linux-image-$flavour
    pkg=$(apt_private -qq install -s "$meta" 2>/dev/null |
          sed -n 's/^Inst \(linux-image-[0-9][^ ]*\) .*/\1/p' | head -n 1)
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache -o APT::Architecture="$arch" \
              -o Dir::State::Lists="$apt_dir/lists" \
              -o Dir::Etc::SourceList="$apt_dir/etc/sources.list" \
              -o Dir::Etc::SourceParts="$apt_dir/etc/sources.list.d" \
              -o Dir::State::Status="$apt_dir/status" \
              -o Dir::Cache="$apt_dir/cache" depends "$meta" 2>/dev/null |
              sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
    fi
    if [ -z "$pkg" ]; then
        cached=$(ls -d "$cache"/kernel-linux-image-*-"$flavour"/boot/vmlinu* \
                 2>/dev/null | sort -V | tail -n 1)
        [ -n "$cached" ] || die "no $meta in the private $arch lists and nothing cached (see $apt_dir/update.log)"
        echo "$cached"
        return 0
    fi
    unpack "$pkg" "kernel-$pkg" boot boot
    ls "$cache/kernel-$pkg"/boot/vmlinu* | head -n 1
}
if [ "${1:-}" = --arch ]; then
    [ $# -ge 2 ] || die "--arch needs an architecture (arm64, ppc64el, s390x)"
    foreign_arch "$2" "${3:-}"
    exit 0
fi
# ---- end of other guest architectures --------------------------------------

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
