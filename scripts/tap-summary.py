#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Count the TAP checks of a meson test run (testlog.json): print each
skipped check with its reason, then "checks: N passed, N failed, N skipped".
Exit 1 when a check failed or no check ran."""
import json
import re
import sys

passed = failed = skipped = 0
with open(sys.argv[1]) as f:
    for line in f:
        test = json.loads(line)
        for out in (test.get('stdout') or '').splitlines():
            m = re.match(r'(not ok|ok)\b.*?(#\s*SKIP\b.*)?$', out, re.I)
            if not m:
                continue
            if m.group(1) == 'not ok':
                failed += 1
            elif m.group(2):
                skipped += 1
                print('skipped (%s): %s' % (test['name'], out))
            else:
                passed += 1
print('checks: %d passed, %d failed, %d skipped' % (passed, failed, skipped))
sys.exit(1 if failed or not passed else 0)
