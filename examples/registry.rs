//! A service with named pools from a TOML file that shuts down cleanly on SIGTERM / SIGINT.
//!
//! ```text
//! cargo run --example registry -- pools.toml [workers-per-pool] [hold]
//! ```
//!
//! `pools.toml` declares the pools (see `docs/operations/registry-and-shutdown.md`):
//!
//! ```toml
//! [defaults]
//! acquire_timeout = "5s"
//!
//! [pools.primary]
//! url_env = "DATABASE_URL"
//! max_size = 8
//! min_idle = 2
//! ```
//!
//! Every pool is opened and waited for (the program fails at once when a database is
//! unreachable), workers run queries on every pool until SIGTERM or SIGINT, then every pool
//! is closed within 5 s and a summary printed; the exit status is 0. With `hold`, one more
//! worker keeps a connection busy in a long statement, which the close reclaims at the
//! deadline. A second signal during the shutdown ends the process at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pgpool::shutdown::Shutdown;
use pgpool::Registry;

/// Runs the service on the pools of `file`; returns the exit status.
pub fn run(file: &str, workers: usize, hold: bool) -> i32 {
    // README:BEGIN registry-rust
    let registry = match Registry::from_file(file) {
        Ok(registry) => registry,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    // Open every pool and wait until each is ready: fail fast when a database is down.
    if let Err(e) = registry.open_all(Some(Duration::from_secs(10))) {
        eprintln!("{e}");
        registry.close_all(Duration::from_secs(1));
        return 1;
    }
    // On SIGTERM / SIGINT: stop accepting work, close every pool within 5 s.
    let shutdown = match Shutdown::install() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    shutdown.close_on_signal(&registry, Duration::from_secs(5));
    // README:END registry-rust

    let queries = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for name in registry.names() {
        let pool = registry.get(name).expect("every pool is open");
        for _ in 0..workers {
            let (pool, shutdown, queries) = (pool.clone(), shutdown.clone(), queries.clone());
            threads.push(std::thread::spawn(move || {
                while !shutdown.requested() {
                    match pool.query("SELECT pg_sleep(0.01)", &[]) {
                        Ok(_) => {
                            queries.fetch_add(1, Ordering::Relaxed);
                        }
                        // The pool closed: the shutdown began.
                        Err(e) if e.is_closed() => break,
                        Err(e) => eprintln!("{}: {e}", pool.name()),
                    }
                }
            }));
        }
    }
    if hold {
        let pool = registry.get(registry.names()[0]).expect("open");
        threads.push(std::thread::spawn(move || {
            let outcome = pool.query("SELECT pg_sleep(60)", &[]);
            println!(
                "held statement: {}",
                outcome.err().map_or("finished".into(), |e| e.to_string())
            );
        }));
    }
    println!(
        "ready: {} pools ({})",
        registry.names().len(),
        registry.names().join(", ")
    );

    // README:BEGIN registry-rust-wait
    let report = shutdown.wait_closed();
    println!("signal {}: {report}", shutdown.signal().unwrap_or(0));
    // README:END registry-rust-wait
    for thread in threads {
        let _ = thread.join();
    }
    println!(
        "{} queries; shutdown {}",
        queries.load(Ordering::Relaxed),
        if report.clean() {
            "clean"
        } else {
            "reclaimed connections"
        }
    );
    0
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: registry <pools.toml> [workers-per-pool] [hold]");
        std::process::exit(2);
    };
    let workers = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(2);
    let hold = args.get(2).is_some_and(|a| a == "hold");
    std::process::exit(run(file, workers, hold));
}
