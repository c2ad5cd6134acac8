#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Turn qemu-backdoor's device sources into a patch series for a QEMU tree.

The series adds the backdoor device to QEMU's own sources, as a module
(hw-misc-backdoor) that "-device backdoor" loads by itself: no launcher, no
-plugin. It is made for the QEMU tree it is given (its version picks the
branch of src/device/compat.h, its files give the context of the hunks), so
it applies to that tree with "patch -p1", "git am" or quilt.

Which project files go in, and where (FILE LIST, one place): the device,
src/device/backdoor.c, and every project file it includes, followed
include by include: headers of src/device/ and include/, and the headers of
src/callbacks/ with the .c file of the same name. A new shared file under
src/callbacks/ that the device includes comes along by itself; PLACES
below says where each directory's files land in QEMU's tree.

docs/in-tree.rst describes the result, how to build it and how it is tested.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = os.path.basename(sys.argv[0])

DEVICE = 'src/device/backdoor.c'
COMPAT = 'src/device/compat.h'
SPEC = 'docs/specs/backdoor.rst'

# Project directory -> (QEMU directory of its .c files, of its .h files,
# patch number). Include paths in QEMU are relative to include/ or to the
# source root, so headers are included by their path below those.
PLACES = {
    'include': (None, 'include/qemu', 1),
    'src/callbacks': ('backdoor', 'backdoor', 1),
    'src/device': ('hw/misc', 'include/hw/misc', 2),
}
# The device's compat header, when its branch for this QEMU is more than
# #include lines (which go straight into backdoor.c).
COMPAT_DEST = 'hw/misc/backdoor-compat.h'
# Where the quoted includes of project files are looked up, in order.
INCLUDE_DIRS = ['src/device', 'src/callbacks', 'include']

SUBJECTS = {
    1: ('backdoor: callback loader, shared code and public headers',
        """What the backdoor device shares with qemu-backdoor's user-mode
backends, compiled into the device's module ({shared}): the loader of
host callback libraries (GModule, no QEMU internals) and the rest of
that code the device includes. And the public headers that callback
libraries and guests build against: the callback ABI and the register
map, installed like qemu-plugin.h when the device is built. The headers
are MIT so that callback libraries and guest programs of any licence can
include them."""),
    2: ('hw/misc: add the backdoor device, as a module',
        """A PCI device through which guest code calls a host callback
library: BAR0 is the control channel (MMIO), BAR2 the data channel (RAM).
  -device backdoor,callbacks=libmy.so

Built as the module hw-misc-backdoor (CONFIG_BACKDOOR, default y with
PCI_DEVICES); module_obj() puts it in the module table, so -device
backdoor loads it from its file."""),
    3: ('docs/specs: the backdoor register map',
        """The guest ABI of the backdoor device, with its properties."""),
}


def die(msg):
    print(f'{PROG}: error: {msg}', file=sys.stderr)
    sys.exit(1)


def read(path):
    with open(path) as f:
        return f.read()


# ---- which files, and where ----

def includes(text):
    return re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M)


def find_include(name, here):
    for d in [here] + INCLUDE_DIRS:
        path = os.path.join(d, name)
        if os.path.isfile(os.path.join(ROOT, path)):
            return os.path.normpath(path)
    return None


def closure(start):
    """The project files @start includes, directly or not, and the .c
    files of the headers among them; @start first."""
    seen, todo = [], [start]
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.append(path)
        if path.endswith('.h'):
            c = path[:-2] + '.c'
            if os.path.dirname(path) != 'include' and \
               os.path.isfile(os.path.join(ROOT, c)) and c not in seen:
                todo.append(c)
        for name in includes(read(os.path.join(ROOT, path))):
            found = find_include(name, os.path.dirname(path))
            if found:
                todo.append(found)
    return seen


def place(path):
    """(QEMU path, include path or None, patch number) of a project file."""
    if path == COMPAT:
        return COMPAT_DEST, os.path.basename(COMPAT_DEST), 2
    d, name = os.path.split(path)
    if d not in PLACES:
        die(f'{path}: the device includes it, but {PROG} has no place in '
            f"QEMU's tree for {d}/ (add one to PLACES)")
    cdir, hdir, patch = PLACES[d]
    if name.endswith('.h'):
        dest = os.path.join(hdir, name)
        inc = dest[len('include/'):] if dest.startswith('include/') else dest
        return dest, inc, patch
    return os.path.join(cdir, name), None, patch


# ---- text transforms ----

