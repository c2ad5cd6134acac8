#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The guest library under qemu-<arch> with the user-mode helper (TAP).

For each guest architecture in USER_PROGRAMS ("arch=seed,cli;..."), through
the launcher: the seed's guest example against the seed callbacks, and a
qemu-backdoor-call file round trip against the test callbacks, whose log
the host checks. (Hot reload, guest memory and event rings under both
backends: tests/user/user-test.py.)
"""

import os
import re
import subprocess
import sys
import tempfile

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
            tap(r.returncode == 0 and '+ 16777216' in out and want in out,
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
    print('1..%d' % n_tests)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
