# SPDX-License-Identifier: GPL-2.0-or-later
"""A small qtest + QMP driver for the real qemu-system binary, and TAP output.

QEMU connects to sockets we listen on (as QEMU's own libqtest does), so a
QEMU that dies at start-up is noticed instead of hung on.
"""
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time


class QemuError(Exception):
    pass


class Qemu:
    """A running QEMU under qtest control (-S: vCPUs never run)."""

    def __init__(self, qemu, args, launcher=None, accel='tcg', env=None,
                 machine='q35', timeout=30, preconfig=False):
        self.tmp = tempfile.mkdtemp(prefix='backdoor-qtest-')
        self.timeout = timeout
        qtest_path = os.path.join(self.tmp, 'qtest.sock')
        qmp_path = os.path.join(self.tmp, 'qmp.sock')
        qtest_l = self._listen(qtest_path)
        qmp_l = self._listen(qmp_path)
        cmd = ([launcher] if launcher else []) + [
            qemu, '-machine', machine, '-accel', accel, '-m', '128M',
            '-display', 'none', '-nodefaults', '-S',
            '-qtest', 'unix:' + qtest_path, '-qtest-log', 'none',
            '-chardev', 'socket,path=%s,id=qmp' % qmp_path,
            '-mon', 'chardev=qmp,mode=control']
        if preconfig:
            cmd.append('--preconfig')
        cmd += args
        self.stdout_path = os.path.join(self.tmp, 'stdout')
        self.stderr_path = os.path.join(self.tmp, 'stderr')
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL,
            stdout=open(self.stdout_path, 'w'),
            stderr=open(self.stderr_path, 'w'),
            env=dict(os.environ, **(env or {})))
        try:
            self.qtest = self._accept(qtest_l)
            self.qmp = self._accept(qmp_l)
        finally:
            qtest_l.close()
            qmp_l.close()
        self.qtest_buf = b''
        self.qmp_buf = b''
        self.events = []
        self._qmp_recv()                      # greeting
        self.qmp_cmd('qmp_capabilities')

    @staticmethod
    def _listen(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(1)
        return s

    def _accept(self, listener):
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            r, _, _ = select.select([listener], [], [], 0.1)
            if r:
                conn, _ = listener.accept()
                return conn
            if self.proc.poll() is not None:
                raise QemuError('QEMU exited with %d at start-up: %s' %
                                (self.proc.returncode, self.stderr().strip()))
        raise QemuError('QEMU did not connect within %ds' % self.timeout)

    def _recv_line(self, sock, attr):
        buf = getattr(self, attr)
        while b'\n' not in buf:
            r, _, _ = select.select([sock], [], [], self.timeout)
            chunk = sock.recv(65536) if r else b''
            if not chunk:
                setattr(self, attr, buf)
                raise QemuError('QEMU stopped answering (exit %s): %s' %
                                (self.proc.poll(), self.stderr().strip()))
            buf += chunk
        line, buf = buf.split(b'\n', 1)
        setattr(self, attr, buf)
        return line.decode()

    # qtest

    def qtest_batch(self, cmds):
        """Send many qtest commands at once; return their answers."""
        self.qtest.sendall(''.join(c + '\n' for c in cmds).encode())
        out = []
        while len(out) < len(cmds):
            line = self._recv_line(self.qtest, 'qtest_buf')
            if line.startswith('IRQ'):
                continue
            if not line.startswith('OK'):
                raise QemuError('qtest %r: %s' % (cmds[len(out)], line))
            out.append(line[3:])
        return out

    def qtest_cmd(self, cmd):
        return self.qtest_batch([cmd])[0]

    def read(self, addr, size):
        return int(self.qtest_cmd('read%s 0x%x' % ('bwlq'[size.bit_length() - 1],
                                                   addr)), 16)

    def write(self, addr, size, val):
        self.qtest_cmd('write%s 0x%x 0x%x' % ('bwlq'[size.bit_length() - 1],
                                              addr, val))

    def outl(self, port, val):
        self.qtest_cmd('outl 0x%x 0x%x' % (port, val))

    def inl(self, port):
        return int(self.qtest_cmd('inl 0x%x' % port), 16)

    # PCI configuration space through the 0xcf8/0xcfc ports

    def cfg_read(self, devfn, off, size=4):
        self.outl(0xcf8, 0x80000000 | (devfn << 8) | (off & ~3))
        v = self.inl(0xcfc) >> (8 * (off & 3))
        return v & ((1 << (8 * size)) - 1)

    def cfg_write(self, devfn, off, val):
        self.outl(0xcf8, 0x80000000 | (devfn << 8) | off)
        self.outl(0xcfc, val)

    def find_pci(self, vendor, device):
        found = []
        for devfn in range(256):
            if self.cfg_read(devfn, 0) == (device << 16) | vendor:
                found.append(devfn)
        return found

    # QMP

    def _qmp_recv(self):
        while True:
            msg = json.loads(self._recv_line(self.qmp, 'qmp_buf'))
            if 'event' not in msg:
                return msg
            self.events.append(msg)

    def qmp_event(self, name):
        """Wait for the QMP event @name (seen before or arriving)."""
        while True:
            for e in self.events:
                if e['event'] == name:
                    self.events.remove(e)
                    return e
            self.events.append(json.loads(self._recv_line(self.qmp,
                                                          'qmp_buf')))

    def qmp_cmd(self, cmd, **args):
        self.qmp.sendall(json.dumps({'execute': cmd,
                                     'arguments': args}).encode())
        msg = self._qmp_recv()
        if 'error' in msg:
            raise QemuError('QMP %s: %s' % (cmd, msg['error']['desc']))
        return msg['return']

    def qom_get(self, path, prop):
        return self.qmp_cmd('qom-get', path=path, property=prop)

    # end

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def stdout(self):
        with open(self.stdout_path) as f:
            return f.read()

    def quit(self):
        """Stop QEMU cleanly (stdio is flushed); return its exit code."""
        if self.alive():
            try:
                self.qmp_cmd('quit')
            except (QemuError, OSError):
                pass
        try:
            rc = self.proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.qtest.close()
        self.qmp.close()
        return rc

    def cleanup(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()
        self.cleanup()


def run_qemu(cmd, timeout=30, env=None):
    """Run QEMU to completion; return (exit code, stdout, stderr)."""
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    return p.returncode, p.stdout, p.stderr


class Tap:
    """TAP producer: each test is a function named like a path."""

    def __init__(self):
        self.tests = []
        self.failed = 0

    def test(self, name):
        def deco(fn):
            self.tests.append((name, fn))
            return fn
        return deco

    def run(self):
        only = os.environ.get('BACKDOOR_TESTS')    # a name prefix, by hand
        if only:
            self.tests = [t for t in self.tests if t[0].startswith(only)]
        print('1..%d' % len(self.tests), flush=True)
        for i, (name, fn) in enumerate(self.tests, 1):
            try:
                skip = fn()
            except Exception as e:          # pylint: disable=broad-except
                self.failed += 1
                print('not ok %d - %s' % (i, name))
                for line in ('%s: %s' % (type(e).__name__, e)).splitlines():
                    print('# ' + line)
            else:
                if isinstance(skip, str):
                    print('ok %d - %s # SKIP %s' % (i, name, skip))
                else:
                    print('ok %d - %s' % (i, name))
            sys.stdout.flush()
        return 1 if self.failed else 0

    def main(self, workdir):
        """Run the tests, remove @workdir, exit with the result."""
        try:
            rc = self.run()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        sys.exit(rc)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def check_eq(got, want, what):
    if got != want:
        raise AssertionError('%s: got %r, want %r' % (
            what, hex(got) if isinstance(got, int) else got,
            hex(want) if isinstance(want, int) else want))
