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

echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# Portability: the library must build where Linux-only calls are unavailable. FreeBSD is
# checked when its standard library is installed (`rustup target add x86_64-unknown-freebsd`).
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-freebsd; then
  echo "== cargo check --lib --target x86_64-unknown-freebsd"
  cargo check --quiet --lib --target x86_64-unknown-freebsd
else
  echo "== portability check skipped: x86_64-unknown-freebsd is not installed"
fi

target_dir="${CARGO_TARGET_DIR:-target}"
if [ -z "${PGPOOL_TEST_URL:-}" ]; then
  echo "== starting a throwaway PostgreSQL for the tests"
  cargo build --quiet -p pgpool-cli
  # shellcheck source=scripts/lib/temp-cluster.sh
  . scripts/lib/temp-cluster.sh
  start_temp_cluster "$target_dir/debug/pgpool"
  PGPOOL_TEST_URL=$TEMP_CLUSTER_URL
  export PGPOOL_TEST_URL
  echo "   $PGPOOL_TEST_URL"
fi

# The network-cut tests (tests/netns_faults.rs) need network namespaces. Where this shell can
# make one (root with CAP_NET_ADMIN, as in CI) they are required: a skip would be a failure.
# Elsewhere they print "skipped: no netns (...)".
probe_ns="pgpool-probe-$$"
if [ -z "${PGPOOL_REQUIRE_NETNS:-}" ] && command -v ip >/dev/null 2>&1 &&
  ip netns add "$probe_ns" >/dev/null 2>&1; then
  ip netns del "$probe_ns" >/dev/null 2>&1 || true
  export PGPOOL_REQUIRE_NETNS=1
  echo "== network namespaces available: the network-cut tests are required"
fi

# The status page test (crates/pgpool-cli/tests/tools.rs) loads the page in headless Chromium.
# As root, setup.sh installs it, and then a missing browser is a failure, not a skip.
if [ "$(id -u)" -eq 0 ] && command -v chromium >/dev/null 2>&1; then
  export PGPOOL_REQUIRE_CHROMIUM=1
fi

# tests/pgbouncer.rs runs pgpool behind throwaway PgBouncers (never the machine's own on 6432).
# As root, setup.sh installs pgbouncer, and then a missing one is a failure, not a skip.
if [ "$(id -u)" -eq 0 ] && { command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; }; then
  export PGPOOL_REQUIRE_PGBOUNCER=1
fi

echo "== cargo test --workspace"
# The library, its integration and doc tests (among them the installation, tests/install.rs),
# the test kit and the command-line program (crates/); benchmarks run below, in their smoke
# mode. `test-hooks` adds an exported panic trigger so the C tests can check the panic boundary.
log=$(mktemp)
status=0
cargo test --workspace --no-fail-fast --features pgpool/test-hooks 2>&1 | tee "$log" || status=$?
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) {
    if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
  END { print p + 0, f + 0 }' "$log")
rm -f "$log"

if [ -f scripts/bench.sh ]; then
  echo "== benchmark smoke run"
  bash scripts/bench.sh --quick
fi

echo
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
