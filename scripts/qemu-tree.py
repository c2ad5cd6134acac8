#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Facts about a prepared QEMU build tree, for meson.build and the launcher.

  qemu-tree.py cflags BUILD        compiler flags of a QEMU module, one a line
  qemu-tree.py srcdir BUILD        the source directory BUILD was configured from
  qemu-tree.py version BUILD       the --version line the binaries print
  qemu-tree.py stamp BUILD         the module stamp (qemu_stamp_<hash>)
  qemu-tree.py moddir              the installed QEMU module directory
  qemu-tree.py check-stamp BUILD MODDIR
                                   fail unless MODDIR's modules carry BUILD's
                                   stamp
"""
import glob
import json
import os
import re
import shlex
import subprocess
import sys


def die(msg):
    print(f"qemu-tree.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def config_define(build, header, name):
    path = os.path.join(build, header)
    try:
        with open(path) as f:
            for line in f:
                m = re.match(rf'#define {name} (.*)', line)
                if m:
                    return m.group(1).strip()
    except OSError as e:
        die(f"{path}: {e.strerror} (is {build} a prepared QEMU build tree?)")
    die(f"{path} does not define {name}")


def unquote(s):
    return s[1:-1] if s.startswith('"') else s


def cflags(build):
    path = os.path.join(build, 'compile_commands.json')
    try:
        with open(path) as f:
            commands = json.load(f)
    except OSError as e:
        die(f"{build} is not a configured QEMU build tree "
            f"({path}: {e.strerror})")
    # module-common.c is compiled exactly as a module is; edu.c as a device
    # in a tree configured without modules.
    entry = None
    for want in ('module-common.c', 'hw/misc/edu.c'):
        entry = next((e for e in commands if e['file'].endswith(want)), None)
        if entry:
            break
    if not entry:
        die(f"{path} lists neither module-common.c nor hw/misc/edu.c")
    args = shlex.split(entry['command'])[1:]
    drop_with_value = ('-o', '-c', '-MQ', '-MF')
    drop = ('-MD', '-DBUILD_DSO', '-fPIE', '-fPIC', '-O2', '-g',
            '-Winvalid-pch', entry['file'])
    path_opts = ('-isystem', '-iquote', '-I')
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a in drop_with_value:
            i += 1
        elif a in drop or a.startswith('-fdiagnostics-color'):
            continue
        elif a in path_opts:
            print(a)
            print(os.path.normpath(os.path.join(entry['directory'], args[i])))
            i += 1
        elif a.startswith('-I'):
            print('-I' + os.path.normpath(os.path.join(entry['directory'],
                                                       a[2:])))
        else:
            print(a)


def srcdir(build):
    path = os.path.join(build, 'config-host.mak')
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('SRC_PATH='):
                    return line.split('=', 1)[1].strip()
    except OSError as e:
        die(f"{path}: {e.strerror} (is {build} a configured QEMU build tree?)")
    die(f"{path} has no SRC_PATH")


def version_line(build):
    version = unquote(config_define(build, 'config-host.h', 'QEMU_VERSION'))
    pkg = unquote(config_define(build, 'qemu-version.h', 'QEMU_PKGVERSION'))
    return f"version {version}" + (f" ({pkg})" if pkg else "")


def stamp(build):
    return 'qemu_stamp' + config_define(build, 'config-host.h', 'CONFIG_STAMP')


def moddirs():
    pats = ['/usr/lib/*/qemu', '/usr/lib64/qemu', '/usr/lib/qemu',
            '/usr/local/lib/*/qemu', '/usr/local/lib64/qemu',
            '/usr/local/lib/qemu']
    for pat in pats:
        for d in sorted(glob.glob(pat)):
            if glob.glob(os.path.join(d, '*.so')):
                yield d


def module_stamps(moddir):
    found = set()
    for so in sorted(glob.glob(os.path.join(moddir, '*.so'))):
        try:
            out = subprocess.run(['nm', '-D', '--defined-only', so],
                                 capture_output=True, text=True).stdout
        except OSError:
            die("'nm' is missing (apt-get install binutils)")
        found.update(re.findall(r'\b(qemu_stamp_[0-9a-f]{40})\b', out))
    return found


def main(argv):
    if len(argv) < 2 or argv[1] in ('-h', '--help'):
        print(__doc__.strip())
        return 0
    cmd = argv[1]
    if cmd == 'cflags' and len(argv) == 3:
        cflags(argv[2])
    elif cmd == 'srcdir' and len(argv) == 3:
        print(srcdir(argv[2]))
    elif cmd == 'version' and len(argv) == 3:
        print(version_line(argv[2]))
    elif cmd == 'stamp' and len(argv) == 3:
        print(stamp(argv[2]))
    elif cmd == 'moddir' and len(argv) == 2:
        print(next(moddirs(), ''))
    elif cmd == 'check-stamp' and len(argv) == 4:
        want = stamp(argv[2])
        have = module_stamps(argv[3])
        if not have:
            die(f"no QEMU modules with a stamp in {argv[3]}")
        if want not in have:
            die(f"the prepared QEMU tree {argv[2]} has stamp {want}, but the "
                f"modules installed in {argv[3]} have {', '.join(sorted(have))}: "
                f"prepare the sources of the installed QEMU "
                f"(rm -rf the tree and set up again)")
        print(want)
    else:
        die(f"bad arguments: {' '.join(argv[1:])} (see --help)")
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
