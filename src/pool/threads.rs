//! The pool's background threads, their spawn functions and their loops:
//!
//! | thread | name | holds | runs |
//! |---|---|---|---|
//! | connector | `pgpool-n<id>` | `Arc<Shared>` while it has work | at most `max_concurrent_connects` at once, started for reserved slots |
//! | housekeeper | `pgpool-h<id>` | `Weak<Shared>` | the reaper's tick every `reaper_interval`, the keepalive's every `keepalive_interval` and the stats log line every `stats_log_interval` (if set) |
//! | closer | `pgpool-c<id>` | `Weak<Shared>` + its channel | from the first retirement, only when the manager's `close_may_block` |
//! | canceller | `pgpool-x<id>` | the interrupters of reclaimed connections | for each batch of reclaims, until their cancel requests are sent |
//!
//! One housekeeper runs both periodic jobs (as HikariCP's housekeeper does: one thread fewer
//! per pool, which is most of a small pool's memory). It sleeps on the pool's stop channel
//! until the next job is due, so closing the pool (which drops the sender) wakes and ends it at
//! once; it catches a panic per job and carries on. A keepalive pass (at most one bounded
//! round trip per idle connection) delays the next reap by as much. The
//! closer catches a panic per connection and ends when its channel's sender goes, i.e. with
//! the pool's shared state (it must outlive `close`: connections in use are closed as they
//! come back). A connector takes reserved slots one at a time until none is left to attempt
//! (waiting out the circuit breaker's backoff between failures), catches a panicking connect
//! (counted as a connect error), and keeps the shared state alive by at most one connect.
//! While the breaker is open a single connector runs: the probe.
//! None of them holds the pool lock while doing I/O or calling the manager or a hook.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::clock::Tick;
use crate::error::{Error, ErrorKind};
use crate::event::{emit, CloseReason, Event};
use crate::manager::Manager;
use crate::pool::shared::{drop_retired, guarded, Shared};
use crate::pool::state::{ConnectJob, Retired};
use crate::sync::lock;

/// Starts the housekeeper thread; a failure to start it is reported as an `Error` event.
pub(crate) fn start_maintenance<M: Manager>(shared: &Arc<Shared<M>>, stop: Receiver<()>) {
    let id = shared.id;
    let weak = Arc::downgrade(shared);
    let every = Intervals {
        reap: shared.config.reaper_interval,
        keepalive: shared.config.keepalive_interval,
        stats_log: shared.config.stats_log_interval,
    };
    let spawned = thread::Builder::new()
        .name(format!("pgpool-h{id}"))
        .spawn(move || housekeeper(weak, stop, every));
    if let Err(e) = spawned {
        emit(
            shared.hook.as_ref(),
            Event::error(Error::usage(format!(
                "cannot start the pool's housekeeper thread: {e}"
            ))),
        );
    }
}

/// The housekeeper's periods.
struct Intervals {
    reap: Duration,
    keepalive: Option<Duration>,
    stats_log: Option<Duration>,
}

/// Runs the reaper's tick, the keepalive's and the stats log line at their intervals, until
/// the pool is gone or `stop` disconnects.
fn housekeeper<M: Manager>(shared: Weak<Shared<M>>, stop: Receiver<()>, every: Intervals) {
    let start = Instant::now();
    let mut next_reap = start + every.reap;
    let mut next_keepalive = every.keepalive.map(|d| start + d);
    let mut next_stats_log = every.stats_log.map(|d| start + d);
    loop {
        let due = [next_keepalive, next_stats_log]
            .into_iter()
            .flatten()
            .fold(next_reap, Instant::min);
        match stop.recv_timeout(due.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(this) = shared.upgrade() else { return };
        let now = Instant::now();
        if now >= next_reap {
            run_job("reaper", || reap(&this));
            run_job("checkouts", || check_checkouts(&this));
            next_reap = Instant::now() + every.reap;
        }
        if let (Some(at), Some(period)) = (next_keepalive, every.keepalive) {
            if now >= at {
                run_job("keepalive", || keepalive(&this));
                next_keepalive = Some(Instant::now() + period);
            }
        }
        if let (Some(at), Some(period)) = (next_stats_log, every.stats_log) {
            if now >= at {
                run_job("stats log", || log_stats(&this));
                // Fixed rate: the line's period does not drift with the other jobs.
                next_stats_log = Some((at + period).max(now));
            }
        }
    }
}

/// The log target of the periodic stats line.
pub(crate) const STATS_TARGET: &str = "pgpool::stats";

/// The periodic stats line (info level): gauges, counters since start, p99s.
fn log_stats<M: Manager>(this: &Arc<Shared<M>>) {
    if !log::log_enabled!(target: STATS_TARGET, log::Level::Info) {
        return;
    }
    let name = this.config.name.as_deref().unwrap_or("default");
    log::info!(target: STATS_TARGET, "pool {name}: {}", crate::stats::summary(&this.stats()));
}

fn run_job(what: &str, job: impl FnOnce()) {
    if panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
        log::error!(target: "pgpool", "the pool's {what} panicked; continuing");
    }
}

/// The reaper's tick: closes idle connections past their lifetime or idle timeout (never
/// below `min_idle` for the latter) and starts connects to refill `min_idle`.
fn reap<M: Manager>(this: &Arc<Shared<M>>) {
    let (retired, spawn) = this
        .lock_state()
        .reap(Tick::now(), this.config.idle_timeout);
    this.dispose(retired);
    spawn_connectors(this, spawn);
}

