#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Every function and variable of include/qemu-backdoor.h is exported by
the shared library (through the symbol map), and nothing else is (TAP)."""

import re
import subprocess
import sys

header, library, nm = sys.argv[1:4]
text = re.sub(r'/\*.*?\*/', '', open(header).read(), flags=re.S)
declared = set(re.findall(r'\b(qemu_backdoor\w*)\s*\(', text))
# Function-like macros are not exported, unless a prototype of the same
# name stands beside them (qemu_backdoor: an inline wrapper)
prototypes = set(re.findall(r'^[\w ]*?\b\w+[ *]+\(?(qemu_backdoor\w*)\)?\s*\(',
                            text, flags=re.M))
declared -= set(re.findall(r'#define\s+(\w+)\(', text)) - prototypes
# Inline functions are not exported: they live in the header
declared -= set(re.findall(r'static inline [^(]*?\b(qemu_backdoor\w*)\s*\(',
                           text))
# Variables the inline functions read (qemu_backdoor_seed_regs)
declared |= set(re.findall(r'^extern [^;(]*?\b(qemu_backdoor\w*)\s*[;\n]',
                           text, flags=re.M))
out = subprocess.run([nm, '-D', '--defined-only', library], check=True,
                     stdout=subprocess.PIPE, text=True).stdout
exported = {line.split()[-1].split('@')[0] for line in out.splitlines()
            if line.split()[1:2] in (['T'], ['B'], ['D'])}
n = 0
for name in sorted(declared):
    n += 1
    print('%s %d - /exports/%s' % ('ok' if name in exported else 'not ok', n,
                                   name))
n += 1
extra = exported - declared
print('%s %d - /exports/nothing-else%s' % ('not ok' if extra else 'ok', n,
      '' if not extra else '\n# also exported: ' + ' '.join(sorted(extra))))
print('1..%d' % n)
sys.exit(1 if extra or declared - exported else 0)
