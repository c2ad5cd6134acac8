#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Booting the real guest: Debian's kernel and an initramfs made here from
busybox-static and static guest programs, under the stock qemu-system.
Shared by the end-to-end tests (guest-test.py), the demo and the benchmark.

A guest's /init prints "@@ init" first, so a boot that never gets there
can be told apart.
"""

import json
import os
import re
import selectors
import signal
import socket
import stat
import subprocess
import threading
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
# The kernel command line of the x86 Linux test guests. no_timer_check: a
# slow TCG (a busy host) can fail the kernel's IO-APIC timer check ("IO-APIC
# + timer doesn't work!"), a panic rather than a test result.
X86_CMDLINE = 'console=ttyS0 quiet panic=-1 no_timer_check'

KVM_INIT_TIMEOUT = 20


class QmpVmError(Exception):
    pass


class QmpVm:
    """QEMU running a guest: its "@@ " console lines and a QMP socket
    (snapshot-test.py, the benchmark)."""

    def __init__(self, argv, work, name):
        self.lines = []
        self.cond = threading.Condition()
        self.qmp_path = os.path.join(work, name + '.qmp')
        self.console = open(os.path.join(work, name + '.console'), 'w')
        self.proc = subprocess.Popen(
            argv + ['-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True)
        self.err = []
        threading.Thread(target=self._read, args=(self.proc.stdout,
                                                  self.lines),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr,
                                                  self.err),
                         daemon=True).start()
        self.sock = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.qmp_path)
                self.sock = s
                break
            except OSError:
                time.sleep(0.1)
        if not self.sock:
            raise QmpVmError('no QMP socket: %s' % '\n'.join(self.err))
        self.buf = b''
        self._recv()
        self.qmp('qmp_capabilities')

    def _read(self, f, out):
        for raw in f:
            line = raw.decode('utf-8', 'replace').rstrip('\r\n')
            with self.cond:
                if out is self.lines:
                    self.console.write(line + '\n')
                    self.console.flush()
                    if '@@ ' in line:
                        # After a loadvm the guest's output goes on from
                        # the snapshot: a line cut short at the loadvm is
                        # glued to the next; keep the last one
                        out.append(line[line.rindex('@@ ') + 3:])
                else:
                    out.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _recv(self):
        while True:
            while b'\n' not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise QmpVmError('QEMU closed QMP: %s' %
                                    '\n'.join(self.err))
                self.buf += chunk
            line, self.buf = self.buf.split(b'\n', 1)
            msg = json.loads(line)
            if 'event' not in msg:
                return msg

    def qmp(self, cmd, **args):
        self.sock.sendall(json.dumps({'execute': cmd,
                                      'arguments': args}).encode())
        msg = self._recv()
        if 'error' in msg:
            raise QmpVmError('QMP %s: %s' % (cmd, msg['error']['desc']))
        return msg['return']

    def hmp(self, line):
        return self.qmp('human-monitor-command',
                        **{'command-line': line}).strip()

    def wait(self, pattern, start=0, timeout=300):
        """Index and match of the first guest line from @start matching."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    m = re.match(pattern, self.lines[i])
                    if m:
                        return i, m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise QmpVmError('no guest line %r after line %d in %d s'
                                    ' (QEMU %s): last: %s; console in %s' %
                                    (pattern, start, timeout,
                                     self.proc.poll(), self.lines[-3:],
                                     self.console.name))
                self.cond.wait(min(left, 1))

    def at(self, start=0, timeout=300):
        """The guest's next progress line from @start: (index, tag, n)."""
        i, m = self.wait(r'caller at (\d+):(\d+)$', start, timeout)
        return i, int(m[1]), int(m[2])

    def errors(self):
        with self.cond:
            return [line for line in self.lines if 'caller error' in line]

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.qmp('quit')
            except (QmpVmError, OSError):
                pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.sock:
            self.sock.close()
        self.console.close()
