#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The guest library under qemu-<arch> with the user-mode helper (TAP).

For each guest architecture in USER_PROGRAMS ("arch=seed,cli;..."), through
the launcher: the seed's guest example against the seed callbacks, and a
qemu-backdoor-call file round trip against the test callbacks, whose log
the host checks.
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'user'))
from staticqemu import skip_reason  # noqa: E402  (tests/user)

n_tests = 0
failures = 0


def skip(name, why):
    global n_tests
    n_tests += 1
    print('ok %d - %s # SKIP %s' % (n_tests, name, why), flush=True)


def tap(ok, name, detail=None):
    global n_tests, failures
    n_tests += 1
    print('%s %d - %s' % ('ok' if ok else 'not ok', n_tests, name),
          flush=True)
    if not ok:
        failures += 1
        for line in str(detail or '').splitlines():
            print('#   ' + line)


def run(arch, prog, args, lib, lib_args='', stdin=None):
    env = dict(os.environ, QEMU_BACKDOOR_LIB=lib, QEMU_BACKDOOR_ARGS=lib_args)
    env.pop('QEMU_BACKDOOR_PATH', None)
    return subprocess.run([os.environ['BACKDOOR_LAUNCHER'], 'qemu-' + arch,
                           prog] + args, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120, input=stdin)


def reload_request(sock_path, line):
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


