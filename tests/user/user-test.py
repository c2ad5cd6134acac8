#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""User-mode tests: static guest programs under the stock qemu-<arch>,
through the launcher, with the test callback library. TAP on stdout.

user-test.py ARCH      the protocol, threading and signal tests for ARCH
user-test.py config    configuration errors, launcher and preload forms

Guests come from GUEST_<ARCH> (raw protocol) and SEED_GUEST_<ARCH> (the
seed's example against the guest library); empty means not built.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from staticqemu import skip_reason

LAUNCHER = os.environ['BACKDOOR_LAUNCHER']
HELPER = os.environ['USER_HELPER']
CALLBACKS = os.environ['TEST_CALLBACKS']
SEED_CALLBACKS = os.environ['SEED_CALLBACKS']
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
    def __init__(self, arch, guest, tmp):
        self.arch = arch
        self.qemu = f'qemu-{arch}'
        self.guest = guest
        self.tmp = tmp
        self.log = os.path.join(tmp, f'{arch}.log')

    def launch(self, *args, lib=None, log=True, **env):
        if os.path.exists(self.log):
            os.unlink(self.log)
        e = clean_env(QEMU_BACKDOOR_LIB=lib or CALLBACKS, **env)
        if log:
            e['QEMU_BACKDOOR_ARGS'] = f'log={self.log}'
        return run([LAUNCHER, self.qemu, self.guest] + list(args), e)

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def name(self, what):
        return f'/user/{self.arch}/{what}'

    def guest_case(self, case, *args, **env):
        p = self.launch(case, *args, **env)
        tap(p.returncode == 0, self.name(case), describe(p))
        return p

    def test_registers(self):
        self.guest_case('registers')
        p = self.launch('registers', QEMU_BACKDOOR_DATA_SIZE='64K',
                        EXPECT_DATA_SIZE='65536')
        log = self.read_log()
        tap(p.returncode == 0 and log and 'size=65536' in log[0],
            self.name('data-size'), describe(p) + '\n'.join(log[:1]))

    def test_calls(self):
        p = self.launch('calls')
        log = self.read_log()
        be = int(self.arch in BIG_ENDIAN)
        init = log[0] if log else ''
        calls = [l for l in log if l.startswith('call ')]
        ok = (p.returncode == 0 and
              re.match(rf'init version=1 mode=2 size=1048576 be={be} ', init)
              and len(calls) == 6 and
              'cmd=0x1234 vcpu=0 arg=0x1000 mode=2 be=%d' % be in calls[0] and
              'cmd=0x80000001 ' in calls[1] and 'cmd=0x55 ' in calls[2] and
              'cmd=0x102030405060708 ' in calls[5] and
              log[-1] == 'exit calls=6')
        tap(ok, self.name('calls'), describe(p) + '\n'.join(log))

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

    def test_threads(self):
        p = self.launch('threads', '4', '50000')
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
        expect.update({v: 50001 for v in vcpu_of.values()})
        ok = (p.returncode == 0 and len(threads) == 4 and wrong == 0 and
              count == expect and log[-1] == 'exit calls=200005')
        tap(ok, self.name('threads/4x50000'),
            describe(p) + f'\ncalls per vcpu {count}, expected {expect}, '
            f'misattributed {wrong}')

    def test_die(self):
        for how in ('fault-dfl', 'fault-ign', 'raise-dfl', 'trap-dfl'):
            p = self.launch('die', how)
            base = run([self.qemu, self.guest, 'die', how], clean_env())
            ok = (p.returncode == base.returncode and p.returncode != 0 and
                  p.stderr == base.stderr and 'survived' not in p.stdout)
            tap(ok, self.name(f'disposition/{how}'),
                'with the helper: ' + describe(p) + '\nwithout: ' +
                describe(base))
        p = self.launch('die', 'ctrl-ro')
        tap(p.returncode == -signal.SIGSEGV and 'survived' not in p.stdout,
            self.name('disposition/read-only-control-store'), describe(p))

    def test_bench(self):
        p = self.launch('bench', log=False)
        tap(p.returncode == 0, self.name('bench-mode/every-call-counted'),
            describe(p))

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
            '+ 1048576\n' in p.stdout, name, describe(p))

    def all(self):
        self.test_registers()
        self.test_calls()
        self.test_env()
        for case in ('handlers', 'smc', 'signals', 'mappings', 'atomics'):
            self.guest_case(case)
        self.test_threads()
        self.test_die()
        self.test_bench()
        self.test_seed(os.environ.get(f'SEED_GUEST_{self.arch.upper()}'))


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
        'QEMU_BACKDOOR_LIB' in p.stdout and '--print-helper' in p.stdout,
        '/user/launcher/help', describe(p))
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

    def bad(name, env, expect):
        p = run([LAUNCHER, qemu, guest, 'hello'], clean_env(**env))
        lines = p.stderr.splitlines()
        tap(p.returncode not in (0, 'timeout') and len(lines) == 1 and
            re.search(expect, lines[0]) and 'guest ran' not in p.stdout,
            f'/user/config/{name}', describe(p))

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


def main():
    what = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix='user-test-')
    try:
        if what == 'config':
            config_tests(tmp)
        else:
            guest = os.environ.get(f'GUEST_{what.upper()}')
            if not guest:
                skip(f'/user/{what}', f'no cross compiler for {what} '
                     f'(install gcc-{what.replace("_", "-")}-linux-gnu)')
            elif not shutil.which(f'qemu-{what}'):
                skip(f'/user/{what}', f'qemu-{what} is not installed '
                     '(Debian package qemu-user)')
            elif skip_reason(what):
                skip(f'/user/{what}', skip_reason(what))
            else:
                Arch(what, guest, tmp).all()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'1..{n}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
