//! Measurement plumbing shared by every scenario: process CPU and memory from `/proc`, a
//! time-bounded multi-threaded runner with per-operation latency histograms, and the result
//! rows the report is built from.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Scheduler ticks per second (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system) of this process and of its waited-for children, from
/// `/proc/self/stat` (`utime`, `stime`, `cutime`, `cstime`).
/// A pgpool PostgreSQL pool of `size` connections, all opened before it is returned, so no
/// measurement pays for connects.
pub fn warm_pgpool(conninfo: &str, size: u32) -> pgpool::Pool {
    let pool = pgpool::Pool::builder()
        .max_size(size)
        .min_idle(size)
        .build(conninfo)
        .expect("pgpool");
    pool.wait_ready(Duration::from_secs(60))
        .expect("pgpool ready");
    pool
}

pub fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let t = clock_ticks();
    ((f[11] + f[12]) / t, (f[13] + f[14]) / t)
}

/// Resident set size of this process in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// This process's anonymous resident memory (`RssAnon`: heap, stacks; not the pages of the
/// executable and libraries, which every pool and process shares) in KiB.
pub fn anon_kib() -> u64 {
    status_kib("RssAnon:")
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// A latency histogram in nanoseconds (1 ns .. 100 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("histogram bounds")
}

/// What one contender achieved over one or more measured windows.
pub struct Sample {
    pub ops: u64,
    pub secs: f64,
    pub cpu_secs: f64,
    pub hist: Histogram<u64>,
    /// False when the contender reports no per-operation latencies.
    pub has_latency: bool,
}

impl Sample {
    pub fn empty() -> Sample {
        Sample {
            ops: 0,
            secs: 0.0,
            cpu_secs: 0.0,
            hist: histogram(),
            has_latency: true,
        }
    }

    pub fn add(&mut self, other: &Sample) {
        self.ops += other.ops;
        self.secs += other.secs;
        self.cpu_secs += other.cpu_secs;
        self.has_latency &= other.has_latency;
        self.hist.add(&other.hist).expect("histogram merge");
    }

    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }

    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    /// The usual metrics of a query-throughput row; `clients` concurrent callers give the
    /// mean latency by Little's law (clients / rate), comparable across every contender.
    pub fn query_metrics(&self, clients: usize) -> Vec<(&'static str, f64)> {
        let mut m = vec![
            ("qps", self.per_sec()),
            ("mean_us", clients as f64 * 1e6 / self.per_sec().max(1e-9)),
        ];
        if self.has_latency {
            m.push(("p50_us", self.quantile_us(0.5)));
            m.push(("p99_us", self.quantile_us(0.99)));
        }
        let cpu = self.cpu_secs * 1e6 / (self.ops.max(1) as f64);
        m.push(("cpu_us_per_query", cpu));
        m.push(("queries", self.ops as f64));
        m
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Runs `threads` threads: each builds its operation with `setup(index)` (connections are
/// opened there, outside the measurement), then repeats it through `warmup` (not counted)
/// and `window` (counted, each operation's latency recorded). CPU time is that of the whole
/// process over the window.
pub fn run_threads<S, W>(threads: usize, warmup: Duration, window: Duration, setup: S) -> Sample
where
    S: Fn(usize) -> W + Sync,
    W: FnMut(),
{
    let phase = AtomicU8::new(WARMUP);
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (phase, barrier, setup) = (&phase, &barrier, &setup);
                scope.spawn(move || {
                    let mut op = setup(i);
                    let mut hist = histogram();
                    let mut ops = 0u64;
                    barrier.wait();
                    loop {
                        let p = phase.load(Ordering::Relaxed);
                        if p == STOP {
                            break;
                        }
                        let start = Instant::now();
                        op();
                        if p == MEASURE {
                            hist.saturating_record(start.elapsed().as_nanos() as u64);
                            ops += 1;
                        }
                    }
                    (ops, hist)
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(warmup);
        let (cpu0, _) = cpu_seconds();
        let t0 = Instant::now();
        phase.store(MEASURE, Ordering::Relaxed);
        std::thread::sleep(window);
        phase.store(STOP, Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        let (cpu1, _) = cpu_seconds();
        let mut sample = Sample::empty();
        sample.secs = secs;
        sample.cpu_secs = cpu1 - cpu0;
        for h in handles {
            let (ops, hist) = h.join().expect("benchmark thread panicked");
            sample.ops += ops;
            sample.hist.add(&hist).expect("histogram merge");
        }
        sample
    })
}

/// A contender: its name and one measured run.
pub type Contender<'a> = (String, Box<dyn FnMut() -> Sample + 'a>);

/// Runs each contender `reps` times, alternating (forward order on even repetitions,
/// reversed on odd ones, so neither side always runs first), and sums the samples.
pub fn alternate<'a>(reps: usize, contenders: &mut [Contender<'a>]) -> Vec<(String, Sample)> {
    let mut totals: Vec<Sample> = contenders.iter().map(|_| Sample::empty()).collect();
    for rep in 0..reps {
        let mut order: Vec<usize> = (0..contenders.len()).collect();
        if rep % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let s = (contenders[i].1)();
            totals[i].add(&s);
        }
    }
    contenders
        .iter()
        .map(|(n, _)| n.clone())
        .zip(totals)
        .collect()
}

/// One line of a result table.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: &'static str,
    pub group: String,
    pub contender: String,
    pub metrics: Vec<(String, f64)>,
    pub note: Option<String>,
}

impl Row {
    pub fn new(scenario: &'static str, group: &str, contender: &str) -> Row {
        Row {
            scenario,
            group: group.to_string(),
            contender: contender.to_string(),
            metrics: Vec::new(),
            note: None,
        }
    }

    pub fn with(mut self, metrics: Vec<(&str, f64)>) -> Row {
        self.metrics
            .extend(metrics.into_iter().map(|(k, v)| (k.to_string(), v)));
        self
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    pub fn to_json(&self) -> Value {
        let metrics: serde_json::Map<String, Value> = self
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({
            "scenario": self.scenario,
            "group": self.group,
            "contender": self.contender,
            "metrics": metrics,
            "note": self.note,
        })
    }

    /// Prints the row as it is produced, so a run shows progress.
    pub fn print(&self) {
        let m: Vec<String> = self
            .metrics
            .iter()
            .map(|(k, v)| format!("{k}={}", fmt_num(*v)))
            .collect();
        let note = self.note.as_deref().unwrap_or("");
        println!(
            "[{}] {} | {} | {} {note}",
            self.scenario,
            self.group,
            self.contender,
            m.join(" ")
        );
    }
}

/// A number with as many decimals as its size deserves.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "n/a".to_string()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Durations of one run: quick (smoke) or full.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub quick: bool,
    pub reps: usize,
    pub warmup: Duration,
    /// Measured window of the in-process contenders; pgbench takes whole seconds.
    pub window: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                reps: 1,
                warmup: Duration::from_millis(50),
                window: Duration::from_millis(400),
            }
        } else {
            Plan {
                quick,
                reps: 3,
                warmup: Duration::from_millis(150),
                window: Duration::from_secs(1),
            }
        }
    }

    /// `-T` for pgbench: the window in whole seconds, at least 1.
    pub fn pgbench_secs(&self) -> u64 {
        self.window.as_secs().max(1)
    }
}
