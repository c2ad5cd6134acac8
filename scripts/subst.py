#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""subst.py IN OUT KEY=VALUE...: replace @KEY@ in IN, write an executable OUT.

meson's configure_file() does not keep the executable bit before 1.2.
"""
import os
import sys

text = open(sys.argv[1]).read()
for kv in sys.argv[3:]:
    key, value = kv.split('=', 1)
    text = text.replace(f'@{key}@', value)
with open(sys.argv[2], 'w') as f:
    f.write(text)
os.chmod(sys.argv[2], 0o755)
