#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The README's quick start, the way a newcomer meets it: take the two
# commands from the README, clone the checkout's HEAD afresh (no build
# directory), run the demo there and check what it shows. Prints TAP.
#
#   scripts/check-readme.sh                 run and check the demo
#   scripts/check-readme.sh --test-command  print the README's test command
#
# Run as root: the commands start with sudo, which a fresh Debian may not
# have, so it is dropped when already root. CI (.ci/run) runs both.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)

# The indented command lines of the "Quick start" section, in order.
commands=$(awk '/^## /{quick = /^## Quick start/; next}
                quick && /^    [^ ]/ {sub(/^    /, ""); print}' \
           "$top/README.md")
demo=$(printf '%s\n' "$commands" | sed -n 1p)
tests=$(printf '%s\n' "$commands" | sed -n 2p)
if [ "$(printf '%s\n' "$commands" | wc -l)" != 2 ] ||
   [ "${demo#sudo scripts/demo.sh}" = "$demo" ] ||
   [ "${tests#sudo scripts/run-tests.sh}" = "$tests" ]; then
    echo "check-readme.sh: the README's Quick start no longer has the two" \
         "commands (demo, tests) this check knows; found:" >&2
    printf '  %s\n' "$commands" >&2
    exit 1
fi

as_root() {
    if [ "$(id -u)" = 0 ]; then
        printf '%s\n' "${1#sudo }"
    else
        printf '%s\n' "$1"
    fi
}

if [ "${1:-}" = --test-command ]; then
    as_root "$tests"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/qemu-backdoor-readme.XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone -q "$top" "$work/clone"
log=$work/demo.log

n=0
failed=0
check() {
    n=$((n + 1))
    if grep -qF -- "$2" "$log"; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1 (no line with '$2')"
        failed=$((failed + 1))
    fi
}

echo "# demo from a fresh clone of $(git -C "$top" rev-parse --short HEAD):" \
     "$(as_root "$demo")"
rc=0
(cd "$work/clone" && sh -c "$(as_root "$demo")") >"$log" 2>&1 </dev/null ||
    rc=$?
n=$((n + 1))
if [ $rc = 0 ]; then
    echo "ok $n - the demo exits 0"
else
    echo "not ok $n - the demo exits 0 (exit $rc)"
    failed=$((failed + 1))
fi
check "system mode: the guest finds the device" "guest:   /sys/bus/pci/devices/"
check "system mode: the seed's guest example exits 0" "guest: seed-guest exited 0"
# The callbacks' lines: the data channel's size once per mode (1 MiB in
# the VM, 16 MiB in user mode), the guest's call once from each.
for want in 'system mode:1:+ 1048576' 'user mode:1:+ 16777216' \
            'both modes:2:-> babe :: cafe'; do
    what=${want%%:*}
    rest=${want#*:}
    times=${rest%%:*}
    line=${rest#*:}
    n=$((n + 1))
    count=$(grep -cxF -- "$line" "$log" || true)
    if [ "$count" = "$times" ]; then
        echo "ok $n - $what: the host callbacks print '$line'"
    else
        echo "not ok $n - $what: the host callbacks print '$line'" \
             "(seen $count times, expected $times)"
        failed=$((failed + 1))
    fi
done
if [ $failed != 0 ]; then
    echo "# the demo's output:"
    sed 's/^/#   /' "$log" | tail -n 40
fi
echo "1..$n"
[ $failed = 0 ]
