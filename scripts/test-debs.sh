#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Test the Debian packages the way a user meets them: build them
# (scripts/build-debs.sh), then in a throwaway copy of a clean, cached
# Debian 12 root (scripts/debian-root.sh --overlay) run
# tests/debs/installed-test.sh: apt-get install ./*.deb, the demo from
# installed paths only (system mode in a Linux guest, user mode with both
# backends), a guest program built with pkg-config, the libvirt wrapper's
# probes, and apt-get purge leaving no file behind. Prints TAP.
set -eu

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

usage() {
    cat <<USAGE
Usage: $prog [--debs DIR] [--worktree]

  --debs DIR     test the .debs in DIR instead of building them
  --worktree     build from the working tree instead of HEAD
  -h, --help     show this help

Needs root. The root is cached in \$QEMU_BACKDOOR_ROOT_CACHE (default
/var/cache/qemu-backdoor); see scripts/debian-root.sh.
USAGE
}

top=$(cd "$(dirname "$0")/.." && pwd)
debs='' worktree=''
while [ $# -gt 0 ]; do
    case $1 in
    --debs) debs=${2:?--debs needs a directory}; shift 2 ;;
    --worktree) worktree=--worktree; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (the root needs chroot and mount)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if [ -z "$debs" ]; then
    debs=$stage/built
    # shellcheck disable=SC2086
    "$top/scripts/build-debs.sh" $worktree --out "$debs" >&2
fi
mkdir "$stage/work" "$stage/work/debs"
for d in "$debs"/*.deb; do
    case $d in
    *-dbgsym_*) ;;
    *) cp "$d" "$stage/work/debs/" ;;
    esac
done
ls "$stage"/work/debs/*.deb >/dev/null 2>&1 || die "no .deb in $debs"
cp -r "$top/examples/seed-host" "$top/examples/seed-guest" "$stage/work/"
cp "$top/tests/debs/installed-test.sh" "$stage/work/"
kernel=$("$top/scripts/fetch-guest-kernel.sh" | tail -n 1)
cp "$kernel" "$stage/work/vmlinuz"

"$top/scripts/debian-root.sh" --release 12 --overlay --copy "$stage/work" \
    --run ./installed-test.sh
