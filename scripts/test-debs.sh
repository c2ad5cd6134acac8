#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Test the Debian packages the way a user meets them, for Debian 12 and 13:
# build them (scripts/build-debs.sh: on this machine for its own release,
# in the cached root of scripts/debian-root.sh for the other), then in a
# throwaway copy of a clean, cached root of that release
# (scripts/debian-root.sh --clean) run tests/debs/installed-test.sh:
# apt-get install ./*.deb, the demo from installed paths only (system mode
# in a Linux guest, user mode with both backends), a guest program built
# with pkg-config, the libvirt wrapper's probes, qemu-system-x86 moved
# between the archive's two builds up and down (the device rebuilt by the
# package's trigger, or the launcher naming the command when it cannot
# be), and apt-get purge leaving no file behind. Prints TAP, every check
# named after its release.
set -eu

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

usage() {
    cat <<USAGE
Usage: $prog [--release 12|13|all] [--debs DIR] [--worktree]

  --release N    test the packages for Debian N only (default: all, 12
                 and 13)
  --debs DIR     test the .debs in DIR instead of building them (with one
                 --release)
  --worktree     build from the working tree instead of HEAD
  -h, --help     show this help

Needs root. The roots are cached in \$QEMU_BACKDOOR_ROOT_CACHE (default
/var/cache/qemu-backdoor); see scripts/debian-root.sh.
USAGE
}

top=$(cd "$(dirname "$0")/.." && pwd)
debs='' worktree='' releases='12 13'
while [ $# -gt 0 ]; do
    case $1 in
    --release)
        case ${2:-} in
        12|13) releases=$2 ;;
        all) releases='12 13' ;;
        *) die "--release needs 12, 13 or all" ;;
        esac
        shift 2 ;;
    --debs) debs=${2:?--debs needs a directory}; shift 2 ;;
    --worktree) worktree=--worktree; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root (the roots need chroot and mount)"
[ -z "$debs" ] || [ "$releases" != '12 13' ] ||
    die "--debs goes with one --release"
# shellcheck disable=SC1091
host=$(. /etc/os-release && echo "${VERSION_ID:-}")

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
kernel=$("$top/scripts/fetch-guest-kernel.sh" | tail -n 1)

# One TAP stream: each release's checks renumbered and named after it.
failed=0
echo 0 >"$stage/count"
tap() { # RELEASE: renumber the TAP on stdin (the count in $stage/count)
    # (A shell loop rather than awk: mawk reads a pipe in blocks, which
    # would hold the stream back until the end.)
    t=$(cat "$stage/count")
    while IFS= read -r line; do
        case $line in
        "ok "[0-9]*|"not ok "[0-9]*)
            st=${line%%ok *}ok
            rest=${line#"$st "}
            rest=${rest#"${rest%%[!0-9]*}"}
            rest=${rest# }
            rest=${rest#- }
            t=$((t + 1))
            echo "$st $t - debian$1: $rest" ;;
        1..[0-9]*) ;;
        *) printf '%s\n' "$line" ;;
        esac
    done
    echo "$t" >"$stage/count"
}
result() { # RELEASE STATUS NAME [DETAIL]
    if [ "$2" = 0 ]; then
        echo "ok 1 - $3"
    else
        failed=1
        echo "not ok 1 - $3"
        [ -z "${4:-}" ] || printf '%s\n' "$4" | sed 's/^/# /'
    fi | tap "$1"
}

for r in $releases; do
    work=$stage/debian$r
    mkdir -p "$work/debs"
    built=$work/built
    start=$(date +%s)
    if [ -n "$debs" ]; then
        built=$debs
    elif [ "$r" = "$host" ]; then
        # shellcheck disable=SC2086
        "$top/scripts/build-debs.sh" $worktree --out "$built" >&2 ||
            { result "$r" 1 "packages built on this Debian $r"; continue; }
    else
        # In the release's cached root (not the clean one: it keeps the
        # build dependencies and the prepared QEMU sources).
        # shellcheck disable=SC2086
        "$top/scripts/debian-root.sh" --release "$r" $worktree \
            --run 'scripts/build-debs.sh --out results' \
            --results "$built" >&2 ||
            { result "$r" 1 "packages built in the Debian $r root"; continue; }
    fi
    for d in "$built"/*.deb; do
        case $d in
        *-dbgsym_*) ;;
        *) [ ! -e "$d" ] || cp "$d" "$work/debs/" ;;
        esac
    done
    if ! ls "$work"/debs/*.deb >/dev/null 2>&1; then
        result "$r" 1 "packages built for Debian $r" "no .deb in $built"
        continue
    fi
    say "Debian $r: packages ready ($(( $(date +%s) - start )) s)"
    cp -r "$top/examples/seed-host" "$top/examples/seed-guest" "$work/"
    cp "$top/tests/debs/installed-test.sh" "$work/"
    cp "$kernel" "$work/vmlinuz"

    start=$(date +%s)
    { rc=0
      "$top/scripts/debian-root.sh" --release "$r" --clean \
          --copy "$work" --run ./installed-test.sh || rc=$?
      echo "$rc" >"$stage/status"; } | tap "$r"
    status=$(cat "$stage/status")
    [ "$status" = 0 ] || failed=1
    say "Debian $r: installed-package test done ($(( $(date +%s) - start )) s), exit status $status"
    rm -rf "$work"
done
echo "1..$(cat "$stage/count")"
[ "$failed" = 0 ]