def version_expr(cond, version):
    """Evaluate a #if condition over QEMU_VERSION_*, or None if it is about
    something else."""
    if 'QEMU_VERSION_' not in cond:
        return None
    cond = re.sub(r'/\*.*?\*/', '', cond)
    names = {'QEMU_VERSION_MAJOR': version[0], 'QEMU_VERSION_MINOR': version[1],
             'QEMU_VERSION_MICRO': version[2]}
    expr = re.sub(r'\bQEMU_VERSION_\w+\b',
                  lambda m: str(names[m.group(0)]) if m.group(0) in names
                  else die(f'unknown macro {m.group(0)} in #if {cond}'),
                  cond)
    expr = expr.replace('&&', ' and ').replace('||', ' or ')
    expr = re.sub(r'!(?!=)', ' not ', expr)
    if not re.fullmatch(r'[\d\s()<>=!a-z]*', expr):
        die(f'cannot evaluate #if {cond}')
    return bool(eval(expr))     # digits, comparisons and, or, not only


def collapse_versions(text, version, path):
    """Keep only the branches of #if QEMU_VERSION_* that hold for @version
    (an unifdef for those macros); other conditionals stay as they are."""
    out = []
    stack = []      # per open #if: None (kept as is) or [taking, taken]
    for line in text.splitlines(keepends=True):
        m = re.match(r'\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)',
                     line)
        active = all(f is None or f[0] for f in stack)
        if m:
            kw, cond = m.group(1), m.group(2).strip()
            if kw in ('if', 'ifdef', 'ifndef'):
                v = version_expr(cond, version) if kw == 'if' else None
                stack.append(None if v is None else [v, v])
                if v is None and active:
                    out.append(line)
                continue
            if not stack:
                die(f'{path}: #{kw} without #if')
            frame = stack[-1]
            if frame is None:
                if kw == 'elif' and version_expr(cond, version) is not None:
                    die(f'{path}: #elif on QEMU_VERSION_* after another '
                        'condition')
                if active or all(f is None or f[0] for f in stack[:-1]):
                    out.append(line)
                if kw == 'endif':
                    stack.pop()
                continue
            if kw == 'elif':
                v = version_expr(cond, version)
                if v is None:
                    die(f'{path}: #elif on something else than '
                        'QEMU_VERSION_*')
                frame[0] = v and not frame[1]
                frame[1] = frame[1] or v
            elif kw == 'else':
                frame[0] = not frame[1]
                frame[1] = True
            else:
                stack.pop()
            continue
        if active:
            # An #error in the branch chosen for this version (one under
            # another condition is for the compiler to decide)
            if re.match(r'\s*#\s*error\b', line) and stack and \
               stack[-1] is not None:
                die(f'{path} does not know QEMU '
                    f'{version[0]}.{version[1]}: {line.strip()}')
            out.append(line)
    if stack:
        die(f'{path}: unterminated #if')
    return ''.join(out)


def top_comment(text):
    """(SPDX line, the comment block after it, the rest)."""
    m = re.match(r'(/\* SPDX-License-Identifier: [^*]*\*/\n)'
                 r'(/\*.*?\*/\n)?(.*)', text, re.S)
    if not m:
        die('no SPDX line at the top')
    return m.group(1), m.group(2) or '', m.group(3)


def compat_for_tree(text, version):
    """The compat header for this QEMU: its #include lines if that is all
    its branch has (to go into backdoor.c), else the header text."""
    text = re.sub(r'\n{3,}', '\n\n', collapse_versions(text, version, COMPAT))
    spdx, comment, body = top_comment(text)
    guard = re.search(r'#ifndef (\w+)\n#define \1\n', body)
    inner = body[guard.end():body.rstrip().rfind('#endif')] if guard else body
    lines = [l for l in inner.splitlines() if l.strip()]
    if all(re.match(r'#include "[^"]+"', l) for l in lines):
        return [re.sub(r'\s*/\*.*\*/\s*$', '', l) for l in lines], None
    keep = re.search(r'\n( \* Include after [^\n]*(\n \*[^/\n][^\n]*)*)',
                     comment)
    comment = ('/*\n'
               f' * What hw/misc/backdoor.c needs from QEMU '
               f'{version[0]}.{version[1]}: it is written\n'
               ' * against a newer QEMU API, and this header supplies the '
               'headers that\n'
               ' * have moved since and the few functions that did not '
               'exist yet. From\n'
               " * qemu-backdoor's src/device/compat.h.\n" +
               (' *\n' + keep.group(1) + '\n' if keep else '') +
               ' */\n')
    return None, spdx + comment + body.lstrip('\n')


