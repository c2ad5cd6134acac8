#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A clean Debian root (12 or 13) made once with debootstrap and cached
# outside the repository, to run things in: by default the README's test
# command (scripts/run-tests.sh) against that release's stock QEMU packages
# (Debian 13's binaries need Debian 13's libraries, hence a root rather than
# packages on the host); with --overlay, in a throwaway copy of the root, so
# that what runs there (scripts/test-debs.sh installs and purges packages)
# starts from the clean root every time. scripts/debian13-root.sh is this
# script with --release 13.
#
# Safety: everything runs in a private mount and PID namespace (unshare), so
# the root's mounts are never visible on the host and vanish with the last
# process even on SIGKILL; they are also unmounted explicitly on every exit
# path. The root's /dev is a tmpfs holding bind mounts of a few host device
# nodes (never a bind of the host's /dev, never a devtmpfs: that would be
# the host's own instance), so nothing run inside can create, remove or
# replace a host /dev entry.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

usage() {
    cat <<USAGE
Usage: $prog [OPTIONS] [-- MESON-TEST-ARGS...]

Make (first time) a cached Debian root, copy the source into it and run
scripts/run-tests.sh there (installs the release's packages, prepares its
QEMU's sources, builds, runs every suite).

  --release N    Debian release: 12 (bookworm) or 13 (trixie, the default)
  --cache DIR    where the root is cached (default \$QEMU_BACKDOOR_ROOT_CACHE,
                 else /var/cache/qemu-backdoor); the root is DIR/debianN
  --overlay      run in a copy of the cached root (an overlay mount whose
                 changes are dropped at the end): the cached root stays
                 as it is
  --clean        run in a copy (--overlay) of a root that is only ever
                 used this way, DIR/debianN-clean, so that it stays as
                 debootstrap made it (the root without --clean collects
                 the packages of the runs that install some)
  --copy DIR     copy DIR into the root as /root/work and run there instead
                 of in a copy of the source (with --run or --shell)
  --bench        also run the benchmark, merged with this tree's
                 build/bench/results.md if there is one (the Debian 12
                 rows); the table goes to DIR/debianN-results.md and to
                 build/bench/results-debianN.md (and latency-debianN.png)
  --worktree     copy the working tree as it is (tracked and untracked
                 files) instead of a clean export of HEAD
  --shell        open a shell in the root (with the source copied in)
                 instead of running the tests
  --run CMD      run CMD with sh -c in the root's source copy instead
  --results DIR  after --run, copy what CMD left in the directory
                 results/ (of the source copy, or of --copy's) to DIR
  --refresh      apt-get update and upgrade the cached root first
  --rebuild      remove the cached root and make it again
  --mirror URL   Debian mirror (default http://deb.debian.org/debian)
  -h, --help     show this help

Needs root, debootstrap and about 3 GB in DIR. A cold run (debootstrap,
packages, QEMU source preparation, build, tests) takes 2 to 4 minutes on
2 cores; a warm one about 1.
USAGE
}

cache=${QEMU_BACKDOOR_ROOT_CACHE:-/var/cache/qemu-backdoor}
release=13 overlay=0 clean=0 copy="" results=""
mirror=http://deb.debian.org/debian
args=("$@")
bench=0 worktree=0 refresh=0 rebuild=0 mode=test cmd=''
while [ $# -gt 0 ]; do
    case $1 in
    --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
    --release) release=${2:?--release needs 12 or 13}; shift 2 ;;
    --overlay) overlay=1; shift ;;
    --clean) clean=1; overlay=1; shift ;;
    --copy) copy=${2:?--copy needs a directory}; shift 2 ;;
    --bench) bench=1; shift ;;
    --worktree) worktree=1; shift ;;
    --shell) mode=shell; shift ;;
    --run) mode=run; cmd=${2:?--run needs a command}; shift 2 ;;
    --results) results=${2:?--results needs a directory}; shift 2 ;;
    --refresh) refresh=1; shift ;;
    --rebuild) rebuild=1; shift ;;
    --mirror) mirror=${2:?--mirror needs a URL}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) break ;;
    esac
done

case $release in
12) suite=bookworm ;;
13) suite=trixie ;;
*) die "unknown release '$release': give 12 or 13" ;;
esac
[ -z "$copy" ] || [ -d "$copy" ] || die "--copy $copy: not a directory"
[ -z "$copy" ] || [ "$mode" != test ] || die "--copy goes with --run or --shell"
[ -z "$copy" ] || copy=$(cd "$copy" && pwd)
[ -z "$results" ] || [ "$mode" = run ] || die "--results goes with --run"
if [ -n "$results" ]; then
    mkdir -p "$results"
    results=$(cd "$results" && pwd)
