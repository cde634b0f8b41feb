//! The background threads: the reaper (idle timeout, lifetime, `min_idle` refill) and the
//! keepalive (a round trip on connections idle for a while, replacing dead ones).
//!
//! Both hold only a `Weak` reference, so they never keep a pool alive; both sleep on the
//! pool's stop channel, so closing the pool (which drops the sender) wakes and ends them at
//! once; both catch panics per tick and carry on.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::clock::Tick;
use crate::event::{emit, CloseReason, Event};
use crate::manager::Manager;
use crate::pool::shared::{guarded, Shared};

/// Runs `tick` every `interval` until the pool is gone or `stop` disconnects.
pub(crate) fn spawn_periodic<M: Manager>(
    name: String,
    shared: Weak<Shared<M>>,
    stop: Receiver<()>,
    interval: Duration,
    tick: fn(&Arc<Shared<M>>),
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name(name).spawn(move || loop {
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(this) = shared.upgrade() else { return };
        if panic::catch_unwind(AssertUnwindSafe(|| tick(&this))).is_err() {
            log::error!(target: "pgpool", "a maintenance tick panicked; continuing");
        }
    })
}

/// Closes idle connections past their lifetime or idle timeout (never below `min_idle` for
/// the latter) and starts connects to refill `min_idle`.
pub(crate) fn reap<M: Manager>(this: &Arc<Shared<M>>) {
    let now = Tick::now();
    let mut state = this.state.lock();
    if state.closed {
        return;
    }
    let mut retired = Vec::new();
    let mut i = 0;
    while i < state.idle.len() {
        if this.is_expired(&state.idle[i], now) {
            if let Some(conn) = state.idle.remove(i) {
                retired.push(this.retire(&mut state, conn, CloseReason::Lifetime));
            }
        } else {
            i += 1;
        }
    }
    if let Some(limit) = this.config.idle_timeout {
        let keep = this.config.min_idle as usize;
        let mut i = 0;
        // Front = least recently used, so the longest-idle go first.
        while i < state.idle.len() && state.idle.len() > keep {
            if now.since(state.idle[i].last_used) >= limit {
                if let Some(conn) = state.idle.remove(i) {
                    retired.push(this.retire(&mut state, conn, CloseReason::IdleTimeout));
                }
            } else {
                i += 1;
            }
        }
    }
    let spawn = this.plan_connects(&mut state);
    drop(state);
    for r in retired {
        this.send_to_closer(Some(r));
    }
    this.spawn_connectors(spawn);
}

/// Checks, one at a time and least recently used first, every idle connection that has not
/// proved alive for a whole interval. A connection being checked is out of the idle list
/// (counted in `checking`), so no caller can get it meanwhile.
pub(crate) fn keepalive<M: Manager>(this: &Arc<Shared<M>>) {
    let Some(interval) = this.config.keepalive_interval else {
        return;
    };
    let budget = this.state.lock().idle.len();
    for _ in 0..budget {
        let now = Tick::now();
        let mut state = this.state.lock();
        if state.closed {
            return;
        }
        let Some(pos) = state
            .idle
            .iter()
            .position(|c| now.since(c.last_alive) >= interval)
        else {
            return;
        };
        let Some(mut conn) = state.idle.remove(pos) else {
            return;
        };
        state.checking += 1;
        drop(state);

        let timeout = this.config.validation_timeout;
        let result = guarded("keepalive", || {
            this.manager.validate(&mut conn.raw, timeout)
        });
        let mut state = this.state.lock();
        state.checking -= 1;
        let retired = match &result {
            Ok(()) if !state.closed => {
                conn.last_alive = Tick::now();
                if state.waiters.is_empty() {
                    // Back where it was in the LRU order.
                    let at = pos.min(state.idle.len());
                    state.idle.insert(at, conn);
                    None
                } else {
                    this.make_available(&mut state, conn)
                }
            }
            Ok(()) => Some(this.retire(&mut state, conn, CloseReason::PoolClosed)),
            Err(_) => Some(this.retire(&mut state, conn, CloseReason::FailedKeepalive)),
        };
        drop(state);
        this.send_to_closer(retired);
        if let Err(error) = result {
            emit(this.hook.as_ref(), Event::Error { error });
        }
    }
}
