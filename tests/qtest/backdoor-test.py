#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""qtest suite of the backdoor device, run against the stock qemu-system.

Everything comes from the environment meson sets (tests/meson.build). With
BACKDOOR_INTREE set, QEMU_SYSTEM is a QEMU built with the device in its
tree (docs/in-tree.rst): QEMU runs without launcher or plugin, and the
tests of the launcher and of the out-of-tree loading are skipped.
"""
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qtest import Qemu, QemuError, Tap, check, check_eq, run_qemu  # noqa

QEMU = os.environ['QEMU_SYSTEM']
INTREE = bool(os.environ.get('BACKDOOR_INTREE'))
LAUNCHER = None if INTREE else os.environ['BACKDOOR_LAUNCHER']
NOT_INTREE = ('in-tree QEMU: the device is its own module, no launcher or '
              'plugin')
LOADER = os.environ['BACKDOOR_LOADER']
MODULE_DIR = os.environ['BACKDOOR_MODULE_DIR']
QEMU_VERSION = os.environ['BACKDOOR_QEMU_VERSION']
LIB = os.environ['TEST_CALLBACKS']
SEED_LIB = os.environ['SEED_CALLBACKS']
STATE_LIB = os.environ['STATE_CALLBACKS']

VENDOR, DEVICE = 0x1234, 0xbd01
ID = 0x42440101
BAR0 = 0xc0000000
BAR2 = 0x100000000
MiB = 1 << 20
M64 = (1 << 64) - 1

REG_ID, REG_FEATURES, REG_DATA_SIZE = 0x00, 0x04, 0x08
REG_CMD, REG_RESULT, REG_CALL_OFFSET, REG_CALL = 0x10, 0x18, 0x20, 0x28
REG_RESULT_HI = 0x1c
CMD_VCPU = 0xf00d0001
# Register map 1.1: call slots and event rings
FEATURE_SLOTS, FEATURE_RING = 1 << 2, 1 << 3
REG_SLOT_COUNT, REG_RING_ENTRIES, REG_SLOT_BASE = 0x30, 0x34, 0x38
REG_SLOT_STRIDE, REG_SLOT_ALLOC, REG_SLOT_FREE = 0x40, 0x48, 0x4c
REG_DOORBELL = 0x50
DOORBELL_FULL = 1 << 31
BLK_WORD, BLK_RESULT, BLK_HEAD, BLK_TAIL, BLK_RING = 0, 8, 16, 24, 64
EVENT_SIZE = 32
CMD_EVENTS, CMD_EVSTATS = 0xf00d0002, 0xf00d0003
EVENT_SEQ = 0xe5e00001


def slot_call_reg(n):
    return 0x100 + 8 * n


def slot_layout(size, slots=32, entries=128):
    """What the device makes of its slots and ring-entries properties."""
    room = size // 2
    while True:
        stride = 64 + entries * EVENT_SIZE
        if slots * stride <= room:
            break
        if entries > 8:
            entries //= 2
        else:
            slots = max(room // stride, 1)
    return slots, entries, size - 64 - slots * stride, stride

tap = Tap()
workdir = tempfile.mkdtemp(prefix='backdoor-test-')


def device_args(lib=LIB, extra='', log=None):
    args = 'backdoor,id=bd0,callbacks=' + lib
    if log:
        args += ',callbacks-args=log=' + log
    return ['-device', args + extra]


def launched(*cmd):
    """A QEMU command line, through the launcher unless in-tree."""
    return ([LAUNCHER] if LAUNCHER else []) + list(cmd)


def start(lib=LIB, extra='', log=None, launcher=LAUNCHER, **kw):
    return Qemu(QEMU, device_args(lib, extra, log), launcher=launcher, **kw)


def setup_bars(q):
    """Find the device, program and enable its BARs; return its devfn."""
    devs = q.find_pci(VENDOR, DEVICE)
    check_eq(len(devs), 1, 'backdoor devices on bus 0')
    devfn = devs[0]
    q.cfg_write(devfn, 0x10, BAR0)
    q.cfg_write(devfn, 0x18, BAR2 & 0xffffffff)
    q.cfg_write(devfn, 0x1c, BAR2 >> 32)
    q.cfg_write(devfn, 0x04, 0x2)            # memory space enable
    return devfn


def counters(q):
    path = '/machine/peripheral/bd0'
    return q.qom_get(path, 'calls'), q.qom_get(path, 'guest-errors')


def read_log(path):
    with open(path) as f:
        return f.read().splitlines()


def data_size_of(q):
    return q.read(BAR0 + REG_DATA_SIZE, 8)


def call(q, cmd):
    """The one-exit call: command into the call word, read CALL."""
    q.write(BAR2 + data_size_of(q) - 8, 8, cmd)
    return q.read(BAR0 + REG_CALL, 8)


@tap.test('/backdoor/pci/identity')
def test_identity():
    with start() as q:
        devfn = setup_bars(q)
        check_eq(q.cfg_read(devfn, 0x08) >> 8, 0xff0000, 'class code')
        check_eq(q.cfg_read(devfn, 0x08, 1), 1, 'revision')


@tap.test('/backdoor/pci/bars')
def test_bars():
    for size, name in ((MiB, '1M'), (4096, '4K'), (64 * MiB, '64M'),
                       (1 << 30, '1G')):
        with start(extra=',data-size=' + name) as q:
            devfn = q.find_pci(VENDOR, DEVICE)[0]
            q.cfg_write(devfn, 0x10, 0xffffffff)
            bar0 = q.cfg_read(devfn, 0x10)
            check_eq(bar0 & 0xf, 0, 'BAR0 flags (32-bit memory)')
            check_eq((~(bar0 & ~0xf) + 1) & 0xffffffff, 0x1000, 'BAR0 size')
            q.cfg_write(devfn, 0x18, 0xffffffff)
            q.cfg_write(devfn, 0x1c, 0xffffffff)
            lo, hi = q.cfg_read(devfn, 0x18), q.cfg_read(devfn, 0x1c)
            check_eq(lo & 0xf, 0xc, 'BAR2 flags (64-bit prefetchable)')
            bar2 = (hi << 32) | (lo & ~0xf)
            check_eq((~bar2 + 1) & M64, size, 'BAR2 size for ' + name)
            setup_bars(q)
            check_eq(q.read(BAR0 + REG_DATA_SIZE, 8), size, 'DATA_SIZE')
            check_eq(q.read(BAR0 + REG_DATA_SIZE, 4), size & 0xffffffff,
                     'DATA_SIZE, 4-byte read')
            q.write(BAR2 + size - 16, 8, 0x1122334455667788)
            check_eq(q.read(BAR2 + size - 16, 8), 0x1122334455667788,
                     'last bytes of the data BAR')


@tap.test('/backdoor/ctrl/id')
def test_id():
    with start() as q:
        setup_bars(q)
        check_eq(q.read(BAR0 + REG_ID, 4), ID, 'ID register')
        check_eq(q.read(BAR0 + REG_FEATURES, 4),
                 1 | FEATURE_SLOTS | FEATURE_RING,
                 'FEATURES: CALL, slots, ring')
        check_eq(counters(q), (0, 0), 'calls, guest-errors')


@tap.test('/backdoor/call/one-exit')
def test_call():
    log = os.path.join(workdir, 'call.log')
    with start(log=log) as q:
        setup_bars(q)
        q.write(BAR2, 8, 0x1000)
        res = call(q, 0x42)
        check_eq(res, 0x42 * 3 + 0x1000, 'CALL result')
        check_eq(q.read(BAR0 + REG_RESULT, 8), res, 'RESULT latch')
        check_eq(q.read(BAR2 + 8, 8), ~0x42 & M64, 'callback store seen')
        check_eq(q.read(BAR2 + 16, 8), 1, 'callback call count')
        # A 4-byte read of CALL runs one call and returns the low half.
        q.write(BAR2, 8, 0xffffffff00000000)
        q.write(BAR2 + MiB - 8, 8, 1)
        check_eq(q.read(BAR0 + REG_CALL, 4), 3, '4-byte CALL read')
        check_eq(counters(q), (2, 0), 'calls, guest-errors')
    lines = read_log(log)
    check(lines[0].startswith('init version=2 mode=1 size=1048576 be=0 '
                              'id=bd0 args=log=%s data=set' % log),
          'init line: ' + lines[0])
    check_eq(lines[1], 'call n=1 cmd=0x42 vcpu=-1 arg=0x1000 mode=1 be=0',
             'first call seen by the callback')
    check_eq(lines[3], 'exit calls=2', 'exit line')


@tap.test('/backdoor/call/cmd-write')
def test_cmd_write():
    log = os.path.join(workdir, 'cmd.log')
    with start(log=log) as q:
        setup_bars(q)
        q.write(BAR2, 8, 7)
        q.write(BAR0 + REG_CMD, 8, 0xbabe00000000cafe)
        check_eq(q.read(BAR0 + REG_RESULT, 8),
                 (0xbabe00000000cafe * 3 + 7) & M64, 'RESULT after CMD')
        check_eq(q.read(BAR0 + REG_RESULT_HI, 4),
                 ((0xbabe00000000cafe * 3 + 7) & M64) >> 32,
                 'RESULT_HI after CMD')
        q.write(BAR0 + REG_CMD, 4, 0x10)
        check_eq(q.read(BAR0 + REG_RESULT, 8), 0x37, 'RESULT, 4-byte CMD')
        check_eq(counters(q), (2, 0), 'calls, guest-errors')
    check_eq(read_log(log)[2],
             'call n=2 cmd=0x10 vcpu=-1 arg=0x7 mode=1 be=0',
             '4-byte CMD write is zero-extended')


@tap.test('/backdoor/call/call-offset')
def test_call_offset():
    with start() as q:
        setup_bars(q)
        check_eq(q.read(BAR0 + REG_CALL_OFFSET, 8), MiB - 8, 'reset value')
        q.write(BAR0 + REG_CALL_OFFSET, 8, 0x100)
        check_eq(q.read(BAR0 + REG_CALL_OFFSET, 8), 0x100, 'CALL_OFFSET')
        q.write(BAR2 + 0x100, 8, 5)
        check_eq(q.read(BAR0 + REG_CALL, 8), 15, 'call word at 0x100')
        for bad in (0x101, MiB, MiB - 4, 1 << 40):
            q.write(BAR0 + REG_CALL_OFFSET, 8, bad)
        check_eq(q.read(BAR0 + REG_CALL_OFFSET, 8), 0x100, 'after bad values')
        check_eq(counters(q), (1, 4), 'calls, guest-errors')
        q.qmp_cmd('system_reset')
        setup_bars(q)               # the reset disabled them
        check_eq(q.read(BAR0 + REG_CALL_OFFSET, 8), MiB - 8, 'after reset')


@tap.test('/backdoor/call/vcpu-index')
def test_vcpu_index():
    with start() as q:
        setup_bars(q)
        check_eq(call(q, CMD_VCPU), M64, 'vcpu_index of a qtest access (-1)')


# Wrong accesses: (read?, offset, size). Each must be counted once.
WRONG = [(True, REG_ID, 1), (True, REG_ID, 2), (True, REG_ID, 8),
         (True, REG_FEATURES, 8), (True, REG_CMD, 8), (True, REG_CMD, 4),
         (True, REG_DATA_SIZE, 2), (True, REG_RESULT + 4, 8),
         (True, REG_RESULT + 4, 2), (False, REG_RESULT + 4, 4),
         (True, 0x11, 4), (True, 0x58, 4), (True, 0x800, 8),
         (True, 0xffc, 4), (True, REG_CALL, 2), (True, REG_CALL, 1),
         (False, REG_ID, 4), (False, REG_FEATURES, 4),
         (False, REG_DATA_SIZE, 8), (False, REG_RESULT, 8),
         (False, REG_CALL, 8), (False, REG_CMD, 2), (False, REG_CMD, 1),
         (False, REG_CALL_OFFSET, 2), (False, 0x13, 8), (False, 0x100, 4),
         (False, 0xfff, 1)]


@tap.test('/backdoor/ctrl/wrong-accesses')
def test_wrong():
    log = os.path.join(workdir, 'guest-errors.log')
    qemu_log = os.path.join(workdir, 'qemu.log')
    with Qemu(QEMU, device_args(log=log) + ['-d', 'guest_errors',
                                            '-D', qemu_log],
              launcher=LAUNCHER) as q:
        setup_bars(q)
        for n, (is_read, off, size) in enumerate(WRONG, 1):
            if is_read:
                check_eq(q.read(BAR0 + off, size), (1 << (8 * size)) - 1,
                         '%d-byte read at 0x%x' % (size, off))
            else:
                q.write(BAR0 + off, size, 0x5a)
            check_eq(counters(q), (0, n), 'after %s of %d bytes at 0x%x' %
                     ('read' if is_read else 'write', size, off))
        check_eq(q.read(BAR0 + REG_ID, 4), ID, 'ID after wrong accesses')
        check_eq(q.read(BAR0 + REG_RESULT, 8), 0, 'RESULT untouched')
        check(q.alive(), 'QEMU alive')
    with open(qemu_log) as f:
        logged = [l for l in f if l.startswith('backdoor: ')]
    check_eq(len(logged), len(WRONG), 'LOG_GUEST_ERROR lines')
    for want in ('read of write-only control offset 0x10',
                 'read of reserved control offset 0x58',
                 'write of read-only control offset 0x0',
                 '2-byte write at control offset 0x10',
                 'write of read-only control offset 0x100'):
        check(any(want in l for l in logged), 'logged: ' + want)
    check(not any(l.startswith('call') for l in read_log(log)),
          'no callback ran for a wrong access')


@tap.test('/backdoor/seed/api')
def test_seed():
    with start(lib=SEED_LIB) as q:
        setup_bars(q)
        q.write(BAR2, 4, 0xcafe)
        q.write(BAR0 + REG_CMD, 8, 0xbabe)
        check_eq(q.read(BAR0 + REG_RESULT, 8), 0, 'seed call result')
        check_eq(call(q, 0x77), 0, 'seed library through CALL')
        check_eq(counters(q), (2, 0), 'calls, guest-errors')
        q.quit()
        out = q.stdout()
    check_eq(out, '+ 1048576\n-> babe :: cafe\n-> 77 :: cafe\n',
             'seed callbacks output')


def start_fails(args, launcher=LAUNCHER):
    cmd = ([launcher] if launcher else []) + [
        QEMU, '-M', 'q35', '-accel', 'tcg', '-display', 'none', '-S',
        '-nodefaults'] + args
    try:
        rc, out, err = run_qemu(cmd, timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError('QEMU started instead of refusing: %s' % args)
    check(rc != 0, 'exit code %d for %s' % (rc, args))
    lines = err.strip().splitlines()
    check_eq(len(lines), 1, 'stderr lines (%r)' % err)
    return lines[0]


BAD_CONFIGS = [
    ('missing-callbacks', ['-device', 'backdoor'],
     r"backdoor: property 'callbacks' is required"),
    ('missing-library', device_args('/nonexistent/libx.so'),
     r"cannot load callbacks '/nonexistent/libx.so': .*No such file"),
    ('bad-version', device_args(os.environ['BAD_VERSION_CALLBACKS']),
     r"callbacks '.*libbad-version.so' need ABI version 99, but this "
     r"backdoor supports versions 1 to 2"),
    ('no-version', device_args(os.environ['NO_VERSION_CALLBACKS']),
     r"do not declare their ABI version \(qemu_backdoor_callbacks_version\)"),
    ('missing-symbol', device_args(os.environ['NO_INIT_CALLBACKS']),
     r"export neither qemu_backdoor_callbacks_init nor the seed API"),
    ('no-call', device_args(os.environ['NO_CALL_CALLBACKS']),
     r"set no call function in their init"),
    ('failing-init', ['-device', 'backdoor,callbacks=%s,'
                      'callbacks-args=fail' % LIB],
     r"failed to initialize: the test asked init to fail"),
    ('data-size-not-power-of-2', device_args(extra=',data-size=12345'),
     r"data-size 12345 is not a power of two from 4 KiB to 1 GiB"),
    ('data-size-too-small', device_args(extra=',data-size=2K'),
     r"data-size 2048 is not a power of two"),
    ('data-size-too-big', device_args(extra=',data-size=2G'),
     r"data-size 2147483648 is not a power of two"),
    ('data-size-garbage', device_args(extra=',data-size=lots'),
     r"data-size"),
]

# Files that are no callback library, refused before dlopen() with what
# they are (src/callbacks/loader.c)
NOT_ELF = os.path.join(workdir, 'libtext.so')
with open(NOT_ELF, 'w') as _f:
    _f.write('not a library\n')
BAD_CONFIGS += [
    ('directory', device_args(workdir),
     r"cannot load callbacks '%s': it is a directory: give the path of the "
     r"library file \(.so\) in it" % re.escape(workdir)),
    ('not-elf', device_args(NOT_ELF),
     r"cannot load callbacks '.*libtext.so': it is not an ELF file"),
    ('needs-missing-library',
     device_args(os.environ['NEEDS_ABSENT_CALLBACKS']),
     r"cannot load callbacks '.*libneeds-absent.so': libbackdoor-absent.so.0: "
     r"cannot open shared object file: No such file or directory; a library "
     r"it needs is missing \(see 'ldd .*libneeds-absent.so'\)"),
]

for _name, _args, _pattern in BAD_CONFIGS:
    def _bad(args=_args, pattern=_pattern):
        line = start_fails(args)
        check(re.search(pattern, line), 'message %r lacks %r' %
              (line, pattern))
        check(line.startswith(os.path.basename(QEMU) + ': '),
              'QEMU-style one-line error: %r' % line)
    tap.test('/backdoor/config/' + _name)(_bad)


# Bad callback libraries: what each one prints and how QEMU ends

def qemu_cmd(args, launcher=LAUNCHER, qemu=QEMU):
    return ([launcher] if launcher else []) + [
        qemu, '-M', 'q35', '-accel', 'tcg', '-display', 'none', '-S',
        '-nodefaults'] + args


def start_dies(args, env=None, prefix=(), qemu=QEMU):
    """Run QEMU that must stop at start-up: (exit status, stderr lines)."""
    try:
        rc, _, err = run_qemu(list(prefix) + qemu_cmd(args, qemu=qemu),
                              timeout=60, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError('QEMU started instead of refusing: %s' % args)
    return rc, err.strip().splitlines()


INIT_DEATHS = [
    ('crash', 'CRASH_CALLBACKS', -signal.SIGSEGV,
     r"crashed \(SIGSEGV\) while loading or in their init: fix them"),
    ('abort', 'ABORT_CALLBACKS', -signal.SIGABRT,
     r"crashed \(SIGABRT\) while loading or in their init"),
    ('exit', 'EXIT_CALLBACKS', 1,
     r"called exit\(0\) while loading or in their init: an init that "
     r"fails must return non-zero and set cb->error instead"),
]

for _name, _var, _rc, _pattern in INIT_DEATHS:
    def _dies(lib=os.environ[_var], want_rc=_rc, pattern=_pattern):
        rc, lines = start_dies(device_args(lib))
        check_eq(rc, want_rc, 'exit status')
        check_eq(len(lines), 1, 'stderr lines (%r)' % lines)
        check(re.match(r"qemu-backdoor: callbacks '%s' %s" %
                       (re.escape(lib), pattern), lines[0]),
              'message %r' % lines[0])
    tap.test('/backdoor/callbacks/init-' + _name)(_dies)


def interrupt_when_waiting(cmd, env=None, cwd=None):
    """Start QEMU whose library's init hangs; once QEMU says it is still
    waiting, press Ctrl-C (SIGINT). Return (exit status, stderr lines)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, cwd=cwd,
                         env=dict(os.environ, **(env or {})))
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


