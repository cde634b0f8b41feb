//! `pgpool demo`: pooled throughput and acquire-wait latency, against a new connection per
//! query.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;

use pgpool::{CloseReason, Pool, Stats};

use crate::util::{fmt_duration, fmt_us, micros, Failure};

/// The statement every worker runs; the result is checked.
const QUERY: &str = "SELECT $1::int4 + 1";
/// How often the progress line is redrawn.
const TICK: Duration = Duration::from_millis(200);
/// Largest acquire wait the histogram tracks exactly (longer waits count as this): 10 min.
const HIST_MAX_US: u64 = 600_000_000;
/// Bound on the first connection attempt and on each per-query connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `pgpool demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// PostgreSQL URL or key=value string [default: $DATABASE_URL, else a throwaway cluster]
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Worker threads
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
    /// The pool's max_size
    #[arg(long, value_name = "P", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pool_size: u32,
    /// Seconds of pooled work
    #[arg(long, value_name = "S", default_value_t = 5.0, value_parser = parse_seconds)]
    seconds: f64,
    /// Seconds of new-connection-per-query work (0 skips the comparison)
    #[arg(long, value_name = "S2", default_value_t = 2.0, value_parser = parse_seconds)]
    per_query_seconds: f64,
    /// Never show the live progress line
    #[arg(long, conflicts_with = "progress")]
    no_progress: bool,
    /// Show the live progress line even when stderr is not a terminal
    #[arg(long)]
    progress: bool,
}

/// Parses a non-negative number of seconds (at most a day).
fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
        return Err(format!("'{s}' must be between 0 and 86400"));
    }
    Ok(v)
}

/// Runs the demo; the throwaway cluster, if any, is removed before this returns.
pub(crate) fn run(args: &DemoArgs) -> Result<(), Failure> {
    if args.seconds <= 0.0 {
        return Err(Failure::usage("--seconds must be greater than 0"));
    }
    let mut out = Output::default();
    let env_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let (url, _cluster) = match args.url.clone().or(env_url) {
        Some(url) => (url, None),
        None => {
            eprintln!("pgpool: starting a throwaway PostgreSQL cluster...");
            let cluster = crate::start_cluster()?;
            out.line(format!(
                "Started a throwaway PostgreSQL at {} (data directory {}); it is removed at exit.",
                cluster.url(),
                cluster.data_dir().display()
            ))?;
            (cluster.url(), Some(cluster))
        }
    };
    if crate::signals::interrupted() {
        return Ok(());
    }
    let shown_url = crate::util::redact(&url);
    let settings = Pool::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("pgpool-demo");
    let manager = pgpool::PgManager::new(&url, settings.config())
        .map_err(|e| Failure::usage(format!("invalid database URL '{shown_url}': {e}")))?;
    let version =
        server_version(&manager).map_err(|e| format!("cannot connect to {shown_url}: {e}"))?;
    out.line(format!("Server: {version}"))?;

    let progress = !args.no_progress && (args.progress || io::stderr().is_terminal());
    let pool = Pool::builder()
        .max_size(args.pool_size)
        .acquire_timeout(Duration::from_secs(30))
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("pgpool-demo")
        .build(&url)
        .map_err(|e| format!("cannot create the pool for {shown_url}: {e}"))?;

    // Pooled phase.
    let duration = Duration::from_secs_f64(args.seconds);
    let pooled = run_phase(
        args.threads,
        duration,
        progress,
        Some(&pool),
        |ctx, hist| {
            let mut n: i32 = ctx.seed;
            while ctx.running() {
                let start = Instant::now();
                let mut conn = pool.get().map_err(|e| format!("acquire failed: {e}"))?;
                hist.saturating_record(micros(start.elapsed()).max(1));
                n = n.wrapping_add(1) % 1_000_000;
                let row = conn
                    .query_one(QUERY, &[&n])
                    .map_err(|e| format!("query failed: {e}"))?;
                check(&row, n)?;
                drop(conn);
                ctx.count();
            }
            Ok(())
        },
    );
    let stats = pool.stats();
    let pooled = match pooled {
        Ok(result) => result,
        Err(e) => {
            pool.close();
            return Err(e.into());
        }
    };
    out.pooled_summary(args, &pooled, &stats)?;
    // The pool's own view, printed at the end: its health check and its histograms.
    let health = pool.health();

    // Per-query phase: no pool, a fresh session for every statement.
    pool.close();
    if args.per_query_seconds <= 0.0 || crate::signals::interrupted() {
        out.observability(&health, &stats)?;
        return Ok(out.flush()?);
    }
    let duration = Duration::from_secs_f64(args.per_query_seconds);
    let per_query = run_phase(args.threads, duration, progress, None, |ctx, hist| {
        let mut n: i32 = ctx.seed;
        while ctx.running() {
            let start = Instant::now();
            let mut client = manager.open().map_err(|e| format!("connect failed: {e}"))?;
            hist.saturating_record(micros(start.elapsed()).max(1));
            n = n.wrapping_add(1) % 1_000_000;
            let row = client
                .query_one(QUERY, &[&n])
                .map_err(|e| format!("query failed: {e}"))?;
            check(&row, n)?;
            drop(client);
            ctx.count();
        }
        Ok(())
    })?;
    out.per_query_summary(args, &per_query, &pooled)?;
    out.observability(&health, &stats)?;
    Ok(out.flush()?)
}

