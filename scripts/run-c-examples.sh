#!/usr/bin/env bash
# Builds libpgpool.so (release, if missing or older than the sources) and builds and runs the
# C, C++ and Go examples of examples-c/ against the PostgreSQL at URL.
#
# Usage: scripts/run-c-examples.sh URL      (build outputs go under target/)
set -euo pipefail

url="${1:-${DATABASE_URL:-}}"
if [ -z "$url" ]; then
  echo "usage: $0 URL (or set DATABASE_URL)" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
lib="$target/release"
out="$target/examples-c"
mkdir -p "$out"

if [ ! -f "$lib/libpgpool.so" ] || [ -n "$(find "$root/src" "$root/Cargo.toml" -newer "$lib/libpgpool.so" -print -quit)" ]; then
  echo "== building libpgpool.so (release)"
  (cd "$root" && cargo build --release --lib)
fi
# Programs linked with -lpgpool load the library by its SONAME, libpgpool.so.<major> (build.rs),
# which an installation provides as a symlink (scripts/install.sh); so does the build tree here.
# shellcheck source=scripts/lib/version.sh
. "$root/scripts/lib/version.sh"
abi=$(cd "$root" && pgpool_abi)
ln -sf libpgpool.so "$lib/libpgpool.so.$abi"

cflags=(-I"$root/include" -L"$lib" -Wl,-rpath,"$lib" -lpgpool -lpthread -Wall -Wextra -O2)

echo "== C: pthread workers sharing one pool (examples-c/workers.c)"
cc -std=c99 -D_DEFAULT_SOURCE "$root/examples-c/workers.c" -o "$out/workers" "${cflags[@]}"
"$out/workers" "$url" 8 100

echo "== C++17: RAII wrapper (examples-c/raii.cpp)"
c++ -std=c++17 "$root/examples-c/raii.cpp" -o "$out/raii" "${cflags[@]}"
"$out/raii" "$url"

echo "== Go: goroutines through the Go module (examples-c/go, module go/)"
(
  cd "$root/examples-c/go"
  # The in-repo library instead of an installed one: pgpool_nopkgconfig takes the flags from
  # CGO_CFLAGS/CGO_LDFLAGS (go/README.md).
  GOFLAGS=-mod=mod GOCACHE="$out/go-cache" \
    CGO_CFLAGS="-I$root/include" CGO_LDFLAGS="-L$lib -Wl,--disable-new-dtags,-rpath,$lib -lpgpool" \
    go build -tags pgpool_nopkgconfig -o "$out/pgpool-go-example" .
)
"$out/pgpool-go-example" "$url"
