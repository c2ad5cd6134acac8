#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Tests of the build kit: stamp check, install, relocatable launcher and
the installed callback SDK (pkg-config)."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'qtest'))
from qtest import Qemu, Tap, check, check_eq, run_qemu  # noqa

SRC = os.environ['BACKDOOR_SOURCE_ROOT']
BUILD = os.environ['BACKDOOR_BUILD_ROOT']
QEMU = os.environ['QEMU_SYSTEM']
QEMU_TREE = os.environ['BACKDOOR_QEMU_TREE']
MODDIR = os.environ['BACKDOOR_QEMU_MODDIR']
MESON = os.environ['MESON']
TREE_PY = [sys.executable, os.path.join(SRC, 'scripts', 'qemu-tree.py')]

tap = Tap()
work = tempfile.mkdtemp(prefix='backdoor-build-test-')
destdir = os.path.join(work, 'dest')


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@tap.test('/build/stamp/matches-installed-qemu')
def test_stamp_ok():
    r = run(TREE_PY + ['check-stamp', QEMU_TREE, MODDIR])
    check_eq(r.returncode, 0, 'check-stamp exit code (%s)' % r.stderr)
    stamp = r.stdout.strip()
    hw = os.path.join(BUILD, 'src', 'device', 'hw-backdoor.so')
    syms = run(['nm', '-D', '--defined-only', hw]).stdout
    check(stamp in syms, 'hw-backdoor.so exports %s' % stamp)
    check('qemu_module_dummy' in syms, 'hw-backdoor.so has qemu_module_dummy')


@tap.test('/build/stamp/mismatch-refused')
def test_stamp_mismatch():
    # A real installed module whose stamp symbol is renamed, as a module of
    # another QEMU build would have.
    stamp = run(TREE_PY + ['stamp', QEMU_TREE]).stdout.strip().encode()
    other = stamp[:-1] + (b'0' if stamp[-1:] != b'0' else b'1')
    mods = os.path.join(work, 'other-qemu')
    os.makedirs(mods)
    src = sorted(glob.glob(os.path.join(MODDIR, '*.so')))[0]
    with open(src, 'rb') as f:
        image = f.read()
    check(stamp in image, 'stamp found in %s' % src)
    with open(os.path.join(mods, os.path.basename(src)), 'wb') as f:
        f.write(image.replace(stamp, other))
    r = run(TREE_PY + ['check-stamp', QEMU_TREE, mods])
    check(r.returncode != 0, 'check-stamp refuses the other build')
    lines = r.stderr.strip().splitlines()
    check_eq(len(lines), 1, 'one-line error (%r)' % r.stderr)
    check(stamp.decode() in lines[0] and other.decode() in lines[0] and
          'prepare the sources of the installed QEMU' in lines[0], lines[0])


@tap.test('/build/prepare/cached')
def test_prepare_cached():
    r = run([os.path.join(SRC, 'scripts', 'prepare-qemu.sh')])
    check_eq(r.returncode, 0, 'prepare-qemu.sh (%s)' % r.stderr)
    check_eq(r.stdout.strip(), QEMU_TREE, 'prepared tree')
    check_eq(r.stderr, '', 'nothing fetched or configured the second time')


@tap.test('/build/option/qemu-build-dir')
def test_build_dir_option():
    tmp = os.path.join(work, 'other-build')
    r = run([MESON, 'setup', tmp, SRC, '-Dqemu_build_dir=' + QEMU_TREE])
    check_eq(r.returncode, 0, 'setup with -Dqemu_build_dir (%s)' %
             r.stdout[-2000:])
    check(QEMU_TREE in r.stdout, 'summary names the given tree')
    r = run([MESON, 'setup', tmp + '2', SRC,
             '-Dqemu_build_dir=' + os.path.join(work, 'nonexistent')])
    check(r.returncode != 0, 'setup with a missing tree fails')
    check('is not a configured QEMU build tree' in r.stdout,
          'and says why: %s' % r.stdout[-500:])


