#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests in a real Linux guest (TAP).

Boots Debian's own kernel (scripts/fetch-guest-kernel.sh) with an
initramfs made here from busybox-static and our static guest programs,
under the stock qemu-system-x86_64 through the launcher, with five backdoor
devices. GUEST_ARCH=aarch64 or ppc64le runs the same checks in one TCG boot
of Debian's arm64 kernel on qemu-system-aarch64 -M virt, or its ppc64el
kernel on qemu-system-ppc64 -M pseries (a little-endian guest on a target
that starts big-endian), with that architecture's busybox-static and the
guest programs cross-built (GUEST_SKIP says why they could not be).

  00:04.0  seed       examples/seed-host (prints on QEMU's stdout)
  00:05.0  test       tests/callbacks/test-callbacks.c, log A
  00:06.0  test2      the same library, log B
  00:07.0  tracer     examples/tracer
  00:08.0  ft         examples/file-transfer

The guest's /init (init.sh) runs the checks and prints one line each; this
script turns them into TAP lines, then checks what the host side saw.
Always under TCG; under KVM too when KVM can boot Linux here (a nested
kvm_pvm cannot: that variant is then a visible skip).
"""

import hashlib
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guestvm import Boot, fetch_kernel, kvm_unusable, make_initramfs  # noqa

STRESS_BASE = 0x100000000
THREAD_BASE = 0x200000000
CMD_VCPU = 0xf00d0001
GOLDEN = 0x9e3779b97f4a7c15
MASK = (1 << 64) - 1
DATA_SIZE = 1 << 20
THREADS, THREAD_CALLS = 4, 2000
TRACER_EVENTS, TRACER_THREADS = 50, 2

# Per guest architecture: the QEMU binary and machine, the PCI bus the
# devices go on, the console, the Debian architecture of kernel and busybox
# (None: the host's), and the byte order the callbacks are told at init (the
# target's default) and with each call (the calling CPU's). Guest checks
# expect some other PCI device at 00:1f.0 (q35 has its LPC bridge there).
ARCHES = {
    'x86_64': dict(qemu='qemu-system-x86_64', machine=['-M', 'q35'],
                   bus='pcie.0', console='ttyS0', debian=None,
                   init_be=0, call_be=0),
    'aarch64': dict(qemu='qemu-system-aarch64',
                    machine=['-M', 'virt', '-cpu', 'cortex-a57'],
                    bus='pcie.0', console='ttyAMA0', debian='arm64',
                    init_be=0, call_be=0,
                    other=['-device', 'pci-testdev,bus=pcie.0,addr=1f']),
    'ppc64le': dict(qemu='qemu-system-ppc64', machine=['-M', 'pseries'],
                    bus='pci.0', console='hvc0', debian='ppc64el',
                    init_be=1, call_be=0,
                    other=['-device', 'pci-testdev,bus=pci.0,addr=1f']),
}

# Guest checks in the order init.sh runs them; "quick" leaves out threads.
GUEST_CHECKS = [
    'init',
    'seed/example',
    'lib/call-before-init', 'lib/version', 'lib/open-auto',
    'lib/error/bad-spec', 'lib/error/no-such-device',
    'lib/error/not-backdoor', 'lib/error/not-root',
    'lib/error/user-no-helper', 'lib/error/user-missing',
    'lib/init-fallback', 'lib/init-null-fallback',
    'lib/seed-inline', 'lib/seed-out-of-line', 'lib/seed-thread',
    'lib/seed-fork', 'lib/seed-fork-reinit', 'lib/seed-fork-reinit-parent',
    'lib/seed-reinit',
    'cli/round-trip', 'cli/errors', 'cli/32-bit',
    'multi/open', 'multi/results', 'multi/separate-data',
    'threads/locked-exchanges', 'threads/concurrent-calls',
    'threads/vcpu-index',
    'stress/results',
    'events/own-slots', 'events/child-process', 'events/calls-between',
    'events/all-delivered', 'events/order', 'events/full-ring-flush',
    'events/map-1.0-device',
    'tracer/example',
    'file-transfer/example',
    'done',
]

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
        if detail:
            for d in str(detail).splitlines():
                print('#   ' + d)


def note(msg):
    for line in msg.splitlines():
        print('# ' + line, flush=True)


# ---- the initramfs: newc cpio written here, no root needed --------------

# A guest that prints no result for this long is hung (a machine check
# loop, a lost call): the boot stops there instead of at the whole run's
# deadline. A whole TCG ppc64 run takes under 30 s here.
CHECK_TIMEOUT = 180

# ---- one boot --------------------------------------------------------------

def qemu_prop(value):
    return value.replace(',', ',,')


def qemu_argv(env, arch, accel, kernel, initrd, work, mode):
    logs = {name: os.path.join(work, name) for name in
            ('test-a.log', 'test-b.log', 'trace.txt')}
    dev = 'backdoor,bus=' + arch['bus'] + ',addr=%s,id=%s,callbacks=%s'
    return [
        env['BACKDOOR_LAUNCHER'], env.get('QEMU_SYSTEM') or arch['qemu'],
        *arch['machine'], '-accel', accel, '-smp', '2', '-m', '512M',
        '-nodefaults', '-display', 'none', '-serial', 'stdio',
        '-monitor', 'none', '-no-reboot',
        '-kernel', kernel, '-initrd', initrd, *arch.get('other', []),
        '-append', 'console=' + arch['console'] +
        ' quiet panic=-1 bdtest_mode=' + mode +
        # x86: no_timer_check, as guestvm.X86_CMDLINE says why
        (' no_timer_check' if arch['console'] == 'ttyS0' else '') +
        (' earlyprintk=ttyS0' if accel == 'kvm' else ''),
        '-device', dev % ('4', 'seed', qemu_prop(env['SEED_CALLBACKS'])),
        '-device', (dev % ('5', 'test', qemu_prop(env['TEST_CALLBACKS'])) +
                    ',callbacks-args=log=' + qemu_prop(logs['test-a.log'])),
        '-device', (dev % ('6', 'test2', qemu_prop(env['TEST_CALLBACKS'])) +
                    ',callbacks-args=log=' + qemu_prop(logs['test-b.log'])),
        '-device', (dev % ('7', 'tracer', qemu_prop(env['TRACER_CALLBACKS'])) +
                    ',callbacks-args=file=' + qemu_prop(logs['trace.txt'])),
        '-device', dev % ('9', 'events', qemu_prop(env['TEST_CALLBACKS'])),
        '-device', (dev % ('a', 'old', qemu_prop(env['TEST_CALLBACKS'])) +
                    ',slots=0'),
        '-device', (dev % ('8', 'ft', qemu_prop(env['FT_CALLBACKS'])) +
                    ',callbacks-args=dir=' +
                    qemu_prop(os.path.join(work, 'ft'))),
    ], logs


def prepare_work(work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, 'ft'))
    with open(os.path.join(work, 'ft', 'host.bin'), 'wb') as f:
        f.write(os.urandom(300000))


# ---- what the host saw -----------------------------------------------------

CALL_RE = re.compile(r'call n=(\d+) cmd=0x([0-9a-f]+) vcpu=(-?\d+) '
                     r'arg=0x([0-9a-f]+) mode=(\d+) be=(\d+)$')


def read_calls(path):
    """(n, cmd, vcpu, arg, be) per call, and the other lines."""
    calls, other = [], []
    with open(path) as f:
        for line in f:
            m = CALL_RE.match(line.strip())
            if m:
                calls.append((int(m[1]), int(m[2], 16), int(m[3]),
                              int(m[4], 16), int(m[6])))
            else:
                other.append(line.strip())
    return calls, other


def host_checks(prefix, arch, boot, logs, work, info, mode):
    out = boot.stdout
    tap('+ 1048576' in out, prefix + '/host/seed/init-output',
        'QEMU stdout has no "+ 1048576"')
    tap('-> babe :: cafe' in out, prefix + '/host/seed/call-output',
        'QEMU stdout has no "-> babe :: cafe"')

    calls, other = read_calls(logs['test-a.log'])
    tap(other and other[0].startswith('init version=2 mode=1 size=%d be=%d '
                                      'id=test ' % (DATA_SIZE,
                                                    arch['init_be'])),
        prefix + '/host/test-log/init', other[:1])
    tap([c[0] for c in calls] == list(range(1, len(calls) + 1)),
        prefix + '/host/test-log/numbered', 'call numbers not 1..n')
    tap(other and other[-1] == 'exit calls=%d' % len(calls),
        prefix + '/host/test-log/exit', '%s, %d calls logged' %
        (other[-1:], len(calls)))
    tap(any(c[1] == 0x1234 and c[3] == 0 for c in calls),
        prefix + '/host/test-log/cli-call', 'no call cmd=0x1234 arg=0')
    wrong_be = [c for c in calls if c[4] != arch['call_be']]
    tap(calls and not wrong_be, prefix + '/host/test-log/byte-order',
        '%d of %d calls not told be=%d, first: %s' %
        (len(wrong_be), len(calls), arch['call_be'], wrong_be[:1]))
    stress = [c for c in calls if STRESS_BASE <= c[1] < THREAD_BASE]
    n = int(info.get('stress-calls', '0'))
    want = [(STRESS_BASE + i, (i * GOLDEN) & MASK) for i in range(n)]
    got = [(c[1], c[3]) for c in stress]
    tap(n >= 100000 and got == want, prefix + '/host/test-log/stress',
        'host saw %d stress calls, guest made %d%s' %
        (len(got), n, '' if len(got) != len(want) else
         ', first difference at %d' % next(
             (i for i, (a, b) in enumerate(zip(got, want)) if a != b), -1)))
    if mode == 'full':
        threads = [c for c in calls if c[1] >= THREAD_BASE]
        vcpus = sorted({c[2] for c in calls if c[1] == CMD_VCPU})
        tap(len(threads) == 2 * THREADS * THREAD_CALLS,
            prefix + '/host/test-log/thread-calls',
            '%d thread calls' % len(threads))
        tap(vcpus == [0, 1], prefix + '/host/test-log/thread-vcpus',
            'vCPUs of the pinned threads: %s (guest %s)' %
            (vcpus, info.get('threads-cpus')))

    calls_a = {c[1] for c in calls}
    calls_b, _ = read_calls(logs['test-b.log'])
    tap(0x11 in calls_a and 0x22 not in calls_a and
        [c[1] for c in calls_b] == [0x22], prefix + '/host/multi/routing',
        'device test saw 0x11: %s, 0x22: %s; test2 saw %s' %
        (0x11 in calls_a, 0x22 in calls_a, [hex(c[1]) for c in calls_b]))

    events = []
    with open(logs['trace.txt']) as f:
        for line in f:
            m = re.match(r'(\d+)\.(\d{9}) vcpu=(\d+) event=(\d+) seq=(\d+) '
                         r'(.*)$', line.rstrip('\n'))
            if m:
                events.append((int(m[1]) * 10**9 + int(m[2]), int(m[3]),
                               int(m[4]), int(m[5]), m[6]))
    total = TRACER_EVENTS * TRACER_THREADS + 2
    tap(len(events) == total and
        [e[3] for e in events] == list(range(1, total + 1)) and
        all(a[0] <= b[0] for a, b in zip(events, events[1:])) and
        events[0][4].startswith('start') and events[-1][4] == 'end',
        prefix + '/host/tracer/events', '%d events of %d' %
        (len(events), total))
    tap({e[1] for e in events if e[2] >= 100} == {0, 1},
        prefix + '/host/tracer/vcpus', 'vCPUs: %s' %
        sorted({e[1] for e in events}))

    with open(os.path.join(work, 'ft', 'host.bin'), 'rb') as f:
        sent = f.read()
    back_path = os.path.join(work, 'ft', 'back.bin')
    back = open(back_path, 'rb').read() if os.path.exists(back_path) else b''
    tap(info.get('ft-md5') == hashlib.md5(sent).hexdigest(),
        prefix + '/host/file-transfer/get', 'guest md5 %s' %
        info.get('ft-md5'))
    tap(back == sent, prefix + '/host/file-transfer/put',
        'back.bin has %d bytes, sent %d' % (len(back), len(sent)))


def guest_checks(prefix, boot, mode):
    results, info = {}, {}
    for line in boot.guest_lines():
        if line.startswith('info '):
            key, _, value = line[5:].partition(' ')
            info[key] = value
        elif line == 'init' or line == 'done':
            results[line] = (True, None, False)
        else:
            m = re.match(r'(not ok|ok|skip) /guest/(\S+?)(?:: (.*))?$', line)
            if m:
                results[m[2]] = (m[1] != 'not ok', m[3], m[1] == 'skip')
    why_missing = ((boot.stalled or 'QEMU timed out') if boot.timed_out else
                   'QEMU exited with %d' % boot.returncode)
    for name in GUEST_CHECKS:
        if mode != 'full' and name.startswith('threads/'):
            continue
        ok, detail, skip = results.pop(name, (
            False, 'no result from the guest (%s)' % why_missing, False))
        tap(ok, prefix + '/guest/' + name, detail, skip and detail)
    for name, (ok, detail, skip) in results.items():
        tap(ok, prefix + '/guest/' + name, detail, skip and detail)
    return info


def run_boot(prefix, env, arch, accel, kernel, initrd, work, mode, deadline,
             give_up=None):
    prepare_work(work)
    argv, logs = qemu_argv(env, arch, accel, kernel, initrd, work, mode)
    boot = Boot(argv, os.path.join(work, 'console.log'), deadline, give_up,
                float(env.get('GUEST_CHECK_TIMEOUT', CHECK_TIMEOUT)))
    if boot.gave_up:
        return boot
    note('%s boot: %.1f s, QEMU exit %d; console in %s' %
         (accel, boot.seconds, boot.returncode,
          os.path.join(work, 'console.log')))
    info = guest_checks(prefix, boot, mode)
    tap(not boot.timed_out and boot.returncode == 0,
        prefix + '/host/qemu/poweroff',
        (boot.stalled or 'timed out') if boot.timed_out else
        'exit %d: %s' % (boot.returncode, '\n'.join(boot.stderr[-10:])))
    host_checks(prefix, arch, boot, logs, work, info, mode)
    return boot


def main():
    if sys.argv[1:2] == ['--initramfs']:
        # For scripts/demo.sh: --initramfs OUT INIT NAME=PROGRAM...
        out, init, *progs = sys.argv[2:]
        make_initramfs(out, init, dict(p.split('=', 1) for p in progs),
                       os.environ.get('BUSYBOX', '/bin/busybox'))
        return 0
    env = os.environ
    arch_name = env.get('GUEST_ARCH', 'x86_64')
    arch = ARCHES[arch_name]
    prefix = '' if arch_name == 'x86_64' else '/' + arch_name
    qemu = env.get('QEMU_SYSTEM') or arch['qemu']
    skip = env.get('GUEST_SKIP') or (
        not shutil.which(qemu) and 'no %s (Debian: %s)' % (qemu, {
            'qemu-system-aarch64': 'qemu-system-arm',
            'qemu-system-ppc64': 'qemu-system-ppc'}.get(qemu, qemu)))
    if skip:
        tap(True, prefix + '/tcg', skip=skip)
        print('1..%d' % n_tests)
        return 0
    base = env.get('GUEST_TEST_DIR', '/tmp/qemu-backdoor-guest-test')
    os.makedirs(base, exist_ok=True)
    programs = dict(p.split('=', 1) for p in
                    env['GUEST_PROGRAMS'].split(os.pathsep))

    fetch_args = ['--arch', arch['debian']] if arch['debian'] else []
    kernel, err = fetch_kernel(env['FETCH_KERNEL'], *fetch_args)
    tap(bool(kernel), prefix + '/host/kernel', err)
    if not kernel:
        print('1..%d' % n_tests)
        return 1
    note('kernel: ' + kernel)
    busybox = env.get('BUSYBOX', '/bin/busybox')
    if arch['debian']:
        busybox, err = fetch_kernel(env['FETCH_KERNEL'], *fetch_args,
                                    '--busybox')
        tap(bool(busybox), prefix + '/host/busybox', err)
        if not busybox:
            print('1..%d' % n_tests)
            return 1

    initrd = os.path.join(base, 'initramfs.cpio')
    make_initramfs(initrd, env['GUEST_INIT'], programs, busybox)

    run_boot(prefix + '/tcg', env, arch, 'tcg', kernel, initrd,
             os.path.join(base, 'tcg'), 'full',
             float(env.get('GUEST_TEST_TIMEOUT', '600')))

    if arch['debian']:
        tap(True, prefix + '/kvm', skip='KVM runs only guests of the '
            'host architecture (x86_64)')
    elif not os.access('/dev/kvm', os.R_OK | os.W_OK):
        tap(True, '/kvm', skip='no usable /dev/kvm')
    else:
        boot = run_boot('/kvm', env, arch, 'kvm', kernel, initrd,
                        os.path.join(base, 'kvm'), 'quick', 300,
                        kvm_unusable)
        if boot.gave_up:
            tap(True, '/kvm', skip=boot.gave_up)

    print('1..%d' % n_tests)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
