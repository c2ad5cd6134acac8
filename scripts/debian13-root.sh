#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run the README's test command (scripts/run-tests.sh) against Debian 13's
# stock QEMU packages, in a Debian 13 root made once with debootstrap and
# cached outside the repository: scripts/debian-root.sh --release 13, which
# holds the machinery (and its safety notes) and --help.
exec "$(dirname "$0")/debian-root.sh" --release 13 "$@"
