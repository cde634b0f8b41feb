//! Writes `results.json` and `PERFORMANCE.md`: the machine, the command, the targets and one
//! table per scenario with absolute figures and ratios against the reference.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::common::{fmt_num, Row};
use crate::e2e::{
    pooled_name, CLIENT, CONNECT, PGBENCH_PREPARED, PGBENCH_SIMPLE, PGPOOL, PGPOOL_C, R2D2_DEFAULT,
    R2D2_TUNED, RAW,
};
use crate::mix::{MEM_PGPOOL, MEM_R2D2, TPCB_PGPOOL, TPCB_PREPARED};
use crate::overhead::NO_HISTOGRAMS;

/// Where and how the run happened.
pub struct Meta {
    pub fields: Vec<(&'static str, String)>,
    pub command: String,
    pub quick: bool,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Meta {
    pub fn collect(command: &str, server: &str, quick: bool, took: Duration) -> Meta {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let fields = vec![
            ("CPU", proc_field("/proc/cpuinfo", "model name")),
            ("Cores available", cores.to_string()),
            ("Memory", proc_field("/proc/meminfo", "MemTotal")),
            ("Kernel", kernel),
            ("rustc", first_line(&rustc, &["--version"])),
            ("PostgreSQL", server.to_string()),
            ("pgbench", first_line("pgbench", &["--version"])),
            ("C compiler", first_line("cc", &["--version"])),
            ("Date (UTC)", first_line("date", &["-u", "+%Y-%m-%d %H:%M"])),
            ("Run time", format!("{:.0} s", took.as_secs_f64())),
        ];
        Meta {
            fields,
            command: command.to_string(),
            quick,
        }
    }
}

fn find<'a>(rows: &'a [Row], scenario: &str, group: &str, contender: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.scenario == scenario && r.group == group && r.contender == contender)
}

fn metric(rows: &[Row], scenario: &str, group: &str, contender: &str, key: &str) -> Option<f64> {
    find(rows, scenario, group, contender).and_then(|r| r.get(key))
}

fn groups(rows: &[Row], scenario: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.scenario == scenario) {
        if !out.contains(&r.group) {
            out.push(r.group.clone());
        }
    }
    out
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "n/a".into(),
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), fmt_num)
}

/// One target line: what, measured, met.
struct Target {
    what: String,
    measured: String,
    met: Option<bool>,
}

impl Target {
    /// "met", "missed" or "not measured", from the measured value.
    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "not measured",
        }
    }
}

fn check(what: String, value: Option<f64>, ok: impl Fn(f64) -> bool, unit: &str) -> Target {
    Target {
        what,
        measured: value.map_or_else(|| "not measured".into(), |v| format!("{v:.2}{unit}")),
        met: value.map(ok),
    }
}

