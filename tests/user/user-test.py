#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""User-mode tests: static guest programs under the stock qemu-<arch>,
through the launcher, with the test callback library. TAP on stdout.

user-test.py ARCH      the protocol, threading and signal tests for ARCH
user-test.py config    configuration errors, launcher and preload forms

Guests come from GUEST_<ARCH> (raw protocol) and SEED_GUEST_<ARCH> (the
seed's example against the guest library); empty means not built.
"""
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

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
              re.match(rf'init version=2 mode=2 size=1048576 be={be} ', init)
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

    def test_lifecycle(self):
        # A forked child shares the channel and leaves it to its parent
        p = self.launch('fork')
        log = self.read_log()
        inits = [l for l in log if l.startswith('init ')]
        exits = [l for l in log if l.startswith('exit ')]
        tap(p.returncode == 0 and len(inits) == 1 and
            exits == ['exit calls=2'] and log[-1] == exits[0],
            self.name('lifecycle/fork'), describe(p) + '\n'.join(log))

        # An exec of the owner: exit runs and the files are gone before
        # the new program starts; a failed exec before it changed nothing
        check = 'test -e "$QEMU_BACKDOOR_PATH.ctrl" && echo present || ' \
                'echo gone'
        p = self.launch('exec', '/bin/sh', '-c', check)
        log = self.read_log()
        m = re.search(r' id=(\S+) ', log[0] if log else '')
        exits = [l for l in log if l.startswith('exit ')]
        tap(p.returncode == 0 and p.stdout == 'gone\n' and
            exits == ['exit calls=2'] and log[-1] == exits[0] and
            m and not os.path.exists(os.path.dirname(m.group(1))),
            self.name('lifecycle/exec'), describe(p) + '\n'.join(log))

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
        self.test_lifecycle()
        self.test_die()
        self.test_bench()
        self.test_seed(os.environ.get(f'SEED_GUEST_{self.arch.upper()}'))


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
    with open(fifo, 'w') as f:
        f.write('go\n')
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
    with open(fifo, 'w') as f:
        f.write('go\n')
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
            guest = os.environ.get(f'GUEST_{what.upper()}')
            if not guest:
                skip(f'/user/{what}', f'no cross compiler for {what} '
                     f'(install gcc-{what.replace("_", "-")}-linux-gnu)')
            elif not shutil.which(f'qemu-{what}'):
                skip(f'/user/{what}', f'qemu-{what} is not installed '
                     '(Debian package qemu-user)')
            else:
                Arch(what, guest, tmp).all()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'1..{n}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
