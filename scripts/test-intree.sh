#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The opt-in test of the in-tree form (docs/in-tree.rst): for each QEMU
# asked for, write the patch series with scripts/make-qemu-patches.py,
# apply it to a fresh copy of that QEMU's sources, build
# qemu-system-x86_64 with modules, and run the qtest suite against it with
# no launcher and no -plugin (test qtest-intree of tests/meson.build).
# A build takes 6 to 16 minutes on 2 cores: not part of the test suite or CI.
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

# The QEMU 10.0 of Debian 13 whose sources are fetched (prepare-qemu.sh)
debian13_version=1:10.0.13+ds-0+deb13u1

usage() {
    cat <<USAGE
Usage: $prog [--qemu NAME]... [--work DIR] [--jobs N] [--keep]

Write the in-tree patch series for a QEMU, apply it to a fresh copy of that
QEMU's sources, build qemu-system-x86_64 (x86_64-softmmu, --enable-modules)
and run the qtest suite against it without launcher or plugin. Prints the
configure and build times and the suite's result; exits non-zero if a step
or a test fails.

  --qemu NAME   which QEMU, repeatable (default: 7.2 and 10.0):
                  7.2            Debian 12's, the installed qemu-system-x86's
                                 source package (Debian patches applied)
                  10.0           Debian 13's ($debian13_version),
                                 fetched from Debian's archive
                  upstream-10.0  the upstream release inside that package:
                                 its .orig tarball, no Debian patches
                                 (upstream's tarball minus the firmware
                                 blobs and Python wheels Debian strips;
                                 after the series, Debian's two build
                                 patches for those, disable-pycotap and
                                 skip-unpack-edk2-blobs)
  --debian13-version VER
                the Debian 13 QEMU for 10.0 and upstream-10.0 (default
                $debian13_version)
  --work DIR    where the sources, builds and logs go (default: a new
                directory under \${TMPDIR:-/tmp}); about 1.4 GB per QEMU
  --jobs N      ninja -j N (default 2), run under nice
  --keep        keep the work directory (default: removed when all passed)
  -h, --help    show this help

Needs what scripts/prepare-qemu.sh needs (root the first time, for the
deb-src entry) and QEMU's build dependencies (scripts/install-deps.sh).
USAGE
}

qemus=() work='' jobs=2 keep=''
while [ $# -gt 0 ]; do
    case $1 in
    --qemu) qemus+=("${2:?--qemu needs a value}"); shift 2 ;;
    --debian13-version) debian13_version=${2:?--debian13-version needs a value}
        shift 2 ;;
    --work) work=${2:?--work needs a value}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a value}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ ${#qemus[@]} -gt 0 ] || qemus=(7.2 10.0)
for q in "${qemus[@]}"; do
    case $q in
    7.2|10.0|upstream-10.0) ;;
    *) die "unknown QEMU '$q' (7.2, 10.0 or upstream-10.0)" ;;
    esac
done
case $jobs in ''|*[!0-9]*) die "--jobs needs a number, not '$jobs'" ;; esac
for tool in dpkg-source patch ninja meson python3 tar; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (scripts/install-deps.sh)"
done

if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/qemu-backdoor-intree-XXXXXX")
else
    mkdir -p "$work"
    work=$(cd "$work" && pwd)
fi
say "working in $work"

# Debian's own python3 and tools first, as prepare-qemu.sh does.
PATH=/usr/bin:/bin:$PATH
export PATH

# The configuration Debian's packages use for the firmware (the Debian
# sources have no blobs); everything optional off but KVM and TCG.
configure_args=(--target-list=x86_64-softmmu --enable-modules
    --without-default-features --enable-kvm --enable-tcg
    --disable-docs --disable-tools --disable-werror --disable-install-blobs
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu)

results=()
failed=0
now() { date +%s; }
mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# The project's build for the callback libraries and the suite
project=$work/project
meson_setup_done=''