@tap.test('/backdoor/callbacks/init-hangs')
def test_init_hangs():
    lib = os.environ['HANG_CALLBACKS']
    rc, lines = interrupt_when_waiting(qemu_cmd(device_args(lib)))
    check_eq(len(lines), 2, 'stderr lines (%r)' % lines)
    check(re.match(r"qemu-backdoor: still waiting for callbacks '%s' to "
                   r"initialize after \d+ s: their init has not returned "
                   r"\(Ctrl-C stops QEMU\)$" % re.escape(lib), lines[0]),
          'waiting line %r' % lines[0])
    check_eq(lines[1], "qemu-backdoor: stopped (SIGINT) while callbacks "
             "'%s' were loading or in their init" % lib, 'stop line')
    check_eq(rc, -signal.SIGINT, 'exit status')


@tap.test('/backdoor/callbacks/other-architecture')
def test_foreign():
    lib = os.environ['FOREIGN_CALLBACKS']
    if not lib:
        return 'no aarch64-linux-gnu-gcc to build one (gcc-aarch64-linux-gnu)'
    rc, lines = start_dies(device_args(lib))
    check(rc == 1 and len(lines) == 1, 'exit %d, stderr %r' % (rc, lines))
    check(re.search(r"cannot load callbacks '.*libforeign.so': it is built "
                    r"for aarch64 \(64-bit, little-endian\), but QEMU runs "
                    r"on x86_64 \(64-bit, little-endian\): build it with "
                    r"the host's compiler", lines[0]), lines[0])


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


