//! Graceful shutdown on SIGTERM and SIGINT: stop accepting work, close every pool within a
//! deadline.
//!
//! [`Shutdown::install`] takes over SIGTERM (what `docker stop`, Kubernetes and systemd
//! send) and SIGINT (Ctrl-C) for the process, through the `signal-hook` crate: the first
//! such signal no longer ends the process but marks a shutdown as requested, which the
//! program sees with [`requested`](Shutdown::requested) (a worker loop's condition) or waits
//! for with [`wait`](Shutdown::wait). Pools handed to [`close_on_signal`](Shutdown::close_on_signal)
//! (a whole [`Registry`]) or [`close_pools_on_signal`](Shutdown::close_pools_on_signal) are
//! closed at that moment by a thread of the library, all within one deadline counted from
//! the signal: new acquires fail at once with [`Closed`](crate::ErrorKind::Closed), so work
//! stops being accepted while the work under way finishes; what is still held at the
//! deadline is reclaimed. [`wait_closed`](Shutdown::wait_closed) returns when that is done,
//! with the report; the program then returns from `main` (exit status 0).
//!
//! A second SIGTERM or SIGINT while the shutdown runs ends the process at once, with the
//! shell's status for a signal, 128 + its number (130 for SIGINT, 143 for SIGTERM): a stuck
//! shutdown can always be cut short, as a second Ctrl-C conventionally does.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), pgpool::Error> {
//! let registry = pgpool::Registry::from_file("pools.toml")?;
//! registry.open_all(Some(Duration::from_secs(10)))?;
//! let shutdown = pgpool::shutdown::Shutdown::install()?;
//! shutdown.close_on_signal(&registry, Duration::from_secs(10));
//!
//! let pool = registry.get("primary")?;
//! while !shutdown.requested() {
//!     match pool.get() {
//!         Ok(mut conn) => { conn.execute("SELECT 1", &[])?; }
//!         Err(e) if e.is_closed() => break, // the shutdown began
//!         Err(e) => return Err(e),
//!     }
//! }
//! let report = shutdown.wait_closed();
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! One [`Shutdown`] exists per process (signals are the process's): `install` returns it,
//! the first time installing the handlers, later times the same one. Do not install it in a
//! program whose runtime handles signals itself (a Go program: use `os/signal` there).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::error::Error;
use crate::pool::Pool;
use crate::registry::{CloseReport, PoolClose, Registry};
use crate::sync::lock;

/// What to close when the shutdown is requested.
enum Target {
    Registry(Registry),
    Pools(Vec<Pool>),
}

struct State {
    /// When the shutdown was requested, and by which signal (`None`: by [`Shutdown::request`]).
    requested: Option<(Instant, Option<i32>)>,
    /// Closes not started yet, each with its deadline (counted from the request).
    pending: Vec<(Target, Duration)>,
    /// Closes running now.
    running: usize,
    /// What the closes did.
    closed: Vec<PoolClose>,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    /// Set by the first signal: arms the immediate exit on the next one.
    armed: Arc<AtomicBool>,
}

/// The process's graceful-shutdown state: see the [module documentation](self). Cheap to
/// clone; every clone is the same shutdown.
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

static GLOBAL: OnceLock<Shutdown> = OnceLock::new();
static INSTALL: Mutex<()> = Mutex::new(());

impl Shutdown {
    /// Installs the SIGTERM and SIGINT handling (once per process) and returns the process's
    /// shutdown. Starts two threads, `pgpool-signals` (reads the signals) and
    /// `pgpool-shutdown` (runs the closes). Errors ([`Usage`](crate::ErrorKind::Usage)): a
    /// handler or a thread could not be set up.
    pub fn install() -> Result<Shutdown, Error> {
        let _once = lock(&INSTALL);
        if let Some(shutdown) = GLOBAL.get() {
            return Ok(shutdown.clone());
        }
        let shutdown = Shutdown {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    requested: None,
                    pending: Vec::new(),
                    running: 0,
                    closed: Vec::new(),
                }),
                changed: Condvar::new(),
                armed: Arc::new(AtomicBool::new(false)),
            }),
        };
        let setup = |e: std::io::Error| Error::usage(format!("cannot handle SIGTERM/SIGINT: {e}"));
        for signal in [SIGTERM, SIGINT] {
            // The exit goes first: on the first signal the flag is still false and nothing
            // happens, then the flag is set; on the second, the exit runs (signal-hook's
            // "double Ctrl-C" recipe).
            signal_hook::flag::register_conditional_shutdown(
                signal,
                128 + signal,
                Arc::clone(&shutdown.inner.armed),
            )
            .map_err(setup)?;
            signal_hook::flag::register(signal, Arc::clone(&shutdown.inner.armed))
                .map_err(setup)?;
        }
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(setup)?;
        let reader = shutdown.clone();
        std::thread::Builder::new()
            .name("pgpool-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    reader.request_by(Some(signal));
                }
            })
            .map_err(setup)?;
        let closer = shutdown.clone();
        std::thread::Builder::new()
            .name("pgpool-shutdown".into())
            .spawn(move || closer.run_closes())
            .map_err(setup)?;
        let _ = GLOBAL.set(shutdown.clone());
        Ok(shutdown)
    }

    /// The process's shutdown if [`install`](Shutdown::install) ran, else `None`.
    pub fn installed() -> Option<Shutdown> {
        GLOBAL.get().cloned()
    }

    /// Requests the shutdown as a signal would (for a program that decides to stop on its
    /// own, or a test). Idempotent: the first request counts.
    pub fn request(&self) {
        self.request_by(None);
    }

    fn request_by(&self, signal: Option<i32>) {
        let mut state = lock(&self.inner.state);
        if state.requested.is_none() {
            state.requested = Some((Instant::now(), signal));
            match signal {
                Some(s) => log::info!(target: "pgpool", "signal {s} received: shutting down"),
                None => log::info!(target: "pgpool", "shutdown requested"),
            }
        }
        drop(state);
        self.inner.changed.notify_all();
    }

    /// True once the shutdown was requested (by a signal or [`request`](Shutdown::request)):
    /// stop taking new work. Non-blocking.
    pub fn requested(&self) -> bool {
        lock(&self.inner.state).requested.is_some()
    }

    /// The signal that requested the shutdown (`SIGTERM` 15, `SIGINT` 2), `None` before it
    /// was requested or when [`request`](Shutdown::request) did.
    pub fn signal(&self) -> Option<i32> {
        lock(&self.inner.state).requested.and_then(|(_, s)| s)
    }

    /// Blocks until the shutdown is requested.
    pub fn wait(&self) {
        let mut state = lock(&self.inner.state);
        while state.requested.is_none() {
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Blocks up to `timeout` until the shutdown is requested; returns whether it was.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| s.requested.is_some())
    }

    fn wait_for(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = lock(&self.inner.state);
        loop {
            if done(&state) {
                return true;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            state = self
                .inner
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// When the shutdown is requested, closes every pool of `registry` as
    /// [`Registry::close_all`] does, within `deadline` counted from the request. Registered
    /// after the request, it closes at once (the deadline still counted from the request,
    /// but at least until now).
    pub fn close_on_signal(&self, registry: &Registry, deadline: Duration) {
        self.add(Target::Registry(registry.clone()), deadline);
    }

    /// As [`close_on_signal`](Shutdown::close_on_signal), for pools not in a registry.
    pub fn close_pools_on_signal(&self, pools: Vec<Pool>, deadline: Duration) {
        self.add(Target::Pools(pools), deadline);
    }

    fn add(&self, target: Target, deadline: Duration) {
        lock(&self.inner.state).pending.push((target, deadline));
        self.inner.changed.notify_all();
    }

    /// Blocks until the shutdown was requested and every close registered ran, then returns
    /// what they did (an empty report when nothing was registered).
    pub fn wait_closed(&self) -> CloseReport {
        self.wait_closed_timeout(Duration::MAX)
            .unwrap_or_else(|| self.report())
    }

    /// As [`wait_closed`](Shutdown::wait_closed), up to `timeout`; `None` when not done by
    /// then.
    pub fn wait_closed_timeout(&self, timeout: Duration) -> Option<CloseReport> {
        let done = self.wait_for(timeout, |s| {
            s.requested.is_some() && s.pending.is_empty() && s.running == 0
        });
        done.then(|| self.report())
    }

    fn report(&self) -> CloseReport {
        let state = lock(&self.inner.state);
        let elapsed = state
            .requested
            .map_or(Duration::ZERO, |(at, _)| at.elapsed());
        CloseReport {
            pools: state.closed.clone(),
            elapsed,
        }
    }

    /// The `pgpool-shutdown` thread: once the shutdown is requested, runs the closes (each
    /// on a thread of its own, so that one deadline bounds them all) as they are registered.
    fn run_closes(&self) {
        loop {
            let mut state = lock(&self.inner.state);
            while state.requested.is_none() || state.pending.is_empty() {
                state = self
                    .inner
                    .changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            let Some((at, _)) = state.requested else {
                continue;
            };
            let batch: Vec<(Target, Duration)> = std::mem::take(&mut state.pending);
            state.running += batch.len();
            drop(state);
            std::thread::scope(|scope| {
                for (target, deadline) in batch {
                    scope.spawn(move || {
                        let left = (at + deadline).saturating_duration_since(Instant::now());
                        let closed = match target {
                            Target::Registry(registry) => registry.close_all(left).pools,
                            Target::Pools(pools) => close_pools(&pools, left),
                        };
                        let mut state = lock(&self.inner.state);
                        state.closed.extend(closed);
                        state.running -= 1;
                        drop(state);
                        self.inner.changed.notify_all();
                    });
                }
            });
        }
    }
}

/// Closes `pools` in parallel within `deadline`.
fn close_pools(pools: &[Pool], deadline: Duration) -> Vec<PoolClose> {
    let until = Instant::now() + deadline;
    std::thread::scope(|scope| {
        let handles: Vec<_> = pools
            .iter()
            .map(|pool| {
                scope.spawn(move || {
                    crate::registry::close_one(pool.name(), pool, pool.stats().in_use, until)
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(pools)
            .map(|(h, pool)| {
                h.join().unwrap_or_else(|_| {
                    let clean = pool.close_without_waiting();
                    PoolClose::new(pool.name(), clean, 0, 0, Duration::ZERO)
                })
            })
            .collect()
    })
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("requested", &self.requested())
            .field("signal", &self.signal())
            .finish()
    }
}