fi

[ "$(id -u)" = 0 ] ||
    die "run as root (sudo $0): debootstrap, chroot and mount need it"
top=$(cd "$(dirname "$0")/.." && pwd)

# Once: into new mount and PID namespaces, as their PID 1. unshare ignores
# SIGINT and SIGTERM while it waits, so this outer process takes them and
# ends unshare, which --kill-child turns into a SIGTERM for the inner
# script; its trap unmounts. When the inner script ends, the kernel kills
# whatever is left in the PID namespace and drops its mounts.
if [ "${QEMU_BACKDOOR_ROOT_NS:-}" != 1 ] || [ $$ != 1 ]; then
    command -v unshare >/dev/null ||
        die "unshare is missing (apt-get install util-linux)"
    # (fd 3: a background job's stdin would be /dev/null, and --shell
    # needs the terminal.)
    exec 3<&0
    QEMU_BACKDOOR_ROOT_NS=1 unshare --mount --pid --fork \
        --propagation private --kill-child=TERM -- "$0" "${args[@]}" <&3 &
    upid=$!
    stop() {
        local inner
        inner=$(pgrep -P "$upid")
        kill -KILL "$upid" 2>/dev/null
        # Wait for the inner script's cleanup.
        while [ -n "$inner" ] && kill -0 "$inner" 2>/dev/null; do
            sleep 0.2
        done
        exit "$1"
    }
    trap 'stop 130' INT
    trap 'stop 143' TERM
    rc=0
    wait "$upid" || rc=$?
    exit "$rc"
fi

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
name=debian$release
[ "$clean" = 0 ] || name=$name-clean
root=$cache/$name
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }

# One run per root at a time: runs share the root's copy of the source.
exec 8>"$cache/.$name.lock"
if ! flock -n 8; then
    say "waiting for another run in the root $root to end"
    flock 8
fi

mounted=()
ov=''
do_mount() {
    mount "$@"
    mounted+=("${!#}")
}

cleanup() {
    local rc=$? i left
    set +e
    trap - EXIT INT TERM
    # Whatever is still running in the root (a QEMU of an interrupted
    # test) would keep its mounts busy. PID 1 is this script; -1 spares it.
    kill -TERM -1 2>/dev/null && sleep 1
    kill -KILL -1 2>/dev/null
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[i]}" 2>/dev/null ||
            umount -l "${mounted[i]}" ||
            echo "$prog: cannot unmount ${mounted[i]}" >&2
    done
    left=$(findmnt -rn -o TARGET | awk -v r="$root/" 'index($0 "/", r) == 1')
    if [ -n "$left" ]; then
        echo "$prog: error: still mounted: $left" >&2
        rc=1
    elif [ -n "$ov" ]; then
        rm -rf --one-file-system "$ov"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$rebuild" = 1 ] && [ -e "$root" ]; then
    say "removing the cached root $root"
    rm -rf --one-file-system "$root"
fi

if [ ! -f "$root/.qemu-backdoor-root" ]; then
    command -v debootstrap >/dev/null ||
        die "debootstrap is missing (apt-get install debootstrap)"
    say "making a Debian $release root in $root with debootstrap (a few minutes)"
    rm -rf --one-file-system "$root.new"
    # debootstrap creates the target's device nodes in its own /dev
    # directory on disk, which is not the host's.
    debootstrap --variant=minbase $suite "$root.new" "$mirror" \
        >"$cache/debootstrap.log" 2>&1 ||
        die "debootstrap failed, see $cache/debootstrap.log"
    cat >"$root.new/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SOURCES
    # No service starts inside a chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root.new/usr/sbin/policy-rc.d"
    chmod 755 "$root.new/usr/sbin/policy-rc.d"
    date -u >"$root.new/.qemu-backdoor-root"
    mv "$root.new" "$root"
    say "root made ($(elapsed))"
fi

# A throwaway copy: what runs writes to an upper layer removed at the end.
if [ "$overlay" = 1 ]; then
    ov=$(mktemp -d "$cache/overlay.XXXXXX")
    mkdir "$ov/upper" "$ov/work" "$ov/root"
    do_mount -t overlay -o "lowerdir=$root,upperdir=$ov/upper,workdir=$ov/work" \
        overlay "$ov/root"
    root=$ov/root
fi