@tap.test('/backdoor/callbacks/unreadable')
def test_unreadable():
    prefix = []
    if os.environ.get('BACKDOOR_SANITIZED'):
        return ('sanitizer run: nobody cannot write the sanitizer runtime\'s '
                'logs (this checks a permission, not memory)')
    if os.geteuid() == 0:
        # root reads any file: run QEMU as nobody
        if not shutil.which('setpriv'):
            return 'running as root and no setpriv to drop privileges'
        needed = ([QEMU, intree_module()] if INTREE else
                  [LAUNCHER, LOADER])
        if not all(others_can_read(p) for p in needed):
            return 'running as root, and nobody cannot reach the build tree'
        prefix = ['setpriv', '--reuid=65534', '--regid=65534',
                  '--clear-groups']
    where = tempfile.mkdtemp(dir=workdir)
    os.chmod(workdir, 0o755)
    os.chmod(where, 0o755)
    lib = os.path.join(where, 'libunreadable.so')
    shutil.copy(LIB, lib)
    os.chmod(lib, 0)
    rc, lines = start_dies(device_args(lib), prefix=prefix)
    check(rc == 1 and len(lines) == 1, 'exit %d, stderr %r' % (rc, lines))
    check(re.search(r"cannot load callbacks '%s': cannot read it \(Permission "
                    r"denied\): make it readable for the user QEMU runs as "
                    r"\(uid \d+\)" % re.escape(lib), lines[0]), lines[0])


def callbacks_dir(env=None):
    """Where bare names are looked up: the launcher says; in-tree, the
    environment or else the directory compiled in (None: not known here,
    the error message says)."""
    if INTREE:
        return (env or {}).get('QEMU_BACKDOOR_CALLBACKS_DIR')
    rc, out, _ = run_qemu([LAUNCHER, '--print-callbacks-dir'], env=env)
    check_eq(rc, 0, 'exit status of --print-callbacks-dir')
    return out.strip()


@tap.test('/backdoor/callbacks/bare-name-not-found')
def test_bare_not_found():
    for env in ({}, {'QEMU_BACKDOOR_CALLBACKS_DIR': workdir}):
        where = callbacks_dir(env)
        if not env and where is not None:
            check(where.endswith('/qemu-backdoor/callbacks'),
                  'packaged callbacks directory %r' % where)
        if env:
            check_eq(where, workdir, '--print-callbacks-dir with %r' % env)
        rc, lines = start_dies(device_args('libnowhere.so'), env=env)
        check(rc == 1 and len(lines) == 1, 'exit %d, stderr %r' % (rc, lines))
        m = re.search(r"cannot load callbacks 'libnowhere\.so': not in the "
                      r"current directory \((.*)\) nor in (.*), where a name "
                      r"without '/' is looked up: give its path$", lines[0])
        check(m and m.group(1) == os.getcwd(), lines[0])
        # In-tree, the packaged directory is the one compiled in
        check_eq(m.group(2), where or m.group(2), 'directory looked in')
        check(env or m.group(2).endswith('/qemu-backdoor/callbacks'),
              'packaged callbacks directory %r' % m.group(2))


@tap.test('/backdoor/callbacks/bare-name-current-directory-first')
def test_bare_cwd():
    here = tempfile.mkdtemp(dir=workdir)
    packaged = tempfile.mkdtemp(dir=workdir)
    shutil.copy(LIB, os.path.join(here, 'libpick.so'))
    shutil.copy(os.environ['CRASH_CALLBACKS'],
                os.path.join(packaged, 'libpick.so'))
    log = os.path.join(workdir, 'bare-cwd.log')
    old = os.getcwd()
    os.chdir(here)
    try:
        with start(lib='libpick.so', log=log,
                   env={'QEMU_BACKDOOR_CALLBACKS_DIR': packaged}) as q:
            setup_bars(q)
            q.write(BAR2, 8, 0)
            check_eq(call(q, 5), 15, 'call into ./libpick.so')
    finally:
        os.chdir(old)
    check(read_log(log)[0].startswith('init '), 'the library logged its init')


@tap.test('/backdoor/callbacks/bare-name-packaged-directory')
def test_bare_packaged():
    packaged = tempfile.mkdtemp(dir=workdir)
    shutil.copy(LIB, os.path.join(packaged, 'libpackaged.so'))
    with start(lib='libpackaged.so',
               env={'QEMU_BACKDOOR_CALLBACKS_DIR': packaged}) as q:
        setup_bars(q)
        q.write(BAR2, 8, 1)
        check_eq(call(q, 5), 16, 'call into the packaged library')


@tap.test('/backdoor/config/two-devices')
def test_two_devices():
    log = os.path.join(workdir, 'two.log')
    args = device_args(log=log) + [
        '-device', 'backdoor,id=bd1,callbacks=%s,data-size=8K,'
        'callbacks-args=log=%s' % (LIB, log)]
    with Qemu(QEMU, args, launcher=LAUNCHER) as q:
        check_eq(len(q.find_pci(VENDOR, DEVICE)), 2, 'devices found')
    inits = [l for l in read_log(log) if l.startswith('init')]
    check_eq(len(inits), 2, 'callback inits')
    check(any('size=8192' in l and 'id=bd1' in l for l in inits), inits)


