#!/usr/bin/env bash
# The main job: the pool demo in Rust, then the C, C++ and Go programs through libpgpool.so,
# all on one PostgreSQL: the URL given as the first argument or in DATABASE_URL, else a
# throwaway cluster this script starts and removes. Installs what a fresh Debian machine lacks.
#
#   ./scripts/demo.sh [URL] [-- extra `pgpool demo` options]
set -euo pipefail
cd "$(dirname "$0")/.."

url=${DATABASE_URL:-}
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  url=$1
  shift
fi
[ "${1:-}" = "--" ] && shift

bash scripts/setup.sh
cargo build --release --quiet -p pgpool-cli
cargo build --release --quiet --lib
bin="${CARGO_TARGET_DIR:-target}/release/pgpool"

if [ -z "$url" ]; then
  echo "No database URL given: starting a throwaway PostgreSQL (removed at exit)."
  # shellcheck source=scripts/lib/temp-cluster.sh
  . scripts/lib/temp-cluster.sh
  start_temp_cluster "$bin"
  url=$TEMP_CLUSTER_URL
  echo "  $url"
fi

echo
echo "=== Rust: pgpool demo"
"$bin" demo --url "$url" "$@"

echo
echo "=== C, C++ and Go through libpgpool.so"
bash scripts/run-c-examples.sh "$url"
