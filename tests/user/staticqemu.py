# SPDX-License-Identifier: GPL-2.0-or-later
"""Whether the user-mode suites can run against the installed qemu-<arch>.

The in-process helper is preloaded into qemu-<arch>, which must therefore be
dynamically linked. Debian 13's qemu-user (like every qemu-user-static) is
static-pie; the out-of-process supervisor backend for those comes with
issue #9. Until then the suites skip there, visibly, with this reason.

As a program, for suites meson runs directly (meson.build):
  staticqemu.py ARCH        print the reason and exit 0 if qemu-ARCH is
                            static, exit 1 if not
  staticqemu.py --tap NAME ARCH
                            the TAP of a suite NAME skipped for that reason
"""
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
        return f'static qemu-{arch}: supervisor backend comes with issue #9'
    return None


if __name__ == '__main__':
    if sys.argv[1] == '--tap':
        print(f'ok 1 - {sys.argv[2]} # SKIP {skip_reason(sys.argv[3])}')
        print('1..1')
        sys.exit(0)
    why = skip_reason(sys.argv[1])
    if why:
        print(why)
    sys.exit(0 if why else 1)
