#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests of scripts/make-qemu-patches.py (docs/in-tree.rst), in seconds:
the series for the prepared QEMU tree applies to a copy of the files it
touches, its C files compile with QEMU's flags at their places in the tree,
it is the same on every run, and a new shared file of src/callbacks that
the device includes comes along. Building QEMU with it is the opt-in
scripts/test-intree.sh."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'qtest'))
from qtest import Tap, check, check_eq  # noqa

SRC = os.environ['BACKDOOR_SOURCE_ROOT']
QEMU_TREE = os.environ['BACKDOOR_QEMU_TREE']
CC = os.environ.get('CC', 'cc')
TREE_PY = [sys.executable, os.path.join(SRC, 'scripts', 'qemu-tree.py')]
MAKE = os.path.join(SRC, 'scripts', 'make-qemu-patches.py')
# The files of QEMU's tree that the series changes
TOUCHED = ['meson.build', 'hw/misc/Kconfig', 'hw/misc/meson.build',
           'docs/specs/index.rst']

tap = Tap()
work = tempfile.mkdtemp(prefix='backdoor-intree-test-')


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def qemu_src():
    r = run(TREE_PY + ['srcdir', QEMU_TREE])
    check_eq(r.returncode, 0, 'qemu-tree.py srcdir (%s)' % r.stderr)
    return r.stdout.strip()


def qemu_version():
    with open(os.path.join(qemu_src(), 'VERSION')) as f:
        return tuple(int(x) for x in f.read().split('.')[:2])


def make(src, out, script=MAKE):
    r = run([sys.executable, script, src, out])
    check_eq(r.returncode, 0, 'make-qemu-patches.py exit code (%s)' %
             r.stderr.strip())
    with open(os.path.join(out, 'series')) as f:
        return [l.strip() for l in f if l.strip()]


def small_tree(name):
    """A copy of the files of the prepared tree that the series touches,
    with its VERSION: enough for the series to be made and applied."""
    tree = os.path.join(work, name)
    for f in TOUCHED + ['VERSION']:
        os.makedirs(os.path.dirname(os.path.join(tree, f)), exist_ok=True)
        shutil.copyfile(os.path.join(qemu_src(), f), os.path.join(tree, f))
    return tree


def apply(tree, out, series):
    for p in series:
        with open(os.path.join(out, p)) as f:
            r = run(['patch', '-p1', '--forward', '--batch', '-d', tree],
                    stdin=f)
        check_eq(r.returncode, 0, 'patch -p1 < %s (%s)' % (p, r.stdout))


def read(path):
    with open(path) as f:
        return f.read()


patched = os.path.join(work, 'patched')


def module_files(meson):
    """The files() of backdoor/meson.build."""
    m = re.search(r"files\(([^)]*)\)", meson)
    return re.findall(r"'([^']+)'", m.group(1)) if m else []


@tap.test('/intree/series/applies')
def test_applies():
    tree = small_tree('patched')
    out = os.path.join(work, 'series')
    series = make(qemu_src(), out)
    check_eq(len(series), 3, 'patches in the series file')
    for p in series:
        check(re.match(r'From 0{40} ', read(os.path.join(out, p))),
              '%s is in git format-patch form' % p)
    apply(tree, out, series)
    misc = read(os.path.join(tree, 'hw/misc/meson.build'))
    check("hw_misc_modules += {'backdoor': backdoor_ss}" in misc and
          "modules += {'hw-misc': hw_misc_modules}" in misc,
          'hw/misc/meson.build makes the module hw-misc-backdoor')
    check(re.search(r'config BACKDOOR\n    bool\n    default y if '
                    r'PCI_DEVICES\n    depends on PCI\n',
                    read(os.path.join(tree, 'hw/misc/Kconfig'))),
          'Kconfig entry')
    check(re.search(r"subdir\('backdoor'\)\n *subdir\('hw'\)",
                    read(os.path.join(tree, 'meson.build'))),
          'meson.build enters backdoor/ before hw/')
    check(re.search(r'\n   backdoor\n',
                    read(os.path.join(tree, 'docs/specs/index.rst'))),
          'docs/specs/index.rst lists the spec')
    dev = read(os.path.join(tree, 'hw/misc/backdoor.c'))
    check('module_obj(TYPE_BACKDOOR);' in dev and
          'module_kconfig(BACKDOOR);' in dev,
          'the module table entries (module_obj, module_kconfig)')
    listed = module_files(read(os.path.join(tree, 'backdoor/meson.build')))
    check('loader.c' in listed, 'backdoor/meson.build compiles the loader')
    check_eq(sorted(listed), sorted(os.path.basename(c) for c in glob.glob(
        os.path.join(tree, 'backdoor', '*.c'))),
        'backdoor/meson.build compiles every .c file of backdoor/')
    check(not os.path.exists(os.path.join(tree, 'hw/misc/backdoor-plugin.c')),
          'no -plugin entry point in the tree')


@tap.test('/intree/series/versions-collapsed')
def test_collapsed():
    files = [p for p in glob.glob(os.path.join(patched, '**', '*.[ch]'),
                                  recursive=True)]
    check(len(files) >= 5, 'C files in the series: %s' % files)
    for p in files:
        text = read(p)
        check('QEMU_VERSION_' not in text, '%s has no version #if' % p)
        check('#include "compat.h"' not in text, '%s: compat.h' % p)
    compat = os.path.join(patched, 'hw/misc/backdoor-compat.h')
    if qemu_version() >= (10, 0):
        check(not os.path.exists(compat),
              "10.0: compat.h's includes went into backdoor.c")
        check('#include "system/runstate.h"' in
              read(os.path.join(patched, 'hw/misc/backdoor.c')),
              "10.0: compat.h's includes in backdoor.c")
    else:
        check('backdoor_compat_set_props' in read(compat),
              "7.2: hw/misc/backdoor-compat.h has 7.2's branch")


