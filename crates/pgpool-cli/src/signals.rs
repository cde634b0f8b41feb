//! SIGINT and SIGTERM, through `signal-hook`'s iterator: the handler itself only writes to a
//! pipe, and a thread of ours turns each signal into state the commands poll or wait on.
//!
//! The first signal asks for a graceful stop: [`interrupted`] turns true, [`wait`] and
//! [`wait_timeout`] return, and every command stops accepting work, closes its pool within its
//! close timeout and removes its throwaway cluster. A second signal exits at once with
//! [`EXIT_INTERRUPTED`] (a throwaway cluster's watchdog process then removes it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Exit code after an interrupt, as shells report death by SIGINT.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// Set by the first SIGINT/SIGTERM.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The same fact under a mutex, for threads that sleep until it changes.
static WAKE: OnceLock<(Mutex<bool>, Condvar)> = OnceLock::new();

fn wake() -> &'static (Mutex<bool>, Condvar) {
    WAKE.get_or_init(|| (Mutex::new(false), Condvar::new()))
}

/// Starts the signal thread. Without it (registration failed) Ctrl-C ends the process at once,
/// as by default; a warning says so.
pub(crate) fn install() {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("pgpool: warning: cannot handle SIGINT/SIGTERM ({e}); Ctrl-C ends at once");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for _signal in signals.forever() {
                if INTERRUPTED.swap(true, Ordering::SeqCst) {
                    eprintln!("\npgpool: interrupted again, exiting now");
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
                let (lock, cvar) = wake();
                *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
                cvar.notify_all();
            }
        });
    if let Err(e) = spawned {
        eprintln!("pgpool: warning: cannot start the signal thread ({e})");
    }
}

/// True once SIGINT or SIGTERM was received.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sleeps until a signal arrives or `timeout` passes; true if a signal arrived.
pub(crate) fn wait_timeout(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let (lock, cvar) = wake();
    let mut signalled = lock.lock().unwrap_or_else(|p| p.into_inner());
    while !*signalled {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        signalled = cvar
            .wait_timeout(signalled, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    *signalled
}

/// Sleeps until a signal arrives.
pub(crate) fn wait() {
    while !wait_timeout(Duration::from_secs(3600)) {}
}
