#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# /init of the end-to-end test VM (tests/guest/guest-test.py). It prints
# "@@ ok /guest/NAME" or "@@ not ok /guest/NAME: why" per check, "@@ info"
# lines for the host's checks, and powers off. The kernel command line
# sets bdtest_mode (full or quick). Device addresses: see guest-test.py.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
echo "@@ init"

SEED=0000:00:04.0
TEST=0000:00:05.0
TEST2=0000:00:06.0
TRACER=0000:00:07.0
FT=0000:00:08.0
EVENTS=0000:00:09.0
OLD=0000:00:0a.0

ok() {
    echo "@@ ok /guest/$1"
}

not_ok() {
    echo "@@ not ok /guest/$1: $2"
}

# check NAME COMMAND...: passes when COMMAND exits 0
check() {
    name=$1
    shift
    if out=$("$@" 2>&1); then
        ok "$name"
    else
        not_ok "$name" "exit $?: $(echo "$out" | tr '\n' ' ')"
    fi
}

cli_round_trip() {
    { printf '\0\0\0\0\0\0\0\0'; head -c 70000 /dev/urandom; } > /tmp/in
    r=$(qemu-backdoor-call --device $TEST 0x1234 --in /tmp/in --out /tmp/out) ||
        return 1
    [ "$r" = 0x369c ] || { echo "result $r, want 0x369c"; return 1; }
    [ "$(stat -c %s /tmp/out)" = 70008 ] || { echo "size"; return 1; }
    # bytes 0-7 and 24- come back unchanged, 8-15 hold ~cmd from the host
    cmp /tmp/in /tmp/out 24 24 || return 1
    cmp -n 8 /tmp/in /tmp/out || return 1
    w=$(od -An -tx8 -j8 -N8 /tmp/out | tr -d ' ')
    [ "$w" = ffffffffffffedcb ] || { echo "data[8] $w"; return 1; }
}

cli_errors() {
    msg=$(qemu-backdoor-call --device 00:1e.0 1 2>&1)
    [ $? = 1 ] || { echo "no device: exit status"; return 1; }
    [ "$(echo "$msg" | wc -l)" = 1 ] || { echo "not one line: $msg"; return 1; }
    case $msg in
    "qemu-backdoor-call: no PCI device 0000:00:1e.0"*) ;;
    *) echo "message: $msg"; return 1 ;;
    esac
    qemu-backdoor-call 2>/dev/null
    [ $? = 2 ] || { echo "no command: exit status"; return 1; }
    qemu-backdoor-call --device $TEST nonsense 2>/dev/null
    [ $? = 2 ] || { echo "bad command: exit status"; return 1; }
    qemu-backdoor-call --help | grep -q '^Usage: qemu-backdoor-call' ||
        { echo "--help"; return 1; }
}

# The high half of a result on a guest without 8-byte accesses (RESULT_HI):
# the test library answers cmd * 3 + the first data word.
cli_32bit() {
    printf '\000\000\000\000\001\000\000\000' > /tmp/in32
    r=$(qemu-backdoor-call-32 --device $TEST 0x32 --in /tmp/in32) || return 1
    [ "$r" = 0x100000096 ] || { echo "result $r"; return 1; }
}

file_transfer() {
    file-transfer -c pci:$FT get host.bin /tmp/host.bin || return 1
    file-transfer -c pci:$FT put /tmp/host.bin back.bin
}

check seed/example seed-guest
guest-checks lib
check cli/round-trip cli_round_trip
check cli/errors cli_errors
if [ -x /bin/qemu-backdoor-call-32 ]; then
    check cli/32-bit cli_32bit
else
    echo "@@ skip /guest/cli/32-bit: no 32-bit build (i686-linux-gnu-gcc)"
fi
guest-checks multi pci:$TEST pci:$TEST2
if [ "$bdtest_mode" = full ]; then
    guest-checks threads pci:$TEST 4 2000
fi
guest-checks stress pci:$TEST 100000
guest-checks events pci:$EVENTS pci:$OLD 4 20000
check tracer/example tracer-guest -c pci:$TRACER -n 50 -t 2
check file-transfer/example file_transfer
echo "@@ info ft-md5 $(md5sum < /tmp/host.bin | cut -d' ' -f1)"
echo "@@ done"
poweroff -f
