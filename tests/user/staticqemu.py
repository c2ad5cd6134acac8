# SPDX-License-Identifier: GPL-2.0-or-later
"""Whether the user-mode suites can run against the installed qemu-<arch>.

The in-process helper is preloaded into qemu-<arch>, which must therefore be
dynamically linked. Debian 13's qemu-user (like every qemu-user-static) is
static-pie: there the helper's suites skip visibly with this reason, and
the supervisor's suites (user-static-*, user-d13-*) cover user mode.
"""
import os
import shutil
import sys

PT_INTERP = 3


def is_static(path):
    """True for an ELF executable without a program interpreter."""
    with open(path, 'rb') as f:
        ehdr = f.read(64)
        if len(ehdr) < 64 or ehdr[:4] != b'\x7fELF' or ehdr[4] != 2:
            return False            # not ELF64: let the tests find out
        order = 'little' if ehdr[5] == 1 else 'big'
        phoff = int.from_bytes(ehdr[32:40], order)
        phentsize = int.from_bytes(ehdr[54:56], order)
        phnum = int.from_bytes(ehdr[56:58], order)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if int.from_bytes(f.read(4), order) == PT_INTERP:
                return False
    return True


def skip_reason(arch):
    """Why the helper cannot run in qemu-ARCH, or None if it can."""
    path = shutil.which(f'qemu-{arch}')
    if path and is_static(path):
        return (f'static qemu-{arch} (Debian 13): the helper needs a dynamic '
                'one; the supervisor suites cover it')
    return None



if __name__ == '__main__':
    # staticqemu.py ARCH NAME CMD...: run CMD (a TAP test of the helper), or
    # report NAME skipped, visibly, where qemu-ARCH is static
    arch, name, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    why = skip_reason(arch)
    if why:
        print('ok 1 - %s # SKIP %s' % (name, why))
        print('1..1')
        sys.exit(0)
    os.execvp(cmd[0], cmd)
