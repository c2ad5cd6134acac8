#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs inside a clean Debian root (scripts/test-debs.sh puts it there with
# the .debs, the demo's two example sources and a guest kernel): installs
# the packages the way a user does, runs the demo from installed paths only,
# builds a guest program with pkg-config, then purges and checks that no
# file is left behind. Prints TAP.

# (Single-quoted $... below are for the command they are given to.)
# shellcheck disable=SC2016
set -u
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
    [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/# /'
}
check() { # NAME COMMAND...: ok when COMMAND exits 0
    name=$1; shift
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
# Everything on the root's own file system outside the places apt, dpkg
# and this test write to on their own (and the backups of the user
# database that groupadd leaves when qemu-system-common adds group kvm).
snapshot() {
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp \
        -o -path /root -o -path /var/lib/apt -o -path /var/cache \
        -o -path /var/lib/dpkg -o -path /var/log -o -path /run \) -prune \
        -o -print | grep -Ev '^/etc/(passwd|group|shadow|gshadow)-$' | sort
}

cd /root/work || exit 1
pkgs=$(for d in debs/*.deb; do dpkg-deb -f "$d" Package; done)

apt-get update -qq >apt.log 2>&1
# What a user has before: a compiler, and for the guest's initramfs
# busybox and cpio; qemu-user for user mode.
apt-get install -y -qq --no-install-recommends gcc libc6-dev pkg-config \
    busybox-static cpio qemu-user >>apt.log 2>&1 ||
    { cat apt.log; echo "Bail out! tools not installed"; exit 1; }
snapshot >before.list

check "apt-get install ./*.deb" \
    apt-get install -y -q --no-install-recommends ./debs/*.deb
for p in $pkgs; do
    check "$p installed" dpkg-query -W -f='${Status}' "$p"
done

check "man pages installed" test -f /usr/share/man/man1/qemu-backdoor.1.gz \
    -a -f /usr/share/man/man1/qemu-backdoor-call.1.gz \
    -a -L /usr/share/man/man1/qemu-backdoor-system-x86_64.1.gz
check "hw-backdoor.so in QEMU's module directory" \
    test -f /usr/lib/x86_64-linux-gnu/qemu/hw-backdoor.so

# The host side of the demo: a callback library built with the SDK.
check "callback library built with pkg-config qemu-backdoor-callbacks" \
    sh -c 'gcc -shared -fPIC -o libseed-callbacks.so seed-host/backdoor.c \
        $(pkg-config --cflags qemu-backdoor-callbacks)'
cbdir=$(pkg-config --variable=callbacksdir qemu-backdoor-callbacks)
if [ "$cbdir" = "$(qemu-backdoor --print-callbacks-dir)" ] && [ -d "$cbdir" ]
then
    ok "callbacksdir is the launcher's callbacks directory ($cbdir)"
else
    not_ok "callbacksdir is the launcher's callbacks directory" \
        "pkg-config: '$cbdir'," \
        "launcher: '$(qemu-backdoor --print-callbacks-dir)'"
fi

# The guest side: the seed's example program, dynamic and static.
check "guest program built with pkg-config qemu-backdoor-guest" \
    sh -c 'gcc -o guest-program seed-guest/backdoor-guest.c \
        $(pkg-config --cflags --libs qemu-backdoor-guest)'
check "guest program links the shared library" \
    sh -c 'l=$(ldd ./guest-program); echo "$l";
        echo "$l" | grep -q "libqemu-backdoor-guest.so.0 => /"'
check "static guest program (pkg-config --static)" \
    sh -c 'gcc -static -o seed-guest-static seed-guest/backdoor-guest.c \
        $(pkg-config --static --cflags --libs qemu-backdoor-guest)'

# User mode, both backends, the dynamic guest program.
for backend in helper supervisor; do
    out=$(QEMU_BACKDOOR_LIB=./libseed-callbacks.so timeout 120 \
        qemu-backdoor --backend=$backend qemu-x86_64 ./guest-program 2>&1)
    case $out in
    *"+ 1048576"*"-> babe :: cafe"*)
        ok "user mode ($backend): the host callbacks ran" ;;
    *) not_ok "user mode ($backend): the host callbacks ran" "$out" ;;
    esac
done
out=$(QEMU_BACKDOOR_LIB=./libseed-callbacks.so timeout 120 \
    qemu-backdoor qemu-x86_64 /usr/bin/qemu-backdoor-call 0x42 2>&1)
case $out in
*"-> 42 :: "*) ok "user mode: qemu-backdoor-call 0x42" ;;
*) not_ok "user mode: qemu-backdoor-call 0x42" "$out" ;;
esac

# System mode: a real Linux guest whose init runs the static program.
mkdir -p initramfs/bin initramfs/proc initramfs/sys
cp /bin/busybox seed-guest-static initramfs/bin/
cat >initramfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
seed-guest-static && echo "guest: seed-guest exited 0"
poweroff -f
INIT
chmod 755 initramfs/init
(cd initramfs && find . | cpio -o -H newc --quiet) >initramfs.cpio
out=$(timeout 300 qemu-backdoor qemu-system-x86_64 -M q35 -accel tcg \
    -m 256M -nodefaults -display none -serial stdio -monitor none \
    -no-reboot -kernel vmlinuz -initrd initramfs.cpio \
    -append 'console=ttyS0 quiet panic=-1 no_timer_check' \
    -device backdoor,callbacks=./libseed-callbacks.so </dev/null 2>&1)
case $out in
*"+ 1048576"*"-> babe :: cafe"*"guest: seed-guest exited 0"*)
    ok "system mode: Linux guest calls the host" ;;
*) not_ok "system mode: Linux guest calls the host" "$out" ;;
esac

# The libvirt wrapper answers libvirt's probes as QEMU.
check "qemu-backdoor-system-x86_64 -version" \
    sh -c 'qemu-backdoor-system-x86_64 -version |
        grep -q "^QEMU emulator version"'
check "qemu-backdoor-system-x86_64 -help" \
    sh -c 'qemu-backdoor-system-x86_64 -help |
        grep -q "^usage: qemu-system-x86_64"'
out=$(printf '%s\n' '{"execute":"qmp_capabilities"}' \
    '{"execute":"qom-list-types","arguments":{"implements":"pci-device"}}' \
    '{"execute":"quit"}' |
    timeout 60 qemu-backdoor-system-x86_64 -S -no-user-config -nodefaults \
        -nographic -machine none,accel=tcg -qmp stdio 2>&1)
case $out in
*'"QMP"'*'"name": "backdoor"'*)
    ok "QMP on -machine none lists the backdoor device" ;;
*) not_ok "QMP on -machine none lists the backdoor device" "$out" ;;
esac

# Another qemu-system-x86 build from the archive (a security upload up or
# down): the device is tied to its build, so apt must take qemu-backdoor
# away rather than leave it installed against the other QEMU (simulated).
have=$(dpkg-query -W -f='${Version}' qemu-system-x86)
other=$(apt-cache madison qemu-system-x86 | awk -v h="$have" \
    '$3 != h { print $3; exit }')
if [ -z "$other" ]; then
    ok "# SKIP another qemu-system-x86 build: the archive has only $have"
else
    out=$(apt-get install -s -y --allow-downgrades --no-install-recommends \
        "qemu-system-x86=$other" "qemu-system-common=$other" 2>&1)
    case $out in
    *"Remv qemu-backdoor "*)
        ok "qemu-system-x86 $have -> $other takes qemu-backdoor away" ;;
    *) not_ok "qemu-system-x86 $have -> $other takes qemu-backdoor away" \
        "$out" ;;
    esac
fi

# Purge: our packages, then what they pulled in.
# shellcheck disable=SC2086
check "apt-get purge" apt-get purge -y -q $pkgs
check "apt-get autoremove --purge" apt-get autoremove --purge -y -q
snapshot >after.list
left=$(comm -13 before.list after.list)
if [ -z "$left" ]; then
    ok "purge leaves no file behind"
else
    not_ok "purge leaves no file behind" "$left"
fi
echo "1..$n"
[ "$failed" = 0 ]
