#!/usr/bin/env bash
# Runs the pgpool benchmark suite (benches/suite/) on one throwaway PostgreSQL cluster:
# pool overhead, end-to-end SELECT (TCP and unix socket) against r2d2, the raw driver,
# pgpool's own client one per thread, pgbench and connect-per-query, the C ABI through
# libpgpool.so, overload fairness, memory and a TPC-B mix. The targets (met or missed, from
# ratios measured in the same run) are defined in benches/suite/report.rs.
#
#   bash scripts/bench.sh          full run (about 10 minutes): writes docs/PERFORMANCE.md,
#                                  docs/perf/results.json and docs/perf/*.png
#   bash scripts/bench.sh --quick  smoke run of every scenario (well under 2 minutes once
#                                  built): writes target/bench-quick/ only, never docs/
#
# On a fresh Debian/Ubuntu machine (as root) it installs what it needs: PostgreSQL with
# pgbench and a C compiler (scripts/setup.sh) and, for the plots, python3-matplotlib.
# Respects CARGO_TARGET_DIR. Exits non-zero when any step or scenario fails.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h | --help)
      sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "bench: unknown argument $arg (use --quick or nothing)" >&2
      exit 2
      ;;
  esac
done

log() { echo "bench: $*" >&2; }

bash scripts/setup.sh
if ! command -v cargo >/dev/null 2>&1; then
  log "cargo not found: install Rust (https://rustup.rs) first"
  exit 1
fi

target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
if [ "$quick" -eq 1 ]; then
  out="$root/target/bench-quick"
  command_line="bash scripts/bench.sh --quick"
  limit=300
else
  out="$root/docs"
  command_line="bash scripts/bench.sh"
  limit=1500
fi
work="$target_dir/bench-build"
mkdir -p "$out/perf" "$work"

log "building (release)"
cargo build --release --lib --quiet
cargo bench --bench suite --no-run --quiet

# The C driver links to libpgpool.so; without the C API header it is reported as skipped.
driver_args=()
if [ -f include/pgpool.h ] && [ -f "$target_dir/release/libpgpool.so" ]; then
  # The driver loads the library by its SONAME, libpgpool.so.<major> (build.rs).
  # shellcheck source=scripts/lib/version.sh
  . scripts/lib/version.sh
  ln -sf libpgpool.so "$target_dir/release/libpgpool.so.$(pgpool_abi)"
  cc -O2 -std=c11 -Wall -Wextra -Iinclude benches/c/select1.c \
    -L"$target_dir/release" -Wl,-rpath,"$target_dir/release" -lpgpool -lpthread \
    -o "$work/select1-c"
  driver_args=(--c-driver "$work/select1-c")
else
  log "include/pgpool.h or libpgpool.so missing: the C ABI contender is skipped"
fi

log "running the suite (output: $out)"
suite_args=(--out "$out" --command "$command_line" "${driver_args[@]}")
if [ "$quick" -eq 1 ]; then
  suite_args+=(--quick)
fi
timeout --kill-after=10 "$limit" cargo bench --bench suite --quiet -- "${suite_args[@]}"

# Plots: matplotlib from Debian's package (installed here when missing and root).
python=""
for candidate in /usr/bin/python3 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import matplotlib' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ] && [ "$quick" -eq 0 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  log "installing python3-matplotlib for the plots"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-matplotlib >/dev/null
  python=/usr/bin/python3
fi
if [ -n "$python" ]; then
  "$python" scripts/bench_plot.py "$out/perf/results.json" "$out/perf"
elif [ "$quick" -eq 1 ]; then
  log "matplotlib not installed: no plots in the smoke run"
else
  log "matplotlib not available: install python3-matplotlib and rerun for the plots"
  exit 1
fi
# Go: the pgpool Go module against pgx's pgxpool, alternating in one run on a cluster of its
# own (pgx comes from the Go module proxy). Appended to the report; short points when quick.
go_args=(-duration 3s -rounds 2)
if [ "$quick" -eq 1 ]; then
  go_args=(-duration 200ms -rounds 1)
fi
if command -v go >/dev/null 2>&1; then
  log "Go: pgpool (cgo) vs pgxpool"
  cargo build --release --quiet -p pgpool-cli
  # shellcheck source=scripts/lib/temp-cluster.sh
  . scripts/lib/temp-cluster.sh
  start_temp_cluster "$target_dir/release/pgpool"
  go_table=$(bash scripts/bench-go.sh "$TEMP_CLUSTER_URL" "${go_args[@]}")
  {
    echo
    echo "## Go: the pgpool module vs pgx's pgxpool"
    echo
    echo "\`bash scripts/bench-go.sh URL ${go_args[*]}\` (run by \`$command_line\` on a"
    echo "throwaway cluster of its own): \`SELECT \$1::int4\` through \`Pool.QueryRow(...).Scan\`,"
    echo "pools of 8, both contenders alternating. Targets: ≥ 1.0× pgxpool's q/s, ≤ 1.0× its CPU"
    echo "per query."
    echo
    echo '```text'
    echo "$go_table"
    echo '```'
  } >>"$out/PERFORMANCE.md"
else
  log "go not found: the Go benchmark is skipped"
fi
log "done: $out/PERFORMANCE.md"