# Text that says where a file lives or how it is built out of tree, made
# true for QEMU's tree. Each must match: when the source changes, this
# script stops and names the one to update.
REWRITES = [
    (DEVICE,
     r' \* Built out of tree against the sources of the installed QEMU[^/]*'
     r'\*/',
     ' * Built as the module hw-misc-backdoor (CONFIG_BACKDOOR), from the\n'
     " * sources of qemu-backdoor (its scripts/make-qemu-patches.py).\n"
     ' */'),
    (SPEC, r'\n    qemu-backdoor qemu-system-x86_64 ',
     '\n    qemu-system-x86_64 '),
]


def transform(path, text, version, files, compat_lines):
    if path.endswith(('.c', '.h')):
        text = collapse_versions(text, version, path)

        def include(m):
            name = m.group(2)
            found = find_include(name, os.path.dirname(path))
            if not found:
                return m.group(0)
            if found == COMPAT and compat_lines is not None:
                return ''.join(l + '\n' for l in compat_lines)
            return f'{m.group(1)}"{files[found][1]}"\n'
        text = re.sub(r'^(\s*#\s*include\s+)"([^"]+)"[^\n]*\n', include,
                      text, flags=re.M)
        if path.endswith('.c') and '"qemu/osdep.h"' not in text:
            # QEMU's rule: osdep.h first in every .c file.
            text = re.sub(r'^#\s*include\b', '#include "qemu/osdep.h"\n'
                          r'\g<0>', text, count=1, flags=re.M)
    # Comments and messages name files by their path in the project
    moved = {p: d[0] for p, d in files.items() if p not in (d[0], COMPAT)}
    for old, new in moved.items():
        text = re.sub(r'(?<![\w/.-])' + re.escape(old) + r'(?![\w/-])',
                      new, text)
    if path.endswith('.rst'):
        text = re.sub(r'``(docs/[\w./-]+)``',
                      lambda m: m.group(0) if m.group(1) in files
                      else "qemu-backdoor's " + m.group(0), text)
    for where, pattern, new in REWRITES:
        if where != path:
            continue
        text, n = re.subn(pattern, lambda m: new, text, count=1)
        if n != 1:
            die(f'{path} changed where {PROG} rewrites it (REWRITES: '
                f'{pattern!r}): update the rewrite')
    return text


# ---- QEMU's own files ----

def edit_top_meson(text):
    m = re.search(r"^( *)subdir\('hw'\)\n", text, re.M)
    if not m:
        die("meson.build has no subdir('hw') line")
    return text[:m.start()] + f"{m.group(1)}subdir('backdoor')\n" + \
        text[m.start():]


def edit_misc_kconfig(text):
    return text.rstrip('\n') + '\n' + """
config BACKDOOR
    bool
    default y if PCI_DEVICES
    depends on PCI
"""


def edit_misc_meson(text, sources):
    srcs = ', '.join(f"'{os.path.basename(s)}'" for s in sources)
    block = f"""
# The backdoor device: the module hw-misc-backdoor, which -device backdoor
# loads. current_cpu is reached without a __tls_get_addr call per guest
# call: it lives in the executable's static TLS.
if config_all_devices.has_key('CONFIG_BACKDOOR')
  backdoor_ss = ss.source_set()
  backdoor_ss.add(when: 'CONFIG_BACKDOOR',
                  if_true: [files({srcs}), backdoor_callbacks,
                            declare_dependency(compile_args:
                                               '-ftls-model=initial-exec')])
  hw_misc_modules += {{'backdoor': backdoor_ss}}
endif
"""
    if 'hw_misc_modules' in text:
        # A tree that has hw/misc modules already: add ours before they
        # are handed to modules.
        m = re.search(r"^modules \+= \{ *'hw-misc'", text, re.M)
        if not m:
            die('hw/misc/meson.build has hw_misc_modules but does not add '
                'them to modules')
        return text[:m.start()] + block.lstrip('\n') + '\n' + \
            text[m.start():]
    return text.rstrip('\n') + '\n\nhw_misc_modules = {}\n' + block + \
        "modules += {'hw-misc': hw_misc_modules}\n"


def edit_specs_index(text, names):
    m = re.search(r'\.\. toctree::\n(?:   :[^\n]*\n)*\n((?:   \S[^\n]*\n)+)',
                  text)
    if not m:
        die('docs/specs/index.rst has no toctree')
    add = ''.join(f'   {n}\n' for n in names)
    return text[:m.end(1)] + add + text[m.end(1):]


