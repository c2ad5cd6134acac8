#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Prepare the sources of the installed Debian QEMU so that an out-of-tree
# device can be compiled against them: fetch them with apt-get source,
# configure them with Debian's pkgversion (so the module stamp matches the
# installed binaries) and generate only the headers a device includes.
#
# The prepared tree is cached per QEMU version; a second run returns at once.
# On success the last line of stdout is the prepared build directory.
set -eu

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

usage() {
    cat <<USAGE
Usage: $prog [--package PKG] [--cache DIR] [--private-apt]
       [--version VER --suite SUITE]

Fetch, configure and generate headers for the QEMU source that matches the
installed Debian package PKG (default: qemu-system-x86), and print the path
of the prepared build directory.

  --package PKG   Debian package whose QEMU to match (default qemu-system-x86)
  --cache DIR     cache directory (default \$QEMU_BACKDOOR_CACHE, else
                  \${XDG_CACHE_HOME:-\$HOME/.cache}/qemu-backdoor)
  --version VER   prepare the Debian source version VER instead of the
                  installed one (a tree to compile against, e.g. to check
                  the device against another release's QEMU; its stamp
                  matches no installed module)
  --suite SUITE   fetch sources from Debian SUITE (e.g. trixie) through a
                  private apt configuration in the cache; the system's apt
                  setup is left alone
  --private-apt   when the system's apt sources cannot fetch the sources,
                  use deb-src entries for the running release (and its
                  -updates and -security suites) in a private apt
                  configuration in the cache, instead of adding them to
                  the system's (qemu-backdoor-rebuild does this)
  -h, --help      show this help

Sources that need a newer meson than the installed one (QEMU 10.0 wants
1.5, Debian 12 has 1.0) get the meson of Debian 13 (trixie), fetched the
same private way and unpacked into a venv in the cache.

Needs root (or a deb-src entry already present, or --private-apt) the
first time, to add the deb-src entry for apt-get source.
USAGE
}

pkg=qemu-system-x86
cache=${QEMU_BACKDOOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-backdoor}
want='' suite='' private=0
while [ $# -gt 0 ]; do
    case $1 in
    --package) pkg=${2:?--package needs a value}; shift 2 ;;
    --cache) cache=${2:?--cache needs a value}; shift 2 ;;
    --version) want=${2:?--version needs a value}; shift 2 ;;
    --suite) suite=${2:?--suite needs a value}; shift 2 ;;
    --private-apt) private=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

# apt-get with a private configuration for Debian SUITE under the cache:
# the system's sources, pins and lists stay as they are.
apt_private() {
    apt-get -o Dir::Etc::SourceList="$aptdir/sources.list" \
        -o Dir::Etc::SourceParts="$aptdir/none" \
        -o Dir::Etc::Preferences="$aptdir/none/preferences" \
        -o Dir::Etc::PreferencesParts="$aptdir/none" \
        -o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" \
        -o Dir::State::status="$aptdir/status" "$@"
}
# apt_why CMD...: run apt-get CMD..., its errors also kept; on failure say
# the first one (apt-get update fails on any index it cannot fetch).
apt_why() {
    errs=$(mktemp)
    rc=0
    "$@" 2>"$errs" >&2 || rc=$?
    cat "$errs" >&2
    why=$(sed -n 's/^E: //p' "$errs" | head -n 1)
    rm -f "$errs"
    [ "$rc" = 0 ] || { why=${why:-exit status $rc}; return 1; }
}
# apt_private_init NAME WHAT: a private apt setup in $cache/apt-NAME whose
# sources.list is stdin, its lists read once (WHAT names them).
apt_private_init() {
    aptdir=$cache/apt-$1
    if [ ! -f "$aptdir/updated" ]; then
        mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" \
            "$aptdir/none"
        : > "$aptdir/status"
        cat > "$aptdir/sources.list"
        say "reading $2 (private apt setup in $aptdir)"
        apt_why apt_private update -qq --error-on=any ||
            die "apt-get update for $2 failed (no network?): $why"
        touch "$aptdir/updated"
    else
        cat >/dev/null
    fi
}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
apt_suite() {
    apt_private_init "$suite" "Debian $suite's package lists" <<SRC
deb [signed-by=$keyring] http://deb.debian.org/debian $suite main
deb-src [signed-by=$keyring] http://deb.debian.org/debian $suite main
SRC
    apt_private "$@"
}