@tap.test('/intree/series/compiles-in-place')
def test_compiles():
    """Each C file of the series, compiled with QEMU's module flags at its
    place in the tree (the prepared tree's generated headers)."""
    r = run(TREE_PY + ['cflags', QEMU_TREE])
    check_eq(r.returncode, 0, 'qemu-tree.py cflags (%s)' % r.stderr)
    flags = r.stdout.split('\n')
    inc = ['-iquote', patched, '-iquote', os.path.join(patched, 'include')]
    sources = [os.path.relpath(c, patched) for c in
               glob.glob(os.path.join(patched, 'hw/misc/*.c')) +
               glob.glob(os.path.join(patched, 'backdoor/*.c'))]
    check(len(sources) >= 2, 'C files of the series: %s' % sources)
    for c in sources:
        r = run([CC] + inc + [f for f in flags if f] +
                ['-DBUILD_DSO', '-fPIC', '-ftls-model=initial-exec',
                 '-DBACKDOOR_CALLBACKS_DIR="/nonexistent"', '-Werror',
                 '-c', os.path.join(patched, c), '-o',
                 os.path.join(work, os.path.basename(c) + '.o')])
        check_eq(r.returncode, 0, 'cc %s (%s)' % (c, r.stderr.strip()))


@tap.test('/intree/series/reproducible')
def test_reproducible():
    a, b = os.path.join(work, 'a'), os.path.join(work, 'b')
    sa, sb = make(qemu_src(), a), make(qemu_src(), b)
    check_eq(sa, sb, 'series')
    for p in sa:
        check(read(os.path.join(a, p)) == read(os.path.join(b, p)),
              '%s is the same on a second run' % p)


@tap.test('/intree/series/new-shared-file')
def test_new_shared_file():
    # A copy of the project where the device includes a new shared file
    proj = os.path.join(work, 'project')
    for d in ('src', 'include', 'docs', 'scripts'):
        shutil.copytree(os.path.join(SRC, d), os.path.join(proj, d))
    shutil.copyfile(os.path.join(SRC, 'meson.build'),
                    os.path.join(proj, 'meson.build'))
    cb = os.path.join(proj, 'src', 'callbacks')
    with open(os.path.join(cb, 'shared-thing.h'), 'w') as f:
        f.write('/* SPDX-License-Identifier: GPL-2.0-or-later */\n'
                '#include "qemu-backdoor-regs.h"\n'
                'int backdoor_shared_thing(void);\n')
    with open(os.path.join(cb, 'shared-thing.c'), 'w') as f:
        f.write('/* SPDX-License-Identifier: GPL-2.0-or-later */\n'
                '#include "shared-thing.h"\n'
                'int backdoor_shared_thing(void) { return 1; }\n')
    dev = os.path.join(proj, 'src', 'device', 'backdoor.c')
    text = read(dev).replace('#include "loader.h"\n',
                             '#include "loader.h"\n#include "shared-thing.h"\n')
    with open(dev, 'w') as f:
        f.write(text)
    out = os.path.join(work, 'series-new-file')
    series = make(qemu_src(), out,
                  os.path.join(proj, 'scripts', 'make-qemu-patches.py'))
    first = read(os.path.join(out, series[0]))
    check('+++ b/backdoor/shared-thing.c' in first and
          '+++ b/backdoor/shared-thing.h' in first,
          'the new file is in the first patch')
    check('shared-thing.c' in module_files(first),
          'and compiled into the module')
    check('+#include "backdoor/shared-thing.h"' in first,
          'its includes are rewritten')
    check('+#include "backdoor/shared-thing.h"' in
          read(os.path.join(out, series[1])), "the device's include too")


@tap.test('/intree/errors/one-line')
def test_errors():
    tree = small_tree('errors')
    with open(os.path.join(tree, 'VERSION'), 'w') as f:
        f.write('8.2.2\n')
    r = run([sys.executable, MAKE, tree, os.path.join(work, 'e1')])
    check(r.returncode != 0 and r.stderr.count('\n') == 1 and
          'does not know QEMU 8.2' in r.stderr,
          'unknown version: %r' % r.stderr)
    r = run([sys.executable, MAKE, patched, os.path.join(work, 'e2')])
    check(r.returncode != 0 and r.stderr.count('\n') == 1 and
          'has hw/misc/backdoor.c already' in r.stderr,
          'patched tree: %r' % r.stderr)
    r = run([sys.executable, MAKE, work, os.path.join(work, 'e3')])
    check(r.returncode != 0 and r.stderr.count('\n') == 1 and
          'not a QEMU source tree' in r.stderr, 'not a tree: %r' % r.stderr)
    r = run([sys.executable, MAKE, qemu_src(), os.path.join(work, 'series')])
    check(r.returncode != 0 and r.stderr.count('\n') == 1 and
          'holds .patch files already' in r.stderr,
          'used output directory: %r' % r.stderr)


if __name__ == '__main__':
    tap.main(work)
