#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# /init of the snapshot and hot reload test VM (tests/guest/snapshot-test.py):
# one backdoor device at 00:04.0 with tests/callbacks/state-callbacks.c; the
# guest calls it without end while the host snapshots, restores, migrates
# and swaps the library.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "@@ init"
exec caller 0000:00:04.0 4096
