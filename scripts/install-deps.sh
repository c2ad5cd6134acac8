#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install the Debian 12 packages qemu-backdoor needs to build, test and run
# its demo. Run as root (or through sudo). Idempotent.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (sudo $0)" >&2
    exit 1
fi

packages="
    gcc libc6-dev binutils make pkg-config meson ninja-build python3
    libglib2.0-dev
    qemu-system-x86 qemu-user qemu-utils
    dpkg-dev libpixman-1-dev libfdt-dev zlib1g-dev
    libcapstone-dev
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    gcc-s390x-linux-gnu libc6-dev-s390x-cross
    gcc-i686-linux-gnu libc6-dev-i386-cross
    busybox-static cpio
    gnuplot-nox
    qemu-system-arm qemu-system-ppc
    gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross
    libasan8 libubsan1
"

export DEBIAN_FRONTEND=noninteractive
# The guest kernel is fetched later with apt-get download: its lists too.
# shellcheck disable=SC2086
if ! dpkg-query -W $packages >/dev/null 2>&1 ||
   ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
    apt-get update -q
        # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $packages
fi
