#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ASan + UBSan run: build qemu-backdoor with -fsanitize=address,undefined
-fno-sanitize-recover=all in a second build directory (default build-asan)
and run the suites that can run sanitized, with the sanitizer runtime in
every QEMU process that loads our code. See docs/building.rst,
"Sanitizers".

    scripts/run-sanitizers.py [BUILD_DIR]

Prints each test's TAP, one check per test for its exit code and for
sanitizer reports, writes BUILD_DIR/meson-logs/sanitize-testlog.json (the
format of meson's testlog.json, names prefixed "sanitize/", for
scripts/tap-summary.py) and ends with "sanitizers: N passed, N failed,
N skipped". Exit 1 when a check failed.

Environment: BACKDOOR_FUZZ_ACCESSES and BACKDOOR_FUZZ_SEED as for the
fuzz tests; SANITIZE_TESTS, a comma-separated list of meson test names to
run instead of the default.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The suites that can run sanitized (docs/building.rst says why the others
# do not): the guest library, the register model and the helper's
# mappings table natively, the device in qemu-system-x86_64
# (qtest, and a Linux guest), the user-mode helper in qemu-<arch>, the
# supervisor beside a static qemu-<arch>. The loader is in all of them.
DEFAULT_TESTS = ['guest-lib', 'headers', 'regs', 'mappings', 'x86-emulate',
                 'procmaps', 'qtest',
                 'guest-system', 'user-x86_64', 'user-aarch64', 'user-s390x',
                 'user-config',
                 'guest-user', 'user-fuzz-x86_64', 'user-fuzz-aarch64',
                 'user-fuzz-s390x', 'user-static-x86_64', 'user-d13-aarch64']

SANITIZE = ['-Db_sanitize=address,undefined',
            '-Dc_args=-fno-sanitize-recover=all']

# qemu-<arch> gets the runtime from a static wrapper found first in PATH:
# user-test.py clears LD_PRELOAD, and the runtime must come first in the
# preload list. The qemu-<arch> found in PATH is a script whose interpreter
# is that wrapper, so that the launcher, which runs a static (ELF) QEMU
# under the supervisor, still takes it for the dynamic QEMU it wraps. A second preload, built without sanitizers, takes the
# runtime out of LD_PRELOAD again before QEMU copies the environment for
# the guest, so the guest sees the environment it sees without ASan.
WRAPPER_C = r'''
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *pre = getenv("LD_PRELOAD");
    char *v;

    if (argc < 2) {
        return 127;
    }
    if (asprintf(&v, "%s:%s%s%s", RUNTIME, UNPRELOAD, pre && *pre ? ":" : "",
                 pre ? pre : "") < 0) {
        return 127;
    }
    setenv("LD_PRELOAD", v, 1);
    execv(REAL, argv + 1);      /* argv[1]: the script, as QEMU's argv[0] */
    perror(REAL);
    return 127;
}
'''

UNPRELOAD_C = r'''
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

__attribute__((constructor))
static void unpreload(void)
{
    const char *pre = getenv("LD_PRELOAD");
    char *copy, *out, *tok, *save = NULL;

    if (!pre || !(copy = strdup(pre)) || !(out = calloc(1, strlen(pre) + 1))) {
        return;
    }
    for (tok = strtok_r(copy, ": ", &save); tok;
         tok = strtok_r(NULL, ": ", &save)) {
        if (strcmp(tok, RUNTIME) && strcmp(tok, UNPRELOAD)) {
            if (*out) {
                strcat(out, ":");
            }
            strcat(out, tok);
        }
    }
    if (*out) {
        setenv("LD_PRELOAD", out, 1);
    } else {
        unsetenv("LD_PRELOAD");
    }
    free(copy);
    free(out);
}
'''

REPORT = re.compile(r'ERROR: (Address|Leak)Sanitizer|runtime error:|'
                    r'ERROR: UndefinedBehaviorSanitizer')


def sh(cmd, **kw):
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def runtime_path():
    """The shared ASan runtime the compiler links (gcc-12: libasan.so.8)."""
    out = subprocess.run(['cc', '-print-file-name=libasan.so'],
                         capture_output=True, text=True, check=True)
    path = os.path.realpath(out.stdout.strip())
    if not os.path.isfile(path):
        sys.exit('run-sanitizers: no libasan.so for cc (install libasan8)')
    with open(path, 'rb') as f:
        # ld.so loads the runtime by its soname: preload that file
        soname = re.search(rb'libasan\.so\.\d+', f.read())
    lib = os.path.join(os.path.dirname(path), soname.group().decode())
    return lib if os.path.exists(lib) else path


def introspect(build, what):
    return json.loads(subprocess.run(['meson', 'introspect', what, build],
                                     capture_output=True, text=True,
                                     check=True).stdout)


def build_targets(build, tests):
    """Build what the tests need. Static guest programs cannot link with
    ASan (gcc: "cannot specify -static with -fsanitize=address"): they run
    in the guest, not in QEMU, so build them unsanitized in place."""
    targets = {t['id']: t for t in introspect(build, '--targets')}
    outputs, static = [], []
    for t in tests:
        for dep in t['depends']:
            target = targets[dep]
            if target['type'] == 'executable' and \
                    target['name'].endswith('-static'):
                static.append(target)
            else:
                outputs += [os.path.relpath(f, build)
                            for f in target['filename']]
    sh(['ninja', '-C', build, '-j2'] + sorted(set(outputs)))
    guest_lib = next(t for t in targets.values()
                     if t['name'] == 'qemu-backdoor-guest' and
                     t['type'] == 'shared library')
    lib_src = target_sources(guest_lib)
    for target in {t['id']: t for t in static}.values():
        src = target_sources(target)
        sh(['cc', '-static', '-O2', '-pthread', '-I', os.path.join(TOP,
            'include'), '-o', target['filename'][0]] + lib_src + src)


def target_sources(target):
    """The source files of an introspected target. Since meson 1.7
    (Debian 13) target_sources also holds entries without sources (the
    linker's), so look for the key."""
    return [s for ts in target['target_sources']
            for s in ts.get('sources', [])]


def has_interp(path):
    """True for a dynamically linked ELF (one with a PT_INTERP header)."""
    with open(path, 'rb') as f:
        head = f.read(64)
        if head[:4] != b'\x7fELF' or head[4] != 2:
            return False
        phoff = int.from_bytes(head[32:40], 'little')
        phentsize = int.from_bytes(head[54:56], 'little')
        phnum = int.from_bytes(head[56:58], 'little')
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(int.from_bytes(table[i:i + 4], 'little') == 3
               for i in range(0, len(table), phentsize))


def make_wrappers(build, runtime):
    bindir = os.path.join(build, 'sanitize-bin')
    os.makedirs(bindir, exist_ok=True)
    unpreload = os.path.join(bindir, 'unpreload.so')
    defs = ['-DRUNTIME="%s"' % runtime, '-DUNPRELOAD="%s"' % unpreload]
    src = os.path.join(bindir, 'unpreload.c')
    with open(src, 'w') as f:
        f.write(UNPRELOAD_C)
    sh(['cc', '-shared', '-fPIC', '-O2', '-o', unpreload, src] + defs)
    src = os.path.join(bindir, 'wrapper.c')
    with open(src, 'w') as f:
        f.write(WRAPPER_C)
    for arch in ('x86_64', 'aarch64', 's390x'):
        real = shutil.which('qemu-' + arch)
        # A static QEMU (Debian 13's) loads no preload: the launcher runs
        # it under the supervisor, which is ours and sanitized already.
        if real and has_interp(real):
            wrap = os.path.join(bindir, 'wrap-qemu-' + arch)
            sh(['cc', '-static', '-O2', '-o', wrap, src,
                '-DREAL="%s"' % real] + defs)
            script = os.path.join(bindir, 'qemu-' + arch)
            with open(script, 'w') as f:
                f.write('#!%s\n' % wrap)
            os.chmod(script, 0o755)
    return bindir


def sanitizer_reports(logdir):
    found = []
    for path in sorted(glob.glob(os.path.join(logdir, '*'))):
        with open(path, errors='replace') as f:
            text = f.read()
        if REPORT.search(text):
            found.append((path, text))
    return found


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                            os.path.join(TOP, 'build-asan'))
    if not os.path.exists(os.path.join(build, 'build.ninja')):
        sh(['meson', 'setup', build] + SANITIZE, cwd=TOP)
    else:
        # meson files changed since: regenerate before introspecting
        sh(['ninja', '-C', build, 'build.ninja'])
    wanted = os.environ.get('SANITIZE_TESTS')
    wanted = wanted.split(',') if wanted else DEFAULT_TESTS
    tests = [t for t in introspect(build, '--tests') if t['name'] in wanted]
    missing = set(wanted) - {t['name'] for t in tests}
    tests.sort(key=lambda t: wanted.index(t['name']))
    build_targets(build, tests)
    runtime = runtime_path()
    bindir = make_wrappers(build, runtime)
    logdir = os.path.join(build, 'meson-logs', 'sanitizers')
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)

    # detect_leaks=0: QEMU, Python and the shell are not built for leak
    # checking and leave many allocations at exit, which would drown ours.
    # verify_asan_link_order=0: the launcher puts the device loader in
    # front of the runtime in LD_PRELOAD (the runtime still comes before
    # libc, so its interceptors work). handle_segv=0: the user-mode helper
    # lives on SIGSEGV. Reports go to files, so the tests that compare
    # stderr see QEMU's own.
    sanitize_env = {
        'ASAN_OPTIONS': 'detect_leaks=0:verify_asan_link_order=0:'
                        'handle_segv=0:log_path=' + logdir + '/asan',
        'UBSAN_OPTIONS': 'halt_on_error=1:print_stacktrace=1:log_path=' +
                         logdir + '/ubsan',
    }
    records = []
    for name in sorted(missing):
        records.append({'name': 'sanitize/' + name, 'result': 'SKIP',
                        'stdout': 'ok 1 - %s # SKIP not in this build\n' %
                        name})
    for t in tests:
        env = dict(os.environ)
        env.update(t['env'])
        env.update(sanitize_env)
        env['PATH'] = bindir + os.pathsep + env.get('PATH', '')
        # The device runs in qemu-system-x86_64, started by the test
        # directly or through the launcher: preload the runtime into the
        # whole process tree of the test (user-test.py clears it: the
        # wrappers put it back for qemu-<arch>).
        env['LD_PRELOAD'] = runtime
        # Tests that depend on QEMU's exact start-up environment or user
        # skip themselves, visibly, when they see this
        env['BACKDOOR_SANITIZED'] = '1'
        before = set(os.listdir(logdir))
        start = time.time()
        print('=== sanitize/%s' % t['name'], flush=True)
        try:
            p = subprocess.run(t['cmd'], env=env, cwd=t['workdir'] or build,
                               capture_output=True, text=True,
                               timeout=(t['timeout'] or 300) * 2)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = 'timeout', e.stdout or '', e.stderr or ''
            out = out if isinstance(out, str) else out.decode()
            err = err if isinstance(err, str) else err.decode()
        print(out, end='')
        if rc != 0 and err:
            print(''.join('# ' + l + '\n' for l in err.splitlines()[-30:]))
        new = [os.path.join(logdir, f)
               for f in set(os.listdir(logdir)) - before]
        reports = [(path, txt) for path, txt in sanitizer_reports(logdir)
                   if path in new]
        # Reports can reach the output too (UBSan's did, despite log_path)
        for what, txt in (('stdout', out), ('stderr', err)):
            if REPORT.search(txt):
                reports.append((what, '\n'.join(
                    l for l in txt.splitlines() if REPORT.search(l))))
        checks = ['%s - %s: exit %s (%.0f s)' % (
            'ok' if rc == 0 else 'not ok', t['name'], rc,
            time.time() - start)]
        checks.append('%s - %s: no ASan/UBSan report%s' % (
            'not ok' if reports else 'ok', t['name'],
            ''.join('\n# %s\n' % path + ''.join('# ' + l + '\n' for l in
                    txt.splitlines()[:60]) for path, txt in reports)))
        for c in checks:
            print(c)
        sys.stdout.flush()
        records.append({'name': 'sanitize/' + t['name'],
                        'result': 'OK' if rc == 0 and not reports else 'FAIL',
                        'stdout': out + '\n'.join(checks) + '\n'})

    logfile = os.path.join(build, 'meson-logs', 'sanitize-testlog.json')
    with open(logfile, 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')
    p = subprocess.run([sys.executable,
                        os.path.join(TOP, 'scripts', 'tap-summary.py'),
                        logfile], capture_output=True, text=True)
    print(p.stdout.replace('checks:', 'sanitizers:'), end='')
    return p.returncode


if __name__ == '__main__':
    sys.exit(main())
