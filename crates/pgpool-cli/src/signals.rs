//! SIGINT and SIGTERM, through the library's [`Shutdown`] (built on `signal-hook`): the
//! first signal asks for a graceful stop, a second one ends the process at once (status 130
//! for SIGINT, 143 for SIGTERM; a throwaway cluster's watchdog process then removes it).
//!
//! On the first signal, the pools handed to [`close_on_signal`] are closed by the library
//! within their deadline (new acquires fail at once: no more work is accepted), and every
//! command sees [`interrupted`] turn true or returns from [`wait`] / [`wait_timeout`]: it stops
//! its own threads, prints what it has, and removes its throwaway cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgpool::shutdown::Shutdown;
use pgpool::Pool;

/// Exit code after an interrupt, as shells report death by SIGINT.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// A copy of [`Shutdown::requested`] that hot loops can read without taking a lock.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Takes over SIGINT and SIGTERM. Without it (setting up failed) they end the process at
/// once, as by default; a warning says so.
pub(crate) fn install() {
    let shutdown = match Shutdown::install() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            eprintln!("pgpool: warning: {e}; SIGINT/SIGTERM end the process at once");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("signal-watch".into())
        .spawn(move || {
            shutdown.wait();
            INTERRUPTED.store(true, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        eprintln!("pgpool: warning: cannot start the signal thread ({e})");
    }
}

/// True once SIGINT or SIGTERM was received.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Sleeps until a signal arrives or `timeout` passes; true if a signal arrived.
pub(crate) fn wait_timeout(timeout: Duration) -> bool {
    match Shutdown::installed() {
        Some(shutdown) => shutdown.wait_timeout(timeout),
        None => {
            std::thread::sleep(timeout);
            false
        }
    }
}

/// Sleeps until a signal arrives.
pub(crate) fn wait() {
    while !wait_timeout(Duration::from_secs(3600)) {}
}

/// Has the library close `pool` within `deadline` of the first signal.
pub(crate) fn close_on_signal(pool: &Pool, deadline: Duration) {
    if let Some(shutdown) = Shutdown::installed() {
        shutdown.close_pools_on_signal(vec![pool.clone()], deadline);
    }
}
