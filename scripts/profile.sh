#!/usr/bin/env bash
# Client-side cost per query of the end-to-end `SELECT $1::int4` loop, one thread, measured
# with valgrind (callgrind) and strace on a throwaway PostgreSQL cluster:
#
#   bash scripts/profile.sh [QUERIES]      (default 5000; needs valgrind and strace)
#
# Every contender runs QUERIES and then 2 x QUERIES queries; the difference of the two runs
# divided by QUERIES is the cost of one query with start-up, connect and exit subtracted.
# Columns: user-space instructions (callgrind Ir, whole client process, every thread),
# allocations (calls of malloc + calloc + realloc counted by callgrind) and system calls
# (strace -c -f). Contenders: pgpool's own client (one session, statement prepared once),
# the raw postgres::Client, pgpool's Rust API (acquire + query through the statement cache +
# release, pool of 8), the C driver benches/c/select1.c through libpgpool.so (pool of 8) and
# pgbench -M prepared (libpq; `SELECT :one::int4` with -D one=1, so a text parameter like
# the C driver, and the suite's `SELECT 1;`). The server is not measured.
#
# Also writes, under $CARGO_TARGET_DIR/profile/: the callgrind files, per-function self and
# inclusive instructions per query for each contender (FUNCTIONS-<contender>.txt) and the
# strace summaries. Respects CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
queries=${1:-5000}
case "$queries" in '' | *[!0-9]*)
  echo "profile: QUERIES must be a number" >&2
  exit 2
  ;;
esac
for tool in valgrind callgrind_annotate strace cc python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "profile: $tool not found (apt-get install valgrind strace postgresql-contrib)" >&2
    exit 1
  fi
done

# The real pgbench, not Debian's wrapper script (valgrind would profile the wrapper).
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/pgbench" ]; then
  bindir=$(find /usr/lib/postgresql -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
fi
pgbench=$bindir/pgbench
if [ ! -x "$pgbench" ]; then
  echo "profile: pgbench not found (pg_config --bindir or /usr/lib/postgresql/*/bin)" >&2
  exit 1
fi

target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
out="$target_dir/profile"
rm -rf "$out"
mkdir -p "$out"

echo "profile: building (release)" >&2
cargo build --release --quiet --lib
cargo build --release --quiet -p pgpool-cli
suite=$(cargo bench --bench suite --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*suite-[0-9a-f]*\)).*/\1/p' | tail -n 1)
if [ ! -x "$suite" ]; then
  echo "profile: cannot find the suite's executable" >&2
  exit 1
fi
# The driver loads the library by its SONAME, libpgpool.so.<major> (build.rs).
# shellcheck source=scripts/lib/version.sh
. scripts/lib/version.sh
ln -sf libpgpool.so "$target_dir/release/libpgpool.so.$(pgpool_abi)"
cc -O2 -std=c11 -Wall -Wextra -Iinclude benches/c/select1.c \
  -L"$target_dir/release" -Wl,-rpath,"$target_dir/release" -lpgpool -lpthread \
  -o "$out/select1-c"
printf 'SELECT :one::int4;\n' >"$out/param.sql"
printf 'SELECT 1;\n' >"$out/select1.sql"

# shellcheck source=scripts/lib/temp-cluster.sh
. scripts/lib/temp-cluster.sh
start_temp_cluster "$target_dir/release/pgpool"
url=$TEMP_CLUSTER_URL
echo "profile: cluster at $url, $queries and $((2 * queries)) queries per contender" >&2

# name|command with @N@ for the number of queries
contenders=(
  "pgpool-client|$suite --child-profile client @N@ $url"
  "raw postgres::Client|$suite --child-profile raw @N@ $url"
  "pgpool Rust API (pool 8)|$suite --child-profile pool @N@ $url"
  "pgpool C ABI (pool 8)|$out/select1-c $url 1 8 0 - @N@"
  "pgbench -M prepared, \$1 param|$pgbench -n -M prepared -c 1 -j 1 -t @N@ -D one=1 -f $out/param.sql $url"
  "pgbench -M prepared, SELECT 1|$pgbench -n -M prepared -c 1 -j 1 -t @N@ -f $out/select1.sql $url"
)

