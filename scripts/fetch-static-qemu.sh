#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch Debian 13's statically linked qemu-user (QEMU 10.0, static-pie) for
# the user-mode tests of the supervisor backend, without installing it and
# without touching the host's apt configuration: a private apt setup (own
# sources.list with a trixie entry, own lists and cache) downloads the .deb,
# dpkg-deb -x unpacks it. Cached; prints the directory holding qemu-<arch>.
#
#   scripts/fetch-static-qemu.sh [CACHE]   (default ~/.cache/qemu-backdoor)
set -eu

prog=fetch-static-qemu.sh
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-backdoor}
apt_dir=$cache/apt-trixie
dest=$cache/qemu-user-trixie
bin=$dest/usr/bin

if [ -x "$bin/qemu-x86_64" ] && [ -x "$bin/qemu-aarch64" ] &&
   [ -x "$bin/qemu-s390x" ]; then
    echo "$bin"
    exit 0
fi

mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" \
         "$apt_dir/etc/preferences.d" "$apt_dir/etc/apt.conf.d"
cat > "$apt_dir/etc/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
SOURCES
: > "$apt_dir/status"

apt_private() {
    apt-get -q \
        -o Dir::Etc::SourceList="$apt_dir/etc/sources.list" \
        -o Dir::Etc::SourceParts="$apt_dir/etc/sources.list.d" \
        -o Dir::Etc::Preferences="$apt_dir/etc/preferences" \
        -o Dir::Etc::PreferencesParts="$apt_dir/etc/preferences.d" \
        -o Dir::Etc::Parts="$apt_dir/etc/apt.conf.d" \
        -o Dir::State::Lists="$apt_dir/lists" \
        -o Dir::State::Status="$apt_dir/status" \
        -o Dir::Cache="$apt_dir/cache" \
        -o Dir::Cache::Archives="$apt_dir/archives" \
        -o APT::Architecture=amd64 \
        -o APT::Sandbox::User=root \
        "$@"
}

mkdir -p "$apt_dir/cache"
if ! apt_private update >"$apt_dir/update.log" 2>&1; then
    echo "$prog: apt-get update of the private trixie lists failed (see $apt_dir/update.log)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
if ! (cd "$tmp" && apt_private download qemu-user) >"$apt_dir/download.log" 2>&1; then
    echo "$prog: cannot download trixie's qemu-user (see $apt_dir/download.log)" >&2
    exit 1
fi
deb=$(ls "$tmp"/qemu-user_*.deb)
rm -rf "$dest.new"
dpkg-deb -x "$deb" "$dest.new"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "$bin"
