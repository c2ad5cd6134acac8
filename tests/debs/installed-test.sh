#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs inside a clean Debian 12 or 13 root (scripts/test-debs.sh puts it
# there with the .debs, the demo's two example sources and a guest kernel):
# installs the packages the way a user does, runs the demo from installed
# paths only, builds a guest program with pkg-config, moves qemu-system-x86
# between the archive's two builds (the device rebuilt by the package's
# trigger, or the launcher naming the command when it cannot be), then
# purges and checks that no file is left behind. Prints TAP.

# (Single-quoted $... below are for the command they are given to.)
# shellcheck disable=SC2016
set -u
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
n=0 failed=0
t0=$(date +%s)
ok() { n=$((n + 1)); echo "ok $n - $1"; }
# A TAP comment with the time since the start: where the minutes go.
at() { echo "# $1 ($(( $(date +%s) - t0 )) s)"; }
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
# database that groupadd leaves when qemu-system-common adds group kvm,
# and /etc/hosts, which netbase's postinst writes when there is none, as in
# Debian 13's minbase, and its purge keeps: python3 brings netbase).
snapshot() {
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp \
        -o -path /root -o -path /var/lib/apt -o -path /var/cache \
        -o -path /var/lib/dpkg -o -path /var/log -o -path /run \) -prune \
        -o -print |
        grep -Ev '^/etc/((passwd|group|shadow|gshadow)-|hosts)$' | sort
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
dpkg-query -W -f='${Package}\n' | sort >before.packages
at "tools installed"

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

# User mode, both backends, the dynamic guest program. Debian 13's
# qemu-user is static: nothing can be preloaded into it.
static=
case $(LC_ALL=C readelf -lW "$(command -v qemu-x86_64)" 2>&1) in
*"Requesting program interpreter"*) ;;
*) static=1 ;;
esac
for backend in helper supervisor; do
    if [ "$backend" = helper ] && [ -n "$static" ]; then
        ok "# SKIP user mode (helper): qemu-x86_64 is static here (the supervisor serves it)"
        continue
    fi
    out=$(QEMU_BACKDOOR_LIB=./libseed-callbacks.so timeout 120 \
        qemu-backdoor --backend=$backend qemu-x86_64 ./guest-program 2>&1)
    case $out in
    *"+ 16777216"*"-> babe :: cafe"*)
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
system_demo() { # NAME
    out=$(timeout 300 qemu-backdoor qemu-system-x86_64 -M q35 -accel tcg \
        -m 256M -nodefaults -display none -serial stdio -monitor none \
        -no-reboot -kernel vmlinuz -initrd initramfs.cpio \
        -append 'console=ttyS0 quiet panic=-1 no_timer_check' \
        -device backdoor,callbacks=./libseed-callbacks.so </dev/null 2>&1)
    case $out in
    *"+ 1048576"*"-> babe :: cafe"*"guest: seed-guest exited 0"*) ok "$1" ;;
    *) not_ok "$1" "$out" ;;
    esac
}
system_demo "system mode: Linux guest calls the host"
at "installed, demo done"

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
# down; the device is tied to its build): the package's trigger runs
# qemu-backdoor-rebuild, which rebuilds the device for it, or, when it
# cannot (build dependencies missing, no network, no source), leaves apt
# succeeding and the launcher naming the one command that fixes it.
moddir=/usr/lib/x86_64-linux-gnu/qemu
have=$(dpkg-query -W -f='${Version}' qemu-system-x86)
other=$(apt-cache madison qemu-system-x86 | awk -v h="$have" \
    '$3 != h { print $3; exit }')
check "qemu-backdoor-rebuild --help" \
    sh -c 'qemu-backdoor-rebuild --help |
        grep -q "^Usage: qemu-backdoor-rebuild"'
check "man page qemu-backdoor-rebuild(8)" \
    test -f /usr/share/man/man8/qemu-backdoor-rebuild.8.gz
out=$(qemu-backdoor-rebuild 2>&1)
case $out in
*"packaged device is for this QEMU"*)
    ok "qemu-backdoor-rebuild: the packaged device serves $have" ;;
*) not_ok "qemu-backdoor-rebuild: the packaged device serves $have" "$out" ;;
esac
# What qemu-backdoor-rebuild needs: qemu-backdoor's Recommends but qemu-user.
rebuild_deps=$(dpkg-query -W -f='${Recommends}' qemu-backdoor |
    tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -v '^qemu-user$')

