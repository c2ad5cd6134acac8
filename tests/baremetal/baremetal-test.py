#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The bare-metal guest (tests/baremetal) under TCG and, where /dev/kvm
opens, under KVM: it finds the device through PCI configuration space,
maps its BARs, makes 1000 checked calls, the seed's CMD/RESULT call and a
vcpu_index call; the host side checks what the callback library saw. Then
a short run of the benchmark mode, checked for its figures (not timed).
TAP on stdout. KVM is skipped, visibly, only when /dev/kvm cannot be
opened: a KVM that opens must pass."""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baremetal_vm  # noqa: E402

E = os.environ
IMAGE = E['BAREMETAL_IMAGE']
CALLS = 1000

n = 0
failed = 0


def tap(ok, name, diag=''):
    global n, failed
    n += 1
    failed += not ok
    print('%s %d - %s' % ('ok' if ok else 'not ok', n, name))
    if not ok:
        for line in diag.strip().splitlines()[-25:]:
            print('# ' + line)
    sys.stdout.flush()


def skip(name, why):
    global n
    n += 1
    print('ok %d - %s # SKIP %s' % (n, name, why))


def run(accel, callbacks, append, args=None):
    return baremetal_vm.run(E['BACKDOOR_LAUNCHER'], E['QEMU_SYSTEM'], accel,
                            IMAGE, callbacks, append, args)


def calls_test(accel):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, 'calls.log')
        rc, out, err = run(accel, E['TEST_CALLBACKS'], 'test %d' % CALLS,
                           'log=' + log)
        seen = open(log).read().splitlines() if os.path.exists(log) else []
    diag = '\n'.join(out) + '\n' + err
    name = '/%s/' % accel
    tap(rc == baremetal_vm.EXIT_OK and '@@ exit 0' in out,
        name + 'guest passes its checks (exit %s)' % rc, diag)
    tap(any(re.match(r'bm: backdoor at 00:[0-9a-f]+\.0, control [0-9a-f]+'
                     r', data [0-9a-f]+$', line) for line in out),
        name + 'device found through PCI config space, BARs mapped', diag)
    tap(any(line.startswith('bm: id 4244') for line in out),
        name + 'ID register reads 0x4244MMmm', diag)
    tap('bm: calls %d failures 0' % (CALLS + 2) in out,
        name + '%d calls, every result right' % (CALLS + 2), diag)
    calls = [line for line in seen if line.startswith('call ')]
    tap(len(calls) == CALLS + 2 and
        all(' vcpu=0 ' in c and ' mode=1 ' in c for c in calls),
        name + 'the callbacks saw each call once, from vCPU 0, system mode',
        '%d call lines\n%s' % (len(calls), '\n'.join(seen[:3] + seen[-3:])))
    tap(seen[:1] and seen[0].startswith('init ') and
        seen[-1:] == ['exit calls=%d' % (CALLS + 2)],
        name + 'init before the calls, exit after them',
        '\n'.join(seen[:2] + seen[-2:]))


def bench_test(accel):
    rc, out, err = run(accel, E['BENCH_CALLBACKS'], 'bench 200 2')
    samples = {}
    for line in out:
        f = line.split()
        if f[:1] == ['SAMPLE'] and len(f) == 3:
            samples.setdefault(f[1], []).append(float(f[2]))
    want = {'edu-read', 'vmport-getversion', 'backdoor-call-raw',
            'plain-store', 'backdoor-id-read', 'backdoor-slot-call-raw',
            'backdoor-call-raw-all-slots', 'backdoor-doorbell',
            'backdoor-post-raw'}
    tap(rc == baremetal_vm.EXIT_OK and set(samples) == want and
        all(len(v) == 2 and min(v) > 0 for k, v in samples.items()
            if k != 'plain-store'),
        '/%s/benchmark mode: a figure for each operation, timed calls '
        'right' % accel, '\n'.join(out) + '\n' + err)


def main():
    for accel in ('tcg', 'kvm'):
        if accel == 'kvm' and not baremetal_vm.kvm_usable():
            for what in ('calls', 'benchmark'):
                skip('/kvm/' + what, 'no usable /dev/kvm')
            continue
        calls_test(accel)
        bench_test(accel)
    print('1..%d' % n)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