@tap.test('/build/version/unknown-refused')
def test_unknown_version():
    # The prepared tree as seen through symlinks, but claiming QEMU 6.0:
    # meson setup stops with one line naming the version.
    fake = os.path.join(work, 'qemu-6.0', 'build')
    os.makedirs(fake)
    for name in os.listdir(QEMU_TREE):
        if name not in ('config-host.h', 'compile_commands.json'):
            os.symlink(os.path.join(QEMU_TREE, name),
                       os.path.join(fake, name))
    parent = os.path.dirname(QEMU_TREE)
    for name in os.listdir(parent):   # ../<source> of relative -I options
        if name != 'build':
            os.symlink(os.path.join(parent, name),
                       os.path.join(os.path.dirname(fake), name))
    with open(os.path.join(QEMU_TREE, 'config-host.h')) as f:
        config = f.read()
    config = re.sub(r'#define QEMU_VERSION "[^"]*"',
                    '#define QEMU_VERSION "6.0.0"', config)
    config = re.sub(r'#define QEMU_VERSION_(MAJOR|MINOR|MICRO) \d+',
                    lambda m: '#define QEMU_VERSION_%s %s' % (
                        m.group(1), {'MAJOR': 6}.get(m.group(1), 0)), config)
    with open(os.path.join(fake, 'config-host.h'), 'w') as f:
        f.write(config)
    with open(os.path.join(QEMU_TREE, 'compile_commands.json')) as f:
        commands = f.read().replace('"directory": "%s"' % QEMU_TREE,
                                    '"directory": "%s"' % fake)
    with open(os.path.join(fake, 'compile_commands.json'), 'w') as f:
        f.write(commands)
    r = run([MESON, 'setup', os.path.join(work, 'unknown-build'), SRC,
             '-Dqemu_build_dir=' + fake, '-Dstamp_check=false'])
    check(r.returncode != 0, 'setup against QEMU 6.0 fails')
    errors = [line for line in r.stdout.splitlines() if 'ERROR' in line]
    check_eq(len(errors), 1, 'one error line (%s)' % r.stdout[-1500:])
    check('QEMU 6.0.0 is not a version src/device/compat.h knows' in
          errors[0], errors[0])


def installed(pattern):
    found = glob.glob(os.path.join(destdir, pattern.lstrip('/')),
                      recursive=True)
    check(found, 'installed: %s' % pattern)
    return found[0]


@tap.test('/build/install/destdir')
def test_install():
    r = run([MESON, 'install', '-C', BUILD, '--no-rebuild', '--quiet',
             '--destdir', destdir])
    check_eq(r.returncode, 0, 'meson install (%s)' % r.stderr)
    installed(os.path.join(MODDIR, 'hw-backdoor.so'))
    installed('**/bin/qemu-backdoor')
    installed('**/qemu-backdoor/backdoor-loader.so')
    installed('**/include/qemu-backdoor-callbacks.h')
    installed('**/include/backdoor/qemu/qemu-backdoor.h')
    installed('**/pkgconfig/qemu-backdoor-callbacks.pc')


