#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The README's test command: install what is needed, build in ./build and
# run the whole test suite. Ends with one "N passed, N failed" line that
# counts every check of every suite.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" = 0 ]; then
    scripts/install-deps.sh
else
    sudo scripts/install-deps.sh
fi

if [ ! -f build/build.ninja ]; then
    meson setup build
fi
meson compile -C build

rc=0
# No --no-rebuild: since meson 1.7 (Debian 13) "meson compile" leaves out
# the test-only targets that "meson test" builds first.
meson test -C build --print-errorlogs "$@" || rc=$?
python3 scripts/tap-summary.py build/meson-logs/testlog.json || rc=1
exit $rc