@tap.test('/backdoor/hotplug/add-call-remove')
def test_hotplug():
    # i440fx: its ACPI PCI hotplug lets qtest do the guest's eject.
    log = os.path.join(workdir, 'hotplug.log')
    with Qemu(QEMU, [], launcher=LAUNCHER, machine='pc') as q:
        check_eq(q.find_pci(VENDOR, DEVICE), [], 'no device before')
        q.qmp_cmd('device_add', driver='backdoor', id='bd0', addr='4',
                  callbacks=LIB, **{'callbacks-args': 'log=' + log})
        devfn = setup_bars(q)
        check_eq(devfn, 4 << 3, 'hot-plugged at slot 4')
        q.write(BAR2, 8, 1)
        check_eq(call(q, 2), 7, 'call on the hot-plugged device')
        q.qmp_cmd('device_del', id='bd0')
        q.outl(0xae08, 1 << 4)          # ACPI PCI hotplug: eject slot 4
        q.qmp_event('DEVICE_DELETED')
        check_eq(q.find_pci(VENDOR, DEVICE), [], 'no device after')
        lines = read_log(log)
        check_eq(lines[-1], 'exit calls=1', 'exit ran at unplug')
        try:
            q.qmp_cmd('device_add', driver='backdoor', id='bd1',
                      callbacks='/nonexistent.so')
            raise AssertionError('device_add of a bad library succeeded')
        except QemuError as e:
            check("cannot load callbacks '/nonexistent.so'" in str(e), e)
        check(q.alive(), 'QEMU alive after a refused hot-plug')
    check_eq(len(read_log(log)), 3, 'init, call, exit: exit ran once')


@tap.test('/backdoor/launcher/device-help')
def test_help():
    rc, out, _ = run_qemu(launched(QEMU, '-device', 'help'))
    check(rc == 0 and re.search(r'name "backdoor", bus PCI', out),
          '-device help lists backdoor')
    rc, out, _ = run_qemu(launched(QEMU, '-device', 'backdoor,help'))
    for prop in ('callbacks=<str>', 'callbacks-args=<str>',
                 'data-size=<size>'):
        check(prop in out, '-device backdoor,help lists ' + prop)
    if INTREE:
        return
    rc, out, _ = run_qemu([LAUNCHER, '--help'])
    check(rc == 0 and 'Usage: qemu-backdoor' in out, 'launcher --help')


_fake = []


def fake_build():
    """A real QEMU binary whose build differs: the stock one with another
    package version in its version strings (same length). Returns its
    path, the package version and the other one."""
    if not _fake:
        m = re.search(r'\((.*)\)$', QEMU_VERSION)
        check(m, 'version line %r has a package version' % QEMU_VERSION)
        pkg = m.group(1).encode()
        other = pkg[:-1] + (b'0' if pkg[-1:] != b'0' else b'1')
        with open(shutil.which(QEMU), 'rb') as f:
            image = f.read()
        check(pkg in image, 'package version found in the binary')
        fake = os.path.join(workdir, os.path.basename(QEMU))
        with open(fake, 'wb') as f:
            f.write(image.replace(pkg, other))
        os.chmod(fake, 0o755)
        _fake.extend([fake, pkg.decode(), other.decode()])
    return _fake


@tap.test('/backdoor/launcher/mismatch')
def test_mismatch():
    if INTREE:
        return NOT_INTREE
    fake, pkg, other = fake_build()
    rc, out, err = run_qemu([fake, '--version'])
    check(rc == 0 and other in out, 'patched QEMU runs: %r' % out)
    rc, out, err = run_qemu([LAUNCHER, fake, '-device', 'help'])
    check(rc != 0, 'launcher refuses the mismatched QEMU')
    lines = err.strip().splitlines()
    check_eq(len(lines), 1, 'one-line error (%r)' % err)
    check('but the backdoor device was built for QEMU ' + QEMU_VERSION
          in lines[0] and other in lines[0], lines[0])
    # ... and the one command that fixes it: the build it was made for.
    fix = 'sudo apt-get install qemu-system-x86=' + \
        pkg.replace('Debian ', '', 1)
    check(fix in lines[0], 'the error names %r: %r' % (fix, lines[0]))
    rc, out, err = run_qemu([LAUNCHER, '/bin/true'])
    check(rc != 0 and 'is not a QEMU system emulator' in err, err)


@tap.test('/backdoor/load/loader-refuses-other-build')
def test_loader_refuses():
    # Past the launcher, the loader refuses another QEMU build by itself:
    # QEMU stays up without the device, or exits as for a plugin that
    # fails to install, but does not crash.
    if INTREE:
        return NOT_INTREE
    fake, pkg, other = fake_build()
    # (Moved, the binary looks for its modules, as the TCG accelerator
    # of 7.2, beside itself.)
    env = {'QEMU_MODULE_DIR': os.environ['BACKDOOR_QEMU_MODDIR']}
    p = subprocess.run([fake, '-M', 'none', '-display', 'none',
                        '-nodefaults', '-qmp', 'stdio'],
                       input='{"execute": "qmp_capabilities"}\n'
                       '{"execute": "query-version"}\n'
                       '{"execute": "quit"}\n',
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, **env))
    if '"package": "%s"' % other not in p.stdout:
        # GLib's inline g_strdup() can put a constant string into the
        # code as immediates, out of reach of the patch.
        return ('query-version of the patched binary still says %r: the '
                'package version is compiled into its code' % pkg)
    refusal = 'was built for QEMU %s, not for this QEMU' % \
        QEMU_VERSION.split(' ', 1)[1]
    rc, out, err = run_qemu([fake, '-plugin', LOADER, '-M', 'none',
                             '-display', 'none', '-S', '-device',
                             'backdoor,callbacks=' + LIB], env=env)
    check(rc == 1 and refusal in err and other in err,
          '-plugin: the loader refuses the mismatched QEMU (%d): %r' %
          (rc, err))
    rc, out, err = run_qemu([LAUNCHER, '--no-version-check', fake,
                             '-device', 'backdoor,help'], env=env)
    check(rc in (0, 1) and refusal in err and
          "Device 'backdoor' not found" in err,
          'preloaded: the loader refuses the mismatched QEMU (%d): %r' %
          (rc, err))
    return None


@tap.test('/backdoor/load/plugin')
def test_plugin():
    if INTREE:
        return NOT_INTREE
    log = os.path.join(workdir, 'plugin.log')
    with Qemu(QEMU, ['-plugin', LOADER] + device_args(log=log)) as q:
        setup_bars(q)
        check_eq(q.read(BAR0 + REG_ID, 4), ID, 'ID register')
        q.write(BAR2, 8, 1)
        check_eq(call(q, 2), 7, 'call result')


@tap.test('/backdoor/load/dso-module')
def test_dso():
    if INTREE:
        return NOT_INTREE
    log = os.path.join(workdir, 'dso.log')
    env = {'QEMU_MODULE_DIR': MODULE_DIR}
    with Qemu(QEMU, device_args(log=log), env=env, preconfig=True) as q:
        check_eq(q.qtest_cmd('module_load hw- backdoor'), '',
                 'module_load hw- backdoor')
        q.qmp_cmd('x-exit-preconfig')
        setup_bars(q)
        check_eq(q.read(BAR0 + REG_ID, 4), ID, 'ID register')
        q.write(BAR2, 8, 1)
        check_eq(call(q, 2), 7, 'call result')


def intree_module():
    """The device's module file of an in-tree QEMU: built beside the
    executable (a build tree's QEMU finds it through qemu-bundle/)."""
    exe = os.path.realpath(shutil.which(QEMU) or QEMU)
    return os.path.join(os.path.dirname(exe), 'hw-misc-backdoor.so')


if INTREE:
    @tap.test('/backdoor/load/in-tree-module')
    def test_intree_module():
        exe = os.path.realpath(shutil.which(QEMU) or QEMU)
        module = intree_module()
        check(os.path.isfile(module), 'module file %s' % module)
        with open(exe, 'rb') as f:
            check(b'backdoor-ctrl' not in f.read(),
                  'the device is not in the executable')
        with open(module, 'rb') as f:
            check(b'backdoor-ctrl' in f.read(), 'the device is in %s' %
                  module)
        # The executable outside its build tree, given every module of its
        # build but the device's (QEMU_MODULE_DIR): QEMU does not know the
        # device, so it comes from that file.
        alone = tempfile.mkdtemp(dir=workdir)
        mods = os.path.join(alone, 'modules')
        os.mkdir(mods)
        copy = os.path.join(alone, os.path.basename(exe))
        try:
            os.link(exe, copy)
        except OSError:
            shutil.copy2(exe, copy)
        for so in os.listdir(os.path.dirname(exe)):
            if so.endswith('.so') and so != os.path.basename(module):
                os.symlink(os.path.join(os.path.dirname(exe), so),
                           os.path.join(mods, so))
        env = {'QEMU_MODULE_DIR': mods}
        rc, lines = start_dies(device_args(), qemu=copy, env=env)
        check(rc == 1 and len(lines) == 1 and
              "'backdoor' is not a valid device model name" in lines[0],
              'without the module file: exit %d, %r' % (rc, lines))
        os.symlink(module, os.path.join(mods, os.path.basename(module)))
        with Qemu(copy, device_args(), env=env) as q:
            setup_bars(q)
            check_eq(q.read(BAR0 + REG_ID, 4), ID, 'ID register')
            q.write(BAR2, 8, 1)
            check_eq(call(q, 2), 7, 'call result')