i=0
for entry in "${contenders[@]}"; do
  name=${entry%%|*}
  template=${entry#*|}
  i=$((i + 1))
  echo "$name" >"$out/$i.name"
  for n in "$queries" "$((2 * queries))"; do
    cmd=${template//@N@/$n}
    echo "profile: $name, $n queries" >&2
    # shellcheck disable=SC2086 # the command is split on purpose
    valgrind -q --tool=callgrind --callgrind-out-file="$out/$i.$n.callgrind" $cmd \
      >"$out/$i.$n.stdout" 2>"$out/$i.$n.valgrind"
    # shellcheck disable=SC2086
    strace -f -c -o "$out/$i.$n.strace" $cmd >/dev/null 2>"$out/$i.$n.stderr"
    callgrind_annotate --auto=no --threshold=100 --inclusive=no "$out/$i.$n.callgrind" \
      >"$out/$i.$n.self" 2>/dev/null
    callgrind_annotate --auto=no --threshold=100 --inclusive=yes "$out/$i.$n.callgrind" \
      >"$out/$i.$n.incl" 2>/dev/null
  done
done

python3 - "$out" "$queries" "$i" <<'EOF'
import re
import sys

out, n, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ALLOC = {"malloc", "calloc", "realloc"}


def totals(path):
    """Total Ir and allocation calls of one callgrind file."""
    names, ir, allocs, current = {}, 0, 0, None
    for line in open(path, errors="replace"):
        if line.startswith(("summary:", "totals:")):
            ir = int(line.split()[1])
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(2) is not None:
                names[m.group(1)] = re.sub(r"'\d+$", "", m.group(2).strip())
            current = names.get(m.group(1)) if line.startswith("cfn=") else None
            continue
        if line.startswith("calls=") and current in ALLOC:
            allocs += int(line[6:].split()[0])
    return ir, allocs


def syscalls(path):
    calls = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    return calls


def functions(path):
    costs = {}
    for line in open(path, errors="replace"):
        m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)(?: \[.*\])?$", line)
        if m and ":" in m.group(2):
            name = m.group(2).split(":", 1)[1]
            costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


rows = []
for i in range(1, count + 1):
    name = open(f"{out}/{i}.name").read().strip()
    a, b = f"{out}/{i}.{n}", f"{out}/{i}.{2 * n}"
    (ir1, al1), (ir2, al2) = totals(a + ".callgrind"), totals(b + ".callgrind")
    s1, s2 = syscalls(a + ".strace"), syscalls(b + ".strace")
    diff = {k: (s2.get(k, 0) - s1.get(k, 0)) / n for k in set(s1) | set(s2)}
    per = ", ".join(f"{k} {v:.2f}" for k, v in sorted(diff.items(), key=lambda kv: -kv[1])
                    if abs(v) >= 0.05)
    rows.append((name, (ir2 - ir1) / n, (al2 - al1) / n, sum(diff.values()), per))
    with open(f"{out}/FUNCTIONS-{i}.txt", "w") as f:
        f.write(f"{name}: instructions per query by function ({n} vs {2 * n} queries)\n")
        for kind in ("self", "incl"):
            f1, f2 = functions(a + "." + kind), functions(b + "." + kind)
            d = {k: (f2.get(k, 0) - f1.get(k, 0)) / n for k in set(f1) | set(f2)}
            f.write(f"\n{kind}:\n")
            for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:40]:
                if v >= 20:
                    f.write(f"{v:10.0f}  {k}\n")

print(f"Per query, {n} vs {2 * n} queries, 1 thread (start-up subtracted):\n")
print("| contender | instructions | allocations | system calls | of which |")
print("| --- | --- | --- | --- | --- |")
for name, ir, al, sc, per in rows:
    print(f"| {name} | {ir:,.0f} | {al:.1f} | {sc:.2f} | {per} |")
print(f"\nPer-function breakdowns: {out}/FUNCTIONS-*.txt")
EOF
