//! A small built-in workload, so that `stats --watch` and `metrics` have something to show:
//! T threads loop acquire, a short query, a short hold, release, on a pool of P connections.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pgpool::Pool;

use crate::util::Failure;

/// The statement each workload thread runs; the answer is checked.
const QUERY: &str = "SELECT $1::int4 + 1";
/// Pause after a failed acquire or query, so that a down server is not hammered.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// `--workload T,P`: T threads on a pool of P connections; `off` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkloadSpec {
    pub(crate) threads: u32,
    pub(crate) pool_size: Option<u32>,
}

impl WorkloadSpec {
    pub(crate) const OFF: WorkloadSpec = WorkloadSpec {
        threads: 0,
        pool_size: None,
    };
}

/// Parses `T,P`, `T` (the pool keeps its configured size) or `off`.
pub(crate) fn parse_spec(s: &str) -> Result<WorkloadSpec, String> {
    let t = s.trim();
    if matches!(t, "off" | "none" | "0") {
        return Ok(WorkloadSpec::OFF);
    }
    let (threads, size) = match t.split_once(',') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (t, None),
    };
    let threads: u32 = threads
        .parse()
        .ok()
        .filter(|n| (1..=1024).contains(n))
        .ok_or_else(|| format!("'{s}': threads must be 1 to 1024 (write T,P, e.g. 4,2)"))?;
    let pool_size = match size {
        None => None,
        Some(p) => Some(
            p.parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| format!("'{s}': the pool size must be 1 to 1000"))?,
        ),
    };
    Ok(WorkloadSpec { threads, pool_size })
}

/// Running workload threads and their counts.
pub(crate) struct Workload {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
    queries: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl Workload {
    /// Starts `threads` threads on `pool` (none for 0).
    pub(crate) fn start(pool: &Pool, threads: u32) -> Result<Workload, Failure> {
        let mut workload = Workload {
            stop: Arc::new(AtomicBool::new(false)),
            handles: Vec::new(),
            queries: Arc::new(AtomicU64::new(0)),
            errors: Arc::new(AtomicU64::new(0)),
        };
        for i in 0..threads {
            let (pool, stop) = (pool.clone(), Arc::clone(&workload.stop));
            let (queries, errors) = (Arc::clone(&workload.queries), Arc::clone(&workload.errors));
            let spawned = std::thread::Builder::new()
                .name(format!("workload-{i}"))
                .spawn(move || {
                    let mut n = i32::try_from(i).unwrap_or(0).wrapping_mul(100_000);
                    while !stop.load(Ordering::Relaxed) && !crate::signals::interrupted() {
                        n = n.wrapping_add(1) % 1_000_000;
                        match one(&pool, n) {
                            Ok(()) => queries.fetch_add(1, Ordering::Relaxed),
                            Err(()) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(ERROR_PAUSE);
                                0
                            }
                        };
                    }
                });
            match spawned {
                Ok(handle) => workload.handles.push(handle),
                Err(e) => {
                    workload.stop();
                    return Err(format!("cannot start workload thread {i}: {e}").into());
                }
            }
        }
        Ok(workload)
    }

    /// Threads started.
    pub(crate) fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Queries that succeeded so far.
    pub(crate) fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Acquires or queries that failed so far.
    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Asks the threads to stop after their current acquire (closing the pool wakes the ones
    /// that wait); [`Workload::join`] then collects them.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops and joins the threads.
    pub(crate) fn join(mut self) {
        self.stop();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// One acquire, query and hold; the hold (0 to 700 µs) makes hold time differ from query
/// time in the histograms.
fn one(pool: &Pool, n: i32) -> Result<(), ()> {
    let mut conn = pool.get().map_err(|_| ())?;
    let row = conn.query_one(QUERY, &[&n]).map_err(|_| ())?;
    let got: i32 = row.try_get(0).map_err(|_| ())?;
    if got != n.wrapping_add(1) {
        return Err(());
    }
    let hold = u64::try_from(n.rem_euclid(8)).unwrap_or(0) * 100;
    std::thread::sleep(Duration::from_micros(hold));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_workload_specs() {
        assert_eq!(
            parse_spec("4,2"),
            Ok(WorkloadSpec {
                threads: 4,
                pool_size: Some(2)
            })
        );
        assert_eq!(
            parse_spec("3"),
            Ok(WorkloadSpec {
                threads: 3,
                pool_size: None
            })
        );
        assert_eq!(parse_spec("off"), Ok(WorkloadSpec::OFF));
        assert!(parse_spec("4,0").is_err());
        assert!(parse_spec("x,2").is_err());
    }
}