run_one() {
    local name=$1 prep top dsc python_opt='' dir src build t0 t_conf t_build
    dir=$work/$name
    case $name in
    7.2) prep=$("$root/scripts/prepare-qemu.sh" | tail -n 1) ;;
    *) prep=$("$root/scripts/prepare-qemu.sh" --version "$debian13_version" \
                  --suite trixie | tail -n 1) ;;
    esac
    top=$(dirname "$prep")
    dsc=$(ls "$top"/*.dsc 2>/dev/null | head -n 1)
    [ -n "$dsc" ] || die "no .dsc in $top"
    # The --python prepare-qemu.sh gave configure (a newer meson for 10.0)
    python_opt=$(grep -o "'--python=[^']*'" "$prep/config.status" |
                 tr -d "'") || python_opt=''

    rm -rf "$dir"
    mkdir -p "$dir"
    src=$dir/src build=$dir/build
    if [ "$name" = upstream-10.0 ]; then
        say "$name: unpacking $(basename "$(ls "$top"/*.orig.tar.*)")"
        mkdir "$src"
        tar -xf "$top"/*.orig.tar.* -C "$src" --strip-components=1
    else
        say "$name: unpacking $(basename "$dsc") (Debian patches applied)"
        dpkg-source -x "$dsc" "$src" >"$dir/unpack.log" 2>&1 ||
            die "dpkg-source -x $dsc failed (see $dir/unpack.log)"
    fi
    say "$name: QEMU $(cat "$src/VERSION"); writing the series"
    "$root/scripts/make-qemu-patches.py" "$src" "$dir/patches" >/dev/null
    while read -r p; do
        patch -p1 --forward --batch -d "$src" <"$dir/patches/$p" \
            >>"$dir/patch.log" 2>&1 ||
            die "$name: $p does not apply (see $dir/patch.log)"
    done <"$dir/patches/series"
    say "$name: $(wc -l <"$dir/patches/series") patches applied"
    if [ "$name" = upstream-10.0 ]; then
        # Debian's .orig tarball lacks the blobs and wheels that upstream's
        # build expects: Debian's two build patches that cope with that
        # (edk2 images not unpacked; pycotap, for QEMU's own functional
        # tests, not required), after the series.
        local deb
        for deb in disable-pycotap.patch skip-unpack-edk2-blobs.patch; do
            tar -xOf "$(ls "$top"/*.debian.tar.*)" "debian/patches/$deb" |
                patch -p1 --batch -d "$src" >>"$dir/patch.log" 2>&1 ||
                die "$name: Debian's $deb does not apply"
        done
        say "$name: and Debian's disable-pycotap.patch, skip-unpack-edk2-blobs.patch"
    fi

    mkdir "$build"
    t0=$(now)
    (cd "$build" && "$src/configure" "${configure_args[@]}" \
        ${python_opt:+"$python_opt"} >configure.log 2>&1) ||
        die "$name: configure failed (see $build/configure.log)"
    t_conf=$(($(now) - t0))
    say "$name: configured in $(mmss $t_conf); building with nice ninja -j$jobs (6 to 16 minutes on 2 cores)"
    t0=$(now)
    nice ninja -C "$build" -j "$jobs" >"$build/build.log" 2>&1 ||
        die "$name: build failed (see $build/build.log)"
    t_build=$(($(now) - t0))
    say "$name: built in $(mmss $t_build)"
    # The device's files compile without a warning
    if grep -E '(hw/misc/backdoor|backdoor/loader|qemu-backdoor-)[^ ]*: warning' \
        "$build/build.log" >&2; then
        die "$name: warnings in the device's files (above)"
    fi
    [ -f "$build/hw-misc-backdoor.so" ] ||
        die "$name: no hw-misc-backdoor.so in $build"
    # Run from its build tree, QEMU looks for its files below qemu-bundle/;
    # Debian's sources have no firmware: link the installed firmware there.
    local fw
    for fw in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
        [ -e "$build/qemu-bundle$fw" ] && continue
        mkdir -p "$build/qemu-bundle${fw%/*}"
        ln -s "$fw" "$build/qemu-bundle$fw"
    done

    if [ -z "$meson_setup_done" ]; then
        meson setup "$project" "$root" -Dintree_qemu="$build/qemu-system-x86_64" \
            >"$work/project-setup.log" 2>&1 ||
            die "meson setup of the project failed (see $work/project-setup.log)"
        meson_setup_done=1
    else
        meson configure "$project" -Dintree_qemu="$build/qemu-system-x86_64" \
            >>"$work/project-setup.log" 2>&1 ||
            die "meson configure failed (see $work/project-setup.log)"
    fi
    local rc=0 t_test
    t0=$(now)
    nice meson test -C "$project" --suite intree --print-errorlogs \
        >"$dir/qtest.log" 2>&1 || rc=$?
    t_test=$(($(now) - t0))
    cp "$project/meson-logs/testlog.json" "$dir/qtest-testlog.json" ||
        die "$name: no meson test log (see $dir/qtest.log)"
    local counts
    python3 "$root/scripts/tap-summary.py" "$dir/qtest-testlog.json" \
        >"$dir/qtest-summary.txt" || rc=1
    cat "$dir/qtest-summary.txt" >&2
    counts=$(sed -n 's/^checks: //p' "$dir/qtest-summary.txt")
    say "$name: qtest suite in $(mmss $t_test): ${counts:-no checks ran}"
    [ $rc = 0 ] || failed=1
    results+=("$(printf '%-14s %-8s %-10s %-10s %s' "$name" \
        "$(cat "$src/VERSION")" "$(mmss $t_conf)" "$(mmss $t_build)" "$counts")")
}

for q in "${qemus[@]}"; do
    run_one "$q"
done

echo
printf '%-14s %-8s %-10s %-10s %s\n' QEMU version configure build 'qtest suite'
printf '%s\n' "${results[@]}"
echo "(nice ninja -j$jobs on $(nproc) CPUs; logs in $work)"
if [ $failed = 0 ] && [ -z "$keep" ]; then
    rm -rf "$work"
fi
exit $failed