# move VERSION NAME [APT-GET-OPTIONS]: install that qemu-system-x86 build
# (as a dependency again, the way the packages brought it); ok when
# apt-get succeeds and qemu-backdoor stays. Its output is in $moved.
move() {
    v=$1 name=$2
    shift 2
    moved=$(apt-get install -y -q --allow-downgrades --no-install-recommends \
        "$@" "qemu-system-x86=$v" "qemu-system-common=$v" 2>&1)
    rc=$?
    apt-mark auto qemu-system-x86 qemu-system-common >/dev/null
    if [ "$rc" = 0 ] &&
        [ "$(dpkg-query -W -f='${Version} ${db:Status-Abbrev}' \
            qemu-system-x86)" = "$v ii " ] &&
        [ "$(dpkg-query -W -f='${db:Status-Abbrev}' qemu-backdoor)" = "ii " ]
    then
        ok "$name: apt-get succeeds, qemu-backdoor stays"
    else
        not_ok "$name: apt-get succeeds, qemu-backdoor stays" \
            "exit status $rc; $moved"
    fi
}
# The module in QEMU's module directory carries the stamp of QEMU's own.
stamp_of() {
    nm -D --defined-only "$1" 2>/dev/null | grep -o 'qemu_stamp_[0-9a-f]*'
}
module_matches() { # NAME
    want=
    for m in "$moddir"/*.so; do
        [ "$m" = "$moddir/hw-backdoor.so" ] || want=$(stamp_of "$m")
        [ -z "$want" ] || break
    done
    got=$(stamp_of "$moddir/hw-backdoor.so")
    if [ -n "$want" ] && [ "$got" = "$want" ]; then
        ok "$1: hw-backdoor.so has QEMU's module stamp"
    else
        not_ok "$1: hw-backdoor.so has QEMU's module stamp" \
            "QEMU's: '$want', hw-backdoor.so's: '$got'"
    fi
}
# The launcher refuses the QEMU in one line naming the command.
refused() { # NAME WHY
    err=$(qemu-backdoor qemu-system-x86_64 -M none -display none \
        </dev/null 2>&1 >/dev/null)
    rc=$?
    lines=$(printf '%s\n' "$err" | wc -l)
    case $rc:$lines:$err in
    [1-9]*:1:*"built for QEMU"*"$2"*": run 'sudo qemu-backdoor-rebuild'")
        ok "$1: the launcher says so in one line with the command" ;;
    *) not_ok "$1: the launcher says so in one line with the command" \
        "exit status $rc: $err" ;;
    esac
}
# A device for another build is nowhere QEMU could load it from.
no_stale() { # NAME
    if [ ! -e "$moddir/hw-backdoor.so" ] &&
        [ ! -e /var/lib/qemu-backdoor/rebuilt ]; then
        ok "$1: no device of another build left to load"
    else
        not_ok "$1: no device of another build left to load" \
            "$(ls -lL "$moddir/hw-backdoor.so" \
                /var/lib/qemu-backdoor/rebuilt 2>&1)"
    fi
}
rebuilt_for() { # NAME VERSION ('' for the packaged device)
    v=$(qemu-backdoor -V)
    case $2:$v in
    :*"rebuilt for"*) not_ok "$1: qemu-backdoor -V: the packaged device" "$v" ;;
    :*) ok "$1: qemu-backdoor -V: the packaged device" ;;
    *:*"rebuilt for QEMU version "*"(Debian $2))")
        ok "$1: qemu-backdoor -V: rebuilt for $2" ;;
    *) not_ok "$1: qemu-backdoor -V: rebuilt for $2" "$v" ;;
    esac
}
# rebuilt NAME VERSION OUTPUT: after a rebuild for VERSION that printed
# OUTPUT, the device is that build's and the demo runs. The archive may
# serve no source for a build (a superseded security upload): the rebuild
# then cannot happen, which is checked as a failure the launcher names,
# and the rest is a visible skip.
rebuilt() {
    case $3 in
    *"apt-get source qemu="*"failed: Failed to fetch"*" 404 "*)
        ok "$1: the rebuild fails on the archive's missing source, in one line"
        refused "$1 (no source)" "404"
        no_stale "$1 (no source)"
        ok "# SKIP $1: device rebuilt for $2: the archive serves no source for it"
        return ;;
    *"rebuilt the device for QEMU version "*)
        ok "$1: the device rebuilt" ;;
    *) not_ok "$1: the device rebuilt" \
        "$3$(printf '\n'; tail -n 20 /var/lib/qemu-backdoor/rebuild.log)" ;;
    esac
    rebuilt_for "$1" "$2"
    module_matches "$1"
    system_demo "$1: system mode: Linux guest calls the host"
}

if [ -z "$other" ]; then
    ok "# SKIP another qemu-system-x86 build: the archive has only $have"
else
    down="$have -> $other" up="$other -> $have"
    case $(dpkg-query -W -f='${Depends}' qemu-backdoor) in
    *"qemu-system-x86 (= "*)
        not_ok "qemu-backdoor depends on a range of qemu-system-x86 builds" \
            "$(dpkg-query -W -f='${Depends}' qemu-backdoor)" ;;
    *"qemu-system-x86 (>= "*)
        ok "qemu-backdoor depends on a range of qemu-system-x86 builds" ;;
    *) not_ok "qemu-backdoor depends on a range of qemu-system-x86 builds" \
        "$(dpkg-query -W -f='${Depends}' qemu-backdoor)" ;;
    esac

    # Installed without its Recommends: the trigger cannot rebuild.
    move "$other" "$down (build dependencies missing)"
    case $moved in
    *"cannot rebuild the backdoor device"*"missing build dependencies"*)
        ok "$down: the trigger says why it cannot rebuild" ;;
    *) not_ok "$down: the trigger says why it cannot rebuild" "$moved" ;;
    esac
    refused "$down" "missing build dependencies"
    no_stale "$down"
    # The command it names installs them (as dependencies) and rebuilds.
    not_installed() {
        for p in "$@"; do
            case $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) in
            ii*) ;;
            *) echo "$p" ;;
            esac
        done
    }
    # shellcheck disable=SC2086
    were_missing=$(not_installed $rebuild_deps)
    out=$(qemu-backdoor-rebuild 2>&1)
    # shellcheck disable=SC2086
    missing=$(not_installed $were_missing)
    # shellcheck disable=SC2086
    manual=$(apt-mark showmanual $were_missing)
    name="$down: sudo qemu-backdoor-rebuild installed the build"
    name="$name dependencies (automatically installed)"
    if [ -z "$missing" ] && [ -z "$manual" ]; then
        ok "$name"
    else
        not_ok "$name" "missing: $missing; marked manual: $manual; $out"
    fi
    rebuilt "$down: sudo qemu-backdoor-rebuild" "$other" "$out"
    at "rebuilt by hand"

    move "$have" "$up"
    rebuilt_for "$up" ''
    module_matches "$up"
    system_demo "$up: system mode: Linux guest calls the host"
    at "moved up"
    # A rebuild from the installed sources and the archive's, for the
    # packaged build itself (whose source the archive has).
    out=$(qemu-backdoor-rebuild --force 2>&1)
    rebuilt "$have: qemu-backdoor-rebuild --force" "$have" "$out"
    at "forced rebuild"

    # No network: the build comes from apt's cache, its sources cannot.
    offline=/etc/apt/apt.conf.d/99qemu-backdoor-test-offline
    printf '%s\n' 'Acquire::http::Proxy "http://127.0.0.1:9/";' \
        'Acquire::https::Proxy "http://127.0.0.1:9/";' >"$offline"
    move "$other" "$down (no network)"
    case $moved in
    *"cannot rebuild the backdoor device"*"no network?"*)
        ok "$down (no network): the trigger says why it cannot rebuild" ;;
    *) not_ok "$down (no network): the trigger says why it cannot rebuild" \
        "$moved" ;;
    esac
    refused "$down (no network)" "no network?"
    no_stale "$down (no network)"
    # Past the launcher, the loader refuses that QEMU build itself.
    err=$(timeout 60 qemu-system-x86_64 -plugin "$(qemu-backdoor --print-loader)" \
        -M none -display none -S </dev/null 2>&1)
    rc=$?
    case $rc:$err in
    1:*"was built for QEMU"*"not for this QEMU"*)
        ok "$down (no network): -plugin of the loader: refused, no crash" ;;
    *) not_ok "$down (no network): -plugin of the loader: refused, no crash" \
        "exit status $rc: $err" ;;
    esac
    rm -f "$offline"
    at "no network"

    # Online again: up, then down with the trigger rebuilding.
    move "$have" "$up"
    move "$other" "$down"
    rebuilt "$down: the trigger" "$other" "$moved"
    at "moved up and down"
fi

# Purge: our packages, then what they pulled in.
# shellcheck disable=SC2086
check "apt-get purge" apt-get purge -y -q $pkgs
check "apt-get autoremove --purge" apt-get autoremove --purge -y -q
at "purged"
# apt keeps an automatically installed package that an installed one
# suggests (APT::AutoRemove::SuggestsImportant): apt suggests dpkg-dev,
# one of qemu-backdoor-rebuild's build dependencies.
# Likewise one they recommend (libglib2.0-0 recommends libglib2.0-data,
# which libglib2.0-dev brought). Those must all be automatically installed.
kept=$(dpkg-query -W -f='${Package}\n' | sort | comm -13 before.packages - |
    tr '\n' ' ')
if [ -n "$kept" ]; then
    # shellcheck disable=SC2086
    manual=$(apt-mark showmanual $kept)
    if [ -z "$manual" ]; then
        # shellcheck disable=SC2086
        check "purge of what apt keeps as recommended or suggested by installed packages: $kept" \
            apt-get purge -y -q $kept
    else
        not_ok "apt keeps only automatically installed packages" \
            "manually installed: $manual"
    fi
fi
snapshot >after.list
left=$(comm -13 before.list after.list)
# (apt's cache and lists are outside the listing: nothing of ours there.)
left="$left$(find /var/cache /var/lib/apt /tmp -name '*qemu-backdoor*' \
    -o -name 'qemu_*dfsg*' -o -name 'qemu_*+ds*' 2>/dev/null)"
if [ -z "$left" ]; then
    ok "purge leaves no file behind"
else
    not_ok "purge leaves no file behind" "$left"
fi
echo "1..$n"
[ "$failed" = 0 ]
