//! `pgpool bench [URL]`: acquire and query throughput and latency, measured by the client.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use pgpool::Pool;

use crate::sweep::{self, SweepSpec};
use crate::target::{self, ServerArgs, Target};
use crate::util::{fmt_us, micros, parse_duration, Failure};

/// Largest latency the histograms track exactly (longer ones count as this): 10 min.
const HIST_MAX_US: u64 = 600_000_000;
/// How often the progress bar is updated.
const TICK: Duration = Duration::from_millis(100);
/// Bound on opening the pool's connections before the clock starts.
const WARM_UP: Duration = Duration::from_secs(30);

/// Options of `pgpool bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Worker threads [default: 8; with --sweep, the largest size if that is more]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) threads: Option<u32>,
    /// The pool's max_size [default: the URL's pool_max_size, else 10]
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "sweep")]
    pub(crate) pool_size: Option<u32>,
    /// How long to measure (with --sweep: for each size)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_positive)]
    pub(crate) duration: Duration,
    /// The statement each iteration runs (prepared once per connection)
    #[arg(long, value_name = "SQL", default_value = "SELECT 1")]
    pub(crate) query: String,
    /// Print the final table (or the sweep) as one JSON object
    #[arg(long)]
    pub(crate) json: bool,
    /// Never draw the progress bar (it is drawn only when stderr is a terminal)
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Try these pool sizes: a list (`1,2,4,8`) or a range `A..B` (A, then doubling, then B:
    /// `1..32` is 1,2,4,8,16,32)
    #[arg(long, value_name = "SIZES", value_parser = sweep::parse_spec)]
    pub(crate) sweep: Option<SweepSpec>,
    /// Spindles in the rule of thumb `cores × 2 + spindles` (disks the server's data is on;
    /// 1 for one disk or SSD, 0 when the data fits in memory)
    #[arg(long, value_name = "N", default_value_t = 1, requires = "sweep")]
    pub(crate) spindles: u32,
}

/// A duration of at least 10 ms.
fn parse_positive(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) {
        return Err(format!("'{s}' is too short (at least 10ms)"));
    }
    Ok(d)
}

/// The outcome of one bench run.
pub(crate) struct BenchResult {
    pub(crate) pool_size: u32,
    pub(crate) threads: u32,
    pub(crate) elapsed: Duration,
    pub(crate) queries: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// Acquire waits, queries, and both together, in microseconds.
    pub(crate) acquire: Histogram<u64>,
    pub(crate) query: Histogram<u64>,
    pub(crate) total: Histogram<u64>,
    pub(crate) interrupted: bool,
}

impl BenchResult {
    pub(crate) fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.queries as f64 / secs
        } else {
            0.0
        }
    }

    /// The table as JSON; latencies in microseconds.
    pub(crate) fn json(&self, query: &str) -> Value {
        json!({
            "pool_size": self.pool_size,
            "threads": self.threads,
            "query": query,
            "duration_s": (self.elapsed.as_secs_f64() * 1e3).round() / 1e3,
            "queries": self.queries,
            "queries_per_s": (self.rate() * 10.0).round() / 10.0,
            "errors": self.errors,
            "first_error": self.first_error,
            "acquire_us": quantiles(&self.acquire),
            "query_us": quantiles(&self.query),
            "total_us": quantiles(&self.total),
            "interrupted": self.interrupted,
        })
    }
}

fn quantiles(h: &Histogram<u64>) -> Value {
    json!({
        "p50": h.value_at_quantile(0.50),
        "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99),
        "max": h.max(),
    })
}

fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts (1 ≤ low, high ≥ 2 × low, sigfig ≤ 5).
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Runs `pgpool bench`; returns the exit code.
pub(crate) fn run(args: &BenchArgs) -> Result<u8, Failure> {
    let target = target::resolve(args.server.url.as_deref(), crate::util::EXIT_FAILURE)?;
    let progress = !args.no_progress && io::stderr().is_terminal();
    if let Some(spec) = &args.sweep {
        let sizes = spec.sizes();
        let largest = sizes.iter().copied().max().unwrap_or(1);
        let threads = args.threads.unwrap_or(8.max(largest));
        let mut results = Vec::new();
        for &size in &sizes {
            if crate::signals::interrupted() {
                break;
            }
            let label = format!("size {size:>3}");
            results.push(bench_pool(
                args,
                &target,
                Some(size),
                threads,
                progress,
                &label,
            )?);
        }
        let report = sweep::Report::new(results, args.spindles, args.duration, threads);
        let text = if args.json {
            format!("{}\n", report.json(&args.query))
        } else {
            report.text()
        };
        write_stdout(&text)?;
        return Ok(exit_code(report.results()));
    }
    let threads = args.threads.unwrap_or(8);
    let result = bench_pool(args, &target, args.pool_size, threads, progress, "")?;
    let text = if args.json {
        format!("{}\n", result.json(&args.query))
    } else {
        table(&result, &args.query)
    };
    write_stdout(&text)?;
    Ok(exit_code(std::slice::from_ref(&result)))
}

/// 0, or 130 when a signal cut the run short, or a failure when nothing succeeded.
fn exit_code(results: &[BenchResult]) -> u8 {
    if results.iter().any(|r| r.interrupted) {
        crate::signals::EXIT_INTERRUPTED
    } else {
        0
    }
}

fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}").into())
}

/// Builds a pool of `size` (or the configured size), opens its connections, runs the bench
/// and closes the pool. Fails when no query succeeded.
fn bench_pool(
    args: &BenchArgs,
    target: &Target,
    size: Option<u32>,
    threads: u32,
    progress: bool,
    label: &str,
) -> Result<BenchResult, Failure> {
    let mut builder = target::builder(&args.server, target, "pgpool-bench");
    if let Some(size) = size {
        builder = builder.max_size(size);
    }
    // Open every connection before the clock starts: the bench measures a warm pool.
    let size = builder
        .config_for(&target.url)
        .map_err(|e| target::build_error(&e, target))?
        .max_size;
    let pool = target::build(builder.min_idle(size), target)?;
    let warmed = warm_up(&pool, size);
    let result =
        warmed.map(|()| measure(&pool, threads, args.duration, &args.query, progress, label));
    target::close(&pool);
    let result = result?;
    if result.queries == 0 && !result.interrupted {
        let why = result.first_error.as_deref().unwrap_or("no query finished");
        return Err(format!("no query succeeded against {}: {why}", target.shown()).into());
    }
    Ok(result)
}

