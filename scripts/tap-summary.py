#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Count the TAP checks of a meson test run (testlog.json) and of plain TAP
files given as NAME=FILE arguments or in BACKDOOR_EXTRA_TAP (space-separated
NAME=FILE; CI puts the README check there): print each skipped check with
its reason, then "checks: N passed, N failed, N skipped".
Exit 1 when a check failed or no check ran."""
import json
import os
import re
import sys

passed = failed = skipped = 0


def count(name, output):
    """Count the TAP lines of @output; return how many failed."""
    global passed, failed, skipped
    before = failed
    for out in output.splitlines():
        m = re.match(r'(not ok|ok)\b.*?(#\s*SKIP\b.*)?$', out, re.I)
        if not m:
            continue
        if m.group(1) == 'not ok':
            failed += 1
            print('failed (%s): %s' % (name, out))
        elif m.group(2):
            skipped += 1
            print('skipped (%s): %s' % (name, out))
        else:
            passed += 1
    return failed - before


with open(sys.argv[1]) as f:
    for line in f:
        test = json.loads(line)
        if (not count(test['name'], test.get('stdout') or '') and
                test.get('result') not in (None, 'OK', 'SKIP',
                                           'EXPECTEDFAIL')):
            # A suite that crashed or timed out before a failing check
            failed += 1
            print('failed (%s): %s with no failing check printed' % (
                test['name'], test['result']))
for extra in sys.argv[2:] + os.environ.get('BACKDOOR_EXTRA_TAP', '').split():
    name, _, path = extra.partition('=')
    with open(path) as f:
        count(name, f.read())
print('checks: %d passed, %d failed, %d skipped' % (passed, failed, skipped))
sys.exit(1 if failed or not passed else 0)
