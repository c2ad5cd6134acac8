#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# scripts/debian13-root.sh leaves nothing behind and cannot touch the host's
# /dev: run as root after it has made its cached root (CI does), TAP on
# stdout. Not a meson test: it needs root and the cached Debian 13 root.
#
#   tests/build/debian13-root-test.sh [--cache DIR]
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
script=$top/scripts/debian13-root.sh
cache=${QEMU_BACKDOOR_ROOT_CACHE:-/var/cache/qemu-backdoor}
[ "${1:-}" = --cache ] && cache=${2:?--cache needs a directory}
root=$cache/debian13
n=0 failed=0

ok() {
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
        [ -n "${3:-}" ] && sed 's/^/# /' <<<"$3"
    fi
}

host_mounts() {
    findmnt -rn -o TARGET | awk -v r="$root/" 'index($0 "/", r) == 1'
}

host_dev_intact() {
    [ -c /dev/null ] && [ -c /dev/zero ] && [ -c /dev/urandom ] &&
        [ "$(stat -c %t:%T /dev/null)" = 1:3 ]
}

if [ "$(id -u)" != 0 ] || [ ! -f "$root/.qemu-backdoor-root" ]; then
    echo "ok 1 - /debian13-root # SKIP needs root and a cached root in $root (run scripts/debian13-root.sh first)"
    echo "1..1"
    exit 0
fi

# Inside: the root is Debian 13 with its own /dev, where the host's nodes
# cannot be removed or replaced and new nodes stay in the root's tmpfs.
marker=$(mktemp -u qbd-XXXXXX)
out=$("$script" --cache "$cache" --run "
    . /etc/os-release; echo \"release \$VERSION_ID\"
    [ -c /dev/null ] && echo null-is-char
    rm -f /dev/null 2>/dev/null || echo rm-refused
    mv /dev/zero /dev/moved 2>/dev/null || echo mv-refused
    echo x > /dev/null && echo write-ok
    mknod /dev/$marker c 1 3 2>/dev/null; echo made
    findmnt -rn -o FSTYPE /dev" 2>&1)
rc=$?
ok $rc "/debian13-root/run" "$out"
grep -q '^release 13$' <<<"$out"; ok $? "/debian13-root/is-debian-13" "$out"
grep -q '^rm-refused$' <<<"$out" && grep -q '^mv-refused$' <<<"$out" &&
    grep -q '^write-ok$' <<<"$out"
ok $? "/debian13-root/dev-nodes-cannot-be-removed" "$out"
grep -qx tmpfs <<<"$out"; ok $? "/debian13-root/dev-is-a-private-tmpfs" "$out"
[ ! -e "/dev/$marker" ]; ok $? "/debian13-root/node-made-inside-not-on-host"
host_dev_intact; ok $? "/debian13-root/host-dev-intact" "$(ls -l /dev/null /dev/zero)"
[ -z "$(host_mounts)" ]; ok $? "/debian13-root/no-mounts-left" "$(host_mounts)"

# Interrupted while a command runs in the root: Ctrl-C (SIGINT to the
# process group) or SIGTERM to the script alone ends that command and
# leaves no mount behind. Job control gives the job its own process group
# and keeps SIGINT from being ignored in it.
set -m
for sig in INT TERM; do
    "$script" --cache "$cache" --run "exec sleep 3000" >/dev/null 2>&1 &
    pid=$!
    target=$pid
    [ "$sig" = INT ] && target=-$pid
    for _ in $(seq 100); do
        pgrep -f '^sleep 3000$' >/dev/null && break
        sleep 0.2
    done
    kill -"$sig" -- "$target"
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        ok 1 "/debian13-root/$sig/ends" "still running 30 s after SIG$sig"
        kill -KILL -- "-$pid"
    else
        ok 0 "/debian13-root/$sig/ends"
    fi
    wait "$pid"
    rc=$?
    [ "$rc" != 0 ]; ok $? "/debian13-root/$sig/fails" "exit $rc"
    left=
    for _ in $(seq 50); do
        left=$(pgrep -f '^sleep 3000$')
        [ -z "$left" ] && break
        sleep 0.2
    done
    [ -z "$left" ]; ok $? "/debian13-root/$sig/no-process-left" "pids $left"
    [ -n "$left" ] && kill -KILL $left
    [ -z "$(host_mounts)" ]; ok $? "/debian13-root/$sig/no-mounts-left" "$(host_mounts)"
    host_dev_intact; ok $? "/debian13-root/$sig/host-dev-intact"
done

echo "1..$n"
[ "$failed" = 0 ]
