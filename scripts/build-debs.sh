#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the Debian packages of qemu-backdoor (debian/): install the build
# dependencies, then dpkg-buildpackage -b -us -uc in a clean export of the
# source, and put the .debs in OUTDIR. Run as root on Debian 12 or 13.
set -eu

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

usage() {
    cat <<USAGE
Usage: $prog [OPTIONS]

Build the binary packages of qemu-backdoor for the installed
qemu-system-x86 and put them in OUTDIR.

  --out DIR       where the .debs go (default: build-debs/ in the source)
  --no-deps       do not install the build dependencies
  --worktree      build the working tree as it is (tracked and untracked
                  files) instead of a clean export of HEAD (outside a git
                  checkout, the tree as it is is built anyway)
  --lintian       run lintian on the result (fails on errors)
  -h, --help      show this help

The QEMU sources the device is compiled against are prepared once per
qemu-system-x86 build (scripts/prepare-qemu.sh) in \$QEMU_BACKDOOR_CACHE
(default: prepare-qemu.sh's, \${XDG_CACHE_HOME:-\$HOME/.cache}/qemu-backdoor).
USAGE
}

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build-debs
deps=1 worktree=0 lint=0
while [ $# -gt 0 ]; do
    case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --no-deps) deps=0; shift ;;
    --worktree) worktree=1; shift ;;
    --lintian) lint=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

if [ "$deps" = 1 ]; then
    [ "$(id -u)" = 0 ] ||
        die "run as root to install the build dependencies (or --no-deps)"
    export DEBIAN_FRONTEND=noninteractive
    command -v dpkg-checkbuilddeps >/dev/null ||
        apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
    # The Build-Depends of debian/control, one name each (the first of
    # alternatives), without versions; debhelper-compat is debhelper's.
    # (Debian 13's dpkg says "unmet", Debian 12's "Unmet".)
    need=$(dpkg-checkbuilddeps "$top/debian/control" 2>&1 |
           sed -n 's/.*[Uu]nmet build dependencies: //p' |
           sed 's/([^)]*)//g; s/|[^ ]*//g; s/debhelper-compat/debhelper/')
    if [ -n "$need" ]; then
        say "installing build dependencies: $need"
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $need >/dev/null ||
            die "apt-get install $need failed"
    fi
    if [ "$lint" = 1 ] && ! command -v lintian >/dev/null; then
        apt-get install -y -qq --no-install-recommends lintian >/dev/null
    fi
fi

# dh gives the build a HOME of its own: name prepare-qemu.sh's cache here.
cache_home=${XDG_CACHE_HOME:-$HOME/.cache}
export QEMU_BACKDOOR_CACHE="${QEMU_BACKDOOR_CACHE:-$cache_home/qemu-backdoor}"
mkdir -p "$QEMU_BACKDOOR_CACHE" "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/qemu-backdoor
mkdir "$src"
if ! git -C "$top" rev-parse HEAD >/dev/null 2>&1; then
    # Not a checkout (an export, e.g. in scripts/debian-root.sh's root):
    # the tree as it is, without build directories.
    (cd "$top" && tar --exclude='./build*' --exclude='./results' -cf - .) |
        tar -xf - -C "$src"
elif [ "$worktree" = 1 ]; then
    git -C "$top" ls-files -z --cached --others --exclude-standard |
        (cd "$top" && xargs -0 cp --parents -t "$src")
else
    git -C "$top" archive HEAD | tar -x -C "$src"
fi

say "dpkg-buildpackage -b -us -uc"
(cd "$src" && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    cp "$work/build.log" "$out/build.log"
    die "dpkg-buildpackage failed, see $out/build.log"
}
cp "$work/build.log" "$out/build.log"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
for f in "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo; do
    [ -e "$f" ] && mv "$f" "$out/"
done
ls "$out"/*.deb

if [ "$lint" = 1 ]; then
    say "lintian"
    lintian --fail-on error "$out"/*.changes || die "lintian reports errors"
fi