def backdoor_meson(sources, headers):
    srcs = ', '.join(f"'{os.path.basename(s)}'" for s in sources)
    hdrs = ',\n                  '.join(
        f"meson.project_source_root() / '{h}'" for h in headers)
    return f"""# SPDX-License-Identifier: GPL-2.0-or-later
# The host callback loader of the backdoor device (hw/misc/backdoor.c),
# compiled into its module. A library named without '/' is looked up in
# the current directory, then in backdoor_callbacks_dir, where packages
# put callback libraries (the directory of qemu-backdoor's packages).
backdoor_callbacks_dir = get_option('prefix') / get_option('libdir') / \\
  'qemu-backdoor' / 'callbacks'
backdoor_callbacks = [
  files({srcs}),
  declare_dependency(compile_args: '-DBACKDOOR_CALLBACKS_DIR="@0@"'.format(
    backdoor_callbacks_dir)),
]
# What callback libraries build against, installed like qemu-plugin.h
if config_all_devices.has_key('CONFIG_BACKDOOR')
  install_headers({hdrs})
endif
"""


# ---- the series ----

def wrap(text):
    """Fill the paragraphs of a commit message to 72 columns (those with
    an indented line stay as they are)."""
    paras = text.split('\n\n')
    return '\n\n'.join(p if re.search(r'^\s', p, re.M) else
                       textwrap.fill(' '.join(p.split()), 72) for p in paras)


