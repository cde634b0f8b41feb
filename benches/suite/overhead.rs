//! Scenarios without the network: (1) the pool's own acquire + release cost and (3) fairness
//! under overload, pgpool and r2d2 over the very same no-op r2d2 manager.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::{alternate, histogram, Contender, Plan, Row, Sample};

/// A connection manager that does nothing: what is left is the pool.
#[derive(Debug)]
pub struct Noop;

impl r2d2::ManageConnection for Noop {
    type Connection = ();
    type Error = std::io::Error;
    fn connect(&self) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn has_broken(&self, _: &mut ()) -> bool {
        false
    }
}

fn pgpool_noop(size: u32) -> pgpool::Pool<pgpool::R2d2Manager<Noop>> {
    pgpool_noop_with(size, true)
}

/// The no-op pool with its latency histograms on (the default) or off.
fn pgpool_noop_with(size: u32, histograms: bool) -> pgpool::Pool<pgpool::R2d2Manager<Noop>> {
    let pool = pgpool::Pool::builder()
        .histograms(histograms)
        .max_size(size)
        .min_idle(size)
        .keepalive_interval(None)
        .build_with_manager(pgpool::R2d2Manager(Noop))
        .expect("pgpool over the no-op manager");
    pool.wait_ready(Duration::from_secs(10))
        .expect("no-op pool ready");
    pool
}

fn r2d2_noop(size: u32) -> r2d2::Pool<Noop> {
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(60))
        .build(Noop)
        .expect("r2d2 over the no-op manager")
}

/// Counts acquire + release cycles of `threads` threads for `window`.
fn cycles(threads: usize, window: Duration, cycle: Arc<dyn Fn() + Send + Sync>) -> Sample {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, barrier, cycle) = (stop.clone(), barrier.clone(), cycle.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        cycle();
                    }
                    n += 64;
                }
                n
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let mut sample = Sample::empty();
    sample.ops = handles
        .into_iter()
        .map(|h| h.join().expect("cycle thread"))
        .sum();
    sample.secs = t0.elapsed().as_secs_f64();
    sample
}

/// Scenario 1: acquire + release with no I/O, pool of 8, 1/2/8/32 threads; pgpool with its
/// latency histograms on (the default) and off, to show what they cost.
pub fn pool_overhead(plan: &Plan, rows: &mut Vec<Row>) {
    let window = if plan.quick {
        Duration::from_millis(100)
    } else {
        Duration::from_millis(700)
    };
    let ours = pgpool_noop(8);
    let bare = pgpool_noop_with(8, false);
    let theirs = r2d2_noop(8);
    for threads in [1usize, 2, 8, 32] {
        let o = ours.clone();
        let b = bare.clone();
        let t = theirs.clone();
        let mut contenders: Vec<Contender<'_>> = vec![
            (
                "pgpool".to_string(),
                Box::new(move || {
                    let o = o.clone();
                    cycles(threads, window, Arc::new(move || drop(o.get().unwrap())))
                }),
            ),
            (
                NO_HISTOGRAMS.to_string(),
                Box::new(move || {
                    let b = b.clone();
                    cycles(threads, window, Arc::new(move || drop(b.get().unwrap())))
                }),
            ),
            (
                "r2d2".to_string(),
                Box::new(move || {
                    let t = t.clone();
                    cycles(threads, window, Arc::new(move || drop(t.get().unwrap())))
                }),
            ),
        ];
        let results = alternate(plan.reps.max(2), &mut contenders);
        let group = format!("{threads} threads, pool of 8");
        for (name, s) in results {
            let per_sec = s.per_sec();
            let row = Row::new("overhead", &group, &name).with(vec![
                ("cycles_per_s", per_sec),
                ("ns_per_cycle", 1e9 / per_sec),
            ]);
            row.print();
            rows.push(row);
        }
    }
}

/// The overhead contender with `histograms(false)`.
pub const NO_HISTOGRAMS: &str = "pgpool-no-histograms";

/// For profiling (`perf stat`, callgrind): one contender's cycles at `threads` threads.
pub fn overhead_child(contender: &str, threads: usize, secs: f64) {
    let window = Duration::from_secs_f64(secs);
    let sample = if contender == "pgpool" {
        let pool = pgpool_noop(8);
        cycles(threads, window, Arc::new(move || drop(pool.get().unwrap())))
    } else {
        let pool = r2d2_noop(8);
        cycles(threads, window, Arc::new(move || drop(pool.get().unwrap())))
    };
    println!(
        "{contender} threads={threads} cycles={} ns_per_cycle={:.1}",
        sample.ops,
        1e9 / sample.per_sec()
    );
}

