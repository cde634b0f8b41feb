//! Contenders that run as child processes: `pgbench` (libpq) and the C driver linked to
//! `libpgpool.so`. Their CPU time is the child's user + system time (`cutime` + `cstime` of
//! this process once the child is waited for), start-up and connection set-up included, the
//! same way for both.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{cpu_seconds, histogram, Sample};

/// Where and how to reach the server.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `tcp` or `unix`.
    pub name: &'static str,
    /// `key=value` connection string.
    pub conninfo: String,
    /// `127.0.0.1` or the socket directory.
    pub host: String,
    pub port: u16,
}

/// Runs `cmd` to completion; returns its stdout and the CPU seconds it used.
fn run_measured(mut cmd: Command) -> Result<(String, f64), String> {
    let (_, before) = cpu_seconds();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let (_, after) = cpu_seconds();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}): {}{}",
            cmd.get_program(),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((stdout, after - before))
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgpool-bench-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// How pgbench runs a workload.
pub enum PgbenchWork<'a> {
    /// A custom script with `-M prepared|simple|extended`.
    Script { mode: &'a str, script: &'a Path },
    /// A built-in script (`tpcb-like`) with a protocol mode.
    Builtin { name: &'a str, mode: &'a str },
}

/// Runs pgbench with `clients` clients (`-j min(clients, 2)`) for `secs` seconds. No
/// per-transaction percentiles: pgbench's `-l` latencies reuse a cached clock reading (a
/// third of a `SELECT 1` run logs 0 us), so only its throughput and CPU are used.
pub fn pgbench(
    bindir: &Path,
    ep: &Endpoint,
    clients: usize,
    secs: u64,
    work: &PgbenchWork<'_>,
) -> Sample {
    let dir = scratch_dir("pgbench");
    let exe = bindir.join("pgbench");
    let mut cmd = Command::new(if exe.is_file() {
        exe
    } else {
        PathBuf::from("pgbench")
    });
    cmd.args(["-n", "-h", &ep.host, "-U", "postgres"])
        .arg(format!("-p{}", ep.port))
        .arg(format!("-c{clients}"))
        .arg(format!("-j{}", clients.min(2)))
        .arg(format!("-T{secs}"));
    match work {
        PgbenchWork::Script { mode, script } => {
            cmd.arg(format!("-M{mode}")).arg("-f").arg(script);
        }
        PgbenchWork::Builtin { name, mode } => {
            cmd.arg(format!("-M{mode}")).arg(format!("-b{name}"));
        }
    }
    cmd.arg("postgres").current_dir(&dir);
    let (stdout, cpu) = run_measured(cmd).unwrap_or_else(|e| panic!("{e}"));
    let field = |prefix: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("pgbench output lacks {prefix:?}:\n{stdout}"))
    };
    let processed = field("number of transactions actually processed:");
    let tps = field("tps =");
    let mut sample = Sample::empty();
    sample.ops = processed as u64;
    sample.secs = processed / tps.max(1e-9);
    sample.cpu_secs = cpu;
    sample.has_latency = false;
    let _ = std::fs::remove_dir_all(&dir);
    sample
}

/// Runs the C driver: `driver CONNINFO THREADS POOL SECONDS LATENCY_FILE` prints
/// `queries=N seconds=S` and writes one latency in nanoseconds per line.
pub fn c_driver(driver: &Path, ep: &Endpoint, threads: usize, pool: u32, secs: f64) -> Sample {
    let dir = scratch_dir("cdriver");
    let lat = dir.join("latencies");
    let mut cmd = Command::new(driver);
    cmd.arg(&ep.conninfo)
        .arg(threads.to_string())
        .arg(pool.to_string())
        .arg(format!("{secs:.3}"))
        .arg(&lat);
    let (stdout, cpu) = run_measured(cmd).unwrap_or_else(|e| panic!("{e}"));
    let field = |key: &str| -> f64 {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("C driver output lacks {key}: {stdout}"))
    };
    let mut sample = Sample::empty();
    sample.ops = field("queries=") as u64;
    sample.secs = field("seconds=");
    sample.cpu_secs = cpu;
    let mut hist = histogram();
    let text = std::fs::read_to_string(&lat).unwrap_or_default();
    for v in text.lines().filter_map(|l| l.trim().parse::<u64>().ok()) {
        hist.saturating_record(v.max(1));
    }
    sample.hist = hist;
    let _ = std::fs::remove_dir_all(&dir);
    sample
}