# ---- snapshots and migration (callback ABI 2) ----

def hmp(q, line):
    return q.qmp_cmd('human-monitor-command', **{'command-line': line})


def tool_env():
    """A tool's environment, not under test: without a sanitizer's preload
    (qemu-img hangs with libasan preloaded)."""
    return {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}


def snapshot_disk():
    """A qcow2 image for savevm to write to; returns its -drive args."""
    img = os.path.join(workdir, 'snap-%d.qcow2' % random.getrandbits(32))
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '16M'],
                   check=True, env=tool_env())
    return ['-drive', 'if=none,id=disk0,format=qcow2,file=' + img]


def state_call(q, tag, n, what):
    check_eq(call(q, 1), tag << 32 | n, what)


@tap.test('/backdoor/migration/blocked-without-hooks')
def test_migration_blocked():
    for lib, args, name in ((LIB, '', LIB), (SEED_LIB, '', SEED_LIB),
                            (STATE_LIB, ',callbacks-args=nohooks',
                             STATE_LIB)):
        with Qemu(QEMU, device_args(lib, args) + snapshot_disk(),
                  launcher=LAUNCHER) as q:
            out = hmp(q, 'savevm s1')
            check("callbacks '%s' have no save/load hooks" % name in out,
                  'savevm refused, naming ' + os.path.basename(lib) +
                  ': ' + out.strip())
            try:
                q.qmp_cmd('migrate', uri='exec:cat > /dev/null')
                check(False, 'migrate refused')
            except QemuError as e:
                check("callbacks '%s'" % name in str(e),
                      'migrate refused, naming the library: %s' % e)


@tap.test('/backdoor/migration/savevm-loadvm')
def test_savevm_loadvm():
    log = os.path.join(workdir, 'savevm.log')
    with Qemu(QEMU, device_args(STATE_LIB, ',callbacks-args=tag=7:log=' +
                                log) + snapshot_disk(),
              launcher=LAUNCHER) as q:
        setup_bars(q)
        for n in (1, 2, 3):
            state_call(q, 7, n, 'call %d before savevm' % n)
        q.write(BAR2 + 0x100, 8, 0x1111222233334444)
        q.write(BAR0 + REG_CALL_OFFSET, 8, 0x200)
        out = hmp(q, 'savevm s1')
        check_eq(out.strip(), '', 'savevm output')
        q.write(BAR2 + 0x100, 8, 0xdead)
        q.write(BAR0 + REG_CALL_OFFSET, 8, 0x300)
        q.write(BAR2 + 0x300, 8, 1)
        q.read(BAR0 + REG_CALL, 8)
        q.read(BAR0 + REG_CALL, 8)
        check_eq(q.read(BAR0 + REG_RESULT, 8), 7 << 32 | 5, 'after savevm')
        out = hmp(q, 'loadvm s1')
        check_eq(out.strip(), '', 'loadvm output')
        check_eq(q.read(BAR2 + 0x100, 8), 0x1111222233334444,
                 'data channel restored')
        check_eq(q.read(BAR0 + REG_CALL_OFFSET, 8), 0x200,
                 'CALL_OFFSET restored')
        check_eq(q.read(BAR0 + REG_RESULT, 8), 7 << 32 | 3,
                 'RESULT restored')
        check_eq(counters(q), (3, 0), 'calls, guest-errors restored')
        q.write(BAR2 + 0x200, 8, 1)
        check_eq(q.read(BAR0 + REG_CALL, 8), 7 << 32 | 4,
                 'library state restored: the next call is the 4th')
    lines = read_log(log)
    check('save tag=7 calls=3' in lines and 'load tag=7 calls=5' not in lines
          and 'load tag=7 calls=3' in lines, 'save/load hooks ran: %s' % lines)


def wait_migration(q):
    while True:
        st = q.qmp_cmd('query-migrate')
        if st.get('status') in ('completed', 'failed', 'cancelled'):
            return st
        time.sleep(0.05)


@tap.test('/backdoor/migration/file')
def test_migrate_file():
    img = os.path.join(workdir, 'migration.bin')
    dev = device_args(STATE_LIB, ',callbacks-args=tag=9')
    with Qemu(QEMU, dev, launcher=LAUNCHER) as q:
        setup_bars(q)
        for n in (1, 2):
            state_call(q, 9, n, 'call %d before migrate' % n)
        q.write(BAR2 + 0x40, 8, 0xfeedface)
        q.qmp_cmd('migrate', uri='exec:cat > ' + img + ' 2>' + img + '.err')
        st = wait_migration(q)
        check_eq(st['status'], 'completed',
                 'migration (%s)' % st.get('error-desc'))
    with Qemu(QEMU, dev + ['-incoming', 'exec:cat ' + img],
              launcher=LAUNCHER) as q:
        while q.qmp_cmd('query-status')['status'] == 'inmigrate':
            time.sleep(0.05)
        check_eq(q.read(BAR2 + 0x40, 8), 0xfeedface,
                 'data channel migrated')
        check_eq(counters(q), (2, 0), 'calls, guest-errors migrated')
        state_call(q, 9, 3, 'library state migrated: the next call is 3rd')
    # An incoming QEMU whose library has no hooks refuses the state
    rc, _, err = run_qemu(launched(QEMU, '-machine', 'q35', '-accel',
                                   'tcg', '-display', 'none', '-nodefaults',
                                   '-incoming', 'exec:cat ' + img) +
                          device_args(STATE_LIB, ',callbacks-args=nohooks'))
    check(rc != 0 and "callbacks '%s' have no load hook" % STATE_LIB in err,
          'incoming without hooks fails (%d): %s' % (rc, err.strip()))


@tap.test('/backdoor/migration/restore-loop')
def test_restore_loop():
    """The fuzzing pattern: restore one snapshot again and again."""
    n = int(os.environ.get('BACKDOOR_RESTORES', '1000'))
    with Qemu(QEMU, device_args(STATE_LIB) + snapshot_disk(),
              launcher=LAUNCHER) as q:
        setup_bars(q)
        state_call(q, 1, 1, 'first call')
        q.write(BAR2 + 0x80, 8, 0)
        hmp(q, 'savevm fuzz')
        bad = 0
        for i in range(n):
            q.write(BAR2 + 0x80, 8, i + 1)
            if call(q, 1) != 1 << 32 | 2:
                bad += 1
            out = hmp(q, 'loadvm fuzz')
            if out.strip() or q.read(BAR2 + 0x80, 8) != 0:
                bad += 1
        check_eq(bad, 0, 'restores that did not bring back data and state '
                 '(of %d)' % n)


# ---- hot reload ----

def qom_set(q, prop, value):
    return q.qmp_cmd('qom-set', path='/machine/peripheral/bd0',
                     property=prop, value=value)


@tap.test('/backdoor/reload/qmp')
def test_reload_qmp():
    log = os.path.join(workdir, 'reload.log')
    with Qemu(QEMU, device_args(STATE_LIB, ',callbacks-args=tag=1:log=' +
                                log), launcher=LAUNCHER) as q:
        setup_bars(q)
        state_call(q, 1, 1, 'library 1 answers')
        state_call(q, 1, 2, 'library 1 answers again')
        qom_set(q, 'callbacks-args', 'tag=2:log=' + log)
        state_call(q, 1, 3, 'callbacks-args alone swaps nothing')
        qom_set(q, 'callbacks', STATE_LIB)
        state_call(q, 2, 1, 'library 2 answers, from its first call')
        check_eq(q.qom_get('/machine/peripheral/bd0', 'callbacks'),
                 STATE_LIB, 'qom-get callbacks')
        # another library file, a version-1 one
        qom_set(q, 'callbacks-args', '')
        qom_set(q, 'callbacks', LIB)
        q.write(BAR2, 8, 5)
        check_eq(call(q, 0x10), 0x10 * 3 + 5, 'test-callbacks answers')
        check_eq(counters(q), (5, 0), 'calls, guest-errors')
    check_eq(read_log(log), ['init tag=1 version=2', 'exit tag=1 calls=3',
                             'init tag=2 version=2', 'exit tag=2 calls=1'],
             'exit of the old library before init of the new')


@tap.test('/backdoor/reload/hmp')
def test_reload_hmp():
    with Qemu(QEMU, device_args(STATE_LIB, ',callbacks-args=tag=3'),
              launcher=LAUNCHER) as q:
        setup_bars(q)
        state_call(q, 3, 1, 'library 3 answers')
        out = hmp(q, 'qom-set /machine/peripheral/bd0 callbacks-args tag=4')
        check_eq(out.strip(), '', 'HMP qom-set callbacks-args')
        out = hmp(q, 'qom-set /machine/peripheral/bd0 callbacks ' +
                  STATE_LIB)
        check_eq(out.strip(), '', 'HMP qom-set callbacks')
        state_call(q, 4, 1, 'library 4 answers')