/// `SELECT version()` over a one-off connection: fails fast with the real connect error.
fn server_version(manager: &pgpool::PgManager) -> Result<String, String> {
    let mut client = manager.open().map_err(|e| e.to_string())?;
    let row = client
        .query_one("SELECT version()", &[])
        .map_err(|e| e.to_string())?;
    let full: String = row.try_get(0).map_err(|e| e.to_string())?;
    // "PostgreSQL 15.6 (Debian 15.6-0+deb12u1) on x86_64-pc-linux-gnu, ..." -> up to the comma.
    Ok(full.split(',').next().unwrap_or(&full).to_string())
}

/// Checks that the server answered `n + 1`.
fn check(row: &pgpool::Row, n: i32) -> Result<(), String> {
    let got: i32 = row
        .try_get(0)
        .map_err(|e| format!("unexpected result type: {e}"))?;
    if got == n.wrapping_add(1) {
        Ok(())
    } else {
        Err(format!("wrong result: {QUERY} with {n} returned {got}"))
    }
}

/// What worker threads share during one phase.
struct Ctx<'a> {
    deadline: Instant,
    stop: &'a AtomicBool,
    total: &'a AtomicU64,
    /// A per-thread start value for the query parameter.
    seed: i32,
}

impl Ctx<'_> {
    /// True until the deadline, an interrupt, or another worker's failure.
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
            && !crate::signals::interrupted()
            && Instant::now() < self.deadline
    }

    /// Counts one completed query.
    fn count(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }
}

/// The outcome of one phase.
struct PhaseResult {
    queries: u64,
    elapsed: Duration,
    /// Acquire waits (pooled) or connect times (per query), in microseconds.
    hist: Histogram<u64>,
    interrupted: bool,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.queries as f64 / secs
        } else {
            0.0
        }
    }
}

fn new_histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).map_err(|e| format!("histogram: {e}"))
}

/// Runs `work` on `threads` threads until `duration` passes (or an interrupt or the first
/// error), drawing a progress line on stderr when `progress` is set. The first worker error
/// stops every worker and is returned.
fn run_phase<F>(
    threads: u32,
    duration: Duration,
    progress: bool,
    pool: Option<&Pool>,
    work: F,
) -> Result<PhaseResult, String>
where
    F: Fn(&Ctx<'_>, &mut Histogram<u64>) -> Result<(), String> + Sync,
{
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let mut merged = new_histogram()?;
    let start = Instant::now();
    let deadline = start + duration;

    let elapsed = std::thread::scope(|scope| -> Result<Duration, String> {
        let mut handles = Vec::new();
        for i in 0..threads {
            let ctx = Ctx {
                deadline,
                stop: &stop,
                total: &total,
                seed: i32::try_from(i).unwrap_or(0).wrapping_mul(100_000),
            };
            let (work, stop, first_error) = (&work, &stop, &first_error);
            let handle = std::thread::Builder::new()
                .name(format!("demo-worker-{i}"))
                .spawn_scoped(scope, move || -> Result<Histogram<u64>, String> {
                    let mut hist = new_histogram()?;
                    if let Err(e) = work(&ctx, &mut hist) {
                        stop.store(true, Ordering::Relaxed);
                        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert(e);
                    }
                    Ok(hist)
                });
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(format!("cannot start worker thread {i}: {e}"));
                }
            }
        }

        let mut last_total = 0;
        let mut last_tick = start;
        let mut drawn = false;
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(
                TICK.min(deadline.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(10)),
            );
            if progress && !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let now = Instant::now();
                let queries = total.load(Ordering::Relaxed);
                let dt = now.duration_since(last_tick).as_secs_f64();
                let rate = if dt > 0.0 {
                    (queries - last_total) as f64 / dt
                } else {
                    0.0
                };
                (last_total, last_tick) = (queries, now);
                let mut line = format!(
                    "{:6.1}s  {queries:>9} queries  {rate:>9.0} q/s",
                    now.duration_since(start).as_secs_f64()
                );
                if let Some(pool) = pool {
                    let s = pool.stats();
                    let _ = write!(
                        line,
                        "  | open {} in_use {} idle {} waiting {}",
                        s.open, s.in_use, s.idle, s.waiting
                    );
                }
                let mut err = io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{line}");
                let _ = err.flush();
                drawn = true;
            }
        }
        if drawn {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        let elapsed = start.elapsed();
        for h in handles {
            match h.join() {
                Ok(Ok(hist)) => merged
                    .add(&hist)
                    .map_err(|e| format!("merging histograms: {e:?}"))?,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err("a worker thread panicked".into()),
            }
        }
        Ok(elapsed)
    })?;

    if let Some(e) = first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    Ok(PhaseResult {
        queries: total.load(Ordering::Relaxed),
        elapsed,
        hist: merged,
        interrupted: crate::signals::interrupted(),
    })
}