if [ -n "$want" ]; then
    srcpkg=$(dpkg-query -W -f='${source:Package}' "$pkg" 2>/dev/null) ||
        srcpkg=qemu
    srcver=$want binver=$want
else
    binver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
        die "package $pkg is not installed (apt-get install $pkg)"
    [ -n "$binver" ] || die "package $pkg is not installed (apt-get install $pkg)"
    srcver=$(dpkg-query -W -f='${source:Version}' "$pkg")
    srcpkg=$(dpkg-query -W -f='${source:Package}' "$pkg")
fi
pkgversion="Debian $binver"

# Colons and other odd characters out of the directory name.
key=$(printf '%s' "$binver" | tr -c 'A-Za-z0-9.+~-' '_')
top=$cache/qemu-$key
build=$top/build
stampfile=$top/prepared

if [ -f "$stampfile" ]; then
    echo "$build"
    exit 0
fi

for tool in apt-get dpkg-source python3 ninja; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "'$tool' is missing (apt-get install dpkg-dev python3 ninja-build)"
done

mkdir -p "$top"
cd "$top"

if ! ls -d "$srcpkg"-*/ >/dev/null 2>&1 && [ -n "$suite" ]; then
    say "fetching $srcpkg=$srcver from $suite"
    chmod 0777 "$top" 2>/dev/null || true
    apt_why apt_suite source -qq "$srcpkg=$srcver" ||
        die "apt-get source $srcpkg=$srcver from $suite failed: $why"
elif ! ls -d "$srcpkg"-*/ >/dev/null 2>&1 && [ "$private" = 1 ] &&
    ! apt-get source --print-uris "$srcpkg=$srcver" >/dev/null 2>&1; then
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] ||
        die "no VERSION_CODENAME in /etc/os-release; add deb-src lines for $srcpkg=$srcver to apt's sources"
    lists="the source lists of Debian $codename"
    debian=http://deb.debian.org/debian
    apt_private_init "src-$codename" "$lists" <<SRC
deb-src [signed-by=$keyring] $debian $codename main
deb-src [signed-by=$keyring] $debian $codename-updates main
deb-src [signed-by=$keyring] $debian-security $codename-security main
SRC
    if ! apt_private source --print-uris "$srcpkg=$srcver" >/dev/null 2>&1; then
        # Lists read before a new upload: once more.
        apt_why apt_private update -qq --error-on=any ||
            die "apt-get update for $lists failed (no network?): $why"
        apt_private source --print-uris "$srcpkg=$srcver" >/dev/null 2>&1 ||
            die "Debian $codename has no source $srcpkg=$srcver" \
                "(deb.debian.org); add deb-src lines that have it to" \
                "apt's sources"
    fi
    say "fetching $srcpkg=$srcver"
    chmod 0777 "$top" 2>/dev/null || true
    apt_why apt_private source -qq "$srcpkg=$srcver" ||
        die "apt-get source $srcpkg=$srcver failed: $why"
elif ! ls -d "$srcpkg"-*/ >/dev/null 2>&1; then
    if ! apt-get source --print-uris "$srcpkg=$srcver" >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] ||
            die "no deb-src entry for $srcpkg=$srcver; run this once as root, or add deb-src lines for your release and its -security suite"
        # shellcheck disable=SC1091
        codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        [ -n "$codename" ] ||
            die "no VERSION_CODENAME in /etc/os-release; add deb-src lines for $srcpkg=$srcver yourself"
        say "adding deb-src entries for $codename"
        list=/etc/apt/sources.list.d/qemu-backdoor-src-$codename.sources
        cat > "$list" <<SRC