@tap.test('/backdoor/reload/fails')
def test_reload_fails():
    log = os.path.join(workdir, 'reload-fails.log')
    with Qemu(QEMU, device_args(STATE_LIB, ',callbacks-args=tag=5:log=' +
                                log) + snapshot_disk(),
              launcher=LAUNCHER) as q:
        setup_bars(q)
        state_call(q, 5, 1, 'library 5 answers')
        for bad, why in ((os.path.join(workdir, 'absent.so'),
                          'No such file'),
                         (os.environ['BAD_VERSION_CALLBACKS'],
                          'need ABI version')):
            try:
                qom_set(q, 'callbacks', bad)
                check(False, 'qom-set of %s fails' % bad)
            except QemuError as e:
                check(why in str(e), 'the QMP error says why: %s' % e)
            check_eq(q.qom_get('/machine/peripheral/bd0', 'callbacks'),
                     STATE_LIB, 'callbacks unchanged')
        state_call(q, 5, 2, 'the old library kept its state (load errors)')
        # init fails: the old library has exited and is started again
        qom_set(q, 'callbacks-args', 'fail')
        for bad, why in ((STATE_LIB, 'failed to initialize'),
                         (os.environ['NO_CALL_CALLBACKS'],
                          'set no call function')):
            try:
                qom_set(q, 'callbacks', bad)
                check(False, 'qom-set of a failing init fails')
            except QemuError as e:
                check(why in str(e) and "kept callbacks '%s'" % STATE_LIB
                      in str(e), 'the QMP error says why: %s' % e)
        check(q.alive(), 'QEMU still runs')
        # the old library exited and was started again with its own args
        state_call(q, 5, 1, 'the old library answers, restarted')
        out = hmp(q, 'savevm s1')
        check('no save/load hooks' not in out, 'still migratable: ' + out)
        hmp(q, 'qom-set /machine/peripheral/bd0 callbacks-args tag=6')
        qom_set(q, 'callbacks', STATE_LIB)
        state_call(q, 6, 1, 'a working swap after the failed one')
        # to a library without hooks and back: the blocker follows
        qom_set(q, 'callbacks', LIB)
        check("callbacks '%s' have no save/load hooks" % LIB in
              hmp(q, 'savevm s2'), 'swapped to a v1 library: unmigratable')
        qom_set(q, 'callbacks', STATE_LIB)
        check_eq(hmp(q, 'savevm s3').strip(), '',
                 'swapped back: migratable again')


# ---- guest memory for callbacks (ABI 2) ----

EFAULT, E2BIG = 14, 7


@tap.test('/backdoor/guest-memory/system')
def test_guest_memory():
    ram = 0x100000
    with start(lib=STATE_LIB) as q:
        setup_bars(q)
        for i in range(4):
            q.write(ram + 8 * i, 8, 0x0102030405060708 * (i + 1) & M64)
        q.write(BAR2, 8, ram + 4)
        q.write(BAR2 + 8, 8, 24)
        check_eq(call(q, 2), 0, 'read 24 bytes of guest RAM')
        got = [q.read(BAR2 + 64 + i, 1) for i in range(24)]
        want = b''.join((0x0102030405060708 * (i + 1) & M64).to_bytes(
            8, 'little') for i in range(4))[4:28]
        check_eq(bytes(got), want, 'the bytes the callback read')
        for i in range(3):
            q.write(BAR2 + 64 + 8 * i, 8, 0xa0a0a0a0a0a0a0a0 + i)
        q.write(BAR2, 8, ram + 0x1000)
        check_eq(call(q, 3), 0, 'write 24 bytes of guest RAM')
        check_eq([q.read(ram + 0x1000 + 8 * i, 8) for i in range(3)],
                 [0xa0a0a0a0a0a0a0a0 + i for i in range(3)],
                 'guest RAM after the callback wrote it')
        for addr, what in ((1 << 50, 'beyond guest memory'),
                           (M64 - 8, 'wrapping around')):
            q.write(BAR2, 8, addr)
            check_eq(call(q, 2), -EFAULT & M64, 'read ' + what)
            check_eq(call(q, 3), -EFAULT & M64, 'write ' + what)
        # the device's own registers: refused (no call inside a call)
        q.write(BAR2, 8, BAR0 + REG_CALL)
        q.write(BAR2 + 8, 8, 8)
        calls, errors = counters(q)
        r = call(q, 2)
        check(r == -EFAULT & M64 or counters(q)[1] == errors + 1,
              'a read of the device registers is refused: %#x' % r)
        check_eq(counters(q)[0], calls + 1, 'no call inside the call')
        q.write(BAR2 + 8, 8, MiB)
        check_eq(call(q, 2), -E2BIG & M64, 'the library bounds its copy')


def kvm_usable():
    try:
        fd = os.open('/dev/kvm', os.O_RDWR)
        os.close(fd)
    except OSError as e:
        return 'no usable /dev/kvm (%s)' % e.strerror
    return None


@tap.test('/backdoor/accel/kvm')
def test_kvm():
    why = kvm_usable()
    if why:
        return why
    log = os.path.join(workdir, 'kvm.log')
    try:
        q = start(log=log, accel='kvm')
    except QemuError as e:
        return 'QEMU cannot start with -accel kvm here (%s)' % e
    with q:
        check_eq(q.qmp_cmd('query-kvm'), {'enabled': True, 'present': True},
                 'query-kvm')
        setup_bars(q)
        check_eq(q.read(BAR0 + REG_ID, 4), ID, 'ID register under KVM')
        q.write(BAR2, 8, 10)
        check_eq(call(q, 4), 22, 'call under KVM')


# Register map 1.1: call slots and event rings

def slot_regs(q):
    return tuple(q.read(BAR0 + r, 4) for r in
                 (REG_SLOT_COUNT, REG_RING_ENTRIES, REG_SLOT_BASE,
                  REG_SLOT_STRIDE))


@tap.test('/backdoor/slots/layout')
def test_slot_layout():
    for size, name, extra in ((MiB, '1M', ''), (4096, '4K', ''),
                              (64 * MiB, '64M', ',slots=256'),
                              (MiB, '1M', ',slots=3,ring-entries=8'),
                              (MiB, '1M', ',ring-entries=0')):
        with start(extra=',data-size=' + name + extra) as q:
            setup_bars(q)
            want = slot_layout(size, *[int(v.split('=')[1]) for v in
                                       extra.split(',')[1:]]) \
                if 'slots' in extra else \
                slot_layout(size, 32, 0 if 'ring' in extra else 128)
            if 'ring-entries=0' in extra:
                want = (32, 0, size - 64 - 32 * 64, 64)
            check_eq(slot_regs(q), want, 'slot registers, data-size=%s%s'
                     % (name, extra))
            check_eq(q.read(BAR0 + REG_SLOT_BASE, 8), want[2],
                     'SLOT_BASE, 8-byte read')
            check(want[2] + want[0] * want[3] <= size - 64 and
                  want[0] * want[3] <= size // 2,
                  'slots below the 1.0 call word, in half the channel')
            feat = q.read(BAR0 + REG_FEATURES, 4)
            check_eq(bool(feat & FEATURE_RING), bool(want[1]),
                     'FEATURES.RING with %d ring entries' % want[1])


def claim(q):
    return q.read(BAR0 + REG_SLOT_ALLOC, 4)


def slot_call(q, base, stride, n, cmd):
    q.write(BAR2 + base + n * stride + BLK_WORD, 8, cmd)
    return q.read(BAR0 + slot_call_reg(n), 8)


@tap.test('/backdoor/slots/claim-call-free')
def test_slot_calls():
    log = os.path.join(workdir, 'slots.log')
    with start(log=log, extra=',slots=4') as q:
        setup_bars(q)
        count, _, base, stride = slot_regs(q)
        check_eq([claim(q) for _ in range(5)], [0, 1, 2, 3, 0xffffffff],
                 'SLOT_ALLOC hands out each slot once, then ~0')
        q.write(BAR2, 8, 1000)                  # the library's argument
        check_eq(slot_call(q, base, stride, 1, 5), 1015, 'call via slot 1')
        check_eq(slot_call(q, base, stride, 2, 7), 1021, 'call via slot 2')
        check_eq(q.read(BAR2 + base + stride + BLK_WORD, 8), 5,
                 'slot 1 keeps its own call word')
        check_eq(q.read(BAR2 + base + stride + BLK_RESULT, 8), 1015,
                 'slot 1 result in the data channel (32-bit guests)')
        check_eq(q.read(BAR0 + slot_call_reg(2), 4), 1021,
                 '4-byte SLOT_CALL read: low half')
        check_eq(call(q, 9), 1027, 'the 1.0 call word still works')
        check_eq(counters(q), (4, 0), 'calls, no guest error')
        q.write(BAR0 + REG_SLOT_FREE, 4, 2)
        check_eq(q.read(BAR0 + slot_call_reg(2), 8), M64,
                 'a freed slot calls nothing')
        check_eq(counters(q), (4, 1), 'the call through it is a guest error')
        q.write(BAR0 + REG_SLOT_FREE, 4, 2)
        check_eq(counters(q), (4, 2), 'freeing it twice too')
        check_eq(claim(q), 2, 'a freed slot is claimed again')
        check_eq(q.read(BAR2 + base + 2 * stride + BLK_WORD, 8), 0,
                 'a claimed slot starts clean')
        vcpu = slot_call(q, base, stride, 0, CMD_VCPU)
        check_eq(vcpu, M64, 'vcpu_index of a qtest slot call (-1)')


