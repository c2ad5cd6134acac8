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
Usage: $prog [--package PKG] [--cache DIR]

Fetch, configure and generate headers for the QEMU source that matches the
installed Debian package PKG (default: qemu-system-x86), and print the path
of the prepared build directory.

  --package PKG   Debian package whose QEMU to match (default qemu-system-x86)
  --cache DIR     cache directory (default \$QEMU_BACKDOOR_CACHE, else
                  \${XDG_CACHE_HOME:-\$HOME/.cache}/qemu-backdoor)
  -h, --help      show this help

Needs root (or a deb-src entry already present) the first time, to add the
deb-src entry for apt-get source.
USAGE
}

pkg=qemu-system-x86
cache=${QEMU_BACKDOOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-backdoor}
while [ $# -gt 0 ]; do
    case $1 in
    --package) pkg=${2:?--package needs a value}; shift 2 ;;
    --cache) cache=${2:?--cache needs a value}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

binver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
    die "package $pkg is not installed (apt-get install $pkg)"
[ -n "$binver" ] || die "package $pkg is not installed (apt-get install $pkg)"
srcver=$(dpkg-query -W -f='${source:Version}' "$pkg")
srcpkg=$(dpkg-query -W -f='${source:Package}' "$pkg")
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

if ! ls -d "$srcpkg"-*/ >/dev/null 2>&1; then
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
    apt-get source -qq "$srcpkg=$srcver" >&2 ||
        die "apt-get source $srcpkg=$srcver failed"
fi
src=$(ls -d "$top/$srcpkg"-*/ | head -n 1)
src=${src%/}
[ -x "$src/configure" ] || die "no configure script in $src"

# Debian's own python3 and tools first: another python3 earlier in PATH
# lacks the modules configure needs.
PATH=/usr/bin:/bin:$PATH
export PATH

say "configuring $src for '$pkgversion'"
rm -rf "$build"
mkdir -p "$build"
cd "$build"
"$src/configure" \
    --target-list=x86_64-softmmu \
    --enable-modules --enable-plugins \
    --disable-docs --disable-werror --disable-install-blobs \
    --with-pkgversion="$pkgversion" >configure.log 2>&1 ||
    die "configure failed, see $build/configure.log (missing build deps? apt-get install libglib2.0-dev libpixman-1-dev libfdt-dev)"

say "generating headers"
ninja -t targets all 2>/dev/null | sed -n 's/^\(\(qapi\|trace\)\/[^:]*\.h\):.*/\1/p' \
    > headers.list
ninja config-host.h qemu-version.h config-poison.h $(cat headers.list) \
    >ninja.log 2>&1 || die "header generation failed, see $build/ninja.log"

echo "$binver" > "$stampfile"
echo "$build"