# Added by qemu-backdoor to fetch the sources of the installed QEMU.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        apt-get update -qq >&2 || die "apt-get update failed"
    fi
    say "fetching $srcpkg=$srcver"
    # apt-get source drops privileges to _apt for the download when it can.
    chmod 0777 "$top" 2>/dev/null || true
    apt_why apt-get source -qq "$srcpkg=$srcver" ||
        die "apt-get source $srcpkg=$srcver failed: $why"
fi
src=$(ls -d "$top/$srcpkg"-*/ | head -n 1)
src=${src%/}
[ -x "$src/configure" ] || die "no configure script in $src"

# Debian's own python3 and tools first: another python3 earlier in PATH
# lacks the modules configure needs.
PATH=/usr/bin:/bin:$PATH
export PATH

# QEMU 8.1 and later name the meson they accept in pythondeps.toml and
# expect it installed, since Debian strips the wheel QEMU ships. If the
# installed meson is older, use Debian 13's (pure Python, from Debian's
# archive) in a venv that still sees the system's other modules.
python_opt=
need=$(sed -n 's/^meson = { accepted = ">=\([0-9.]*\)".*/\1/p' \
       "$src/pythondeps.toml" 2>/dev/null) || need=
have=$(python3 -c 'from mesonbuild.coredata import version; print(version)' \
       2>/dev/null) || have=0
if [ -n "$need" ] && ! dpkg --compare-versions "$have" ge "$need"; then
    venv=$cache/meson-venv
    if ! "$venv/bin/python3" -c "from mesonbuild.coredata import version as v
import sys; from mesonbuild.mesonlib import version_compare as c
sys.exit(not c(v, '>=$need'))" 2>/dev/null; then
        say "meson $have is older than the $need these sources need: taking Debian 13's"
        suite=${QEMU_BACKDOOR_MESON_SUITE:-trixie}
        tmp=$(mktemp -d "$cache/.meson-XXXXXX")
        chmod 0777 "$tmp"
        (cd "$tmp" && apt_suite download -qq meson >&2) ||
            die "apt-get download meson from $suite failed"
        dpkg-deb -x "$tmp"/meson_*.deb "$tmp/x" || die "cannot unpack meson"
        rm -rf "$venv"
        /usr/bin/python3 -m venv --system-site-packages "$venv" ||
            die "python3 -m venv failed (apt-get install python3-venv)"
        site=$("$venv/bin/python3" -c \
               'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        cp -a "$tmp"/x/usr/lib/python3/dist-packages/. "$site/"
        rm -rf "$tmp"
    fi
    # Only here: 7.2's configure refuses --python without its own meson.
    python_opt=--python=$venv/bin/python3
fi

say "configuring $src for '$pkgversion'"
rm -rf "$build"
mkdir -p "$build"
cd "$build"
"$src/configure" \
    --target-list=x86_64-softmmu \
    --enable-modules --enable-plugins \
    --disable-docs --disable-werror --disable-install-blobs \
    ${python_opt:+"$python_opt"} \
    --with-pkgversion="$pkgversion" >configure.log 2>&1 ||
    die "configure failed, see $build/configure.log (missing build deps? apt-get install libglib2.0-dev libpixman-1-dev libfdt-dev)"

say "generating headers"
ninja -t targets all 2>/dev/null | sed -n 's/^\(\(qapi\|trace\)\/[^:]*\.h\):.*/\1/p' \
    > headers.list
ninja config-host.h qemu-version.h config-poison.h $(cat headers.list) \
    >ninja.log 2>&1 || die "header generation failed, see $build/ninja.log"

echo "$binver" > "$stampfile"
echo "$build"