def post(q, base, stride, n, events):
    """Store @events (cmd, a0, a1, a2) in slot @n's ring, then HEAD."""
    blk = BAR2 + base + n * stride
    entries = q.read(BAR0 + REG_RING_ENTRIES, 4)
    head = q.read(blk + BLK_HEAD, 8)
    for ev in events:
        e = blk + BLK_RING + (head % entries) * EVENT_SIZE
        for i, v in enumerate(ev):
            q.write(e + 8 * i, 8, v)
        head += 1
    q.write(blk + BLK_HEAD, 8, head)
    return head


def logged_events(log):
    return [tuple(int(x, 16) for x in
                  [l.split()[1][4:]] + l.split()[2][5:].split(','))
            for l in read_log(log) if l.startswith('event ')]


@tap.test('/backdoor/ring/drain-points')
def test_ring_drains():
    log = os.path.join(workdir, 'ring.log')
    with start(log=log, extra=',slots=4,ring-entries=8') as q:
        setup_bars(q)
        _, entries, base, stride = slot_regs(q)
        check_eq(entries, 8, 'RING_ENTRIES')
        claim(q), claim(q)
        evs = [(EVENT_SEQ, i, 0, 0x1000 + i) for i in range(5)]
        head = post(q, base, stride, 0, evs)
        check_eq(q.qom_get('/machine/peripheral/bd0', 'events'), 0,
                 'posting alone delivers nothing (no exit)')
        q.write(BAR0 + REG_DOORBELL, 4, 0)
        check_eq(logged_events(log), evs, 'doorbell: the events, in order')
        check_eq(q.read(BAR2 + base + BLK_TAIL, 8), head,
                 'TAIL caught up with HEAD')
        # Wrap around the ring of 8, deliver at a call through any slot
        evs2 = [(EVENT_SEQ, 5 + i, 0, 7) for i in range(8)]
        post(q, base, stride, 0, evs2)
        post(q, base, stride, 1, [(0x77, 1, 2, 3)])
        slot_call(q, base, stride, 1, 1)
        lines = read_log(log)
        check_eq(logged_events(log), evs + evs2 + [(0x77, 1, 2, 3)],
                 'a call first delivers every ring, each in order')
        check(lines[-1].startswith('call ') and
              lines[-2].startswith('event cmd=0x77'),
              'the events arrive before the call')
        check(any('batch producer=1 vcpu=-1 count=1' in l for l in lines),
              'batch names its producer (slot)')
        # Full: the guest rings DOORBELL | FULL, counted
        post(q, base, stride, 0, [(EVENT_SEQ, 13 + i, 0, 0)
                                  for i in range(8)])
        q.write(BAR0 + REG_DOORBELL, 4, DOORBELL_FULL | 0)
        path = '/machine/peripheral/bd0'
        check_eq((q.qom_get(path, 'doorbells'), q.qom_get(path, 'ring-full'),
                  q.qom_get(path, 'events')), (2, 1, 22),
                 'doorbells, ring-full, events')
        # (A pause cannot be tested here: qtest's VM never runs; see
        # tests/guest.)
        # A HEAD too far ahead is a guest error, its ring skipped
        q.write(BAR2 + base + stride + BLK_HEAD, 8, 1 << 40)
        q.write(BAR0 + REG_DOORBELL, 4, 1)
        check_eq(counters(q)[1], 1, 'HEAD beyond the ring: guest error')
        check_eq(q.read(BAR2 + base + stride + BLK_TAIL, 8), 1 << 40,
                 'and TAIL set to it')
        q.write(BAR0 + REG_DOORBELL, 4, 3)
        check_eq(counters(q)[1], 2, 'doorbell of an unclaimed slot: error')
        # Exit
        post(q, base, stride, 0, [(0x99, 0, 0, 0)])
    lines = read_log(log)
    check(lines[-2].startswith('event cmd=0x99') and
          lines[-1].startswith('exit'), 'exit delivers the rings first')
    check_eq(sum(1 for l in lines if l.startswith('event ')), 23,
             'no event twice, none lost')


@tap.test('/backdoor/ring/drain-at-pause-and-reload')
def test_ring_pause():
    """The VM runs, then `stop`: the events posted before reach the batch
    callback at the pause (vcpu_index -1); a hot reload hands the old
    library its events before its exit."""
    log = os.path.join(workdir, 'ring-pause.log')
    with start(log=log, extra=',slots=2,ring-entries=8') as q:
        setup_bars(q)
        _, entries, base, stride = slot_regs(q)
        claim(q)
        evs = [(EVENT_SEQ, i, 0, 0x500 + i) for i in range(5)]
        post(q, base, stride, 0, evs)
        q.qmp_cmd('cont')
        check_eq(q.qmp_cmd('query-status')['status'], 'running',
                 'the VM runs')
        check_eq(logged_events(log), [], 'running: no event delivered yet')
        q.qmp_cmd('stop')
        check_eq(logged_events(log), evs, 'stop: the events, in order')
        check(any(l.startswith('batch producer=0 vcpu=-1 count=5')
                  for l in read_log(log)), 'one batch, drained by the host')
        evs2 = [(EVENT_SEQ, 5 + i, 0, 0) for i in range(3)]
        post(q, base, stride, 0, evs2)
        q.qmp_cmd('qom-set', path='/machine/peripheral/bd0',
                  property='callbacks', value=LIB)
        lines = read_log(log)
        exits = [i for i, l in enumerate(lines) if l.startswith('exit ')]
        events = [i for i, l in enumerate(lines) if l.startswith('event ')]
        check(len(exits) == 1 and len(events) == 8 and events[-1] < exits[0],
              'a reload delivers the events to the old library before its '
              'exit: %s' % lines[-6:])


@tap.test('/backdoor/compat/abi1-library')
def test_abi1_library():
    log = os.path.join(workdir, 'v1.log')
    with start(lib=os.environ['TEST_CALLBACKS_V1'], log=log,
               extra=',slots=2,ring-entries=8') as q:
        setup_bars(q)
        _, _, base, stride = slot_regs(q)
        check_eq(call(q, 2), 6, '1.0 call with a version-1 library')
        claim(q)
        check_eq(slot_call(q, base, stride, 0, 3), 9, 'slot call')
        post(q, base, stride, 0, [(0x51, 1, 2, 3), (0x52, 4, 5, 6)])
        q.write(BAR0 + REG_DOORBELL, 4, 0)
        check_eq(counters(q), (2, 0), 'calls, no guest error')
        check_eq(q.qom_get('/machine/peripheral/bd0', 'events'), 2,
                 'events')
    cmds = [l.split()[2] for l in read_log(log) if l.startswith('call ')]
    check_eq(cmds[-2:], ['cmd=0x51', 'cmd=0x52'],
             'a version-1 library gets events as calls, in order')
    check(read_log(log)[0].startswith('init version=2'),
          'host speaks version 2 to it')


@tap.test('/backdoor/compat/map-1.0')
def test_map_10():
    """slots=0: the device is register map 1.0 but for the minor."""
    with start(extra=',slots=0') as q:
        setup_bars(q)
        check_eq(q.read(BAR0 + REG_FEATURES, 4), 1, 'FEATURES: CALL only')
        for off in (REG_SLOT_COUNT, REG_SLOT_ALLOC, slot_call_reg(0)):
            check_eq(q.read(BAR0 + off, 4), 0xffffffff,
                     'offset 0x%x reserved' % off)
        check_eq(call(q, 5), 15, '1.0 call')
        check_eq(counters(q), (1, 3), 'reserved reads are guest errors')


for _name, _extra, _pattern in (
        ('slots-too-many', ',slots=257', r"slots=257 is more than 256"),
        ('ring-not-power-of-2', ',ring-entries=100',
         r"ring-entries=100 is not 0 or a power of two from 8 to 65536")):
    def _bad_slots(extra=_extra, pattern=_pattern):
        line = start_fails(device_args(extra=extra))
        check(re.search(pattern, line), 'message %r lacks %r' %
              (line, pattern))
    tap.test('/backdoor/config/' + _name)(_bad_slots)