# The root's kernel file systems. /dev is a fresh tmpfs with a few host
# device nodes bound onto empty files: removing or replacing them inside
# fails (they are mount points), and anything created there is lost.
do_mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
do_mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
do_mount -t tmpfs -o mode=755,nosuid,size=64m tmpfs "$root/dev"
for node in null zero full random urandom tty kvm; do
    [ -c "/dev/$node" ] || continue
    : >"$root/dev/$node"
    do_mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir "$root/dev/pts" "$root/dev/shm"
do_mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts \
    "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
do_mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        TERM="${TERM:-dumb}" ${BENCH_N:+BENCH_N=$BENCH_N} \
        ${BENCH_REPS:+BENCH_REPS=$BENCH_REPS} \
        ${BENCH_USER_ARCHES:+BENCH_USER_ARCHES="$BENCH_USER_ARCHES"} \
        ${BENCH_MERGE:+BENCH_MERGE="$BENCH_MERGE"} \
        "$@"
}

if [ "$refresh" = 1 ]; then
    say "updating the root's packages"
    in_root apt-get update -q
    in_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q upgrade
fi

# The source: a clean export of HEAD (what CI's fresh clone has), or the
# working tree with --worktree.
src=$root/root/qemu-backdoor
work=/root/qemu-backdoor
rm -rf --one-file-system "$src"
mkdir -p "$src"
if [ -n "$copy" ]; then
    # Only DIR: no source in the root.
    rmdir "$src"
    work=/root/work
    rm -rf --one-file-system "$root$work"
    say "copying $copy to $work"
    mkdir -p "$root$work"
    cp -a "$copy/." "$root$work/"
elif [ "$worktree" = 1 ] || ! git -C "$top" rev-parse HEAD >/dev/null 2>&1; then
    say "copying the working tree $top"
    if git -C "$top" rev-parse HEAD >/dev/null 2>&1; then
        git -C "$top" ls-files -z -co --exclude-standard |
            (cd "$top" && tar --null -T - -cf -) | tar -xf - -C "$src"
    else
        (cd "$top" && tar --exclude='./build*' -cf - .) | tar -xf - -C "$src"
    fi
else
    say "exporting $(git -C "$top" rev-parse --short HEAD) from $top"
    git -C "$top" archive --format=tar HEAD | tar -xf - -C "$src"
fi

# Commands run as background jobs that this script waits for: bash runs a
# trap only once a foreground command has ended, but interrupts a wait.
# (Their stdin is fd 3, the terminal's.)
in_root_bg() {
    in_root "$@" <&3 &
    wait $!
}

rc=0
case $mode in
shell)
    in_root /bin/sh -c 'cd "$1" && exec /bin/bash -i' sh "$work" || rc=$? ;;
run)
    in_root_bg /bin/sh -c 'cd "$1" && eval "$2"' sh "$work" "$cmd" ||
        rc=$?
    if [ -n "$results" ] && [ -d "$root$work/results" ]; then
        cp -r "$root$work/results/." "$results/"
    fi ;;
test)
    say "running scripts/run-tests.sh in the Debian $release root"
    in_root_bg /bin/sh -c 'cd /root/qemu-backdoor && exec scripts/run-tests.sh "$@"' \
        sh "$@" || rc=$?
    say "tests done ($(elapsed)), exit status $rc"
    if [ "$bench" = 1 ]; then
        BENCH_MERGE=
        # This tree's own results (QEMU 7.2 on Debian 12) go into the same
        # table, so that both QEMUs' system-mode rows stand side by side.
        if [ -f "$top/build/bench/results.md" ]; then
            cp "$top/build/bench/results.md" "$src/results-host.md"
            BENCH_MERGE=/root/qemu-backdoor/results-host.md
        fi
        say "running the benchmark in the Debian $release root"
        in_root_bg /bin/sh -c 'cd /root/qemu-backdoor && exec ninja -C build bench' ||
            rc=1
        out=$src/build/bench
        if [ -f "$out/results.md" ]; then
            cp "$out/results.md" "$cache/debian$release-results.md"
            if [ -d "$top/build/bench" ]; then
                cp "$out/results.md" "$top/build/bench/results-debian$release.md"
                [ ! -f "$out/latency.png" ] ||
                    cp "$out/latency.png" "$top/build/bench/latency-debian$release.png"
            fi
            say "benchmark results: $cache/debian$release-results.md${BENCH_MERGE:+, with the rows of build/bench/results.md}"
        fi
    fi ;;
esac
say "done ($(elapsed))"
exit "$rc"