def test_hot_reload(tmp):
    """User mode: swaps through BASE.reload while a guest calls without
    end (tests/guest/caller.c against tests/callbacks/state-callbacks.c)."""
    prefix = '/user/x86_64/hot-reload'
    if skip_reason('x86_64'):
        # The supervisor has no hot reload yet (docs/user-mode.md)
        skip(prefix, skip_reason('x86_64'))
        return
    lib = os.environ['STATE_CALLBACKS']
    log = os.path.join(tmp, 'reload.log')
    base = os.path.join(tmp, 'chan')
    env = dict(os.environ, QEMU_BACKDOOR_LIB=lib, QEMU_BACKDOOR_PATH=base,
               QEMU_BACKDOOR_ARGS='tag=1:log=' + log)
    proc = subprocess.Popen([os.environ['BACKDOOR_LAUNCHER'], 'qemu-x86_64',
                             os.environ['USER_CALLER'], '', '4096'],
                            env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
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
        deadline = time.monotonic() + 60
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
            replies.append(reload_request(base + '.reload', '%s\ttag=%d:log=%s'
                                          % (lib, tag, log)))
            i, m = wait(r'caller switch (\d+):(\d+) (\d+):(\d+)$', i)
            switches.append(tuple(int(x) for x in m.groups()))
            i, _ = wait(r'caller at %d:\d+$' % tag, i)
        bad = reload_request(base + '.reload',
                             os.environ['BAD_VERSION_CALLBACKS'])
        i, m = wait(r'caller at (\d+):\d+$', i + 1)
        tap(bad.startswith('error: ') and 'need ABI version' in bad and
            m[1] == '4', prefix + '/failed-swap', '%r; then %s' % (bad, m[0]))
    except (RuntimeError, OSError) as e:
        tap(False, prefix + '/run', '%s\n%s' % (e, proc.stderr.read1()
                                                 if proc.poll() is not None
                                                 else ''))
    finally:
        proc.kill()
        proc.wait()
    tap(replies == ['ok\n'] * 3 and [(s[0], s[2], s[3]) for s in switches]
        == [(1, 2, 1), (2, 3, 1), (3, 4, 1)], prefix + '/swaps',
        'replies %s, switches %s' % (replies, switches))
    exits = [tuple(int(x) for x in m.groups()) for m in
             (re.match(r'exit tag=(\d+) calls=(\d+)$', x) for x in
              (open(log).read().splitlines() if os.path.exists(log) else []))
             if m]
    tap(exits == [(s[0], s[1]) for s in switches],
        prefix + '/no-call-lost-or-repeated',
        'library exits %s, guest saw %s' % (exits, switches))
    errors = [x for x in lines if 'caller error' in x]
    tap(not errors, prefix + '/every-result-followed', errors[:5])


def test_guest_memory():
    """A callback reads and writes the guest's memory by its virtual
    addresses; unmapped, read-only and wrapping ranges are refused."""
    if skip_reason('x86_64'):
        # Under the supervisor guest memory is -ENOSYS (docs/callbacks.rst)
        skip('/user/x86_64/guest-memory', skip_reason('x86_64'))
        return
    r = run('x86_64', os.environ['USER_GUEST_MEMORY'], [],
            os.environ['STATE_CALLBACKS'])
    out = r.stdout.decode(errors='replace').splitlines()
    results = [line[3:] for line in out if line.startswith('@@ ')]
    for line in results:
        ok = line.startswith('ok ')
        name = line.split(' ', 2)[1] if ok else line.split(' ', 3)[2]
        tap(ok, '/user/x86_64/guest-memory/' + name.rstrip(':'), line)
    tap(r.returncode == 0 and len(results) == 7,
        '/user/x86_64/guest-memory/all', 'exit %d, %d results: %s' %
        (r.returncode, len(results), r.stderr.decode(errors='replace')))


def main():
    big_endian = {'s390x': 1}
    with tempfile.TemporaryDirectory() as tmp:
        for entry in os.environ['USER_PROGRAMS'].split(';'):
            arch, progs = entry.split('=', 1)
            seed, cli = progs.split(',')
            prefix = '/user/%s/guest-lib' % arch

            r = run(arch, seed, [], os.environ['SEED_CALLBACKS'])
            out = r.stdout.decode(errors='replace').splitlines()
            # The seed stores 32 bits and its host loads 64 (guest order)
            want = '-> babe :: ' + ('cafe00000000' if big_endian.get(arch)
                                    else 'cafe')
            tap(r.returncode == 0 and '+ 1048576' in out and want in out,
                prefix + '/seed-example',
                'exit %d\nstdout: %s\nstderr: %s' %
                (r.returncode, out, r.stderr.decode(errors='replace')))

            log = os.path.join(tmp, arch + '.log')
            data_in = bytes(8) + os.urandom(5000)
            inp, outp = (os.path.join(tmp, arch + s) for s in ('.in', '.out'))
            with open(inp, 'wb') as f:
                f.write(data_in)
            r = run(arch, cli, ['0x1234', '--in', inp, '--out', outp],
                    os.environ['TEST_CALLBACKS'], 'log=' + log)
            back = open(outp, 'rb').read() if os.path.exists(outp) else b''
            order = 'big' if big_endian.get(arch) else 'little'
            tap(r.returncode == 0 and r.stdout == b'0x369c\n' and
                len(back) == len(data_in) and back[:8] == data_in[:8] and
                back[24:] == data_in[24:] and
                back[8:16] == (0x1234 ^ (2**64 - 1)).to_bytes(8, order),
                prefix + '/cli-round-trip', 'exit %d, stdout %r, stderr %s' %
                (r.returncode, r.stdout, r.stderr.decode(errors='replace')))
            lines = open(log).read().splitlines() if os.path.exists(log) \
                else []
            tap(len(lines) == 3 and ' mode=2 ' in lines[0] and
                lines[1].startswith('call n=1 cmd=0x1234 ') and
                lines[1].endswith(' mode=2 be=%d' % big_endian.get(arch, 0))
                and lines[2] == 'exit calls=1', prefix + '/host-log',
                '\n'.join(lines))

            r = run(arch, cli, ['--path', os.path.join(tmp, 'none'), '1'],
                    os.environ['TEST_CALLBACKS'])
            err = r.stderr.decode(errors='replace')
            tap(r.returncode == 1 and err.count('\n') == 1 and
                'no user-mode channel at' in err, prefix + '/cli-no-channel',
                'exit %d: %s' % (r.returncode, err))
        test_hot_reload(tmp)
        test_guest_memory()
    print('1..%d' % n_tests)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