@tap.test('/build/install/rebuild-sources')
def test_rebuild_sources():
    # -Drebuild=true installs the device's sources and
    # qemu-backdoor-rebuild; what it installs must build the device
    # (-Ddevice_only=true), as the rebuild does on the installed system.
    tmp = os.path.join(work, 'rebuild-build')
    dest = os.path.join(work, 'rebuild-dest')
    r = run([MESON, 'setup', tmp, SRC, '-Dqemu_build_dir=' + QEMU_TREE,
             '-Drebuild=true', '--prefix=/usr'])
    check_eq(r.returncode, 0, 'setup with -Drebuild=true (%s)' %
             r.stdout[-2000:])
    r = run([MESON, 'compile', '-C', tmp, 'src/rebuild/qemu-backdoor-rebuild'])
    check_eq(r.returncode, 0, 'qemu-backdoor-rebuild generated (%s)' %
             r.stdout[-2000:])
    r = run([MESON, 'install', '-C', tmp, '--no-rebuild', '--quiet',
             '--tags', 'rebuild', '--destdir', dest])
    check_eq(r.returncode, 0, 'install of the rebuild (%s)' % r.stderr)
    check(os.access(os.path.join(dest, 'usr/sbin/qemu-backdoor-rebuild'),
                    os.X_OK), 'qemu-backdoor-rebuild installed')
    srcs = glob.glob(os.path.join(dest, 'usr/src/qemu-backdoor-*'))
    check_eq(len(srcs), 1, 'the sources in /usr/src (%s)' % srcs)
    dev = os.path.join(work, 'rebuild-device')
    r = run([MESON, 'setup', dev, srcs[0], '-Ddevice_only=true',
             '-Dqemu_build_dir=' + QEMU_TREE, '-Dqemu_module_dir=' + MODDIR])
    check_eq(r.returncode, 0, 'device-only setup from the installed sources '
             '(%s)' % r.stdout[-2000:])
    r = run([MESON, 'compile', '-C', dev])
    check_eq(r.returncode, 0, 'device-only build (%s)' % r.stdout[-2000:])
    out = os.path.join(dev, 'src', 'device')
    check_eq(sorted(f for f in os.listdir(out) if not f.endswith('.p')),
             ['backdoor-loader.so', 'hw-backdoor.so', 'qemu-version'],
             'what the device-only build makes')
    stamp = run(TREE_PY + ['stamp', QEMU_TREE]).stdout.strip()
    syms = run(['nm', '-D', '--defined-only',
                os.path.join(out, 'hw-backdoor.so')]).stdout
    check(stamp in syms, 'the rebuilt module has the stamp %s' % stamp)
    with open(os.path.join(out, 'qemu-version')) as f:
        check_eq(f.read().strip(), run(TREE_PY + ['version', QEMU_TREE])
                 .stdout.strip(), 'qemu-version')


@tap.test('/build/install/relocatable-launcher')
def test_relocatable():
    launcher = installed('**/bin/qemu-backdoor')
    moved = os.path.join(work, 'moved')
    shutil.copytree(destdir, moved, symlinks=True)
    launcher = launcher.replace(destdir, moved)
    rc, out, err = run_qemu([launcher, QEMU, '-device', 'help'])
    check(rc == 0 and 'name "backdoor"' in out,
          'moved install lists the device (%s)' % err)
    link = os.path.join(work, 'bin-link')
    os.symlink(launcher, link)
    rc, out, _ = run_qemu([link, '--print-loader'])
    check(os.path.exists(out.strip()), 'loader found through a symlink')


@tap.test('/build/install/callback-sdk')
def test_sdk():
    pcdir = os.path.dirname(installed('**/pkgconfig/qemu-backdoor-callbacks.pc'))
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    prefix = os.path.dirname(os.path.dirname(installed('**/bin/qemu-backdoor')))
    r = run(['pkg-config', '--define-variable=prefix=' + prefix, '--cflags',
             'qemu-backdoor-callbacks'], env=env)
    check_eq(r.returncode, 0, 'pkg-config (%s)' % r.stderr)
    lib = os.path.join(work, 'libseed.so')
    r = run(['cc', '-shared', '-fPIC', '-o', lib,
             os.path.join(SRC, 'examples', 'seed-host', 'backdoor.c')] +
            r.stdout.split())
    check_eq(r.returncode, 0, 'seed example builds with the SDK (%s)' %
             r.stderr)
    launcher = installed('**/bin/qemu-backdoor')
    with Qemu(QEMU, ['-device', 'backdoor,callbacks=' + lib],
              launcher=launcher) as q:
        q.quit()
        check_eq(q.stdout(), '+ 1048576\n', 'installed seed library loaded')


if __name__ == '__main__':
    try:
        rc = tap.run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(rc)
