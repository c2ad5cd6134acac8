# SPDX-License-Identifier: GPL-2.0-or-later
"""Run the bare-metal test guest (tests/baremetal) under the stock
qemu-system-x86_64 through the launcher; shared by the test and the
benchmark."""
import os
import subprocess

# isa-debug-exit makes QEMU exit with (value << 1) | 1: the guest writes 0
# on success, 1 on failure.
EXIT_OK = 1


def kvm_usable():
    return os.access('/dev/kvm', os.R_OK | os.W_OK)


def run(launcher, qemu, accel, image, callbacks, append, args=None,
        timeout=300):
    """Boot the image with a backdoor device (and edu, vmport, debug exit);
    return (exit status or 'timeout', stdout lines, stderr)."""
    argv = [launcher, qemu, '-M', 'q35,vmport=on', '-accel', accel,
            '-m', '128M', '-smp', '1', '-nodefaults', '-display', 'none',
            '-serial', 'stdio', '-monitor', 'none', '-no-reboot',
            '-kernel', image, '-append', append,
            '-device', 'backdoor,callbacks=' + callbacks.replace(',', ',,') +
            (',callbacks-args=' + args.replace(',', ',,') if args else ''),
            '-device', 'edu',
            '-device', 'isa-debug-exit,iobase=0xf4,iosize=4']
    try:
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b''
        if isinstance(out, bytes):
            out = out.decode(errors='replace')
        return 'timeout', out.replace('\r', '').splitlines(), ''
    return (p.returncode, p.stdout.replace('\r', '').splitlines(),
            p.stderr)
