# SPDX-License-Identifier: GPL-2.0-or-later
"""Whether the user-mode suites can run against the installed qemu-<arch>,
and where the QEMU binaries of each kind (dynamic, static, d13) are.

The in-process helper is preloaded into qemu-<arch>, which must therefore be
dynamically linked. Debian 13's qemu-user (like every qemu-user-static) is
static-pie: there the helper's suites skip visibly with this reason, and
the supervisor's suites (user-static-*, user-d13-*) cover user mode.
"""
import os
import shutil
import subprocess
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


def find_qemu(arch, kind):
    """The QEMU binary of @kind for @arch, or (None, why not): dynamic
    (Debian 12's qemu-ARCH, the helper's), static (Debian 12's
    qemu-ARCH-static) or d13 (Debian 13's static qemu-ARCH, fetched and
    cached by scripts/fetch-static-qemu.sh, FETCH_STATIC_QEMU)."""
    if kind == 'dynamic':
        q = shutil.which(f'qemu-{arch}')
        if q and skip_reason(arch):
            return None, skip_reason(arch)
        return q, f'qemu-{arch} is not installed (Debian package qemu-user)'
    if kind == 'static':
        q = shutil.which(f'qemu-{arch}-static')
        return q, (f'qemu-{arch}-static is not installed (Debian package '
                   'qemu-user-static)')
    try:
        p = subprocess.run([os.environ.get('FETCH_STATIC_QEMU', '')],
                           capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        return None, f'cannot fetch Debian 13\'s qemu-user: {e}'
    d = p.stdout.strip().splitlines()[-1] if p.returncode == 0 and \
        p.stdout.strip() else ''
    q = os.path.join(d, f'qemu-{arch}') if d else ''
    if q and os.access(q, os.X_OK):
        return q, ''
    return None, ('cannot fetch Debian 13\'s qemu-user: ' +
                  (p.stderr.strip() or 'no qemu-' + arch))


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