def git(repo, *args, env=None):
    r = subprocess.run(['git', '-C', repo] + list(args), env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        die(f'git {" ".join(args)}: {r.stderr.strip()}')
    return r.stdout


def project_version():
    m = re.search(r"version:\s*'([^']+)'", read(os.path.join(ROOT,
                                                              'meson.build')))
    ver = m.group(1) if m else 'unknown'
    r = subprocess.run(['git', '-C', ROOT, 'describe', '--always', '--dirty'],
                       capture_output=True, text=True)
    return ver, r.stdout.strip() if r.returncode == 0 else ''


def source_date():
    if os.environ.get('SOURCE_DATE_EPOCH'):
        return os.environ['SOURCE_DATE_EPOCH']
    r = subprocess.run(['git', '-C', ROOT, 'log', '-1', '--format=%ct'],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() \
        else '0'


def qemu_version(src):
    try:
        v = read(os.path.join(src, 'VERSION')).strip()
    except OSError as e:
        die(f'{src} is not a QEMU source tree ({e.strerror}: VERSION)')
    m = re.match(r'(\d+)\.(\d+)\.(\d+)', v)
    if not m:
        die(f'{src}/VERSION says {v!r}, not a QEMU version')
    return tuple(int(x) for x in m.groups()), v


def main():
    ap = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Write a patch series that adds the backdoor device to '
        'the QEMU source tree QEMU_SRC (as the module hw-misc-backdoor, '
        'with its Kconfig, meson and module-table entries, the callback '
        'loader, the public headers and docs/specs/backdoor.rst), made '
        "from this checkout's sources for that tree's version. Known "
        "versions: those src/device/compat.h knows (7.2, 10.0).",
        epilog='Apply it with "patch -p1 < each", "git am OUT_DIR/*.patch" '
        'or quilt (OUT_DIR/series). docs/in-tree.rst has the build and the '
        'test (scripts/test-intree.sh).')
    ap.add_argument('qemu_src', metavar='QEMU_SRC',
                    help='the QEMU source tree to write the series for '
                    '(read only)')
    ap.add_argument('out_dir', metavar='OUT_DIR',
                    help='where the .patch files and the quilt series file '
                    'go (made if missing; must hold no .patch files)')
    ap.add_argument('--signoff', metavar='"NAME <EMAIL>"',
                    help="add a Signed-off-by line (QEMU's rule for patches "
                    'sent upstream)')
    ap.add_argument('--author', metavar='"NAME <EMAIL>"',
                    default='qemu-backdoor <qemu-backdoor@invalid>',
                    help='author of the patches (default: %(default)s)')
    args = ap.parse_args()
    if not shutil.which('git'):
        die("'git' is missing, which writes the patches (apt-get install git)")

    src = args.qemu_src
    version, version_text = qemu_version(src)
    for f in ('meson.build', 'hw/misc/Kconfig', 'hw/misc/meson.build',
              'docs/specs/index.rst'):
        if not os.path.isfile(os.path.join(src, f)):
            die(f'{src} has no {f}: not a QEMU source tree')
    if os.path.exists(os.path.join(src, 'hw/misc/backdoor.c')):
        die(f'{src} has hw/misc/backdoor.c already: give an unpatched tree')
    if os.path.isdir(args.out_dir) and any(
            n.endswith('.patch') for n in os.listdir(args.out_dir)):
        die(f'{args.out_dir} holds .patch files already: give an empty or '
            'new directory')

    # The files and where they go
    paths = closure(DEVICE)
    files = {p: place(p) for p in paths}
    compat_lines, compat_text = None, None
    if COMPAT in files:
        compat_lines, compat_text = compat_for_tree(
            read(os.path.join(ROOT, COMPAT)), version)
        if compat_lines is not None:
            del files[COMPAT]
    files[SPEC] = (SPEC, None, 3)

    new = {}        # QEMU path -> (text, patch)
    for p, (dest, _, patch) in files.items():
        if p == COMPAT:
            text = compat_text
        else:
            text = read(os.path.join(ROOT, p))
        new[dest] = (transform(p, text, version, files, compat_lines), patch)

    callbacks_c = [d for p, (d, _, n) in files.items()
                   if n == 1 and d.endswith('.c')]
    public_h = [d for p, (d, _, n) in files.items()
                if p.startswith('include/')]
    device_c = [d for p, (d, _, n) in files.items()
                if n == 2 and d.endswith('.c')]
    new['backdoor/meson.build'] = (backdoor_meson(callbacks_c, public_h), 1)

    edits = {       # QEMU path -> (edit, patch)
        'meson.build': (edit_top_meson, 1),
        'hw/misc/Kconfig': (edit_misc_kconfig, 2),
        'hw/misc/meson.build': (lambda t: edit_misc_meson(t, device_c), 2),
        'docs/specs/index.rst': (lambda t: edit_specs_index(t, ['backdoor']),
                                 3),
    }

    ver, describe = project_version()
    stamp = source_date()
    name, email = re.match(r'\s*(.*?)\s*<([^>]*)>', args.author).groups() \
        if re.match(r'.*<[^>]*>', args.author) else (args.author, '')
    env = dict(os.environ, GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email,
               GIT_AUTHOR_DATE=f'@{stamp} +0000',
               GIT_COMMITTER_DATE=f'@{stamp} +0000',
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM='1')
    work = tempfile.mkdtemp(prefix='make-qemu-patches-')
    try:
        git(work, 'init', '-q', env=env)
        for f in edits:
            os.makedirs(os.path.join(work, os.path.dirname(f)) or work,
                        exist_ok=True)
            shutil.copyfile(os.path.join(src, f), os.path.join(work, f))
        git(work, 'add', '-A', env=env)
        git(work, 'commit', '-q', '-m', f'QEMU {version_text}', env=env)
        for n in sorted(SUBJECTS):
            for f, (edit, patch) in edits.items():
                if patch == n:
                    path = os.path.join(work, f)
                    text = edit(read(path))
                    with open(path, 'w') as out:
                        out.write(text)
            for f, (text, patch) in sorted(new.items()):
                if patch == n:
                    path = os.path.join(work, f)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, 'w') as out:
                        out.write(text)
            subject, body = SUBJECTS[n]
            body = wrap(body.format(shared=', '.join(sorted(callbacks_c))))
            msg = (f'{subject}\n\n{body}\n\nGenerated for QEMU '
                   f'{version_text} by scripts/make-qemu-patches.py of\n'
                   f'qemu-backdoor {ver}'
                   f'{" (" + describe + ")" if describe else ""}.\n')
            if args.signoff:
                msg += f'\nSigned-off-by: {args.signoff}\n'
            git(work, 'add', '-A', env=env)
            git(work, 'commit', '-q', '-m', msg, env=env)
        os.makedirs(args.out_dir, exist_ok=True)
        out = git(work, 'format-patch', '--zero-commit',
                  '--no-signature', '-N' if len(SUBJECTS) == 1 else '-n',
                  '-o', os.path.abspath(args.out_dir), 'HEAD~%d' %
                  len(SUBJECTS), env=env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    patches = sorted(os.path.basename(p) for p in out.splitlines())
    with open(os.path.join(args.out_dir, 'series'), 'w') as f:
        f.write(''.join(p + '\n' for p in patches))
    for p in patches:
        print(os.path.join(args.out_dir, p))


if __name__ == '__main__':
    main()