class Model:
    """Reference model of the device for the fuzz test."""
    REGS = {REG_ID: (4,), REG_FEATURES: (4,), REG_DATA_SIZE: (4, 8),
            REG_CMD: (4, 8), REG_RESULT: (4, 8), REG_RESULT_HI: (4,),
            REG_CALL_OFFSET: (4, 8), REG_CALL: (4, 8),
            REG_SLOT_COUNT: (4,), REG_RING_ENTRIES: (4,),
            REG_SLOT_BASE: (4, 8), REG_SLOT_STRIDE: (4, 8),
            REG_SLOT_ALLOC: (4,), REG_SLOT_FREE: (4,), REG_DOORBELL: (4,),
            slot_call_reg(0): (4, 8), slot_call_reg(1): (4, 8),
            slot_call_reg(31): (4, 8), slot_call_reg(32): ()}
    WRITABLE = (REG_CMD, REG_CALL_OFFSET, REG_SLOT_FREE, REG_DOORBELL)

    def __init__(self, size):
        self.size = size
        self.data = bytearray(size)
        self.result = 0
        self.call_offset = size - 8
        self.calls = 0
        self.errors = 0
        self.events = 0
        self.slots, self.entries, self.base, self.stride = slot_layout(size)
        self.used = [False] * self.slots

    def blk(self, n):
        return self.base + n * self.stride

    def slot_regs(self, off):
        if 0x100 <= off < slot_call_reg(self.slots) and off % 8 == 0:
            return (4, 8)
        return self.REGS.get(off, ())

    def drain(self, n):
        head = self.ld(self.blk(n) + BLK_HEAD, 8)
        tail = self.ld(self.blk(n) + BLK_TAIL, 8)
        if (head - tail) & M64 > self.entries:
            self.errors += 1
        else:
            self.events += (head - tail) & M64
        self.st(self.blk(n) + BLK_TAIL, 8, head)

    def drain_all(self):
        for n in range(self.slots):
            if self.used[n]:
                self.drain(n)

    def ld(self, off, n):
        return int.from_bytes(self.data[off:off + n], 'little')

    def st(self, off, n, v):
        self.data[off:off + n] = (v & ((1 << (8 * n)) - 1)).to_bytes(
            n, 'little')

    def call(self, cmd):
        self.drain_all()
        self.calls += 1
        arg = self.ld(0, 8)
        self.st(8, 8, ~cmd)
        self.st(16, 8, self.calls)
        self.result = (cmd * 3 + arg) & M64
        return self.result

    def ctrl_read(self, off, size):
        mask = (1 << (8 * size)) - 1
        if off in (REG_CMD, REG_SLOT_FREE, REG_DOORBELL) or \
                size not in self.slot_regs(off):
            self.errors += 1
            return mask
        if off == REG_CALL:
            return self.call(self.ld(self.call_offset, 8)) & mask
        if off == REG_SLOT_ALLOC:
            if all(self.used):
                return 0xffffffff
            n = self.used.index(False)
            self.used[n] = True
            for f in (BLK_WORD, BLK_RESULT, BLK_HEAD, BLK_TAIL):
                self.st(self.blk(n) + f, 8, 0)
            return n
        if off >= 0x100:
            n = (off - 0x100) // 8
            if not self.used[n]:
                self.errors += 1
                return mask
            r = self.call(self.ld(self.blk(n), 8))
            self.st(self.blk(n) + BLK_RESULT, 8, r)
            return r & mask
        return {REG_ID: ID, REG_FEATURES: 1 | FEATURE_SLOTS | FEATURE_RING,
                REG_DATA_SIZE: self.size,
                REG_RESULT: self.result, REG_RESULT_HI: self.result >> 32,
                REG_CALL_OFFSET: self.call_offset,
                REG_SLOT_COUNT: self.slots, REG_RING_ENTRIES: self.entries,
                REG_SLOT_BASE: self.base,
                REG_SLOT_STRIDE: self.stride}[off] & mask

    def ctrl_write(self, off, size, val):
        if off not in self.WRITABLE or size not in self.REGS[off]:
            self.errors += 1
        elif off == REG_CMD:
            self.call(val)
        elif off in (REG_SLOT_FREE, REG_DOORBELL):
            n = val & ~DOORBELL_FULL if off == REG_DOORBELL else val
            if n >= self.slots or not self.used[n]:
                self.errors += 1
                return
            self.drain(n)
            if off == REG_SLOT_FREE:
                self.used[n] = False
        elif val % 8 or val > self.size - 8:
            self.errors += 1
        else:
            self.call_offset = val


def fuzz_settings():
    """BACKDOOR_FUZZ_ACCESSES (default 120000) and BACKDOOR_FUZZ_SEED
    (default: a new random seed); the seed is printed so that a run
    replays exactly with the same two values."""
    n = int(os.environ.get('BACKDOOR_FUZZ_ACCESSES') or 120000)
    seed = os.environ.get('BACKDOOR_FUZZ_SEED')
    seed = int(seed, 0) if seed else random.SystemRandom().getrandbits(32)
    return n, seed


@tap.test('/backdoor/fuzz/random-accesses')
def test_fuzz():
    n_total, seed = fuzz_settings()
    print('# fuzz: %d accesses, seed %d (replay: BACKDOOR_FUZZ_SEED=%d '
          'BACKDOOR_FUZZ_ACCESSES=%d)' % (n_total, seed, seed, n_total),
          flush=True)
    rng = random.Random(seed)
    size = 64 * 1024
    model = Model(size)
    with start(extra=',data-size=64K') as q:
        setup_bars(q)
        done = 0
        while done < n_total:
            cmds, expect = [], []
            for _ in range(min(2000, n_total - done)):
                width = rng.choice((1, 2, 4, 8))
                is_read = rng.random() < 0.5
                sfx = 'bwlq'[width.bit_length() - 1]
                if rng.random() < 0.5:
                    # Control BAR: registers often, anything sometimes.
                    if rng.random() < 0.7:
                        off = rng.choice(list(Model.REGS)) + \
                            rng.choice((0, 0, 0, 1, 4))
                    else:
                        off = rng.randrange(0, 0x1000 - width + 1)
                    if is_read:
                        cmds.append('read%s 0x%x' % (sfx, BAR0 + off))
                        expect.append(model.ctrl_read(off, width))
                    else:
                        val = rng.getrandbits(8 * width)
                        if off == REG_CALL_OFFSET and rng.random() < 0.5:
                            val = rng.randrange(0, size // 8) * 8
                        if off in (REG_SLOT_FREE, REG_DOORBELL) and \
                                rng.random() < 0.8:
                            val = rng.randrange(4) | \
                                (rng.choice((0, DOORBELL_FULL)) if
                                 off == REG_DOORBELL else 0)
                        cmds.append('write%s 0x%x 0x%x' % (sfx, BAR0 + off,
                                                          val))
                        expect.append(None)
                        model.ctrl_write(off, width, val)
                else:
                    # Data BAR: anywhere, with a bias to the words the
                    # callback and CALL use.
                    if rng.random() < 0.5:
                        n = rng.randrange(3)
                        off = rng.choice((0, 8, 16, size - 8,
                                          model.call_offset,
                                          model.blk(n) + BLK_WORD,
                                          model.blk(n) + BLK_HEAD,
                                          model.blk(n) + BLK_TAIL))
                    else:
                        off = rng.randrange(0, size - width + 1)
                    if is_read:
                        cmds.append('read%s 0x%x' % (sfx, BAR2 + off))
                        expect.append(model.ld(off, width))
                    else:
                        val = rng.getrandbits(8 * width)
                        if width == 8 and rng.random() < 0.7 and \
                                off >= model.base and \
                                (off - model.base) % model.stride == \
                                BLK_HEAD:
                            # A plausible HEAD: events for the next drain
                            val = (model.ld(off + 8, 8) +
                                   rng.randrange(model.entries + 2)) & M64
                        cmds.append('write%s 0x%x 0x%x' % (sfx, BAR2 + off,
                                                          val))
                        expect.append(None)
                        model.st(off, width, val)
            answers = q.qtest_batch(cmds)
            for cmd, want, got in zip(cmds, expect, answers):
                if want is not None:
                    check_eq(int(got, 16), want, 'seed %d, access %d %r' %
                             (seed, done, cmd))
                done += 1
        check(q.alive(), 'QEMU alive after %d accesses' % done)
        check_eq(counters(q), (model.calls, model.errors),
                 'calls, guest-errors after %d accesses' % done)
        check_eq(q.qom_get('/machine/peripheral/bd0', 'events'),
                 model.events, 'events delivered after %d accesses' % done)
        print('# %d accesses: %d calls, %d guest errors, %d events, all as '
              'modelled' % (done, model.calls, model.errors, model.events))
        # About 1 in 80 accesses is a call and nearly half are wrong
        check(model.calls > n_total // 200 and
              model.errors > n_total // 200,
              'the fuzz exercised calls and errors (%d, %d)' %
              (model.calls, model.errors))


if __name__ == '__main__':
    try:
        rc = tap.run()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(rc)
