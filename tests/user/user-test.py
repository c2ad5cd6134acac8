#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""User-mode tests: static guest programs under the stock qemu-<arch>,
through the launcher, with the test callback library. TAP on stdout.

user-test.py ARCH [QEMU]  the protocol, threading, signal and lifecycle
                          tests for ARCH under QEMU: dynamic (Debian 12's
                          qemu-ARCH, the in-process helper; the default),
                          static (Debian 12's qemu-ARCH-static) or d13
                          (Debian 13's static qemu-ARCH, fetched by
                          scripts/fetch-static-qemu.sh); both static ones
                          run under the supervisor
user-test.py config       configuration errors, launcher and preload forms

Guests come from GUEST_<ARCH> (raw protocol), SEED_GUEST_<ARCH> (the
seed's example against the guest library) and FUZZ_GUEST_<ARCH> (the
control page against a register model); empty means not built. Under the
supervisor, which traces QEMU to serve raw accesses, the raw cases run
again with GUEST_RAW=1 (name suffix /raw), beside the call slots.
"""
import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import termios
import time

from staticqemu import find_qemu, skip_reason

LAUNCHER = os.environ['BACKDOOR_LAUNCHER']
HELPER = os.environ['USER_HELPER']
CALLBACKS = os.environ['TEST_CALLBACKS']
SEED_CALLBACKS = os.environ['SEED_CALLBACKS']
RAW = {'GUEST_RAW': '1'}
UNTRACED = {'QEMU_BACKDOOR_RAW_ACCESS': 'off'}
TIMEOUT = 300
BIG_ENDIAN = {'s390x'}

n = 0
failed = 0


def tap(ok, name, diag=''):
    global n, failed
    n += 1
    failed += not ok
    print(f'{"ok" if ok else "not ok"} {n} - {name}')
    for line in diag.strip().splitlines()[-20:]:
        print(f'# {line}')
    sys.stdout.flush()


def skip(name, why):
    global n
    n += 1
    print(f'ok {n} - {name} # SKIP {why}')


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('QEMU_BACKDOOR') and k != 'LD_PRELOAD'}
    env.update(extra)
    return env


def run(cmd, env, timeout=TIMEOUT):
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 'timeout', e.stdout or '',
                                           e.stderr or '')


def describe(p):
    return f'exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}'


class Arch:
    def __init__(self, arch, guest, tmp, qemu='qemu-x86_64', kind='dynamic'):
        self.arch = arch
        self.qemu = qemu
        self.kind = kind
        self.supervisor = kind != 'dynamic'
        self.label = arch if kind == 'dynamic' else f'{arch}-{kind}'
        self.guest = guest
        self.tmp = tmp
        self.log = os.path.join(tmp, f'{arch}.log')

    def launch(self, *args, lib=None, log=True, verbose=False, opts=(),
               guest=None, **env):
        if os.path.exists(self.log):
            os.unlink(self.log)
        e = clean_env(QEMU_BACKDOOR_LIB=lib or CALLBACKS, **env)
        if log:
            e['QEMU_BACKDOOR_ARGS'] = f'log={self.log}'
        opts = (['--verbose'] if verbose else []) + list(opts)
        return run([LAUNCHER] + opts + [self.qemu, guest or self.guest] +
                   list(args), e)

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def name(self, what):
        return f'/user/{self.label}/{what}'

    def guest_case(self, case, *args, name=None, **env):
        p = self.launch(case, *args, **env)
        tap(p.returncode == 0, self.name(name or case), describe(p))
        return p

    def raw_case(self, case, *args):
        """Under the supervisor, @case again with its raw accesses."""
        if self.supervisor:
            self.guest_case(case, *args,
                            name='/'.join((case,) + args + ('raw',)), **RAW)

    def qemu_exe(self):
        return os.path.realpath(shutil.which(self.qemu) or self.qemu)

    def qemu_pid(self, pid):
        """The QEMU process the launcher @pid runs: its child, or with
        tracing its grandchild. Matched by the binary's name: the
        sanitizer run's qemu-<arch> is a script that runs the real one."""
        exe = os.path.basename(self.qemu_exe())
        for _ in range(100):
            for k in [pid] + descendants(pid):
                try:
                    if os.path.basename(
                            os.path.realpath(f'/proc/{k}/exe')) == exe:
                        return k
                except OSError:
                    pass
            time.sleep(0.05)
        return None

    def test_registers(self):
        self.guest_case('registers')
        self.raw_case('registers')
        p = self.launch('registers', QEMU_BACKDOOR_DATA_SIZE='64K',
                        EXPECT_DATA_SIZE='65536')
        log = self.read_log()
        tap(p.returncode == 0 and log and 'size=65536' in log[0],
            self.name('data-size'), describe(p) + '\n'.join(log[:1]))
        p = self.launch('hello', log=False, verbose=True)
        want = 'under the supervisor' if self.supervisor else \
            'with the in-process helper'
        tap(p.returncode == 0 and want in p.stderr, self.name('backend'),
            describe(p))
        if self.supervisor:
            p = self.launch('hello', log=False, verbose=True,
                            opts=['--no-raw-access'])
            tap(p.returncode == 0 and
                'raw register accesses not served' in p.stderr,
                self.name('backend/no-raw-access'), describe(p))

    def test_calls(self):
        p = self.launch('calls')
        log = self.read_log()
        be = int(self.arch in BIG_ENDIAN)
        init = log[0] if log else ''
        calls = [l for l in log if l.startswith('call ')]
        # The helper's calls: the raw ones, a pair, then the fast path; the
        # supervisor's: through the call slots
        n = 6 if self.supervisor else 7
        ok = (p.returncode == 0 and
              re.match(rf'init version=2 mode=2 size=16777216 be={be} ', init)
              and len(calls) == n and
              'cmd=0x1234 vcpu=0 arg=0x1000 mode=2 be=%d' % be in calls[0] and
              'cmd=0x80000001 ' in calls[1] and 'cmd=0x55 ' in calls[2] and
              (self.supervisor or 'cmd=0x77 ' in calls[5]) and
              'cmd=0x102030405060708 ' in calls[n - 1] and
              log[-1] == f'exit calls={n}')
        tap(ok, self.name('calls'), describe(p) + '\n'.join(log))
        if self.supervisor:
            # Then the seed's CMD/RESULT, CALL and a pair, raw, from vCPU 0
            p = self.launch('calls', **RAW)
            log = self.read_log()
            calls = [l for l in log if l.startswith('call ')]
            ok = (p.returncode == 0 and len(calls) == 12 and
                  all(' vcpu=0 ' in c for c in calls) and
                  'cmd=0x1234 ' in calls[6] and
                  'cmd=0x80000001 ' in calls[7] and
                  'cmd=0x55 ' in calls[8] and 'cmd=0x66 ' in calls[9] and
                  'cmd=0x77 ' in calls[11] and log[-1] == 'exit calls=12')
            tap(ok, self.name('calls/raw'), describe(p) + '\n'.join(log))

        # The default base is private to the process and removed at exit
        m = re.search(r' id=(\S+) ', init)
        base = m.group(1) if m else ''
        tap(bool(base) and not os.path.exists(base + '.ctrl') and
            not os.path.exists(base + '.data') and
            not os.path.exists(os.path.dirname(base)),
            self.name('default-path-removed'), f'base {base!r}')

        base = os.path.join(self.tmp, f'{self.arch}-base')
        p = self.launch('calls', QEMU_BACKDOOR_PATH=base)
        log = self.read_log()
        tap(p.returncode == 0 and log and f' id={base} ' in log[0] and
            not os.path.exists(base + '.ctrl'), self.name('path'),
            describe(p) + '\n'.join(log[:1]))

    def test_env(self):
        p = self.launch('env')
        out = p.stdout
        m = re.search(r'^QEMU_BACKDOOR_PATH=(.*)$', out, re.M)
        tap(p.returncode == 0 and 'LD_PRELOAD=(unset)' in out and
            'QEMU_BACKDOOR_LIB=(unset)' in out and
            'QEMU_BACKDOOR_ARGS=(unset)' in out and m and
            m.group(1).endswith('/backdoor'), self.name('environment'),
            describe(p))

    def test_threads(self, calls=50000, raw=False):
        """4 threads, half of them calling with raw accesses where these
        are served: every result right, on the right vCPU."""
        p = self.launch('threads', '4', str(calls), **(RAW if raw else {}))
        log = self.read_log()
        threads = re.findall(r'thread (\d+) vcpu (\d+) prefix (\d+)',
                             p.stdout)
        count = {}
        wrong = 0
        vcpu_of = {int(pre): int(v) for _, v, pre in threads}
        for line in log:
            m = re.match(r'call n=\d+ cmd=0x([0-9a-f]+) vcpu=(-?\d+)', line)
            if not m:
                continue
            cmd, vcpu = int(m.group(1), 16), int(m.group(2))
            count[vcpu] = count.get(vcpu, 0) + 1
            pre = cmd >> 40
            if pre and vcpu_of.get(pre) != vcpu:
                wrong += 1
        expect = {0: 1}
        expect.update({v: calls + 1 for v in vcpu_of.values()})
        ok = (p.returncode == 0 and len(threads) == 4 and wrong == 0 and
              count == expect and
              log[-1:] == [f'exit calls={4 * calls + 5}'])
        tap(ok, self.name(f'threads/{"raw/" if raw else ""}4x{calls}'),
            describe(p) + f'\ncalls per vcpu {count}, expected {expect}, '
            f'misattributed {wrong}')

    def test_library(self):
        """The guest library's call path from 4 threads, signals arriving
        with and without SA_RESTART: every call once, on its thread."""
        lib_guest = os.environ.get(f'LIB_GUEST_{self.arch.upper()}')
        for how in ('restart', 'norestart'):
            name = self.name(f'library/threads-signals/{how}')
            if not lib_guest:
                skip(name, 'no guest library build for this architecture')
                continue
            if os.path.exists(self.log):
                os.unlink(self.log)
            e = clean_env(QEMU_BACKDOOR_LIB=CALLBACKS,
                          QEMU_BACKDOOR_ARGS=f'log={self.log}')
            p = run([LAUNCHER, self.qemu, lib_guest, 'threads', '4', '5000',
                     how], e)
            log = self.read_log()
            vcpu_of = {int(pre): int(v) for _, v, pre in
                       re.findall(r'thread (\d+) vcpu (\d+) prefix (\d+)',
                                  p.stdout)}
            count, wrong = {}, 0
            for line in log:
                m = re.match(r'call n=\d+ cmd=0x([0-9a-f]+) vcpu=(-?\d+)',
                             line)
                if m:
                    cmd, vcpu = int(m.group(1), 16), int(m.group(2))
                    count[vcpu] = count.get(vcpu, 0) + 1
                    if cmd >> 40 and vcpu_of.get(cmd >> 40) != vcpu:
                        wrong += 1
            expect = {0: 1}
            expect.update({v: 5001 for v in vcpu_of.values()})
            tap(p.returncode == 0 and len(vcpu_of) == 4 and wrong == 0 and
                count == expect and log[-1:] == ['exit calls=20005'], name,
                describe(p) + f'\ncalls per vcpu {count}, expected '
                f'{expect}, misattributed {wrong}')

    def test_concurrent(self):
        """Calls on two channels run at the same time (a callback that
        waits for another call does not hold it up), with either backend."""
        name = self.name('library/concurrent-calls')
        lib_guest = os.environ.get(f'LIB_GUEST_{self.arch.upper()}')
        if not lib_guest:
            skip(name, 'no guest library build for this architecture')
            return
        p = run([LAUNCHER, self.qemu, lib_guest, 'concurrent'],
                clean_env(QEMU_BACKDOOR_LIB=os.environ['WAIT_CALLBACKS']))
        tap(p.returncode == 0 and 'waiting call returned 1, the other 2' in
            p.stdout, name, describe(p))

    def test_signals(self):
        for how in (None, 'norestart', 'handler-calls'):
            p = self.launch('signals', *([how] if how else []), log=False)
            tap(p.returncode == 0, self.name('signals' + (f'/{how}' if how
                                                         else '')),
                describe(p))
        self.raw_case('signals')
        self.raw_case('signals', 'norestart')
        p = self.launch('fork', log=False)
        tap(p.returncode == 0, self.name('fork'), describe(p))
        self.raw_case('fork')
        for code in ('0', '7', '255'):
            p = self.launch('exit', code, log=False)
            tap(p.returncode == int(code), self.name(f'exit-status/{code}'),
                describe(p))

    def start(self, *args, pty=False, **env):
        """Popen of the launcher (or QEMU alone with bare=True) running a
        guest that prints "ready" and waits for signals."""
        bare = env.pop('bare', False)
        e = clean_env(QEMU_BACKDOOR_LIB=CALLBACKS, **env)
        cmd = ([] if bare else [LAUNCHER]) + [self.qemu, self.guest] + \
            list(args)
        if not pty:
            p = subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            p.tty = None
            line = p.stdout.readline()
            return p, line
        master, slave = os.openpty()

        def ctty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        p = subprocess.Popen(cmd, env=e, stdin=slave, stdout=slave,
                             stderr=slave, preexec_fn=ctty)
        os.close(slave)
        p.tty = master
        out = b''
        while b'ready' not in out:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return p, out.decode(errors='replace')

    def finish(self, p, kids=()):
        """Exit status and output of @p; a process left behind (one of
        @kids holding the output open) is killed, and the status is
        'timeout'."""
        if p.tty is None:
            try:
                out, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                for k in list(kids) + [p.pid]:
                    try:
                        os.kill(k, signal.SIGKILL)
                    except OSError:
                        pass
                out, err = p.communicate()
                return 'timeout', out + err
            return p.returncode, out + err
        out = b''
        while True:
            try:
                chunk = os.read(p.tty, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        p.wait(timeout=TIMEOUT)
        os.close(p.tty)
        return p.returncode, out.decode(errors='replace')

    def test_lifecycle(self):
        """Signals from outside, exit status and clean-up behave as
        without the backdoor; if QEMU or the supervisor dies, the other
        goes too."""
        # Ctrl-C on a terminal: one SIGINT, as without the backdoor
        results = {}
        for bare in (False, True):
            p, _ = self.start('wait-signals', pty=True, bare=bare)
            os.write(p.tty, b'\x03')
            results[bare] = self.finish(p)
        rc, out = results[False]
        tap(rc == 3 and 'SIGINT 1 SIGUSR1 0' in out and
            results[True][0] == rc, self.name('lifecycle/ctrl-c'),
            f'with the backdoor: {results[False]}\nwithout: {results[True]}')

        # A signal sent to the launcher's process reaches the guest once
        p, line = self.start('wait-signals')
        os.kill(p.pid, signal.SIGUSR1)
        rc, out = self.finish(p)
        tap(line == 'ready\n' and rc == 3 and 'SIGINT 0 SIGUSR1 1' in out,
            self.name('lifecycle/sigusr1-forwarded'), f'exit {rc}\n{out}')

        # SIGTERM: dies of it, leaves no file and no process
        base = os.path.join(self.tmp, 'life')
        p, line = self.start('wait-signals', QEMU_BACKDOOR_PATH=base)
        kids = children(p.pid)
        os.kill(p.pid, signal.SIGTERM)
        rc, out = self.finish(p)
        tap(rc == -signal.SIGTERM and not os.path.exists(base + '.ctrl') and
            not os.path.exists(base + '.data') and
            not any(alive(k) for k in kids), self.name('lifecycle/sigterm'),
            f'exit {rc}, children {kids}\n{out}')

        # Stopped, a signal held meanwhile, continued: as without
        for sig in (signal.SIGSTOP, signal.SIGTSTP):
            results = {}
            for bare in (False, True):
                p, line = self.start('wait-signals', bare=bare)
                q = p.pid if bare else self.qemu_pid(p.pid)
                stopped = send(q, sig) and wait_state(q, 'Tt')
                send(q, signal.SIGUSR1)
                time.sleep(0.3)
                held = p.poll() is None and state_of(q) in ('T', 't')
                send(q, signal.SIGCONT)
                rc, out = self.finish(p)
                results[bare] = (stopped, held, rc,
                                 re.sub(r'^ready\n', '', out))
            tap(results[False] == results[True] and
                results[True][2] == 3, self.name(
                    f'lifecycle/stop-cont/{signal.Signals(sig).name}'),
                f'with the backdoor: {results[False]}\n'
                f'without: {results[True]}')

        if not self.supervisor:
            for what in ('traced', 'untraced', 'qemu-killed',
                         'serving-killed', 'supervisor-killed',
                         'supervisor-killed/untraced', 'outlives',
                         'ptrace-refused', 'idle-server-sleeps'):
                skip(self.name(f'lifecycle/{what}'), 'the supervisor\'s: '
                     'the helper runs inside QEMU')
            return

        # Traced by the launcher's child, which serves; untraced, QEMU is
        # the launcher's child (strace and gdb can attach)
        for untraced in (False, True):
            p, line = self.start('wait-signals',
                                 **(UNTRACED if untraced else {}))
            q = self.qemu_pid(p.pid)
            tracer = tracer_pid(q) if q else None
            kids = children(p.pid)
            os.kill(p.pid, signal.SIGUSR1)
            rc, out = self.finish(p)
            where = (q in kids and tracer == 0) if untraced else \
                (len(kids) == 1 and q not in kids and tracer == kids[0])
            tap(where and rc == 3 and 'SIGINT 0 SIGUSR1 1' in out,
                self.name('lifecycle/untraced' if untraced
                          else 'lifecycle/traced'),
                f'QEMU {q} traced by {tracer}, launcher {p.pid} children '
                f'{kids}, exit {rc}\n{out}')

        # QEMU killed: the supervisor ends the same way, cleans up, and
        # leaves no process
        p, line = self.start('wait-signals', QEMU_BACKDOOR_PATH=base)
        q = self.qemu_pid(p.pid)
        tree = descendants(p.pid)
        if q:
            os.kill(q, signal.SIGKILL)
        rc, out = self.finish(p)
        tap(q and rc == -signal.SIGKILL and wait_gone(tree) and
            not os.path.exists(base + '.ctrl') and
            not os.path.exists(base + '.data'),
            self.name('lifecycle/qemu-killed'), f'exit {rc}, QEMU {q}, '
            f'processes {tree}\n{out}')

        # The serving (tracing) process killed: QEMU dies with it, the
        # launcher says so in one line, cleans up and ends the same way
        p, line = self.start('wait-signals', QEMU_BACKDOOR_PATH=base)
        q = self.qemu_pid(p.pid)
        tree = descendants(p.pid)
        server = [k for k in children(p.pid) if k != q]
        for k in server:
            os.kill(k, signal.SIGKILL)
        rc, out = self.finish(p)
        lines = [l for l in out.splitlines() if l.startswith('qemu-backdoor')]
        tap(len(server) == 1 and rc == -signal.SIGKILL and
            wait_gone(tree) and len(lines) == 1 and 'died of signal 9' in
            lines[0] and not os.path.exists(base + '.ctrl'),
            self.name('lifecycle/serving-killed'), f'exit {rc}, '
            f'processes {tree}, serving {server}\n{out}')

        # The supervisor killed: QEMU goes too; traced, the serving
        # process removes the files (untraced they stay, as for a
        # SIGKILLed in-process helper)
        for untraced in (False, True):
            p, line = self.start('wait-signals', QEMU_BACKDOOR_PATH=base,
                                 **(UNTRACED if untraced else {}))
            self.qemu_pid(p.pid)
            tree = descendants(p.pid)
            os.kill(p.pid, signal.SIGKILL)
            gone = wait_gone(tree)
            rc, out = self.finish(p, tree)
            files = os.path.exists(base + '.ctrl')
            tap(len(tree) == (1 if untraced else 2) and
                rc == -signal.SIGKILL and gone and files == untraced,
                self.name('lifecycle/supervisor-killed' +
                          ('/untraced' if untraced else '')),
                f'exit {rc}, processes {tree} gone {gone}, files left '
                f'{files}\n{out}')
            for f in (base + '.ctrl', base + '.data'):
                if os.path.exists(f):
                    os.unlink(f)

        # A guest process outliving QEMU's main one goes on (traced, its
        # mmap still works) while the launcher returns at once; then no
        # process is left
        flag = os.path.join(self.tmp, 'outlives')
        if os.path.exists(flag):
            os.unlink(flag)
        p = subprocess.Popen([LAUNCHER, self.qemu, self.guest, 'outlive',
                              flag], env=clean_env(QEMU_BACKDOOR_LIB=CALLBACKS),
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(0.2)
        tree = descendants(p.pid)
        rc = p.wait(timeout=TIMEOUT)
        early = os.path.exists(flag)
        end = time.monotonic() + 30
        while not os.path.exists(flag) and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.2)
        try:
            with open(flag) as f:
                said = f.read()
        except OSError:
            said = ''
        tap(rc == 0 and not early and said == 'mapped\n' and
            wait_gone(tree), self.name('lifecycle/outlives'),
            f'exit {rc}, flag before the launcher ended: {early}, then '
            f'{said!r}, processes {tree}')

        # Traced already (strace -f follows the launcher's children): the
        # supervisor says so in one line and serves what it can untraced
        name = self.name('lifecycle/ptrace-refused')
        strace = shutil.which('strace')
        if not strace:
            skip(name, 'no strace (Debian package strace)')
        else:
            p = run([strace, '-f', '-o', '/dev/null', LAUNCHER, self.qemu,
                     self.guest, 'raw-store'],
                    clean_env(QEMU_BACKDOOR_LIB=CALLBACKS))
            lines = p.stderr.splitlines()
            tap(p.returncode == 0 and len(lines) == 2 and
                lines[0].startswith('qemu-backdoor: cannot trace QEMU '
                                    '(ptrace: Operation not permitted') and
                'it made no call' in lines[1], name, describe(p))

        # No call for a while: the server threads sleep in the kernel, and
        # so does the tracer
        p, line = self.start('wait-signals')
        q = self.qemu_pid(p.pid)
        states = []
        for _ in range(5):
            time.sleep(0.2)
            st = {}
            for k in [p.pid] + descendants(p.pid):
                if k != q:
                    st.update(thread_states(k))
            states.append(st)
        os.kill(p.pid, signal.SIGUSR1)
        rc, out = self.finish(p)
        tap(rc == 3 and states and all(
            st and all(s == 'S' for s in st.values()) for st in states),
            self.name('lifecycle/idle-server-sleeps'),
            f'thread states of the supervisor: {states}\n{out}')

    def test_die(self):
        for how in ('fault-dfl', 'fault-ign', 'raise-dfl', 'trap-dfl',
                    'none-dfl'):
            p = self.launch('die', how)
            base = run([self.qemu, self.guest, 'die', how], clean_env())
            ok = (p.returncode == base.returncode and p.returncode != 0 and
                  p.stderr == base.stderr and 'survived' not in p.stdout)
            tap(ok, self.name(f'disposition/{how}'),
                'with the helper: ' + describe(p) + '\nwithout: ' +
                describe(base))
        p = self.launch('die', 'ctrl-ro', **(RAW if self.supervisor else {}))
        tap(p.returncode == -signal.SIGSEGV and 'survived' not in p.stdout,
            self.name('disposition/read-only-control-store'), describe(p))

    def test_fork_exec(self):
        """The helper's owner rules (docs/user-mode.md, Lifecycle); the
        supervisor serves every process of QEMU's until QEMU ends."""
        check = 'test -e "$QEMU_BACKDOOR_PATH.ctrl" && echo present || ' \
                'echo gone'
        if self.supervisor:
            # A forked child's calls: see fork/raw. An exec'd program keeps
            # the files; raw accesses are served if it is this QEMU again
            p = self.launch('exec', '/bin/sh', '-c', check + '; exit 5')
            log = self.read_log()
            tap(p.returncode == 5 and p.stdout == 'present\n' and
                log[-1:] == ['exit calls=2'], self.name('lifecycle/exec'),
                describe(p) + '\n'.join(log))
            p = self.launch('exec', self.qemu_exe(), self.guest, 'raw-store',
                            **RAW)
            log = self.read_log()
            calls = [l for l in log if l.startswith('call ')]
            tap(p.returncode == 0 and len(calls) == 3 and
                'cmd=0x5 ' in calls[2] and log[-1:] == ['exit calls=3'],
                self.name('lifecycle/exec-qemu'),
                describe(p) + '\n'.join(log))
            return
        # A forked child shares the channel and leaves it to its parent
        p = self.launch('fork-channel')
        log = self.read_log()
        inits = [l for l in log if l.startswith('init ')]
        exits = [l for l in log if l.startswith('exit ')]
        tap(p.returncode == 0 and len(inits) == 1 and
            exits == ['exit calls=2'] and log[-1] == exits[0],
            self.name('lifecycle/fork'), describe(p) + '\n'.join(log))

        # An exec of the owner: exit runs and the files are gone before
        # the new program starts; a failed exec before it changed nothing
        p = self.launch('exec', '/bin/sh', '-c', check)
        log = self.read_log()
        m = re.search(r' id=(\S+) ', log[0] if log else '')
        exits = [l for l in log if l.startswith('exit ')]
        tap(p.returncode == 0 and p.stdout == 'gone\n' and
            exits == ['exit calls=2'] and log[-1] == exits[0] and
            m and not os.path.exists(os.path.dirname(m.group(1))),
            self.name('lifecycle/exec'), describe(p) + '\n'.join(log))

    def test_fuzz(self):
        """The supervisor's emulation of every instruction the fuzz tries,
        against the register model (the helper's: user-fuzz-*)."""
        name = self.name('fuzz')
        fuzz = os.environ.get(f'FUZZ_GUEST_{self.arch.upper()}')
        if not self.supervisor:
            skip(name, 'the helper\'s fuzz is user-fuzz-' + self.arch)
            return
        if not fuzz:
            skip(name, 'no fuzz guest built for this architecture')
            return
        env = {'BACKDOOR_FUZZ_ACCESSES': '40000'}
        if self.arch == 'aarch64' and qemu_major(self.qemu) >= 10:
            # QEMU 10 runs an aarch64 guest's pairs and unaligned accesses
            # as other host accesses, which the registers then see (in a
            # Debian 13 root the "static" QEMU is Debian 13's too)
            env['BACKDOOR_FUZZ_ALIGNED'] = '1'
        p = self.launch(log=False, guest=fuzz, **env)
        results = re.findall(r'^(ok|not ok) \d+ ', p.stdout, re.M)
        tap(p.returncode == 0 and results == ['ok'] * 4, name, describe(p))

    def test_bench(self):
        p = self.launch('bench', log=False)
        tap(p.returncode == 0, self.name('bench-mode/every-call-counted'),
            describe(p))

    def program(self, what):
        """A program of tests/user for this architecture, or None."""
        return os.environ.get(f'{what}_{self.arch.upper()}') or None

    def test_events(self):
        """Event rings (FEATURES bit 3): per-thread rings drained in
        order, full rings flushed, delivery at exit and at a thread's end
        without a release, and no rings when turned off."""
        lib_guest = self.program('LIB_GUEST')
        if not lib_guest:
            skip(self.name('events'), 'no guest library build for this '
                 'architecture')
            return
        # Small rings (many flushes, kicks under the supervisor), then the
        # default ones: t producers of n events, then one that fills its
        # ring 3 times (lib-guest), plus 5 posted before a call
        for t, n, entries in ((1, 3000, 128), (2, 3000, 128),
                              (4, 3000, 128), (2, 20000, 4096)):
            env = {'QEMU_BACKDOOR_RING_ENTRIES': str(entries)} \
                if entries != 4096 else {}
            p = run([LAUNCHER, self.qemu, lib_guest, 'events', str(t),
                     str(n)], clean_env(QEMU_BACKDOOR_LIB=CALLBACKS, **env))
            m = re.search(r'^events (\d+) of (\d+) lost 0 reordered 0 '
                          r'full (\d+)$', p.stdout, re.M)
            tap(p.returncode == 0 and m and m[1] == m[2] and
                int(m[1]) == n * t + 5 + 3 * entries + 5,
                self.name(f'events/producers-{t}' +
                          ('' if env else '-default-rings')), describe(p))
            if t == 1:
                # (lib-guest checks the count it was told: 3 or more)
                tap(p.returncode == 0 and m and int(m[3]) >= 3,
                    self.name('events/full-ring-flush-counted'), describe(p))

        # Under the supervisor (FEATURES bit 5) the thread that crosses its
        # ring's threshold kicks and goes on posting while the ring is
        # drained: the batch callback waits for a store the thread makes
        # after that post, and sees it
        if self.supervisor:
            p = run([LAUNCHER, self.qemu, lib_guest, 'kick'],
                    clean_env(QEMU_BACKDOOR_LIB=os.environ['WAIT_CALLBACKS']))
            tap(p.returncode == 0 and re.search(r'^kick 1 full 0$', p.stdout,
                                                re.M),
                self.name('events/kick-does-not-wait'), describe(p))

        # Posted, never flushed: the host delivers them at the exit
        p = self.launch_program(lib_guest, 'post-exit', '50')
        log = self.read_log()
        batches = [l for l in log if l.startswith('batch ')]
        tap(p.returncode == 0 and
            sum(1 for l in log if l.startswith('event ')) == 50 and
            batches and all(' vcpu=-1 ' in l for l in batches) and
            log[-1].startswith('exit '), self.name('events/drain-at-exit'),
            describe(p) + '\n'.join(log[-5:]))

        # A hot reload: the old library gets the events before its exit
        base = os.path.join(self.tmp, 'ring-reload')
        if os.path.exists(self.log):
            os.unlink(self.log)
        proc = subprocess.Popen(
            [LAUNCHER, self.qemu, lib_guest, 'post-wait', '20'],
            env=clean_env(QEMU_BACKDOOR_LIB=CALLBACKS, QEMU_BACKDOOR_PATH=base,
                          QEMU_BACKDOOR_ARGS=f'log={self.log}'),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            posted = proc.stdout.readline()
            reply = reload_request(base + '.reload',
                                   f'{CALLBACKS}\tlog={self.log}')
            out, err = proc.communicate('', timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            proc.kill()
            out, err, reply = '', str(e), ''
        log = self.read_log()
        first_exit = next((i for i, l in enumerate(log)
                           if l.startswith('exit ')), len(log))
        tap(posted == 'posted 20\n' and reply == 'ok\n' and
            sum(1 for l in log[:first_exit] if l.startswith('event ')) == 20
            and sum(1 for l in log if l.startswith('init ')) == 2,
            self.name('events/drain-at-reload'),
            f'{posted!r} {reply!r}\n{err}\n' + '\n'.join(log))

        # Threads that leave without releasing their ring: their events
        # are delivered, their rings taken back (2 rings for 6 threads)
        p = self.launch_program(lib_guest, 'raw-exit', '6', '20',
                                QEMU_BACKDOOR_RINGS='2')
        log = self.read_log()
        tap(p.returncode == 0 and
            sum(1 for l in log if l.startswith('event ')) == 120 and
            log[-1].startswith('exit '), self.name('events/thread-exit'),
            describe(p) + '\n'.join(log[-5:]))

        p = self.launch_program(lib_guest, 'no-rings', log=False,
                                QEMU_BACKDOOR_RING_ENTRIES='0')
        tap(p.returncode == 0, self.name('events/no-rings'), describe(p))

    def launch_program(self, prog, *args, lib=None, log=True, **env):
        """launch() for another program than the raw-protocol guest."""
        guest, self.guest = self.guest, prog
        try:
            return self.launch(*args, lib=lib, log=log, **env)
        finally:
            self.guest = guest

    def test_guest_memory(self):
        """A callback reads and writes the guest's memory by its virtual
        addresses; unmapped, read-only, wrapping ranges and QEMU's own
        memory are refused, all or nothing."""
        prog = self.program('GUEST_MEMORY')
        if not prog:
            skip(self.name('guest-memory'), 'no guest library build for '
                 'this architecture')
            return
        p = run([LAUNCHER, self.qemu, prog],
                clean_env(QEMU_BACKDOOR_LIB=os.environ['STATE_CALLBACKS']))
        results = [l[3:] for l in p.stdout.splitlines()
                   if l.startswith('@@ ')]
        for line in results:
            name = re.match(r'(?:not )?(?:ok|skip) ([^: ]+)', line)[1]
            if line.startswith('skip '):
                skip(self.name('guest-memory/' + name), line.split(': ', 1)[1])
            else:
                tap(line.startswith('ok '), self.name('guest-memory/' + name),
                    line)
        # 13 checks; where QEMU's binary is not to be found, one skip
        skips = sum(1 for l in results if l.startswith('skip '))
        tap(p.returncode == 0 and len(results) == 13 - skips and skips <= 1,
            self.name('guest-memory/all'), describe(p))

    def test_hot_reload(self):
        """BASE.reload swaps the library while the guest calls without end
        (tests/guest/caller.c against tests/callbacks/state-callbacks.c):
        no call lost or run twice; a library that cannot load leaves the
        old one in place and the error goes back to the requester."""
        prefix = self.name('hot-reload')
        caller = self.program('CALLER')
        if not caller:
            skip(prefix, 'no guest library build for this architecture')
            return
        lib = os.environ['STATE_CALLBACKS']
        log = os.path.join(self.tmp, 'reload.log')
        base = os.path.join(self.tmp, 'chan')
        for f in (log, base + '.reload'):
            if os.path.exists(f):
                os.unlink(f)
        proc = subprocess.Popen(
            [LAUNCHER, self.qemu, caller, '', '4096'],
            env=clean_env(QEMU_BACKDOOR_LIB=lib, QEMU_BACKDOOR_PATH=base,
                          QEMU_BACKDOOR_ARGS='tag=1:log=' + log),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL)
        lines = []
        cond = threading.Condition()

        def reader():
            for raw in proc.stdout:
                with cond:
                    lines.append(raw.decode(errors='replace').strip())
                    cond.notify_all()
            with cond:
                cond.notify_all()

        def wait(pattern, start):
            deadline = time.monotonic() + 120
            with cond:
                while time.monotonic() < deadline and proc.poll() is None:
                    for i in range(start, len(lines)):
                        m = re.match('@@ ' + pattern, lines[i])
                        if m:
                            return i, m
                    cond.wait(1)
            raise RuntimeError('no %r after line %d: %s' % (pattern, start,
                                                             lines[-3:]))

        threading.Thread(target=reader, daemon=True).start()
        switches, replies = [], []
        try:
            i, _ = wait(r'caller at 1:\d+$', 0)
            for tag in (2, 3, 4):
                replies.append(reload_request(
                    base + '.reload', '%s\ttag=%d:log=%s' % (lib, tag, log)))
                i, m = wait(r'caller switch (\d+):(\d+) (\d+):(\d+)$', i)
                switches.append(tuple(int(x) for x in m.groups()))
                i, _ = wait(r'caller at %d:\d+$' % tag, i)
            bad = reload_request(base + '.reload',
                                 os.environ['BAD_VERSION_CALLBACKS'])
            i, m = wait(r'caller at (\d+):\d+$', i + 1)
            tap(bad.startswith('error: ') and 'need ABI version' in bad and
                m[1] == '4', prefix + '/failed-swap',
                '%r; then %s' % (bad, m[0]))
        except (RuntimeError, OSError) as e:
            tap(False, prefix + '/run', '%s\n%s' % (
                e, proc.stderr.read1() if proc.poll() is not None else ''))
        finally:
            proc.terminate()
            proc.wait()
        tap(replies == ['ok\n'] * 3 and [(s[0], s[2], s[3]) for s in switches]
            == [(1, 2, 1), (2, 3, 1), (3, 4, 1)], prefix + '/swaps',
            'replies %s, switches %s' % (replies, switches))
        exits = [tuple(int(x) for x in m.groups()) for m in
                 (re.match(r'exit tag=(\d+) calls=(\d+)$', x) for x in
                  (open(log).read().splitlines()
                   if os.path.exists(log) else []))
                 if m]
        tap(exits[:3] == [(s[0], s[1]) for s in switches] and
            len(exits) == 4 and exits[3][0] == 4,
            prefix + '/no-call-lost-or-repeated',
            'library exits %s, guest saw %s' % (exits, switches))
        errors = [x for x in lines if 'caller error' in x]
        tap(not errors, prefix + '/every-result-followed',
            '\n'.join(errors[:5]))
        tap(not os.path.exists(base + '.reload'), prefix + '/socket-removed',
            'left: ' + base + '.reload')

    def test_seed(self, seed_guest):
        name = self.name('seed-example')
        if not seed_guest:
            skip(name, 'no guest library (include/qemu-backdoor.h, '
                 'src/guest-lib/) to build the seed example with')
            return
        e = clean_env(QEMU_BACKDOOR_LIB=SEED_CALLBACKS,
                      QEMU_BACKDOOR_PATH='/tmp/backdoor')
        p = run([LAUNCHER, self.qemu, seed_guest], e)
        # The seed stores 32 bits and its host loads 64 in guest order
        d = 'cafe00000000' if self.arch in BIG_ENDIAN else 'cafe'
        tap(p.returncode == 0 and f'-> babe :: {d}\n' in p.stdout and
            '+ 16777216\n' in p.stdout, name, describe(p))

    def test_raw_store(self):
        """The seed's call: a store to CMD makes one; under the supervisor
        not when it does not trace QEMU, which it then reports."""
        p = self.launch('raw-store', **(RAW if self.supervisor else {}))
        calls = [l for l in self.read_log() if l.startswith('call ')]
        tap(p.returncode == 0 and len(calls) == 1 and 'cmd=0x5 ' in calls[0]
            and not p.stderr, self.name('raw-store'), describe(p))
        if not self.supervisor:
            return
        # A mapping of the register page and the call slots together is
        # not served: one line says so, the store is reported
        p = self.launch('wide-map', **RAW)
        calls = [l for l in self.read_log() if l.startswith('call ')]
        lines = p.stderr.splitlines()
        tap(p.returncode == 0 and not calls and len(lines) == 2 and
            'covers both the register page and the call slots' in lines[0]
            and 'it made no call' in lines[1], self.name('raw-store/wide-map'),
            describe(p))
        for how, kw in (('untraced', UNTRACED),
                        ('no-raw-access', {'opts': ['--no-raw-access']})):
            p = self.launch('raw-store', **kw)
            calls = [l for l in self.read_log() if l.startswith('call ')]
            ok = (p.returncode == 0 and not calls and re.search(
                r'^qemu-backdoor: the guest stored to offset 0x10 of .* and '
                r'it made no call', p.stderr, re.M))
            tap(bool(ok), self.name(f'raw-store/{how}'), describe(p))

    def all(self):
        self.test_registers()
        self.test_calls()
        self.test_env()
        self.test_raw_store()
        for case in ('handlers', 'smc', 'mappings', 'atomics'):
            # mappings and atomics are raw accesses only
            if not self.supervisor or case in ('handlers', 'smc'):
                self.guest_case(case)
            if self.supervisor:
                self.guest_case(case, name=case if case in (
                    'mappings', 'atomics') else f'{case}/raw', **RAW)
        self.test_signals()
        self.test_threads()
        if self.supervisor:
            self.test_threads(calls=20000, raw=True)
        self.test_lifecycle()
        self.test_library()
        self.test_concurrent()
        self.test_die()
        self.test_fork_exec()
        self.test_bench()
        self.test_seed(os.environ.get(f'SEED_GUEST_{self.arch.upper()}'))
        self.test_events()
        self.test_guest_memory()
        self.test_hot_reload()
        self.test_fuzz()


def reload_request(sock_path, line):
    """One hot reload request on BASE.reload: the answer line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(line.encode() + b'\n')
    reply = b''
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    return reply.decode()


def others_can_read(path):
    """Can a user with no relation to these files reach and read path?"""
    path = os.path.abspath(path)
    if not os.stat(path).st_mode & 0o004:
        return False
    while path != '/':
        path = os.path.dirname(path)
        if not os.stat(path).st_mode & 0o001:
            return False
    return True


def interrupt_when_waiting(cmd, env):
    """Start QEMU whose library's init hangs; once QEMU says it is still
    waiting, press Ctrl-C (SIGINT). Return (exit status, stderr lines)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=env)
    failsafe = threading.Timer(120, p.kill)     # a failure, not a timing
    failsafe.start()
    try:
        first = p.stderr.readline()
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        rest = p.stderr.read()
        p.wait()
    finally:
        failsafe.cancel()
    return p.returncode, (first + rest).splitlines()


def bad_library_tests(tmp, qemu, guest):
    """Bad callback libraries: one line naming the library, QEMU stops,
    the channel files made for it are removed; and bare library names."""
    def dies(name, lib, want_rc, expect, cwd=None, env=None, prefix=(),
             base_dir=tmp):
        base = os.path.join(base_dir, 'base-' + name)
        p = subprocess.run(list(prefix) + [LAUNCHER, qemu, guest, 'hello'],
                           env=clean_env(QEMU_BACKDOOR_LIB=lib,
                                         QEMU_BACKDOOR_PATH=base,
                                         **(env or {})),
                           cwd=cwd, capture_output=True, text=True,
                           timeout=TIMEOUT)
        lines = p.stderr.splitlines()
        tap(p.returncode == want_rc and len(lines) == 1 and
            re.match(expect, lines[0]) and 'guest ran' not in p.stdout and
            not os.path.exists(base + '.ctrl') and
            not os.path.exists(base + '.data'),
            f'/user/callbacks/{name}', describe(p))

    not_elf = os.path.join(tmp, 'libtext.so')
    with open(not_elf, 'w') as f:
        f.write('not a library\n')
    for name, lib, what in (
            ('directory', tmp, r"it is a directory: give the path of the "
             r"library file \(\.so\) in it"),
            ('not-elf', not_elf, r"it is not an ELF file"),
            ('needs-missing-library', os.environ['NEEDS_ABSENT_CALLBACKS'],
             r"libbackdoor-absent\.so\.0: cannot open shared object file: "
             r"No such file or directory; a library it needs is missing")):
        dies(name, lib, 1, r"^qemu-backdoor: cannot load callbacks '%s': %s"
             % (re.escape(lib), what))
    foreign = os.environ['FOREIGN_CALLBACKS']
    if foreign:
        dies('other-architecture', foreign, 1,
             r"^qemu-backdoor: cannot load callbacks '.*libforeign\.so': it "
             r"is built for aarch64 \(64-bit, little-endian\), but QEMU runs "
             r"on x86_64 \(64-bit, little-endian\): build it with the "
             r"host's compiler")
    else:
        skip('/user/callbacks/other-architecture',
             'no aarch64-linux-gnu-gcc to build one (gcc-aarch64-linux-gnu)')

    for name, var, rc, what in (
            ('init-crash', 'CRASH', -signal.SIGSEGV,
             r"crashed \(SIGSEGV\) while loading or in their init: fix them"),
            ('init-abort', 'ABORT', -signal.SIGABRT,
             r"crashed \(SIGABRT\) while loading or in their init"),
            ('init-exit', 'EXIT', 1,
             r"called exit\(0\) while loading or in their init: an init "
             r"that fails must return non-zero and set cb->error instead")):
        lib = os.environ[f'{var}_CALLBACKS']
        dies(name, lib, rc, r"^qemu-backdoor: callbacks '%s' %s" %
             (re.escape(lib), what))

    lib = os.environ['HANG_CALLBACKS']
    base = os.path.join(tmp, 'base-hang')
    rc, lines = interrupt_when_waiting(
        [LAUNCHER, qemu, guest, 'hello'],
        clean_env(QEMU_BACKDOOR_LIB=lib, QEMU_BACKDOOR_PATH=base))
    tap(rc == -signal.SIGINT and len(lines) == 2 and
        re.match(r"qemu-backdoor: still waiting for callbacks '%s' to "
                 r"initialize after \d+ s: their init has not returned "
                 r"\(Ctrl-C stops QEMU\)$" % re.escape(lib), lines[0]) and
        lines[1] == "qemu-backdoor: stopped (SIGINT) while callbacks '%s' "
        "were loading or in their init" % lib and
        not os.path.exists(base + '.ctrl'),
        '/user/callbacks/init-hangs', f'exit {rc}\n' + '\n'.join(lines))

    # root reads any file: run QEMU as nobody to meet an unreadable one
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which('setpriv'):
            prefix = None
            why = 'running as root and no setpriv to drop privileges'
        elif not all(others_can_read(p) for p in (LAUNCHER, HELPER, guest)):
            prefix = None
            why = 'running as root, and nobody cannot reach the build tree'
        else:
            prefix = ['setpriv', '--reuid=65534', '--regid=65534',
                      '--clear-groups']
    if prefix is None:
        skip('/user/callbacks/unreadable', why)
    else:
        where = tempfile.mkdtemp()
        try:
            os.chmod(where, 0o777)     # for nobody's channel files
            lib = os.path.join(where, 'libunreadable.so')
            shutil.copy(CALLBACKS, lib)
            os.chmod(lib, 0)
            dies('unreadable', lib, 1,
                 r"^qemu-backdoor: cannot load callbacks '%s': cannot read "
                 r"it \(Permission denied\): make it readable for the user "
                 r"QEMU runs as \(uid \d+\)$" % re.escape(lib),
                 prefix=prefix, base_dir=where)
        finally:
            shutil.rmtree(where, ignore_errors=True)

    # A name without '/': the current directory, then the packaged one
    p = run([LAUNCHER, '--print-callbacks-dir'], clean_env())
    default = p.stdout.strip()
    tap(p.returncode == 0 and default.endswith('/qemu-backdoor/callbacks'),
        '/user/callbacks/print-callbacks-dir', describe(p))
    here = os.path.join(tmp, 'here')
    packaged = os.path.join(tmp, 'packaged')
    os.mkdir(here)
    os.mkdir(packaged)
    for where, env in ((default, {}),
                       (packaged, {'QEMU_BACKDOOR_CALLBACKS_DIR': packaged})):
        dies('bare-name-not-found' + ('-override' if env else ''),
             'libnowhere.so', 1,
             r"^qemu-backdoor: cannot load callbacks 'libnowhere\.so': not "
             r"in the current directory \(%s\) nor in %s, where a name "
             r"without '/' is looked up: give its path$" %
             (re.escape(here), re.escape(where)), cwd=here, env=env)
    shutil.copy(CALLBACKS, os.path.join(here, 'libpick.so'))
    shutil.copy(os.environ['CRASH_CALLBACKS'],
                os.path.join(packaged, 'libpick.so'))
    shutil.copy(CALLBACKS, os.path.join(packaged, 'libpackaged.so'))
    for name, lib in (('bare-name-current-directory-first', 'libpick.so'),
                      ('bare-name-packaged-directory', 'libpackaged.so')):
        log = os.path.join(tmp, name + '.log')
        p = subprocess.run([LAUNCHER, qemu, guest, 'calls'],
                           env=clean_env(QEMU_BACKDOOR_LIB=lib,
                                         QEMU_BACKDOOR_ARGS=f'log={log}',
                                         QEMU_BACKDOOR_CALLBACKS_DIR=packaged),
                           cwd=here, capture_output=True, text=True,
                           timeout=TIMEOUT)
        ok = p.returncode == 0 and os.path.exists(log)
        if ok:
            with open(log) as f:
                lines = f.read().splitlines()
            ok = lines[0].startswith('init ') and \
                any(l.startswith('call ') for l in lines)
        tap(ok, f'/user/callbacks/{name}', describe(p))
def children(pid):
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def descendants(pid):
    """Every process below @pid, children first."""
    found, todo = [], children(pid)
    while todo:
        k = todo.pop(0)
        found.append(k)
        todo += children(k)
    return found


def send(pid, sig):
    """kill(): False if @pid is gone."""
    try:
        os.kill(pid, sig)
        return True
    except (OSError, TypeError):
        return False


def state_of(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ')[-1][0]
    except OSError:
        return ''


def wait_state(pid, states, seconds=10):
    """True once @pid stays in one of @states (a string of state letters)
    for 0.2 s: a traced process passes through 't' at each ptrace stop."""
    end = time.monotonic() + seconds
    since = None
    while time.monotonic() < end:
        if state_of(pid) and state_of(pid) in states:
            since = since or time.monotonic()
            if time.monotonic() - since >= 0.2:
                return True
        else:
            since = None
        time.sleep(0.02)
    return False


def tracer_pid(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            m = re.search(r'^TracerPid:\s*(\d+)', f.read(), re.M)
            return int(m.group(1)) if m else None
    except OSError:
        return None


def alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ')[-1][0] != 'Z'
    except OSError:
        return False


def wait_gone(pids, seconds=30):
    """True once none of @pids runs (they are not our children, so poll)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def qemu_major(qemu):
    """The major version of @qemu (0 if it does not say)."""
    p = subprocess.run([qemu, '--version'], capture_output=True, text=True)
    m = re.search(r'version (\d+)\.', p.stdout)
    return int(m.group(1)) if m else 0


def fifo_say(fifo, line, seconds=30):
    """Write @line into @fifo once a reader has it open; False if none
    comes within @seconds (a guest that never started must not hang the
    test in open())."""
    deadline = time.time() + seconds
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if e.errno != errno.ENXIO or time.time() > deadline:
                return False
            time.sleep(0.05)
    os.write(fd, line.encode())
    os.close(fd)
    return True


def thread_states(pid):
    """{tid: state} of every thread of @pid."""
    states = {}
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{tid}/stat') as f:
                states[int(tid)] = f.read().split(') ')[-1][0]
    except OSError:
        pass
    return states


def config_tests(tmp):
    guest = next((os.environ.get(f'GUEST_{a.upper()}') for a in
                  ('x86_64', 'aarch64', 's390x')
                  if os.environ.get(f'GUEST_{a.upper()}')), None)
    arch = next(a for a in ('x86_64', 'aarch64', 's390x')
                if os.environ.get(f'GUEST_{a.upper()}') == guest) \
        if guest else 'x86_64'
    qemu = f'qemu-{arch}'

    p = run([LAUNCHER, '--help'], clean_env())
    tap(p.returncode == 0 and 'qemu-aarch64' in p.stdout and
        'QEMU_BACKDOOR_LIB' in p.stdout and '--print-helper' in p.stdout and
        '--backend=helper|supervisor' in p.stdout,
        '/user/launcher/help', describe(p))
    p = run([LAUNCHER, '--print-supervisor'], clean_env())
    tap(p.returncode == 0 and
        os.path.samefile(p.stdout.strip(), os.environ['USER_SUPERVISOR']),
        '/user/launcher/print-supervisor', describe(p))
    p = run([LAUNCHER, '--backend=inside', 'qemu-x86_64', '/bin/true'],
            clean_env())
    tap(p.returncode == 1 and len(p.stderr.splitlines()) == 1 and
        "unknown backend 'inside'" in p.stderr, '/user/launcher/bad-backend',
        describe(p))
    p = run([LAUNCHER, '--print-helper'], clean_env())
    tap(p.returncode == 0 and
        os.path.samefile(p.stdout.strip(), HELPER),
        '/user/launcher/print-helper', describe(p))

    # A "QEMU" the helper cannot load into: the sanity check refuses it
    fake = os.path.join(tmp, 'qemu-fake')
    with open(fake, 'w') as f:
        f.write('#!/bin/sh\necho "qemu-fake version 7.2.0"\n')
    os.chmod(fake, 0o755)
    p = run([LAUNCHER, fake, '/bin/true'],
            clean_env(QEMU_BACKDOOR_LIB=CALLBACKS))
    tap(p.returncode != 0 and 'cannot run in' in p.stderr and
        len(p.stderr.splitlines()) == 1, '/user/launcher/unusable-qemu',
        describe(p))

    if not guest:
        skip('/user/config', 'no guest program built')
        return
    if skip_reason(arch):
        skip('/user/config', skip_reason(arch))
        return

    # Either backend can be forced: the supervisor runs a dynamic QEMU
    # too; the helper cannot run in a static one and says so
    log = os.path.join(tmp, 'forced.log')
    p = run([LAUNCHER, '--backend=supervisor', '--verbose', qemu, guest,
             'calls'], clean_env(QEMU_BACKDOOR_LIB=CALLBACKS,
                                 QEMU_BACKDOOR_ARGS=f'log={log}'))
    tap(p.returncode == 0 and 'under the supervisor' in p.stderr and
        os.path.exists(log), '/user/launcher/force-supervisor', describe(p))
    static = shutil.which(f'qemu-{arch}-static')
    if static:
        p = run([LAUNCHER, '--backend=helper', static, guest, 'hello'],
                clean_env(QEMU_BACKDOOR_LIB=CALLBACKS))
        tap(p.returncode == 1 and 'cannot run in' in p.stderr and
            len(p.stderr.splitlines()) == 1 and 'guest ran' not in p.stdout,
            '/user/launcher/force-helper-on-static', describe(p))
    else:
        skip('/user/launcher/force-helper-on-static', f'no qemu-{arch}-static '
             '(Debian package qemu-user-static)')

    def bad(name, env, expect):
        for backend in ('helper', 'supervisor'):
            p = run([LAUNCHER, f'--backend={backend}', qemu, guest, 'hello'],
                    clean_env(**env))
            lines = p.stderr.splitlines()
            tap(p.returncode not in (0, 'timeout') and len(lines) == 1 and
                re.search(expect, lines[0]) and 'guest ran' not in p.stdout,
                '/user/config/' + ('supervisor/' if backend == 'supervisor'
                                   else '') + name, describe(p))

    bad('unset', {}, r'^qemu-backdoor: QEMU_BACKDOOR_LIB is not set')
    bad('missing', {'QEMU_BACKDOOR_LIB': '/nonexistent/libx.so'},
        r"cannot load callbacks '/nonexistent/libx\.so'")
    for variant, expect in (('BAD_VERSION', r'need ABI version 99'),
                            ('NO_VERSION', r'do not declare their ABI'),
                            ('NO_INIT', r'export neither'),
                            ('NO_CALL', r'set no call function')):
        bad(variant.lower().replace('_', '-'),
            {'QEMU_BACKDOOR_LIB': os.environ[f'{variant}_CALLBACKS']},
            expect)
    bad('init-fails', {'QEMU_BACKDOOR_LIB': CALLBACKS,
                       'QEMU_BACKDOOR_ARGS': 'fail'},
        r'failed to initialize: the test asked init to fail')
    bad('data-size', {'QEMU_BACKDOOR_LIB': CALLBACKS,
                      'QEMU_BACKDOOR_DATA_SIZE': '3000'},
        r"QEMU_BACKDOOR_DATA_SIZE '3000'")
    bad('ring-entries', {'QEMU_BACKDOOR_LIB': CALLBACKS,
                         'QEMU_BACKDOOR_RING_ENTRIES': '100'},
        r"^qemu-backdoor: QEMU_BACKDOOR_RING_ENTRIES=100 is not 0 or a "
        r"power of two from 8 to 65536$")
    bad('rings', {'QEMU_BACKDOOR_LIB': CALLBACKS,
                  'QEMU_BACKDOOR_RINGS': 'many'},
        r"^qemu-backdoor: QEMU_BACKDOOR_RINGS 'many' is not a number$")
    bad('too-many-rings', {'QEMU_BACKDOOR_LIB': CALLBACKS,
                           'QEMU_BACKDOOR_RINGS': '300'},
        r"^qemu-backdoor: QEMU_BACKDOOR_RINGS=300 is more than 256$")

    bad_library_tests(tmp, qemu, guest)

    # A base in a shared directory: no symlink followed, no file of
    # another user (or open to others) taken over
    shared = os.path.join(tmp, 'shared-base')
    victim = os.path.join(tmp, 'victim')
    with open(victim, 'w') as f:
        f.write('precious\n')
    os.symlink(victim, shared + '.ctrl')
    bad('symlinked-channel-file', {'QEMU_BACKDOOR_LIB': CALLBACKS,
                                   'QEMU_BACKDOOR_PATH': shared},
        r'cannot create .*shared-base\.ctrl: Too many levels of symbolic')
    with open(victim) as f:
        tap(f.read() == 'precious\n', '/user/config/symlink-target-intact')
    os.unlink(shared + '.ctrl')
    with open(shared + '.ctrl', 'w') as f:
        pass
    os.chmod(shared + '.ctrl', 0o666)
    bad('foreign-channel-file', {'QEMU_BACKDOOR_LIB': CALLBACKS,
                                 'QEMU_BACKDOOR_PATH': shared},
        r'shared-base\.ctrl exists and is not a private file of this user')
    tap(os.path.exists(shared + '.ctrl'), '/user/config/foreign-file-kept')
    os.unlink(shared + '.ctrl')

    # The raw form, through wrappers that must not be affected
    log = os.path.join(tmp, 'raw.log')
    p = run(['env', 'timeout', '120', qemu, guest, 'calls'],
            clean_env(LD_PRELOAD=HELPER, QEMU_BACKDOOR_LIB=CALLBACKS,
                      QEMU_BACKDOOR_ARGS=f'log={log}'))
    tap(p.returncode == 0 and os.path.exists(log),
        '/user/preload/raw-through-wrappers', describe(p))


def lifecycle_tests(tmp):
    """Real programs: Debian's static x86_64 busybox under qemu-x86_64."""
    busybox = shutil.which('busybox')
    if not busybox or not shutil.which('qemu-x86_64'):
        skip('/user/lifecycle', 'needs busybox (busybox-static) and '
             'qemu-x86_64')
        return
    if skip_reason('x86_64'):
        # The owner rules, reaping and /proc/self/environ are the helper's
        skip('/user/lifecycle', skip_reason('x86_64'))
        return
    # A TMPDIR of its own: what is reaped there is this test's only
    tmpdir = os.path.join(tmp, 'lifecycle')
    os.mkdir(tmpdir, 0o700)
    log = os.path.join(tmp, 'lifecycle.log')

    def env(**extra):
        return clean_env(QEMU_BACKDOOR_LIB=CALLBACKS, TMPDIR=tmpdir,
                         QEMU_BACKDOOR_ARGS=f'log={log}', **extra)

    def sh(script, **extra):
        if os.path.exists(log):
            os.unlink(log)
        return run([LAUNCHER, 'qemu-x86_64', busybox, 'sh', '-c', script],
                   env(**extra))

    def events():
        try:
            with open(log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        return ([l for l in lines if l.startswith('init ')],
                [l for l in lines if l.startswith('exit ')], lines)

    def dirs():
        return sorted(d for d in os.listdir(tmpdir)
                      if d.startswith('qemu-backdoor.'))

    # (a) subshells, command substitutions and pipelines fork the shell
    p = sh('test -e "$QEMU_BACKDOOR_PATH.ctrl" && echo present; (exit 0); '
           'echo $(echo sub) | cat; '
           'test -e "$QEMU_BACKDOOR_PATH.ctrl" && echo still || echo GONE')
    inits, exits, lines = events()
    tap(p.returncode == 0 and p.stdout == 'present\nsub\nstill\n' and
        len(inits) == 1 and len(exits) == 1 and lines[-1] == exits[0] and
        not dirs(), '/user/lifecycle/busybox-forks',
        describe(p) + '\n'.join(lines))

    # (b) the owner execs: exit runs and nothing is left; a failed exec
    # (a PATH search) leaves the channel to the shell
    p = sh('exec /bin/true')
    inits, exits, lines = events()
    tap(p.returncode == 0 and len(inits) == 1 and len(exits) == 1 and
        not dirs(), '/user/lifecycle/busybox-exec',
        describe(p) + '\n'.join(lines) + f'\nleft: {dirs()}')
    p = sh('nonexistent-command; '
           'test -e "$QEMU_BACKDOOR_PATH.ctrl" && echo still; exec /bin/true')
    inits, exits, lines = events()
    tap(p.returncode == 0 and p.stdout == 'still\n' and len(inits) == 1 and
        len(exits) == 1 and not dirs(), '/user/lifecycle/busybox-failed-exec',
        describe(p) + '\n'.join(lines) + f'\nleft: {dirs()}')

    # (c) SIGKILL leaves the directory; the next start reaps it, but never
    # while its owner, or a forked child of it, still runs
    fifo = os.path.join(tmp, 'fifo')
    os.mkfifo(fifo)
    owner = subprocess.Popen(
        [LAUNCHER, 'qemu-x86_64', busybox, 'sh', '-c',
         f'echo "$QEMU_BACKDOOR_PATH"; (read x < {fifo}; echo child done) & '
         'wait'], env=env(), stdout=subprocess.PIPE, text=True)
    base = owner.stdout.readline().strip()
    owned = os.path.basename(os.path.dirname(base))
    other = sh('true')
    live_kept = dirs() == [owned] and other.returncode == 0
    owner.kill()
    owner.wait()
    sh('true')
    child_kept = dirs() == [owned]
    fifo_say(fifo, 'go\n')
    rest = owner.stdout.read()
    # The child is gone once its lock is free
    if child_kept:
        dfd = os.open(os.path.dirname(base), os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(dfd, fcntl.LOCK_EX)
        os.close(dfd)
    p = sh('true')
    tap(bool(owned) and live_kept and child_kept and rest == 'child done\n'
        and p.returncode == 0 and not dirs(), '/user/lifecycle/sigkill-reaped',
        f'owner dir {owned!r}, kept while the owner ran: {live_kept}, '
        f'while its child ran: {child_kept}, child printed {rest!r}, '
        f'left: {dirs()}\n' + describe(p))

    # A guest may close the descriptor that holds the lock: its owner is
    # still alive and maps the data file, so the directory stays
    owner = subprocess.Popen(
        [LAUNCHER, 'qemu-x86_64', busybox, 'sh', '-c',
         'd=$(dirname "$QEMU_BACKDOOR_PATH"); for f in /proc/$$/fd/*; do '
         '[ "$(readlink $f)" = "$d" ] && eval "exec ${f##*/}>&-"; done; '
         f'echo "$QEMU_BACKDOOR_PATH"; read x < {fifo}'],
        env=env(), stdout=subprocess.PIPE, text=True)
    base = owner.stdout.readline().strip()
    owned = os.path.basename(os.path.dirname(base))
    p = sh('true')
    kept = dirs() == [owned]
    fifo_say(fifo, 'go\n')
    owner.communicate()
    tap(bool(owned) and kept and p.returncode == 0 and
        owner.returncode == 0 and not dirs(),
        '/user/lifecycle/unlocked-live-owner-kept',
        f'owner dir {owned!r}, kept: {kept}, owner exit '
        f'{owner.returncode}, left: {dirs()}\n' + describe(p))

    # Never reaped: a directory without an owner file (not the helper's),
    # and one of another user
    foreign = [os.path.join(tmpdir, 'qemu-backdoor.' + x)
               for x in ('NoOwnr', 'OtherU')]
    for d in foreign:
        os.mkdir(d, 0o700)
    with open(os.path.join(foreign[1], 'owner'), 'w') as f:
        f.write('999999999\n')
    os.chown(foreign[1], 65534, 65534)
    p = sh('true')
    tap(p.returncode == 0 and all(os.path.isdir(d) for d in foreign),
        '/user/lifecycle/foreign-dirs-kept', f'left: {dirs()}')

    # The guest's /proc/self/environ: the helper's variables are gone,
    # everything else is as given
    if os.environ.get('BACKDOOR_SANITIZED'):
        skip('/user/lifecycle/proc-self-environ', 'sanitizer run: its qemu-'
             '<arch> wrapper adds to the environment QEMU starts with')
        return
    # (not the last command: busybox would exec cat in place of the shell)
    p = run(['qemu-x86_64', busybox, 'sh', '-c',
             'cat /proc/$$/environ; true'],
            clean_env(LD_PRELOAD=f'{HELPER}:{CALLBACKS}', TMPDIR=tmpdir,
                      QEMU_BACKDOOR_LIB=CALLBACKS, QEMU_BACKDOOR_ARGS='x',
                      QEMU_BACKDOOR_DATA_SIZE='64K', LIFECYCLE_MARK='kept'))
    seen = p.stdout.split('\0')
    while seen and seen[-1] == '':
        seen.pop()
    given = clean_env(LD_PRELOAD=CALLBACKS, TMPDIR=tmpdir,
                      LIFECYCLE_MARK='kept')
    tap(p.returncode == 0 and
        sorted(seen) == sorted(f'{k}={v}' for k, v in given.items()),
        '/user/lifecycle/proc-self-environ',
        describe(p).replace('\0', '\n'))


def main():
    what = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix='user-test-')
    try:
        if what == 'config':
            config_tests(tmp)
            lifecycle_tests(tmp)
        else:
            kind = sys.argv[2] if len(sys.argv) > 2 else 'dynamic'
            label = what if kind == 'dynamic' else f'{what}-{kind}'
            guest = os.environ.get(f'GUEST_{what.upper()}')
            qemu, why = find_qemu(what, kind) if guest else (None, '')
            if not guest:
                skip(f'/user/{label}', f'no cross compiler for {what} '
                     f'(install gcc-{what.replace("_", "-")}-linux-gnu)')
            elif not qemu:
                skip(f'/user/{label}', why)
            else:
                Arch(what, guest, tmp, qemu, kind).all()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'1..{n}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
