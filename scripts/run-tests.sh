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
logs=build/meson-logs/testlog.json

# ---- Sanitizers (scripts/run-sanitizers.py) -------------------------------
# A full run (no test names given) also builds with ASan + UBSan in
# build-asan and runs the suites that can run sanitized there (one to two
# minutes); its checks count in the summary line. SANITIZE=0 skips it.
if [ $# = 0 ] && [ "${SANITIZE:-1}" != 0 ]; then
    sanitize_log=build-asan/meson-logs/sanitize-testlog.json
    rm -f "$sanitize_log"
    python3 scripts/run-sanitizers.py build-asan || rc=1
    if [ -f "$sanitize_log" ]; then
        logs="$logs $sanitize_log"
    else
        # Counted as a failed check, so the summary line cannot say
        # "0 failed" for a run that lost its sanitized half.
        echo "run-tests.sh: the sanitizer run stopped before its tests" >&2
        echo "not ok 1 - the sanitizer run stopped before its tests" \
            >build/sanitize-failed.tap
        BACKDOOR_EXTRA_TAP="${BACKDOOR_EXTRA_TAP:-} sanitizers=build/sanitize-failed.tap"
        export BACKDOOR_EXTRA_TAP
        rc=1
    fi
fi
# ---------------------------------------------------------------------------

all=build/meson-logs/all-testlog.json
# shellcheck disable=SC2086
cat $logs > "$all"
python3 scripts/tap-summary.py "$all" || rc=1
exit $rc