/// Per-thread results of one fairness run.
struct Fairness {
    cycles: Vec<u64>,
    wait: hdrhistogram::Histogram<u64>,
    hold_ns: u128,
    secs: f64,
}

/// Many threads, few connections: each acquires, holds for a random 50–200 µs (sleeping, so
/// holders do not compete for the CPU), releases, and goes again.
fn overload(
    threads: usize,
    window: Duration,
    acquire: Arc<dyn Fn() -> Box<dyn Send> + Send + Sync>,
) -> Fairness {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (stop, barrier, acquire) = (stop.clone(), barrier.clone(), acquire.clone());
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(i as u64 + 1);
                let mut wait = histogram();
                let (mut n, mut hold_ns) = (0u64, 0u128);
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    let t0 = Instant::now();
                    let conn = acquire();
                    let t1 = Instant::now();
                    std::thread::sleep(Duration::from_micros(rng.u64(50..=200)));
                    drop(conn);
                    wait.saturating_record((t1 - t0).as_nanos() as u64);
                    hold_ns += t1.elapsed().as_nanos();
                    n += 1;
                }
                (n, wait, hold_ns)
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let mut out = Fairness {
        cycles: Vec::new(),
        wait: histogram(),
        hold_ns: 0,
        secs: t0.elapsed().as_secs_f64(),
    };
    for h in handles {
        let (n, w, hold) = h.join().expect("fairness thread");
        out.cycles.push(n);
        out.wait.add(&w).expect("merge");
        out.hold_ns += hold;
    }
    out
}

/// Scenario 3: 64 threads on a pool of 8.
pub fn fairness(plan: &Plan, rows: &mut Vec<Row>) {
    const THREADS: usize = 64;
    const POOL: u32 = 8;
    let window = if plan.quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    let ours = pgpool_noop(POOL);
    let theirs = r2d2_noop(POOL);
    let reps = plan.reps.min(2);
    let mut runs: Vec<(String, Vec<Fairness>)> =
        vec![("pgpool".into(), Vec::new()), ("r2d2".into(), Vec::new())];
    for rep in 0..reps {
        for k in 0..2 {
            let which = if rep % 2 == 0 { k } else { 1 - k };
            let acquire: Arc<dyn Fn() -> Box<dyn Send> + Send + Sync> = if which == 0 {
                let o = ours.clone();
                Arc::new(move || Box::new(o.get().unwrap()))
            } else {
                let t = theirs.clone();
                Arc::new(move || Box::new(t.get().unwrap()))
            };
            runs[which].1.push(overload(THREADS, window, acquire));
        }
    }
    let group = format!("{THREADS} threads, pool of {POOL}, hold 50-200 us");
    for (name, results) in runs {
        let mut wait = histogram();
        let (mut total, mut hold_ns, mut secs) = (0u64, 0u128, 0.0);
        let mut per_thread = vec![0u64; THREADS];
        for r in &results {
            wait.add(&r.wait).expect("merge");
            hold_ns += r.hold_ns;
            secs += r.secs;
            for (slot, n) in per_thread.iter_mut().zip(&r.cycles) {
                *slot += n;
            }
            total += r.cycles.iter().sum::<u64>();
        }
        let mean_hold_us = hold_ns as f64 / 1000.0 / total.max(1) as f64;
        // Under FIFO with every connection busy, a caller waits for the holds of the
        // (threads - pool) callers ahead of it spread over `pool` connections.
        let ideal_us = (THREADS as f64 / POOL as f64 - 1.0) * mean_hold_us;
        let mean = total as f64 / THREADS as f64;
        let var = per_thread
            .iter()
            .map(|&n| (n as f64 - mean).powi(2))
            .sum::<f64>()
            / THREADS as f64;
        let p99 = wait.value_at_quantile(0.99) as f64 / 1000.0;
        let row = Row::new("fairness", &group, &name).with(vec![
            ("cycles_per_s", total as f64 / secs),
            ("mean_hold_us", mean_hold_us),
            ("ideal_wait_us", ideal_us),
            ("wait_p50_us", wait.value_at_quantile(0.5) as f64 / 1000.0),
            ("wait_p99_us", p99),
            ("wait_max_us", wait.max() as f64 / 1000.0),
            ("p99_vs_ideal", p99 / ideal_us),
            ("per_thread_ideal", mean),
            ("per_thread_min", *per_thread.iter().min().unwrap() as f64),
            ("per_thread_max", *per_thread.iter().max().unwrap() as f64),
            ("per_thread_cv", var.sqrt() / mean.max(1e-9)),
        ]);
        row.print();
        rows.push(row);
    }
}