/// Waits (bounded) until `size` connections are open; the first connect error fails fast.
fn warm_up(pool: &Pool, size: u32) -> Result<(), Failure> {
    let deadline = Instant::now() + WARM_UP;
    loop {
        let stats = pool.stats();
        if stats.open >= size {
            return Ok(());
        }
        if let Some(e) = pool.last_connect_error() {
            return Err(format!("cannot connect: {e}").into());
        }
        if Instant::now() >= deadline || crate::signals::interrupted() {
            return Err(format!(
                "only {} of {size} connections opened within {} s",
                stats.open,
                WARM_UP.as_secs()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What each worker thread returns.
struct Worker {
    acquire: Histogram<u64>,
    query: Histogram<u64>,
    total: Histogram<u64>,
}

/// Runs the workers for `duration` with a progress bar.
fn measure(
    pool: &Pool,
    threads: u32,
    duration: Duration,
    sql: &str,
    progress: bool,
    label: &str,
) -> BenchResult {
    let stop = AtomicBool::new(false);
    let queries = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let bar = progress_bar(duration, progress, label);
    let start = Instant::now();
    let deadline = start + duration;
    let running = || {
        !stop.load(Ordering::Relaxed) && !crate::signals::interrupted() && Instant::now() < deadline
    };

    let (workers, elapsed) = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for i in 0..threads {
            let (queries, errors, first_error, running) =
                (&queries, &errors, &first_error, &running);
            let spawned = std::thread::Builder::new()
                .name(format!("bench-{i}"))
                .spawn_scoped(scope, move || {
                    let mut w = Worker {
                        acquire: new_histogram(),
                        query: new_histogram(),
                        total: new_histogram(),
                    };
                    let fail = |e: pgpool::Error| {
                        // A signal closes the pool: the acquires it cuts short are no errors.
                        if e.is_closed() && crate::signals::interrupted() {
                            return;
                        }
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert_with(|| e.to_string());
                    };
                    while running() {
                        let t0 = Instant::now();
                        let mut conn = match pool.get() {
                            Ok(conn) => conn,
                            Err(e) => {
                                fail(e);
                                continue;
                            }
                        };
                        let t1 = Instant::now();
                        match conn.query(sql, &[]) {
                            Ok(_) => {
                                drop(conn);
                                let t2 = Instant::now();
                                w.acquire.saturating_record(micros(t1 - t0).max(1));
                                w.query.saturating_record(micros(t2 - t1).max(1));
                                w.total.saturating_record(micros(t2 - t0).max(1));
                                queries.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => fail(e),
                        }
                    }
                    w
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert_with(|| format!("cannot start thread {i}: {e}"));
                    break;
                }
            }
        }
        let mut last = (start, 0u64);
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(
                TICK.min(deadline.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(5)),
            );
            let now = Instant::now();
            let done = queries.load(Ordering::Relaxed);
            let dt = now.duration_since(last.0).as_secs_f64();
            let rate = if dt > 0.0 {
                (done - last.1) as f64 / dt
            } else {
                0.0
            };
            last = (now, done);
            bar.set_position(
                u64::try_from(now.duration_since(start).as_millis())
                    .unwrap_or(u64::MAX)
                    .min(bar.length().unwrap_or(0)),
            );
            let s = pool.stats();
            bar.set_message(format!(
                "{done} queries  {rate:.0} q/s  errors {}  in use {}/{}  waiting {}",
                errors.load(Ordering::Relaxed),
                s.in_use,
                s.max_size,
                s.waiting
            ));
        }
        let elapsed = start.elapsed();
        let workers: Vec<Worker> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (workers, elapsed)
    });
    bar.finish_and_clear();

    let (mut acquire, mut query, mut total) = (new_histogram(), new_histogram(), new_histogram());
    for w in &workers {
        // Same bounds everywhere: adding cannot fail.
        let _ = acquire.add(&w.acquire);
        let _ = query.add(&w.query);
        let _ = total.add(&w.total);
    }
    let first_error = first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
    BenchResult {
        pool_size: pool.config().max_size,
        threads,
        elapsed,
        queries: queries.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_error,
        acquire,
        query,
        total,
        interrupted: crate::signals::interrupted(),
    }
}

/// The progress bar on stderr, hidden unless `visible`.
fn progress_bar(duration: Duration, visible: bool, label: &str) -> ProgressBar {
    let len = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let bar = ProgressBar::with_draw_target(
        Some(len),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    let template = format!(
        "{label}{}[{{elapsed_precise}}] {{bar:30.cyan/blue}} {{msg}}",
        if label.is_empty() { "" } else { " " }
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
    }
    bar
}

/// The final table.
fn table(r: &BenchResult, sql: &str) -> String {
    let mut out = format!(
        "bench: {} threads, pool of {}, {:.1} s{}, query: {sql}\n",
        r.threads,
        r.pool_size,
        r.elapsed.as_secs_f64(),
        if r.interrupted { " (interrupted)" } else { "" }
    );
    let rows: [(&str, String); 7] = [
        ("queries", r.queries.to_string()),
        ("queries/s", format!("{:.1}", r.rate())),
        ("errors", r.errors.to_string()),
        ("acquire p50", fmt_us(r.acquire.value_at_quantile(0.50))),
        ("acquire p99", fmt_us(r.acquire.value_at_quantile(0.99))),
        ("query p50", fmt_us(r.query.value_at_quantile(0.50))),
        ("query p99", fmt_us(r.query.value_at_quantile(0.99))),
    ];
    for (label, value) in rows {
        out.push_str(&format!("  {label:<14} {value:>12}\n"));
    }
    if let Some(e) = &r.first_error {
        out.push_str(&format!("  first error    {e}\n"));
    }
    out
}
