#!/bin/sh
# Builds the C library (release) and installs it for C, C++ and other FFI users:
#
#   $DESTDIR$PREFIX/lib/libpgpool.so.X.Y.Z     the shared library, SONAME libpgpool.so.X
#   $DESTDIR$PREFIX/lib/libpgpool.so.X         -> libpgpool.so.X.Y.Z (what programs load)
#   $DESTDIR$PREFIX/lib/libpgpool.so           -> libpgpool.so.X (what -lpgpool finds)
#   $DESTDIR$PREFIX/lib/libpgpool.a            the static library
#   $DESTDIR$PREFIX/include/pgpool*.h*         the headers (include/pgpool.h, ...)
#   $DESTDIR$PREFIX/lib/pkgconfig/pgpool.pc    for pkg-config
#
# X is the major version of the package, the ABI version (0 until 1.0). On macOS the names
# are libpgpool.X.Y.Z.dylib, libpgpool.X.dylib and libpgpool.dylib.
#
#   scripts/install.sh [--prefix DIR] [--destdir DIR] [--libdir DIR] [--includedir DIR]
#                      [--no-build] [--no-ldconfig]
#
# --prefix     where the files will live at run time (default /usr/local); written into pgpool.pc
# --destdir    a staging root prepended to every path (for packaging); not written anywhere
# --libdir     default PREFIX/lib;  --includedir  default PREFIX/include
# --no-build   install what target/release already holds instead of running cargo build
# --no-ldconfig  skip refreshing the loader cache (done as root, without --destdir, when LIBDIR
#              is one the system loader searches, e.g. /usr/local/lib on Debian)
#
# Needs cargo and a POSIX shell. Respects CARGO_TARGET_DIR. Running it again replaces the
# files (each is copied under a temporary name and renamed into place, so programs using the
# old library keep their copy).
set -eu

usage() {
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "install.sh: $*" >&2
  exit 2
}

prefix=/usr/local
destdir=
libdir=
includedir=
build=1
ldconfig=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; destdir=$2; shift ;;
    --destdir=*) destdir=${1#*=} ;;
    --libdir) [ $# -ge 2 ] || die "--libdir needs a directory"; libdir=$2; shift ;;
    --libdir=*) libdir=${1#*=} ;;
    --includedir) [ $# -ge 2 ] || die "--includedir needs a directory"; includedir=$2; shift ;;
    --includedir=*) includedir=${1#*=} ;;
    --no-build) build=0 ;;
    --no-ldconfig) ldconfig=0 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
destdir=${DESTDIR:-$destdir}
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path: $prefix" ;; esac
prefix=${prefix%/}
[ -n "$libdir" ] || libdir=$prefix/lib
[ -n "$includedir" ] || includedir=$prefix/include
case "$libdir" in /*) ;; *) die "--libdir must be an absolute path: $libdir" ;; esac
case "$includedir" in /*) ;; *) die "--includedir must be an absolute path: $includedir" ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/version.sh
. "$root/scripts/lib/version.sh"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
release=$target/release

version=$(pgpool_version)
abi=${version%%.*}

case "$(uname -s)" in
  Darwin)
    built=libpgpool.dylib
    real=libpgpool.$version.dylib
    soname=libpgpool.$abi.dylib
    link=libpgpool.dylib
    libs_private="-framework Security -framework CoreFoundation -liconv -lSystem -lc -lm"
    ;;
  *)
    built=libpgpool.so
    real=libpgpool.so.$version
    soname=libpgpool.so.$abi
    link=libpgpool.so
    # What the static library needs from the system, as reported by
    # `cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs`.
    libs_private="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
    ;;
esac
libs_private=${PGPOOL_LIBS_PRIVATE:-$libs_private}

if [ "$build" -eq 1 ]; then
  echo "== cargo build --release --lib -p pgpool"
  cargo build --release --lib -p pgpool
fi
for f in "$built" libpgpool.a; do
  [ -f "$release/$f" ] || die "$release/$f is missing (run without --no-build)"
done

# copy SRC DEST MODE: through a temporary name in DEST's directory, then renamed into place.
copy() {
  _tmp=$(dirname "$2")/.$(basename "$2").tmp.$$
  rm -f "$_tmp"
  cp "$1" "$_tmp"
  chmod "$3" "$_tmp"
  mv -f "$_tmp" "$2"
}

# symlink TARGET NAME: NAME (a path) becomes a symlink to TARGET (relative to NAME's directory).
symlink() {
  _tmp=$(dirname "$2")/.$(basename "$2").tmp.$$
  rm -f "$_tmp"
  ln -s "$1" "$_tmp"
  mv -f "$_tmp" "$2"
}

lib_dest=$destdir$libdir
include_dest=$destdir$includedir
pc_dest=$lib_dest/pkgconfig
mkdir -p "$lib_dest" "$include_dest" "$pc_dest"

copy "$release/$built" "$lib_dest/$real" 755
symlink "$real" "$lib_dest/$soname"
symlink "$soname" "$lib_dest/$link"
copy "$release/libpgpool.a" "$lib_dest/libpgpool.a" 644

headers=0
for h in "$root"/include/pgpool*.h*; do
  [ -f "$h" ] || continue
  copy "$h" "$include_dest/$(basename "$h")" 644
  headers=$((headers + 1))
done
[ "$headers" -gt 0 ] || die "no include/pgpool*.h* headers (a cargo build writes include/pgpool.h)"

# pgpool.pc: paths relative to ${prefix} where they are under it, as pkg-config users expect.
pc_path() {
  case "$1" in
    "$prefix") printf '%s\n' '${prefix}' ;;
    "$prefix"/*) printf '%s\n' "\${prefix}${1#"$prefix"}" ;;
    *) printf '%s\n' "$1" ;;
  esac
}
description=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
pc_tmp=$pc_dest/.pgpool.pc.tmp.$$
cat >"$pc_tmp" <<PC
prefix=$prefix
libdir=$(pc_path "$libdir")
includedir=$(pc_path "$includedir")

Name: pgpool
Description: $description
Version: $version
Libs: -L\${libdir} -lpgpool
Libs.private: $libs_private
Cflags: -I\${includedir}
PC
chmod 644 "$pc_tmp"
mv -f "$pc_tmp" "$pc_dest/pgpool.pc"

# A new library in a directory of the loader's cache is found only once the cache is rebuilt.
if [ "$ldconfig" -eq 1 ] && [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ] && [ "$(uname -s)" = Linux ] &&
  command -v ldconfig >/dev/null 2>&1; then
  case "$libdir" in
    /lib | /usr/lib | /lib64 | /usr/lib64) cached=1 ;;
    *) cached=0
      if cat /etc/ld.so.conf /etc/ld.so.conf.d/*.conf 2>/dev/null | grep -qx "[[:space:]]*$libdir/\{0,1\}[[:space:]]*"; then
        cached=1
      fi ;;
  esac
  if [ "$cached" -eq 1 ]; then
    echo "== ldconfig"
    ldconfig || echo "install.sh: ldconfig failed; run it before using the library" >&2
  fi
fi

echo "== installed pgpool $version (ABI $abi) into $destdir$prefix"
echo "   $lib_dest/$real"
echo "   $lib_dest/$soname -> $real"
echo "   $lib_dest/$link -> $soname"
echo "   $lib_dest/libpgpool.a"
for h in "$root"/include/pgpool*.h*; do
  [ -f "$h" ] && echo "   $include_dest/$(basename "$h")"
done
echo "   $pc_dest/pgpool.pc"