/// The report, written to stdout as it grows (so partial results survive a later failure).
#[derive(Default)]
struct Output {
    buf: String,
}

impl Output {
    fn line(&mut self, line: impl AsRef<str>) -> Result<(), String> {
        self.buf.push_str(line.as_ref());
        self.buf.push('\n');
        self.flush()
    }

    fn row(&mut self, label: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.buf, "  {label:<26} {value}");
    }

    fn flush(&mut self) -> Result<(), String> {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(self.buf.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
        self.buf.clear();
        Ok(())
    }

    fn pooled_summary(
        &mut self,
        args: &DemoArgs,
        r: &PhaseResult,
        s: &Stats,
    ) -> Result<(), String> {
        let _ = writeln!(
            self.buf,
            "\nPooled: {} threads sharing a pool of {} connection(s) for {:.1} s{}",
            args.threads,
            args.pool_size,
            r.elapsed.as_secs_f64(),
            if r.interrupted { " (interrupted)" } else { "" }
        );
        self.row("queries", r.queries);
        self.row("queries/s", format!("{:.1}", r.rate()));
        self.row("acquire wait p50", fmt_us(r.hist.value_at_quantile(0.50)));
        self.row("acquire wait p99", fmt_us(r.hist.value_at_quantile(0.99)));
        self.row("acquire wait max", fmt_us(r.hist.max()));
        let _ = writeln!(self.buf, "Pool statistics at the end");
        self.row(
            "open / idle / in_use",
            format!("{} / {} / {}", s.open, s.idle, s.in_use),
        );
        self.row("acquires", s.acquires);
        self.row("wait_count", s.wait_count);
        self.row("total wait duration", fmt_duration(s.wait_duration));
        self.row("connections created", s.connections_created);
        let closed: Vec<String> = CloseReason::ALL
            .iter()
            .filter(|&&reason| s.closed(reason) > 0)
            .map(|&reason| format!("{} {}", reason.as_str(), s.closed(reason)))
            .collect();
        self.row(
            "closed (by reason)",
            if closed.is_empty() {
                "0".to_string()
            } else {
                closed.join(", ")
            },
        );
        self.row("connect errors", s.connect_errors);
        self.flush()
    }

    /// The pool's health JSON (the `/api/db/health` body) and its latency histograms.
    fn observability(&mut self, health: &pgpool::Health, s: &Stats) -> Result<(), String> {
        let _ = writeln!(self.buf, "\nHealth (the /api/db/health body)");
        let _ = writeln!(self.buf, "{}", health.to_json());
        let _ = writeln!(self.buf, "\nPool latency histograms (pooled phase)");
        for row in crate::snapshot::histogram_rows(s) {
            let _ = writeln!(self.buf, "{row}");
        }
        self.flush()
    }

    fn per_query_summary(
        &mut self,
        args: &DemoArgs,
        r: &PhaseResult,
        pooled: &PhaseResult,
    ) -> Result<(), String> {
        let _ = writeln!(
            self.buf,
            "\nNew connection per query: {} threads for {:.1} s{}",
            args.threads,
            r.elapsed.as_secs_f64(),
            if r.interrupted { " (interrupted)" } else { "" }
        );
        self.row("queries", r.queries);
        self.row("queries/s", format!("{:.1}", r.rate()));
        self.row("connect time p50", fmt_us(r.hist.value_at_quantile(0.50)));
        self.row("connect time p99", fmt_us(r.hist.value_at_quantile(0.99)));
        self.buf.push('\n');
        if r.rate() > 0.0 {
            let ratio = pooled.rate() / r.rate();
            let _ = writeln!(self.buf, "pooling is {ratio:.1}x faster");
        } else {
            let _ = writeln!(
                self.buf,
                "pooling is faster (no query finished with a new connection per query)"
            );
        }
        self.flush()
    }
}