fn targets(rows: &[Row]) -> Vec<Target> {
    let mut t = Vec::new();
    for g in groups(rows, "overhead") {
        let threads: usize = g
            .split(' ')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let need = if threads == 1 { 3.0 } else { 2.0 };
        let r = metric(rows, "overhead", &g, "pgpool", "cycles_per_s")
            .zip(metric(rows, "overhead", &g, "r2d2", "cycles_per_s"))
            .map(|(a, b)| a / b);
        t.push(check(
            format!("Pool overhead, {g}: cycles/s >= {need}x r2d2"),
            r,
            |v| v >= need,
            "x",
        ));
    }
    let p8 = pooled_name(PGPOOL, 8);
    for g in groups(rows, "select1") {
        let q = |c: &str| metric(rows, "select1", &g, c, "qps");
        let threads: usize = g
            .split(", ")
            .nth(1)
            .and_then(|x| x.split(' ').next()?.parse().ok())
            .unwrap_or(0);
        let vs_raw = q(&p8).zip(q(RAW)).map(|(a, b)| a / b);
        if threads >= 64 {
            t.push(check(
                format!("{g}: pgpool Rust API (pool 8) > 1.0x raw postgres::Client"),
                vs_raw,
                |v| v > 1.0,
                "x",
            ));
        } else {
            t.push(check(
                format!("{g}: pgpool Rust API (pool 8) >= 1.15x raw postgres::Client"),
                vs_raw,
                |v| v >= 1.15,
                "x",
            ));
        }
        let vs_r2d2 = q(&p8)
            .zip(q(&pooled_name(R2D2_DEFAULT, 8)))
            .map(|(a, b)| a / b);
        t.push(check(
            format!("{g}: pgpool (pool 8) >= 1.5x r2d2 defaults (pool 8)"),
            vs_r2d2,
            |v| v >= 1.5,
            "x",
        ));
        let cpu = |c: &str| metric(rows, "select1", &g, c, "cpu_us_per_query");
        if threads <= 4 {
            t.push(check(
                format!("{g}: pgpool-client (one per thread) >= 1.0x pgbench -M prepared q/s"),
                q(CLIENT).zip(q(PGBENCH_PREPARED)).map(|(a, b)| a / b),
                |v| v >= 1.0,
                "x",
            ));
            t.push(check(
                format!("{g}: pgpool-client client CPU/query <= 1.0x pgbench -M prepared"),
                cpu(CLIENT).zip(cpu(PGBENCH_PREPARED)).map(|(a, b)| a / b),
                |v| v <= 1.0,
                "x",
            ));
            let c8 = pooled_name(PGPOOL_C, 8);
            let vs_pgb = q(&c8).zip(q(PGBENCH_PREPARED)).map(|(a, b)| a / b);
            t.push(check(
                format!("{g}: C ABI (pool 8) >= 0.95x pgbench -M prepared q/s"),
                vs_pgb,
                |v| v >= 0.95,
                "x",
            ));
            let cpu_ratio = cpu(&c8).zip(cpu(PGBENCH_PREPARED)).map(|(a, b)| a / b);
            t.push(check(
                format!("{g}: C ABI client CPU/query <= 1.2x pgbench -M prepared"),
                cpu_ratio,
                |v| v <= 1.2,
                "x",
            ));
        }
    }
    for g in groups(rows, "memory") {
        let per = |c: &str| metric(rows, "memory", &g, c, "anon_kib_per_connection");
        t.push(check(
            format!("Memory, {g}: pgpool anonymous KiB/connection <= 1.0x {MEM_R2D2}"),
            per(MEM_PGPOOL)
                .zip(per(MEM_R2D2))
                .map(|(a, b)| a / b.max(1e-9)),
            |v| v <= 1.0,
            "x",
        ));
    }
    for g in groups(rows, "fairness") {
        let p99 = metric(rows, "fairness", &g, "pgpool", "wait_p99_us");
        let ideal = metric(rows, "fairness", &g, "pgpool", "ideal_wait_us");
        let theirs = metric(rows, "fairness", &g, "r2d2", "wait_p99_us");
        t.push(check(
            format!("Fairness, {g}: pgpool p99 wait <= 1.5x ideal FIFO wait"),
            p99.zip(ideal).map(|(a, b)| a / b),
            |v| v <= 1.5,
            "x",
        ));
        t.push(check(
            format!("Fairness, {g}: pgpool p99 wait < r2d2 p99 wait (ratio)"),
            p99.zip(theirs).map(|(a, b)| a / b),
            |v| v < 1.0,
            "x",
        ));
    }
    t
}

fn table(out: &mut String, header: &[&str], lines: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(header.len()));
    for l in lines {
        let _ = writeln!(out, "| {} |", l.join(" | "));
    }
    out.push('\n');
}

