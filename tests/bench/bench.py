#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The benchmark command (ninja -C build bench).

Runs every call path against its baselines, each in the same guest or
process in this one run, prints a table, writes it to OUT/results.md and
draws OUT/latency.png with gnuplot. Every figure is a median over REPS
repetitions with min and max; ratios divide medians taken in one guest.
Settings come from the environment meson sets (tests/meson.build) and
BENCH_N, BENCH_REPS, BENCH_USER_ARCHES, BENCH_PARTS (docs/benchmark.md).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

E = os.environ
OUT = E['BENCH_OUT']
LAUNCHER = E['BACKDOOR_LAUNCHER']
LIB = E['BENCH_CALLBACKS']
REPS = int(E.get('BENCH_REPS', '5'))
N = int(E.get('BENCH_N', '20000'))
RESTORES = int(E.get('BENCH_RESTORES', '200'))    # loadvm per repetition
USER_ARCHES = [a for a in E.get('BENCH_USER_ARCHES', 'x86_64 aarch64').split()
               if a]
# Which parts run (all by default): user mode with the helper, with the
# supervisor, the Linux guest, the bare-metal guest (each under TCG and
# KVM) and the snapshot restores.
PARTS = ('user', 'supervisor', 'system-tcg', 'system-kvm', 'baremetal-tcg',
         'baremetal-kvm', 'snapshot')
ONLY = E.get('BENCH_PARTS', '').split() or list(PARTS)
for _p in ONLY:
    if _p not in PARTS:
        sys.exit('bench: BENCH_PARTS: unknown part %r (parts: %s)' %
                 (_p, ' '.join(PARTS)))

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'guest'))
import guestvm  # noqa: E402  (tests/guest: boots the real guest)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'baremetal'))
import baremetal_vm  # noqa: E402  (tests/baremetal: the bare-metal guest)

# System-mode rows name the QEMU version, so that rows of another QEMU
# (BENCH_MERGE: results.md files of other runs, e.g. Debian 13's from
# scripts/debian13-root.sh --bench) can stand beside them.
QEMU_VERSION = E.get('BENCH_QEMU_VERSION', '')
QEMU_LABEL = ', QEMU ' + QEMU_VERSION if QEMU_VERSION else ''
SYSTEM_GROUP = re.compile(r'(VM|bare-metal) (\w+), QEMU ([\d.]+)')
MERGE = E.get('BENCH_MERGE', '').split()


def run(cmd, env=None, timeout=600):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=dict(E, **(env or {})))
    if p.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(cmd),
                                                  p.returncode,
                                                  p.stderr.strip()[-2000:]))
    return p.stdout


def parse(out):
    """SAMPLE lines -> {name: [ns per repetition]}, THREADS lines -> list."""
    samples, threads = {}, []
    for line in out.splitlines():
        f = line.split()
        if f[:1] == ['SAMPLE']:
            samples.setdefault(f[1], []).append(float(f[2]))
        elif f[:1] == ['THREADS']:
            threads.append((int(f[1]), float(f[2]), int(f[3]), int(f[4])))
        elif f[:1] == ['EVENTS']:
            samples.setdefault('EVENTS', []).append(
                (int(f[1]), float(f[2]), int(f[3]), int(f[4]), int(f[5])))
    return samples, threads


