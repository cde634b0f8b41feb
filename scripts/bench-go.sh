#!/usr/bin/env bash
# Go benchmark: package pgpool (go/, libpgpool through cgo) against pgx's pgxpool on the
# PostgreSQL at URL; SELECT $1::int4 at 1, 4 and 16 goroutines on pools of 8, q/s, p99,
# CPU per query and cgo calls per query (go/bench/). Reports only.
#
# Usage: scripts/bench-go.sh URL [extra flags for go/bench, e.g. -duration 5s -rounds 3]
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 URL [bench flags]" >&2
  exit 2
fi
url="$1"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
lib="$target/release"
if [ ! -f "$lib/libpgpool.so" ] || [ -n "$(find "$root/src" "$root/Cargo.toml" -newer "$lib/libpgpool.so" -print -quit)" ]; then
  echo "== cargo build --release --lib"
  (cd "$root" && cargo build --release --lib)
fi
cd "$root/go/bench"
export CGO_CFLAGS="-I$root/include"
export CGO_LDFLAGS="-L$lib -Wl,-rpath,$lib -lpgpool"
out="$target/go-bench"
mkdir -p "$out"
go build -tags pgpool_nopkgconfig -o "$out/bench" .
exec "$out/bench" -url "$url" "$@"