fn overhead_section(out: &mut String, rows: &[Row]) {
    out.push_str("## 1. Pool overhead (no-op manager, pool of 8)\n\n");
    out.push_str(
        "Acquire + release with no I/O: pgpool and r2d2 over the very same r2d2 \
         `ManageConnection` (pgpool through `R2d2Manager`). ns/cycle is wall time per cycle of \
         the whole process (1 / aggregate rate). Reference: r2d2. The latency histograms \
         (on by default) cost the difference between pgpool and pgpool with \
         `histograms(false)`: two precise clock reads and three atomic adds per cycle.\n\n",
    );
    let mut lines = Vec::new();
    for g in groups(rows, "overhead") {
        let m = |c: &str, k: &str| metric(rows, "overhead", &g, c, k);
        lines.push(vec![
            g.clone(),
            num(m("pgpool", "cycles_per_s")),
            num(m("pgpool", "ns_per_cycle")),
            num(m("r2d2", "cycles_per_s")),
            num(m("r2d2", "ns_per_cycle")),
            ratio(m("pgpool", "cycles_per_s"), m("r2d2", "cycles_per_s")),
            num(m(NO_HISTOGRAMS, "ns_per_cycle")),
            num(m("pgpool", "ns_per_cycle")
                .zip(m(NO_HISTOGRAMS, "ns_per_cycle"))
                .map(|(on, off)| on - off)),
        ]);
    }
    let header = [
        "threads",
        "pgpool cycles/s",
        "pgpool ns/cycle",
        "r2d2 cycles/s",
        "r2d2 ns/cycle",
        "pgpool / r2d2",
        "no histograms ns/cycle",
        "histograms cost ns/cycle",
    ];
    table(out, &header, &lines);
}

fn select1_section(out: &mut String, rows: &[Row]) {
    out.push_str("## 2. End-to-end `SELECT` throughput and latency\n\n");
    out.push_str(
        "Pooled contenders run `SELECT $1::int4` with a prepared statement (pgpool: \
         `query_one` through its statement cache; C ABI: `pgpool_pool_exec` with a \
         `pgpool_stmt`, a typed parameter and a reused result, one call per query; r2d2 defaults: `query_one` with the SQL text, so a prepare per query plus \
         r2d2's checkout test; r2d2 tuned: `test_on_check_out(false)` and a statement prepared \
         once per connection; raw `postgres::Client` and pgpool-client: one session per \
         thread, no pool, the statement prepared once, `query_one` / `query_prepared` on it). \
         pgbench runs a `SELECT 1;` script with `-c N -j min(N,2)`. \
         Connect per query opens a session, runs `SELECT 1` (simple protocol) and closes it. \
         Latency is per query as the caller sees it (acquire included); mean = client \
         threads / q/s (Little's law) for every contender; p50/p99 are measured by the \
         in-process contenders and the C driver, not for pgbench, whose `-l` log reuses a \
         cached clock reading (a third of a `SELECT 1` run logs 0 us). Client CPU is user + \
         system time of the client process over the measured window (in-process contenders, \
         pool threads included) or of the whole child process (pgbench and the C driver, \
         start-up and connection set-up included) divided by queries. Ratios: q/s against \
         the raw `postgres::Client` and against `pgbench -M prepared`; CPU against pgbench.\n\n",
    );
    for g in groups(rows, "select1") {
        let _ = writeln!(out, "### {g}\n");
        let q = |c: &str, k: &str| metric(rows, "select1", &g, c, k);
        let mut lines = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.scenario == "select1" && r.group == g)
        {
            if let Some(note) = &r.note {
                lines.push(vec![
                    r.contender.clone(),
                    note.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                continue;
            }
            let c = r.contender.as_str();
            lines.push(vec![
                c.to_string(),
                num(r.get("qps")),
                ratio(r.get("qps"), q(RAW, "qps")),
                ratio(r.get("qps"), q(PGBENCH_PREPARED, "qps")),
                num(r.get("mean_us")),
                num(r.get("p50_us")),
                num(r.get("p99_us")),
                num(r.get("cpu_us_per_query")),
                ratio(
                    r.get("cpu_us_per_query"),
                    q(PGBENCH_PREPARED, "cpu_us_per_query"),
                ),
            ]);
        }
        let header = [
            "contender",
            "q/s",
            "x raw",
            "x pgbench prep.",
            "mean us",
            "p50 us",
            "p99 us",
            "CPU us/query",
            "CPU x pgbench prep.",
        ];
        table(out, &header, &lines);
    }
    out.push_str("### Pooled vs connect-per-query\n\n");
    let mut lines = Vec::new();
    for g in groups(rows, "select1") {
        let q = |c: &str| metric(rows, "select1", &g, c, "qps");
        let p8 = pooled_name(PGPOOL, 8);
        lines.push(vec![
            g.clone(),
            num(q(CONNECT)),
            num(q(&p8)),
            ratio(q(&p8), q(CONNECT)),
        ]);
    }
    table(
        out,
        &[
            "group",
            "connect per query q/s",
            "pgpool (pool 8) q/s",
            "speedup",
        ],
        &lines,
    );
    let _ = (PGBENCH_SIMPLE, R2D2_TUNED);
}

fn fairness_section(out: &mut String, rows: &[Row]) {
    out.push_str("## 3. Overload fairness\n\n");
    out.push_str(
        "64 threads share a pool of 8 (no-op manager); each holds its connection for a random \
         50-200 us (sleeping) and goes again. Ideal FIFO wait = (threads / pool - 1) x mean \
         hold time; ideal per-thread share = total cycles / threads. CV = coefficient of \
         variation of per-thread completions.\n\n",
    );
    let keys = [
        ("cycles_per_s", "cycles/s"),
        ("mean_hold_us", "mean hold us"),
        ("ideal_wait_us", "ideal FIFO wait us"),
        ("wait_p50_us", "wait p50 us"),
        ("wait_p99_us", "wait p99 us"),
        ("wait_max_us", "wait max us"),
        ("p99_vs_ideal", "p99 / ideal"),
        ("per_thread_ideal", "ideal share/thread"),
        ("per_thread_min", "min/thread"),
        ("per_thread_max", "max/thread"),
        ("per_thread_cv", "CV"),
    ];
    for g in groups(rows, "fairness") {
        let _ = writeln!(out, "### {g}\n");
        let lines: Vec<Vec<String>> = keys
            .iter()
            .map(|(k, label)| {
                let a = metric(rows, "fairness", &g, "pgpool", k);
                let b = metric(rows, "fairness", &g, "r2d2", k);
                vec![label.to_string(), num(a), num(b), ratio(a, b)]
            })
            .collect();
        table(out, &["metric", "pgpool", "r2d2", "pgpool / r2d2"], &lines);
    }
}

fn simple_section(out: &mut String, rows: &[Row], scenario: &str, keys: &[&str], reference: &str) {
    for g in groups(rows, scenario) {
        let _ = writeln!(out, "### {g}\n");
        let mut header: Vec<String> = vec!["contender".to_string()];
        header.extend(keys.iter().map(|k| k.to_string()));
        let first = keys[0];
        header.push(format!("{first} x {reference}"));
        let lines: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| r.scenario == scenario && r.group == g)
            .map(|r| {
                let mut l = vec![r.contender.clone()];
                l.extend(keys.iter().map(|k| num(r.get(k))));
                l.push(ratio(
                    r.get(first),
                    metric(rows, scenario, &g, reference, first),
                ));
                l
            })
            .collect();
        let h: Vec<&str> = header.iter().map(String::as_str).collect();
        table(out, &h, &lines);
    }
}

