#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install the Debian 12 packages qemu-backdoor needs to build, test and run
# its demo. Run as root (or through sudo). Idempotent. (qemu-user-static,
# whose static qemu-<arch>-static the supervisor tests run, installs beside
# qemu-user; Debian 13's static qemu-user is fetched, not installed, by
# scripts/fetch-static-qemu.sh.)
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (sudo $0)" >&2
    exit 1
fi

packages="
    gcc libc6-dev binutils make pkg-config meson ninja-build python3
    python3-venv
    libglib2.0-dev
    qemu-system-x86 qemu-user qemu-utils
    dpkg-dev libpixman-1-dev libfdt-dev zlib1g-dev
    git patch
    libcapstone-dev
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    gcc-s390x-linux-gnu libc6-dev-s390x-cross
    gcc-i686-linux-gnu libc6-dev-i386-cross
    busybox-static cpio
    gnuplot-nox
    qemu-system-arm qemu-system-ppc
    gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross
    libasan8 libubsan1
    qemu-user-static
    debootstrap
"

export DEBIAN_FRONTEND=noninteractive
# The guest kernel is fetched later with apt-get download: its lists too.
missing=
for p in $packages; do
    case $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) in
    ii*) ;;
    *) missing="$missing $p" ;;
    esac
done
if [ -n "$missing" ] || ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $packages
fi