/// Reports checkouts held past `leak_threshold` and reclaims those past `max_checkout`.
fn check_checkouts<M: Manager>(this: &Arc<Shared<M>>) {
    let (leak, max) = (this.config.leak_threshold, this.config.max_checkout);
    if leak.is_none() && max.is_none() {
        return;
    }
    let (overdue, spawn) = this.lock_state().scan_checkouts(Tick::now(), leak, max);
    if !overdue.is_empty() {
        this.interrupt(overdue);
    }
    spawn_connectors(this, spawn);
}

/// The keepalive's tick: checks, one at a time and least recently used first, every idle
/// connection that has not proved alive for a whole interval. A connection being checked is
/// out of the idle list (counted in `checking`), so no caller can get it meanwhile.
fn keepalive<M: Manager>(this: &Arc<Shared<M>>) {
    let Some(interval) = this.config.keepalive_interval else {
        return;
    };
    let budget = this.lock_state().idle_len();
    for _ in 0..budget {
        let Some(mut conn) = this.lock_state().start_keepalive(Tick::now(), interval) else {
            return;
        };
        let timeout = this.config.validation_timeout;
        let result = guarded("keepalive", || {
            this.manager.validate(&mut conn.raw, timeout)
        });
        let unfit = match &result {
            Err(e) => Some((CloseReason::FailedKeepalive, Some(e))),
            Ok(()) => match this.unfit(&mut conn) {
                Some(reason) => Some((reason, None)),
                None => {
                    conn.last_alive = Tick::now();
                    None
                }
            },
        };
        let (id, backend_pid) = (conn.id, conn.backend_pid);
        let retired = this.lock_state().end_keepalive(conn, unfit);
        this.dispose(retired);
        if let Err(error) = result {
            emit(
                this.hook.as_ref(),
                Event::conn_error(error, id, backend_pid),
            );
        }
    }
}

/// Starts `n` connector threads, already counted by `State` (see `State::hire`).
pub(crate) fn spawn_connectors<M: Manager>(shared: &Arc<Shared<M>>, n: usize) {
    for _ in 0..n {
        let this = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("pgpool-n{}", shared.id))
            .spawn(move || connector(this));
        if let Err(e) = spawned {
            let err = Error::new(
                ErrorKind::Connect,
                format!("cannot start a connector thread: {e}"),
            );
            let mut state = shared.lock_state();
            state.connector_not_started(err.clone());
            shared.changed.notify_all();
            drop(state);
            emit(shared.hook.as_ref(), Event::error(err));
        }
    }
}

/// One connector thread: attempts connects for reserved slots until none is left, waiting
/// out the breaker's backoff between failures.
fn connector<M: Manager>(this: Arc<Shared<M>>) {
    let mut state = this.lock_state();
    loop {
        let started = match state.next_connect(Instant::now()) {
            ConnectJob::Exit => return,
            ConnectJob::Wait(until) => {
                // Woken early (a notification or a spurious wakeup) or not, the next job is
                // asked for again.
                state.wait_until(&this.changed, until);
                continue;
            }
            ConnectJob::Attempt(at) => at,
        };
        drop(state);
        let outcome = guarded("connect", || this.manager.connect());
        state = match outcome {
            Ok(mut raw) => {
                let took = started.elapsed();
                if let Some(h) = &this.histograms {
                    h.connect_time.record(took);
                }
                let interrupt = this.manager.interrupter(&mut raw);
                let id = this.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1;
                let conn = this.new_conn(raw, id, Tick::now());
                // Before the connection is visible: `Connect` precedes its `Acquire`.
                let backend_pid = conn.backend_pid;
                let event = Event::Connect {
                    conn_id: id,
                    took,
                    backend_pid,
                };
                emit(this.hook.as_ref(), event);
                let mut state = this.lock_state();
                let (retired, spawn) = state.connected(conn, interrupt, started);
                this.changed.notify_all();
                drop(state);
                this.dispose(retired);
                spawn_connectors(&this, spawn);
                this.lock_state()
            }
            Err(err) => {
                let mut state = this.lock_state();
                let spawn = state.connect_failed(&err, started);
                this.changed.notify_all();
                drop(state);
                emit(this.hook.as_ref(), Event::error(err));
                spawn_connectors(&this, spawn);
                this.lock_state()
            }
        };
    }
}

/// Hands a retired connection to the closer thread, starting it the first time. If the
/// thread cannot be started (reported as an `Error` event) or is gone, the connection is
/// closed here instead: a slot is never leaked.
pub(crate) fn send_to_closer<M: Manager>(shared: &Arc<Shared<M>>, retired: Retired<M::Connection>) {
    let tx = {
        let mut closer = lock(&shared.closer);
        match &*closer {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = crossbeam_channel::unbounded();
                let weak = Arc::downgrade(shared);
                let spawned = thread::Builder::new()
                    .name(format!("pgpool-c{}", shared.id))
                    .spawn(move || closer_loop(rx, weak));
                if let Err(e) = spawned {
                    drop(closer);
                    emit(
                        shared.hook.as_ref(),
                        Event::error(Error::usage(format!("cannot start a pool thread: {e}"))),
                    );
                    shared.close_retired(retired);
                    return;
                }
                *closer = Some(tx.clone());
                tx
            }
        }
    };
    if let Err(e) = tx.send(retired) {
        shared.close_retired(e.into_inner());
    }
}

/// The closer thread: closes retired connections (a `postgres::Client`'s drop does network
/// I/O and can block for as long as `tcp_user_timeout`), holding no reference to the pool
/// while it drops one. Exits when the channel's sender is gone, i.e. after the pool's shared
/// state is dropped.
fn closer_loop<M: Manager>(rx: Receiver<Retired<M::Connection>>, shared: Weak<Shared<M>>) {
    for retired in rx.iter() {
        let closed = drop_retired(retired);
        if let Some(this) = shared.upgrade() {
            this.closed_one(closed);
        }
    }
}