/// Rewrites `DIR/PERFORMANCE.md` from `DIR/perf/results.json`.
pub fn rebuild(dir: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(dir.join("perf/results.json"))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let order = [
        "CPU",
        "Cores available",
        "Memory",
        "Kernel",
        "rustc",
        "PostgreSQL",
        "pgbench",
        "C compiler",
        "Date (UTC)",
        "Run time",
    ];
    let meta = Meta {
        fields: order.iter().map(|k| (*k, s(&v["machine"][*k]))).collect(),
        command: s(&v["command"]),
        quick: v["quick"].as_bool().unwrap_or(false),
    };
    let scenarios = ["overhead", "fairness", "memory", "select1", "tpcb"];
    let rows: Vec<Row> = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let scenario = scenarios
                .iter()
                .find(|x| **x == r["scenario"].as_str().unwrap_or_default())
                .copied()
                .unwrap_or("other");
            let mut row = Row::new(scenario, &s(&r["group"]), &s(&r["contender"]));
            row.note = r["note"].as_str().map(str::to_string);
            if let Some(m) = r["metrics"].as_object() {
                row.metrics = m
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN)))
                    .collect();
            }
            row
        })
        .collect();
    write(dir, &meta, &rows)
}

/// Writes `DIR/perf/results.json` and `DIR/PERFORMANCE.md`.
pub fn write(dir: &Path, meta: &Meta, rows: &[Row]) -> std::io::Result<()> {
    let perf = dir.join("perf");
    std::fs::create_dir_all(&perf)?;
    let targets = targets(rows);
    let json = json!({
        "machine": meta.fields.iter().map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "command": meta.command,
        "quick": meta.quick,
        "targets": targets.iter().map(|t| json!({
            "target": t.what, "measured": t.measured, "met": t.met, "result": t.verdict(),
        })).collect::<Vec<_>>(),
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    std::fs::write(
        perf.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;

    for t in &targets {
        println!("[target] {}: {} ({})", t.verdict(), t.what, t.measured);
    }

    let mut out = String::new();
    out.push_str("# Performance\n\n");
    out.push_str(
        "Every figure below comes from one run of the benchmark suite (`benches/suite/`), \
         regenerated with `scripts/bench.sh` (the raw data is in `docs/perf/results.json`, the \
         plots in `docs/perf/`). All contenders run in the same run against the same \
         throwaway PostgreSQL cluster, alternating (forward, then reversed order) to spread \
         drift. The machine is small and shared, so absolute figures move between runs; the \
         ratios are the point.\n\n",
    );
    if meta.quick {
        out.push_str("**Smoke run (`--quick`): windows are too short for real figures.**\n\n");
    }
    out.push_str("## Machine and command\n\n");
    let mut lines: Vec<Vec<String>> = meta
        .fields
        .iter()
        .map(|(k, v)| vec![k.to_string(), v.replace('|', "/")])
        .collect();
    lines.push(vec!["Command".into(), format!("`{}`", meta.command)]);
    table(&mut out, &["", ""], &lines);

    out.push_str("## Targets\n\n");
    let lines: Vec<Vec<String>> = targets
        .iter()
        .map(|t| {
            let verdict = match t.verdict() {
                "missed" => "**missed**",
                v => v,
            };
            vec![t.what.clone(), t.measured.clone(), verdict.to_string()]
        })
        .collect();
    table(&mut out, &["target", "measured", "result"], &lines);
    out.push_str(
        "Plots: ![pool overhead](perf/overhead.png) ![SELECT throughput](perf/select1.png) \
         ![fairness](perf/fairness.png)\n\n",
    );

    overhead_section(&mut out, rows);
    select1_section(&mut out, rows);
    fairness_section(&mut out, rows);
    out.push_str("## 4. Memory of an idle pool\n\n");
    out.push_str(
        "Memory of a fresh process before and after opening an idle pool of N connections \
         over TCP (one connection opened and closed first, so one-time initialisation is not \
         counted). `anon`: anonymous resident memory (`RssAnon`: heap, thread stacks, malloc \
         arenas), what a pool and its sessions cost; the target is on it. `kib_per_connection` \
         / `pool_kib`: the whole resident set (`VmRSS`), which also counts the pages of the \
         executable that the pool's code faults in the first time it runs (file-backed, \
         shared by every pool of the process and every process running it). pgpool's \
         sessions are its own wire client (no async runtime per connection, no closer \
         thread). Reference: r2d2 + r2d2_postgres at the same pool sizes.\n\n",
    );
    simple_section(
        &mut out,
        rows,
        "memory",
        &[
            "anon_kib_per_connection",
            "pool_anon_kib",
            "kib_per_connection",
            "pool_kib",
            "rss_kib",
        ],
        MEM_R2D2,
    );
    out.push_str("## 5. TPC-B-like transactions\n\n");
    let _ = writeln!(
        out,
        "`pgbench -i -s 1` tables. {TPCB_PGPOOL}: `pool.transaction(|tx| ...)` running the \
         five tpcb-like statements (random aid, tid, delta; BEGIN and COMMIT) with pool size \
         = clients, against pgbench's built-in `tpcb-like` at the same client count. \
         Reference: {TPCB_PREPARED}.\n"
    );
    simple_section(
        &mut out,
        rows,
        "tpcb",
        &[
            "tps",
            "mean_us",
            "p50_us",
            "p99_us",
            "cpu_us_per_tx",
            "transactions",
        ],
        TPCB_PREPARED,
    );
    if let Ok(analysis) = std::fs::read_to_string("docs/perf/analysis.md") {
        out.push_str(&analysis);
    }
    std::fs::write(dir.join("PERFORMANCE.md"), out)
}
