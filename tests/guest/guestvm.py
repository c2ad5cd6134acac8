#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Booting the real guest: Debian's kernel and an initramfs made here from
busybox-static and static guest programs, under the stock qemu-system.
Shared by the end-to-end tests (guest-test.py), the demo and the benchmark.

A guest's /init prints "@@ init" first, so a boot that never gets there
can be told apart.
"""

import os
import selectors
import signal
import stat
import subprocess
import time


def fetch_kernel(script, *args):
    """Run scripts/fetch-guest-kernel.sh: (path of vmlinuz or '', stderr).
    With --arch ARCH [--busybox]: another architecture's kernel or busybox.
    """
    fetch = subprocess.run([script, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    kernel = fetch.stdout.strip().splitlines()[-1] if fetch.stdout else ''
    if fetch.returncode != 0 or not os.path.isfile(kernel):
        return '', fetch.stderr
    return kernel, fetch.stderr


def cpio_entry(name, mode, data=b'', rdev=(0, 0)):
    head = '070701' + ''.join('%08x' % v for v in (
        0, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
        len(name) + 1, 0))
    out = head.encode() + name.encode() + b'\0'
    out += b'\0' * (-len(out) % 4) + data
    return out + b'\0' * (-len(out) % 4)


def make_initramfs(path, init, programs, busybox):
    parts = []
    for d in ('bin', 'dev', 'proc', 'sys', 'tmp'):
        parts.append(cpio_entry(d, stat.S_IFDIR | 0o755))
    parts.append(cpio_entry('dev/console', stat.S_IFCHR | 0o600,
                            rdev=(5, 1)))
    with open(init, 'rb') as f:
        parts.append(cpio_entry('init', stat.S_IFREG | 0o755, f.read()))
    for name, src in [('busybox', busybox)] + sorted(programs.items()):
        with open(src, 'rb') as f:
            parts.append(cpio_entry('bin/' + name, stat.S_IFREG | 0o755,
                                    f.read()))
    parts.append(cpio_entry('bin/sh', stat.S_IFLNK | 0o777, b'busybox'))
    parts.append(cpio_entry('TRAILER!!!', 0))
    with open(path, 'wb') as f:
        f.write(b''.join(parts))


class Boot:
    """Run QEMU until it exits or the deadline passes; keep its output."""

    def __init__(self, argv, console_log, deadline, give_up=None,
                 stall=None):
        """stall: seconds without a new guest line ("@@ ...") after which
        the guest counts as hung (self.stalled says where)."""
        self.stdout = []
        self.stderr = []
        self.timed_out = False
        self.gave_up = None
        self.stalled = None
        start = time.monotonic()
        last_guest = (start, 'boot')
        with open(console_log, 'w') as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    start_new_session=True)
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ, self.stdout)
            sel.register(proc.stderr, selectors.EVENT_READ, self.stderr)
            pending = {proc.stdout: b'', proc.stderr: b''}
            open_pipes = 2
            while open_pipes:
                left = deadline - (time.monotonic() - start)
                if left <= 0:
                    self.timed_out = True
                    break
                for key, _ in sel.select(timeout=min(left, 1)):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_pipes -= 1
                        continue
                    buf = pending[key.fileobj] + chunk
                    *lines, pending[key.fileobj] = buf.split(b'\n')
                    for raw in lines:
                        line = raw.decode('utf-8', 'replace').rstrip('\r')
                        key.data.append(line)
                        if key.data is self.stdout and '@@ ' in line:
                            last_guest = (time.monotonic(),
                                          line[line.index('@@ ') + 3:])
                        log.write(('' if key.data is self.stdout else
                                   'stderr: ') + line + '\n')
                if stall and time.monotonic() - last_guest[0] > stall:
                    self.timed_out = True
                    self.stalled = ('guest silent for %d s after "%s"'
                                    % (stall, last_guest[1]))
                    break
                if give_up:
                    self.gave_up = give_up(self, time.monotonic() - start)
                    if self.gave_up:
                        break
            for f, rest in pending.items():
                if rest:
                    (self.stdout if f is proc.stdout else
                     self.stderr).append(rest.decode('utf-8', 'replace'))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            self.returncode = proc.wait()
            self.seconds = time.monotonic() - start

    def guest_lines(self):
        # A kernel message may have started the console line first.
        return [line[line.index('@@ ') + 3:] for line in self.stdout
                if '@@ ' in line]


def kvm_unusable(boot, elapsed):
    """Why this KVM cannot run the guest, judged while it boots."""
    err = '\n'.join(boot.stderr)
    if 'emulation failure' in err or 'KVM internal error' in err:
        return 'KVM cannot boot Linux here (%s)' % next(
            line for line in boot.stderr
            if 'emulation failure' in line or 'KVM internal error' in line)
    if '@@ init' not in boot.stdout and elapsed > KVM_INIT_TIMEOUT:
        last = [line for line in boot.stdout if line.strip() and
                not line.startswith(('+ ', '-> '))]     # seed callbacks
        return ('KVM guest did not reach /init in %d s (%s)' %
                (KVM_INIT_TIMEOUT, 'console stopped at "%s"' %
                 last[-1].strip() if last else 'no console output'))
    return None


# A real KVM boots to /init in about a second.
KVM_INIT_TIMEOUT = 20
