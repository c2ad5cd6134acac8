#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Differential signal test: signals-guest (built at -O0 and -O2 for each
guest architecture) runs every scenario once under the stock qemu-<arch>
without calls and once through the launcher with the test callbacks and
calls. The signal reports on stdout must be the same byte for byte, and
every call the guest made must have reached the callbacks exactly once.
TAP on stdout, one check per (arch, optimization, scenario).

signals-test.py [dynamic|static|d13]: the QEMU, as user-test.py takes it:
Debian 12's dynamic qemu-<arch> (the in-process helper; the default), or
a static one, Debian 12's or Debian 13's, run by the supervisor, which
traces it: there the test holds the tracing to being invisible.

SIGNALS_GUESTS is ARCH-OPT=PATH:...; a missing build is skipped visibly.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from staticqemu import find_qemu

LAUNCHER = os.environ['BACKDOOR_LAUNCHER']
CALLBACKS = os.environ['TEST_CALLBACKS']
ARCHES = ['x86_64', 'aarch64', 's390x']
OPTS = ['O0', 'O2']
TIMEOUT = 120

n = 0
failed = 0


def tap(ok, name, diag=''):
    global n, failed
    n += 1
    failed += not ok
    print(f'{"ok" if ok else "not ok"} {n} - {name}')
    if not ok:
        for line in diag.strip().splitlines()[-30:]:
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


def run(cmd, env):
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 'timeout', e.stdout or '',
                                           e.stderr or '')


def describe(what, p):
    return (f'{what}: exit {p.returncode}\nstdout:\n{p.stdout}'
            f'stderr:\n{p.stderr}')


def expected_calls(scenario, report):
    """Per iteration one fast and one trapped call, per signal one more;
    *-library-calls: one fast call per iteration."""
    total = 0
    for it, sigs in re.findall(r'^[^:]+: (\d+) iterations, (\d+) signals$',
                               report, re.M):
        if scenario.endswith('-library-calls'):
            total += int(it)
        else:
            total += 2 * int(it) + int(sigs)
    return total


def sane(report):
    """The reference itself: each loop ran 100 times, one signal each."""
    loops = re.findall(r'^[^:]+: (\d+) iterations, (\d+) signals$', report,
                       re.M)
    return bool(loops) and all(a == '100' and b == '100' for a, b in loops)


def check(arch, opt, guest, scenario, tmp, qemu, label):
    name = f'/user/signals/{label}/{opt}/{scenario}'
    log = os.path.join(tmp, 'callbacks.log')
    if os.path.exists(log):
        os.unlink(log)

    ref = run([qemu, guest, 'nocall', scenario], clean_env())
    bd = run([LAUNCHER, qemu, guest, 'call', scenario],
             clean_env(QEMU_BACKDOOR_LIB=CALLBACKS,
                       QEMU_BACKDOOR_ARGS=f'log={log}'))
    try:
        with open(log) as f:
            logged = f.read().splitlines()
    except FileNotFoundError:
        logged = []
    arrived = sum(1 for line in logged if line.startswith('call '))
    expect = expected_calls(scenario, ref.stdout)
    m = re.search(r'^calls made=(\d+) right=(\d+)$', bd.stderr, re.M)
    made, right = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)

    problems = []
    if ref.returncode != 0 or not sane(ref.stdout):
        problems.append('the reference run (no backdoor) is not sane')
    if bd.returncode != 0:
        problems.append('the run with the backdoor failed')
    if ref.stdout != bd.stdout:
        problems.append('the signal reports differ')
    if not (made == expect and right == made and arrived == made and
            logged and logged[-1] == f'exit calls={made}'):
        problems.append(f'calls: {expect} expected, guest made {made}, '
                        f'{right} answered right, {arrived} reached the '
                        'callbacks')
    tap(not problems, name, '\n'.join(problems) + '\n' +
        describe('without the backdoor', ref) + '\n' +
        describe('with the backdoor', bd))


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else 'dynamic'
    guests = dict(item.split('=', 1) for item in
                  os.environ.get('SIGNALS_GUESTS', '').split(':') if item)
    tmp = tempfile.mkdtemp(prefix='signals-test-')
    try:
        for arch in ARCHES:
            label = arch if kind == 'dynamic' else f'{arch}-{kind}'
            qemu, why = find_qemu(arch, kind)
            if not qemu:
                skip(f'/user/signals/{label}', why)
                continue
            for opt in OPTS:
                guest = guests.get(f'{arch}-{opt}')
                if not guest:
                    skip(f'/user/signals/{label}/{opt}', 'no cross compiler '
                         f'for {arch} (gcc-{arch.replace("_", "-")}'
                         '-linux-gnu)')
                    continue
                scenarios = run([qemu, guest, 'list'],
                                clean_env()).stdout.split()
                tap(bool(scenarios), f'/user/signals/{label}/{opt}/list')
                for scenario in scenarios:
                    check(arch, opt, guest, scenario, tmp, qemu, label)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'1..{n}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
