#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The demo: build, boot Debian's kernel under the stock qemu-system-x86_64
# with the backdoor device, run the 2011 seed's guest example in it and
# show the seed's host callbacks printing what the guest sent; then the
# same guest binary under qemu-x86_64 with the user-mode helper.
#
# On a fresh Debian 12, as root: installs the packages first
# (scripts/install-deps.sh). BUILD=dir picks the build directory.
set -eu
cd "$(dirname "$0")/.."
build=${BUILD:-build}
case $build in
/*) ;;
*) build=$PWD/$build ;;
esac

say() {
    printf '\n== %s\n' "$*"
}

if [ "$(id -u)" = 0 ]; then
    scripts/install-deps.sh
fi
[ -f "$build/build.ninja" ] || meson setup "$build"
# Everything the launcher loads, and the (not built by default) guest binary
if ! ninja -C "$build" all tests/guest/seed-guest-static >"$build/demo-build.log" 2>&1
then
    cat "$build/demo-build.log" >&2
    exit 1
fi
launcher=$build/src/launcher/qemu-backdoor
seed_host=$build/examples/libseed-callbacks.so
seed_guest=$build/tests/guest/seed-guest-static

kernel=$(scripts/fetch-guest-kernel.sh | tail -n 1)
demo=$build/demo
mkdir -p "$demo"
cat > "$demo/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "guest: the backdoor device in sysfs:"
grep -l 0xbd01 /sys/bus/pci/devices/*/device | sed 's,/device$,,;s,^,guest:   ,'
echo "guest: running the seed's example (examples/seed-guest)"
if seed-guest; then
    echo "guest: seed-guest exited 0"
fi
poweroff -f
INIT
python3 tests/guest/guest-test.py --initramfs "$demo/initramfs.cpio" \
    "$demo/init" seed-guest="$seed_guest"

say "system mode: Linux $(basename "$kernel") under qemu-system-x86_64 (TCG)"
echo "   The lines '+ 1048576' and '-> babe :: cafe' come from the host"
echo "   callbacks (examples/seed-host), printed by QEMU when the guest calls."
timeout 300 "$launcher" qemu-system-x86_64 -M q35 -accel tcg -m 256M \
    -nodefaults -display none -serial stdio -monitor none -no-reboot \
    -kernel "$kernel" -initrd "$demo/initramfs.cpio" \
    -append 'console=ttyS0 quiet panic=-1 no_timer_check' \
    -device backdoor,callbacks="$seed_host" </dev/null

say "user mode: the same guest binary under qemu-x86_64"
echo "   The same callbacks; the data channel is 16 MiB here by default"
echo "   (room for the event rings), so the first line is '+ 16777216'."
QEMU_BACKDOOR_LIB=$seed_host "$launcher" qemu-x86_64 "$seed_guest"