def stats(values):
    v = sorted(values)
    return (v[len(v) // 2], v[0], v[-1])


class Table:
    def __init__(self):
        self.rows = []        # (group, path, (med, min, max), base, ratio)
        self.targets = []     # (what, ratio, op, limit, met)
        self.threads = []     # (where, threads, calls/s, lost, wrong)
        self.events = []      # (where, producers, events/s, lost,
        #                        reordered, full-ring flushes)
        self.skipped = []     # (what, why)
        self.notes = []

    def add(self, group, samples, name, baseline=None):
        """A row: median, min, max of @name's samples, and the median of
        its per-repetition ratios to @baseline's samples."""
        ratio = None
        if baseline:
            ratio = stats([x / b for x, b in zip(samples[name],
                                                  samples[baseline])])[0]
        self.rows.append((group, name, stats(samples[name]), baseline,
                          ratio))
        return ratio

    def target(self, what, ratio, op, limit):
        met = ratio is not None and (ratio <= limit if op == '<=' else
                                     ratio >= limit)
        self.targets.append((what, ratio, op, limit, met))

    def merge(self, path):
        """Add the system-mode rows and targets of another run's results.md
        whose groups this run has not, then order system rows by
        accelerator and QEMU version."""
        with open(path) as f:
            lines = f.read().splitlines()
        have = {row[0] for row in self.rows}
        for line in lines:
            c = [x.strip() for x in line.strip().strip('|').split('|')]
            if not SYSTEM_GROUP.match(c[0]):
                continue
            if len(c) == 7 and c[0] not in have:
                self.rows.append((c[0], c[1], tuple(map(float, c[2:5])),
                                  c[5] or None,
                                  float(c[6]) if c[6] else None))
            elif (len(c) == 4 and c[0].split(':')[0] not in have and
                  c[1] != 'n/a'):
                op, limit = c[2].split()
                self.targets.append((c[0], float(c[1]), op, float(limit),
                                     c[3] == 'yes'))

        def key(item):
            m = SYSTEM_GROUP.match(item[0])
            return (1, m.group(2) != 'tcg', m.group(1) != 'VM',
                    tuple(map(int, m.group(3).split('.')))) if m else (0,)
        self.rows.sort(key=key)
        self.targets.sort(key=key)

    def markdown(self):
        out = ['# qemu-backdoor benchmark', '',
               'Median of %d repetitions (min, max) in ns per operation; '
               'each repetition\'s figure is the median of 16 consecutive '
               'chunks of its operations (a chunk during which the host '
               'took the CPU away drops out). '
               'Ratio: the median over the repetitions of path / baseline, '
               'both timed in the same repetition of the same guest or '
               'process (the host SIGSEGV baseline: in the host run right '
               'before each guest run).' % REPS, '',
               '| where | path | median ns | min | max | baseline | ratio |',
               '|---|---|---:|---:|---:|---|---:|']
        for group, name, (med, mn, mx), base, ratio in self.rows:
            out.append('| %s | %s | %.1f | %.1f | %.1f | %s | %s |' % (
                group, name, med, mn, mx, base or '', '%.3f' % ratio
                if ratio is not None else ''))
        if self.threads:
            out += ['', '| where | threads | calls/s | lost calls | '
                    'wrong results |', '|---|---:|---:|---:|---:|']
            for where, t, cps, lost, wrong in self.threads:
                out.append('| %s | %d | %.0f | %d | %d |' % (
                    where, t, cps, lost, wrong))
        if self.events:
            out += ['', '| where | producers | events/s | lost | '
                    'reordered | full-ring flushes |',
                    '|---|---:|---:|---:|---:|---:|']
            for where, t, eps, lost, reordered, full in self.events:
                out.append('| %s | %d | %.0f | %d | %d | %d |' % (
                    where, t, eps, lost, reordered, full))
        out += ['', '| target | ratio | limit | met |', '|---|---:|---|---|']
        for what, ratio, op, limit, met in self.targets:
            out.append('| %s | %s | %s %.2f | %s |' % (
                what, '%.3f' % ratio if ratio is not None else 'n/a', op,
                limit, 'yes' if met else 'NO'))
        for what, why in self.skipped:
            out.append('')
            out.append('Skipped: %s: %s' % (what, why))
        for note in self.notes:
            out += ['', 'Note: ' + note]
        return '\n'.join(out) + '\n'


def host_sigsegv():
    """The median of 16 chunks of N/16 faults, as the guest times its
    operations (bench-guest.c, MEASURE)."""
    out = run([E['BENCH_HOST_SIGSEGV'], str(max(N // 16, 1)), '16'])
    return float(re.search(r'median=([\d.]+)', out).group(1))


def user_mode(table, arch):
    guest = E.get('BENCH_GUEST_' + arch.upper())
    qemu = shutil.which('qemu-' + arch)
    if not guest or not qemu:
        table.skipped.append(('user mode ' + arch, 'no cross compiler or '
                              'no qemu-' + arch))
        return
    env = {'QEMU_BACKDOOR_LIB': LIB}
    res, _ = parse(run([LAUNCHER, qemu, guest, 'user', str(N), str(REPS)],
                       env))
    where = 'qemu-' + arch
    table.add(where, res, 'plain-store')
    table.add(where, res, 'getppid')
    fast = table.add(where, res, 'backdoor-call', 'getppid')
    table.target('%s: library call / getppid' % where, fast, '<=', 2.0)
    user_events(table, where, res, [LAUNCHER, qemu, guest], env)
    # The host baseline cannot run inside the guest's process: pair each
    # repetition of the trapped store with a host SIGSEGV run right before
    # it, and take the median of the per-pair ratios.
    pairs = {'host-sigsegv': [], 'backdoor-raw-store': []}
    for _ in range(REPS):
        pairs['host-sigsegv'].append(host_sigsegv())
        g, _ = parse(run([LAUNCHER, qemu, guest, 'user-raw', str(N), '1'],
                         env))
        pairs['backdoor-raw-store'] += g['backdoor-raw-store']
    table.add(where, pairs, 'host-sigsegv')
    raw = table.add(where, pairs, 'backdoor-raw-store', 'host-sigsegv')
    table.target('%s: raw-store call / host SIGSEGV' % where, raw, '<=',
                 1.10)
    for t in (1, 2, 4):
        _, th = parse(run([LAUNCHER, qemu, guest, 'threads', str(t),
                           str(N * 2)], env))
        for nt, cps, lost, wrong in th:
            table.threads.append((where, nt, cps, lost, wrong))
            table.target('%s: %d threads, lost + wrong calls' % (where, nt),
                         float(lost + wrong), '<=', 0)


def user_events(table, where, res, cmd, env):
    """Event rings in user mode: posting one event against a plain guest
    store (in the same repetitions), and events/s with 1, 2 and 4
    producers, none lost or reordered."""
    post = table.add(where, res, 'backdoor-post', 'plain-store')
    table.target('%s: posting one event / plain store' % where, post, '<=',
                 10)
    # The pieces: the inline post alone (ring in RAM, in the data
    # channel), and a flush of an empty ring (its round trip alone)
    for piece in ('backdoor-post-ram-noflush', 'backdoor-post-noflush'):
        if piece in res:
            table.add(where, res, piece, 'plain-store')
    if 'backdoor-doorbell' in res:
        table.add(where, res, 'backdoor-doorbell')
    for t in (1, 2, 4):
        res, _ = parse(run(cmd + ['events', str(t), str(N * 10)], env))
        for nt, eps, lost, reordered, full in res.get('EVENTS', []):
            table.events.append((where, nt, eps, lost, reordered, full))
            table.target('%s: %d producers, lost + reordered events' %
                         (where, nt), lost + reordered, '<=', 0)


def static_qemus(arch):
    """(label, path) of the static QEMUs the supervisor runs: Debian 12's
    qemu-<arch>-static and Debian 13's qemu-<arch> (fetched, cached)."""
    found = []
    q = shutil.which('qemu-%s-static' % arch)
    if q:
        found.append(('qemu-%s-static (d12)' % arch, q))
    p = subprocess.run([E['FETCH_STATIC_QEMU']], capture_output=True,
                       text=True)
    d = p.stdout.strip().splitlines()[-1] if p.returncode == 0 and \
        p.stdout.strip() else ''
    if d and os.access(os.path.join(d, 'qemu-' + arch), os.X_OK):
        found.append(('qemu-%s (d13 static)' % arch,
                      os.path.join(d, 'qemu-' + arch)))
    return found


def user_mode_supervisor(table, arch):
    """The supervisor backend: call slots served from outside a static
    QEMU. Back-to-back against getppid, then one call per millisecond
    (the server asleep in between), p50 and p90, and threads."""
    guest = E.get('BENCH_GUEST_' + arch.upper())
    qemus = static_qemus(arch)
    if not guest or not qemus:
        table.skipped.append(('user mode supervisor ' + arch, 'no cross '
                              'compiler or no static qemu-' + arch))
        return
    env = {'QEMU_BACKDOOR_LIB': LIB}
    for where, qemu in qemus:
        res, _ = parse(run([LAUNCHER, qemu, guest, 'user', str(N),
                            str(REPS)], env))
        table.add(where, res, 'plain-store')
        table.add(where, res, 'getppid')
        call = table.add(where, res, 'backdoor-call', 'getppid')
        table.target('%s: library call / getppid' % where, call, '<=', 1.0)
        user_events(table, where, res, [LAUNCHER, qemu, guest], env)
        res, _ = parse(run([LAUNCHER, qemu, guest, 'user-isolated', str(N),
                            str(REPS)], env))
        for q in ('p50', 'p90'):
            table.add(where, res, 'getppid-isolated-' + q)
            table.add(where, res, 'backdoor-call-isolated-' + q,
                      'getppid-isolated-' + q)
        # The seed's raw store: a ptrace stop at the tracer each, paired
        # with a host SIGSEGV round trip run right before (fewer: slower)
        pairs = {'host-sigsegv': [], 'backdoor-raw-store': []}
        for _ in range(REPS):
            pairs['host-sigsegv'].append(host_sigsegv())
            g, _ = parse(run([LAUNCHER, qemu, guest, 'user-raw',
                              str(max(N // 4, 100)), '1'], env))
            pairs['backdoor-raw-store'] += g['backdoor-raw-store']
        table.add(where, pairs, 'host-sigsegv')
        table.add(where, pairs, 'backdoor-raw-store', 'host-sigsegv')
        for t in (1, 2, 4):
            _, th = parse(run([LAUNCHER, qemu, guest, 'threads', str(t),
                               str(N * 2)], env))
            for nt, cps, lost, wrong in th:
                table.threads.append((where, nt, cps, lost, wrong))
                table.target('%s: %d threads, lost + wrong calls' % (
                    where, nt), float(lost + wrong), '<=', 0)


BENCH_INIT = """#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "@@ init"
/bin/bench-guest system %d %d
r=$?
for t in 1 2 4; do /bin/bench-guest events $t %d || r=$?; done
echo "@@ exit $r"
poweroff -f
"""


def system_mode(table, accel, kernel):
    where = 'VM ' + accel + QEMU_LABEL
    if accel == 'kvm' and not os.access('/dev/kvm', os.R_OK | os.W_OK):
        table.skipped.append((where, 'no usable /dev/kvm'))
        return
    work = tempfile.mkdtemp(prefix='backdoor-bench-')
    init = os.path.join(work, 'init')
    with open(init, 'w') as f:
        f.write(BENCH_INIT % (N, REPS, N * 10))
    initrd = os.path.join(work, 'initramfs.cpio')
    guestvm.make_initramfs(initrd, init,
                           {'bench-guest': E['BENCH_GUEST_X86_64']},
                           E.get('BUSYBOX', '/bin/busybox'))
    argv = [LAUNCHER, E['QEMU_SYSTEM'], '-M', 'q35,vmport=on',
            '-accel', accel, '-smp', '1', '-m', '256M', '-nodefaults',
            '-display', 'none', '-serial', 'stdio', '-monitor', 'none',
            '-no-reboot', '-kernel', kernel, '-initrd', initrd,
            '-append', guestvm.X86_CMDLINE,
            '-device', 'backdoor,callbacks=' + LIB.replace(',', ',,'),
            '-device', 'edu']
    boot = guestvm.Boot(argv, os.path.join(work, 'console.log'), 600,
                        guestvm.kvm_unusable if accel == 'kvm' else None)
    shutil.rmtree(work, ignore_errors=True)
    if boot.gave_up:
        table.skipped.append((where, boot.gave_up))
        return
    if '@@ exit 0' not in boot.stdout:
        raise RuntimeError('%s: the guest benchmark failed:\n%s' % (
            where, '\n'.join(boot.stdout[-15:] + boot.stderr[-5:])))
    res, _ = parse('\n'.join(boot.stdout))
    for name in ('plain-store', 'getppid', 'vmport-getversion', 'edu-read'):
        table.add(where, res, name)
    call = table.add(where, res, 'backdoor-call', 'edu-read')
    table.add(where, res, 'backdoor-channel-call', 'edu-read')
    slot = table.add(where, res, 'backdoor-slot-call', 'edu-read')
    post = table.add(where, res, 'backdoor-post', 'plain-store')
    # The pieces of those (docs/benchmark.md): the exit alone, the raw
    # one-exit calls, the inline post without its flushes, an empty flush
    table.add(where, res, 'backdoor-id-read', 'edu-read')
    table.add(where, res, 'backdoor-cmd-write', 'edu-read')
    table.add(where, res, 'backdoor-slot-call-raw', 'edu-read')
    raw = table.add(where, res, 'backdoor-call-raw', 'edu-read')
    table.add(where, res, 'backdoor-post-ram-noflush', 'plain-store')
    table.add(where, res, 'backdoor-post-noflush', 'plain-store')
    table.add(where, res, 'backdoor-doorbell', 'edu-read')
    table.add(where, res, 'function-call')
    table.add(where, res, 'atomic-cas-xchg')
    table.add(where, res, 'memcpy-ram')
    copy = table.add(where, res, 'memcpy-data', 'memcpy-ram')
    limit = 1.10 if accel == 'tcg' else 1.05
    table.target('%s: one-exit call / edu MMIO read' % where, raw, '<=',
                 limit)
    table.target('%s: library call / edu MMIO read' % where, call, '<=',
                 limit)
    table.target('%s: inline slot call / edu MMIO read' % where, slot, '<=',
                 limit)
    table.target('%s: posting one event / plain store' % where, post, '<=',
                 10)
    for t, eps, lost, reordered, full in res.get('EVENTS', []):
        table.events.append((where, t, eps, lost, reordered, full))
        table.target('%s: %d producers, lost + reordered events' %
                     (where, t), lost + reordered, '<=', 0)
    table.target('%s: data channel / RAM memcpy bandwidth' % where,
                 1 / copy, '>=', 0.90)


SNAPSHOT_INIT = """#!/bin/sh
/bin/busybox --install -s /bin
echo "@@ init"
exec sleep 1000000
"""


def snapshot_restore(table, kernel):
    """The fuzzing pattern: restore one snapshot of a running Linux guest
    again and again (HMP loadvm over QMP, as a fuzzer would)."""
    where = 'VM tcg'
    work = tempfile.mkdtemp(prefix='backdoor-bench-snap-')
    init = os.path.join(work, 'init')
    with open(init, 'w') as f:
        f.write(SNAPSHOT_INIT)
    initrd = os.path.join(work, 'initramfs.cpio')
    guestvm.make_initramfs(initrd, init, {}, E.get('BUSYBOX', '/bin/busybox'))
    img = os.path.join(work, 'disk.qcow2')
    run(['qemu-img', 'create', '-q', '-f', 'qcow2', img, '64M'],
        env={'LD_PRELOAD': ''})
    argv = [LAUNCHER, E['QEMU_SYSTEM'], '-M', 'q35', '-accel', 'tcg',
            '-smp', '1', '-m', '256M', '-nodefaults', '-display', 'none',
            '-serial', 'stdio', '-monitor', 'none', '-no-reboot',
            '-kernel', kernel, '-initrd', initrd,
            '-append', guestvm.X86_CMDLINE,
            '-drive', 'if=none,id=disk0,format=qcow2,file=' + img,
            '-device', 'backdoor,callbacks=' +
            E['BENCH_STATE_CALLBACKS'].replace(',', ',,')]
    vm = guestvm.QmpVm(argv, work, 'snapshot')
    samples = {'savevm-256MiB': [], 'loadvm-256MiB': []}
    try:
        vm.wait(r'init$')
        for _ in range(REPS):
            t0 = time.perf_counter()
            out = vm.hmp('savevm bench')
            samples['savevm-256MiB'].append((time.perf_counter() - t0) * 1e9)
            t0 = time.perf_counter()
            for _ in range(RESTORES):
                out += vm.hmp('loadvm bench')
            samples['loadvm-256MiB'].append(
                (time.perf_counter() - t0) * 1e9 / RESTORES)
            if out:
                raise RuntimeError('%s: savevm/loadvm: %s' % (where, out))
    finally:
        vm.quit()
        shutil.rmtree(work, ignore_errors=True)
    table.add(where, samples, 'savevm-256MiB')
    table.add(where, samples, 'loadvm-256MiB')


def bare_metal(table, accel):
    """The bare-metal guest (no Linux): runs where a Linux guest cannot,
    such as under the nested kvm_pvm of these machines."""
    where = 'bare-metal ' + accel + QEMU_LABEL
    if accel == 'kvm' and not baremetal_vm.kvm_usable():
        table.skipped.append((where, 'no usable /dev/kvm'))
        return
    # An exit costs ~26 us under kvm_pvm: fewer operations keep it short
    n = N if accel == 'tcg' else min(N, 2000)
    rc, out, err = baremetal_vm.run(LAUNCHER, E['QEMU_SYSTEM'], accel,
                                    E['BAREMETAL_IMAGE'], LIB,
                                    'bench %d %d' % (n, REPS), timeout=900)
    if rc != baremetal_vm.EXIT_OK:
        raise RuntimeError('%s: the bare-metal benchmark failed (%s):\n%s' % (
            where, rc, '\n'.join(out[-15:]) + err[-2000:]))
    res, _ = parse('\n'.join(out))
    for name in ('plain-store', 'vmport-getversion', 'edu-read'):
        table.add(where, res, name)
    call = table.add(where, res, 'backdoor-call-raw', 'edu-read')
    table.add(where, res, 'backdoor-call-raw', 'vmport-getversion')
    # The pieces: the exit alone, slots held, a doorbell, posts
    # (docs/benchmark.md)
    for name in ('backdoor-id-read', 'backdoor-slot-call-raw',
                 'backdoor-call-raw-all-slots', 'backdoor-doorbell'):
        if name in res:
            table.add(where, res, name, 'edu-read')
    if 'backdoor-post-raw' in res:
        table.add(where, res, 'backdoor-post-raw', 'plain-store')
    table.target('%s: one-exit call / edu MMIO read' % where, call, '<=',
                 1.10 if accel == 'tcg' else 1.05)
    emulated = [line for line in out
                if line.startswith('bm: port I/O emulated in ring 0: ') and
                not line.endswith(': 0')]
    if emulated:
        table.notes.append('%s: this KVM ignores IOPL 3, so the guest\'s '
                           'port I/O (vmport) traps to its ring 0 and is run '
                           'there: vmport figures include that trap.' % where)


def plot(table):
    """Each path beside its baseline (grey), both with min-max bars, and
    the ratio written over the pair, so the ratio can be seen at once."""
    gnuplot = shutil.which('gnuplot')
    if not gnuplot:
        print('bench: gnuplot is missing (apt-get install gnuplot-nox); '
              'no plot', file=sys.stderr)
        return
    med = {(group, name): m for group, name, m, _, _ in table.rows}
    pairs = [(group, name, base, ratio)
             for group, name, _, base, ratio in table.rows if base]
    if not pairs:
        return
    data = os.path.join(OUT, 'latency.dat')
    with open(data, 'w') as f:
        for i, (group, name, base, ratio) in enumerate(pairs):
            f.write('%d "%s\\n%s\\nvs %s" %s %s %.2fx\n' % (
                i, group, name, base,
                ' '.join('%f' % v for v in med[(group, base)]),
                ' '.join('%f' % v for v in med[(group, name)]), ratio))
    script = '''
set terminal pngcairo size %d,700 font ",10" noenhanced
set output "%s"
set title "qemu-backdoor: each path (blue) beside its baseline (grey), ns per operation (median, min-max), log scale; ratio above" noenhanced
set ylabel "ns per operation"
set logscale y
set style fill solid 0.7 border -1
set boxwidth 0.36 absolute
set xrange [-0.6:%f]
set xtics noenhanced
set grid ytics
set key top left
set bmargin 5
plot "%s" using ($1-0.19):3:xtic(2) with boxes lc rgb "#a0a0a0" title "baseline", \\
     "" using ($1-0.19):3:4:5 with yerrorbars lc rgb "black" pt 0 notitle, \\
     "" using ($1+0.19):6 with boxes lc rgb "#4472c4" title "backdoor path", \\
     "" using ($1+0.19):6:7:8 with yerrorbars lc rgb "black" pt 0 notitle, \\
     "" using 1:(($5 > $8 ? $5 : $8) * 1.4):9 with labels noenhanced notitle
''' % (max(900, 170 * len(pairs) + 150), os.path.join(OUT, 'latency.png'),
       len(pairs) - 0.4, data)
    subprocess.run([gnuplot], input=script, text=True, check=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    table = Table()
    for arch in USER_ARCHES:
        if 'user' in ONLY:
            user_mode(table, arch)
        if 'supervisor' in ONLY:
            user_mode_supervisor(table, arch)
    kernel = None
    if {'system-tcg', 'system-kvm', 'snapshot'} & set(ONLY):
        kernel, err = guestvm.fetch_kernel(E['FETCH_KERNEL'])
        if not kernel:
            raise RuntimeError('no guest kernel: ' + err.strip())
    for accel in ('tcg', 'kvm'):
        if 'system-' + accel in ONLY:
            system_mode(table, accel, kernel)
        if 'baremetal-' + accel in ONLY:
            bare_metal(table, accel)
    if 'snapshot' in ONLY:
        snapshot_restore(table, kernel)
    for path in MERGE:
        table.merge(path)
    text = table.markdown()
    with open(os.path.join(OUT, 'results.md'), 'w') as f:
        f.write(text)
    print(text)
    plot(table)
    print('written: %s, %s' % (os.path.join(OUT, 'results.md'),
                               os.path.join(OUT, 'latency.png')))
    return 0


if __name__ == '__main__':
    sys.exit(main())
