#!/usr/bin/env bash
# Runs every test: formatting, lints, the Rust unit/integration/doc tests (pool logic, the pool
# against a real PostgreSQL, real faults, the C ABI and the C/C++/Go programs, the CLI), and a
# smoke run of the benchmarks. Installs what a fresh Debian machine lacks (scripts/setup.sh).
#
# One throwaway PostgreSQL is shared by every test binary (tests that stop or restart a server
# start private ones). Set PGPOOL_TEST_URL to use an existing server instead (a superuser).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

target_dir="${CARGO_TARGET_DIR:-target}"
if [ -z "${PGPOOL_TEST_URL:-}" ]; then
  echo "== starting a throwaway PostgreSQL for the tests"
  cargo build --quiet --bin pgpool
  state=$(mktemp -d)
  mkfifo "$state/stdin"
  "$target_dir/debug/pgpool" temp-cluster <"$state/stdin" >"$state/url" 2>"$state/log" &
  cluster_pid=$!
  exec 3>"$state/stdin" # the cluster lives until this descriptor closes
  stop_cluster() {
    exec 3>&-
    wait "$cluster_pid" 2>/dev/null || true
    rm -rf "$state"
  }
  trap stop_cluster EXIT
  for _ in $(seq 1 600); do
    [ -s "$state/url" ] && break
    kill -0 "$cluster_pid" 2>/dev/null || { cat "$state/log" >&2; exit 1; }
    sleep 0.1
  done
  PGPOOL_TEST_URL=$(head -n 1 "$state/url")
  [ -n "$PGPOOL_TEST_URL" ] || { echo "no URL from temp-cluster" >&2; cat "$state/log" >&2; exit 1; }
  export PGPOOL_TEST_URL
  echo "   $PGPOOL_TEST_URL"
fi

echo "== cargo test"
# Library, binaries, integration tests and doc tests (benchmarks run below, in their smoke mode).
cargo test --no-fail-fast

if [ -f scripts/bench.sh ]; then
  echo "== benchmark smoke run"
  bash scripts/bench.sh --quick
fi
