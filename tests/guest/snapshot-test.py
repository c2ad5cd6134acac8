#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Snapshots, migration and hot reload in a real Linux guest (TAP).

Boots Debian's kernel under TCG with one backdoor device whose library is
tests/callbacks/state-callbacks.c. The guest's /init (snapshot-init.sh)
runs tests/guest/caller.c, which calls without end and checks that every
result follows the one before (tag << 32 | n: n counts the answering
library's calls). While it calls, the host over QMP/HMP:

  swaps the library several times (qom-set callbacks-args, callbacks):
    the guest sees each new tag start at 1, and the old library's exit
    counted exactly the calls the guest saw from it;
  fails a swap: the old library goes on answering;
  savevm, lets the guest run on, loadvm: guest, data channel and library
    state continue from the snapshot;
  migrates to a file and starts a new QEMU from it (-incoming);
  restores one snapshot again and again (the fuzzing pattern).
"""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guestvm import (QmpVm as Vm, QmpVmError as TestError,  # noqa
                     X86_CMDLINE, fetch_kernel, make_initramfs)

EVERY = 4096          # caller's progress line, see snapshot-init.sh
RESTORES = int(os.environ.get('BACKDOOR_GUEST_RESTORES', '1000'))

n_tests = 0
failures = 0


def tap(ok, name, detail=None, skip=None):
    global n_tests, failures
    n_tests += 1
    line = '%s %d - %s' % ('ok' if ok or skip else 'not ok', n_tests, name)
    if skip:
        line += ' # SKIP ' + skip
    print(line, flush=True)
    if not ok and not skip:
        failures += 1
        for d in str(detail).splitlines():
            print('#   ' + d)
    return ok


def note(msg):
    print('# ' + msg, flush=True)


def ceil_every(n):
    return (n + EVERY - 1) // EVERY * EVERY


def log_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def main():
    env = os.environ
    base = env.get('GUEST_TEST_DIR', '/tmp/qemu-backdoor-snapshot-test')
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    kernel, err = fetch_kernel(env['FETCH_KERNEL'])
    if not tap(bool(kernel), '/host/kernel', err):
        print('1..%d' % n_tests)
        return 1
    programs = dict(p.split('=', 1) for p in
                    env['GUEST_PROGRAMS'].split(os.pathsep))
    initrd = os.path.join(base, 'initramfs.cpio')
    make_initramfs(initrd, env['GUEST_INIT'], {'caller': programs['caller']},
                   env.get('BUSYBOX', '/bin/busybox'))
    img = os.path.join(base, 'disk.qcow2')
    # A tool, not under test: without a sanitizer's preload (qemu-img
    # hangs with libasan preloaded)
    env_img = {k: v for k, v in env.items() if k != 'LD_PRELOAD'}
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '64M'],
                   check=True, env=env_img)
    lib = env['STATE_CALLBACKS']
    log = os.path.join(base, 'library.log')
    argv = [env['BACKDOOR_LAUNCHER'], env['QEMU_SYSTEM'], '-M', 'q35',
            '-accel', 'tcg', '-smp', '1', '-m', '256M', '-nodefaults',
            '-display', 'none', '-serial', 'stdio', '-monitor', 'none',
            '-no-reboot', '-kernel', kernel, '-initrd', initrd,
            '-append', X86_CMDLINE,
            '-drive', 'if=none,id=disk0,format=qcow2,file=' + img,
            '-device', 'backdoor,bus=pcie.0,addr=4,id=bd0,callbacks=' + lib +
            ',callbacks-args=tag=1:log=' + log]
    vm = Vm(argv, base, 'first')
    vm2 = None
    try:
        i, _ = vm.wait(r'caller start 1:1$')
        tap(True, '/guest/calls')
        i, tag, n = vm.at(i)
        note('guest at %d:%d' % (tag, n))

        # ---- hot reload under a guest that calls without end ----
        switches = []
        for new in (2, 3, 4, 5):
            vm.qmp('qom-set', path='/machine/peripheral/bd0',
                   property='callbacks-args', value='tag=%d:log=%s' %
                   (new, log))
            if new == 4:
                out = vm.hmp('qom-set /machine/peripheral/bd0 callbacks ' +
                             lib)
                tap(out == '', '/reload/hmp', out)
            else:
                vm.qmp('qom-set', path='/machine/peripheral/bd0',
                       property='callbacks', value=lib)
            i, m = vm.wait(r'caller switch (\d+):(\d+) (\d+):(\d+)$', i)
            switches.append(tuple(int(x) for x in m.groups()))
            i, tag, n = vm.at(i)
        tap([(s[0], s[2], s[3]) for s in switches] ==
            [(1, 2, 1), (2, 3, 1), (3, 4, 1), (4, 5, 1)], '/reload/swaps',
            switches)
        exits = [tuple(int(x) for x in m.groups()) for m in
                 (re.match(r'exit tag=(\d+) calls=(\d+)$', line)
                  for line in log_lines(log)) if m]
        tap(exits == [(s[0], s[1]) for s in switches],
            '/reload/no-call-lost-or-repeated',
            'library exits %s, guest saw %s' % (exits, switches))
        try:
            vm.qmp('qom-set', path='/machine/peripheral/bd0',
                   property='callbacks', value=env['BAD_VERSION_CALLBACKS'])
            tap(False, '/reload/failed-swap', 'qom-set succeeded')
        except TestError as e:
            j, tag2, n2 = vm.at(i + 1)
            tap('need ABI version' in str(e) and tag2 == 5 and n2 > n,
                '/reload/failed-swap', '%s; guest at %d:%d' % (e, tag2, n2))
            i = j

        # ---- savevm, run on, loadvm ----
        out = vm.hmp('savevm s1')
        tap(out == '', '/snapshot/savevm', out)
        saved = [int(m[1]) for m in (re.match(r'save tag=5 calls=(\d+)$', x)
                                     for x in log_lines(log)) if m]
        i, tag, n = vm.at(len(vm.lines))
        i, tag, n = vm.at(i + 1)
        before = len(vm.lines)
        out = vm.hmp('loadvm s1')
        tap(out == '', '/snapshot/loadvm', out)
        loaded = [int(m[1]) for m in (re.match(r'load tag=5 calls=(\d+)$', x)
                                      for x in log_lines(log)) if m]
        # The guest printed ceil(s + 1) before the loadvm (it ran on two
        # progress lines); restored to call s, it prints it again
        s = saved[-1] if saved else -1
        try:
            vm.wait(r'caller at 5:%d$' % ceil_every(s + 1), before, 120)
            again = True
        except TestError:
            again = False
        tap(saved and loaded == saved and again,
            '/snapshot/continues-exactly',
            'saved %s, loaded %s, guest printed 5:%d again: %s' %
            (saved, loaded, ceil_every(s + 1), again))

        # ---- migrate to a file, a new QEMU from it ----
        mig = os.path.join(base, 'migration.bin')
        vm.qmp('migrate', uri='exec:cat > ' + mig)
        while True:
            st = vm.qmp('query-migrate')
            if st.get('status') in ('completed', 'failed', 'cancelled'):
                break
            time.sleep(0.1)
        tap(st['status'] == 'completed', '/migration/to-file',
            st.get('error-desc'))
        saved = [int(m[1]) for m in (re.match(r'save tag=5 calls=(\d+)$', x)
                                     for x in log_lines(log)) if m]
        vm.quit()
        # The destination runs the library and args now in use
        argv2 = [a.replace('tag=1:', 'tag=5:') for a in argv]
        vm2 = Vm(argv2 + ['-incoming', 'exec:cat ' + mig], base, 'incoming')
        i, tag, n = vm2.at(0)
        s = saved[-1]
        tap(tag == 5 and n == ceil_every(s + 1),
            '/migration/incoming-continues',
            'saved calls=%d, guest at %d:%d in the new QEMU' % (s, tag, n))

        # ---- the fuzzing pattern: one snapshot restored again and again ----
        out = vm2.hmp('savevm fuzz')
        bad = []
        t0 = time.monotonic()
        for k in range(RESTORES):
            out = vm2.hmp('loadvm fuzz')
            if out:
                bad.append(out)
        secs = time.monotonic() - t0
        i, tag, n = vm2.at(len(vm2.lines))
        tap(not bad and tag == 5, '/snapshot/restore-loop',
            '%d restores failed: %s; guest at %d:%d' %
            (len(bad), bad[:1], tag, n))
        note('%d restores of a 256 MiB guest: %.1f ms each' %
             (RESTORES, 1000 * secs / max(RESTORES, 1)))
        errs = vm.errors() + vm2.errors()
        tap(not errs, '/guest/every-result-followed', errs[:5])
    except TestError as e:
        tap(False, '/guest/run', e)
    finally:
        vm.quit()
        if vm2:
            vm2.quit()
    print('1..%d' % n_tests)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
