//! The pool's shared state, the one lock that guards it, and the acquire/release paths.
//!
//! # The lock and what it guards
//!
//! `Shared::state` (a `parking_lot::Mutex`) guards every field of [`State`]. Each waiter's
//! `slot` has its own mutex but is only touched while the pool lock is held, so it is never
//! contended; it exists because the waiter owns its slot across the wait.
//!
//! Invariants, true whenever the pool lock is free:
//! 1. `idle.len() + in_use + checking + pending + closing <= max_size`: every connection that
//!    exists, is being opened, or is being closed holds one slot.
//! 2. A connection is in exactly one place: `idle`, a caller's guard (`in_use`), the keepalive
//!    thread (`checking`), a waiter's slot (counted in `in_use`), or the closer's queue
//!    (`closing`).
//! 3. `!waiters.is_empty()` implies `idle.is_empty()`: a connection that becomes available is
//!    handed straight to the oldest waiter (first come, first served; nobody barges).
//! 4. `idle` is ordered by release time: the back is the most recently used (handed out
//!    first, unless the caller's own last connection is among the few most recent), the front
//!    the least (reaped first).
//! 5. `closed` only goes from false to true.
//!
//! No I/O, no user callback and no thread join happens under the lock; critical sections
//! only move values and count, so they cannot panic (parking_lot locks do not poison, and a
//! panic mid-section would leave counts wrong).

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::clock::Tick;
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::event::{emit, CloseReason, Event, EventHook};
use crate::manager::{Manager, Probe};
use crate::stats::{Counters, Stats};

/// A pooled connection with the pool's bookkeeping.
pub(crate) struct Conn<C> {
    pub(crate) raw: C,
    pub(crate) id: u64,
    pub(crate) created: Tick,
    /// When `max_lifetime` (minus jitter) runs out; `None` for never.
    pub(crate) expires: Option<Tick>,
    /// Last release (or creation): what `idle_timeout` measures.
    pub(crate) last_used: Tick,
    /// Last time the session proved alive (use, validation, keepalive).
    pub(crate) last_alive: Tick,
    /// When the current holder got it.
    pub(crate) checked_out: Tick,
    pub(crate) uses: u64,
}

/// A connection on its way to the closer thread.
pub(crate) struct Retired<C> {
    pub(crate) conn: Conn<C>,
    pub(crate) reason: CloseReason,
}

pub(crate) enum Delivery<C> {
    Conn(Conn<C>),
    Failed(Error),
}

/// One caller blocked in acquire. Its condvar is always waited on with the pool lock.
pub(crate) struct Waiter<C> {
    cv: Condvar,
    slot: Mutex<Option<Delivery<C>>>,
}

pub(crate) struct State<C> {
    pub(crate) idle: VecDeque<Conn<C>>,
    pub(crate) in_use: usize,
    pub(crate) checking: usize,
    pub(crate) pending: usize,
    pub(crate) closing: usize,
    pub(crate) waiters: VecDeque<Arc<Waiter<C>>>,
    pub(crate) closed: bool,
    pub(crate) last_connect_error: Option<Error>,
    pub(crate) counters: Counters,
}

impl<C> State<C> {
    fn slots_used(&self) -> usize {
        self.idle.len() + self.in_use + self.checking + self.pending + self.closing
    }

    fn describe(&self, max_size: u32) -> String {
        format!(
            "open {}/{max_size}, in use {}, idle {}, connecting {}, closing {}, waiting {}",
            self.idle.len() + self.in_use + self.checking,
            self.in_use,
            self.idle.len(),
            self.pending,
            self.closing,
            self.waiters.len()
        )
    }
}

pub(crate) struct Shared<M: Manager> {
    pub(crate) id: u64,
    pub(crate) manager: M,
    pub(crate) config: Config,
    pub(crate) hook: Option<EventHook>,
    pub(crate) state: Mutex<State<M::Connection>>,
    /// Notified (with the pool lock) when a connect finishes or a slot is freed after close:
    /// what `close` and `wait_ready` wait on.
    pub(crate) changed: Condvar,
    /// Source of connection ids (not under the lock: ids are handed out before it is taken).
    pub(crate) next_conn_id: AtomicU64,
    pub(crate) closer: Sender<Retired<M::Connection>>,
    /// Dropping this sender stops the reaper and keepalive threads.
    pub(crate) stop: Mutex<Option<Sender<()>>>,
}

/// Runs `f`, turning a panic into an error.
pub(crate) fn guarded<T>(context: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(Error::panic(context, &*p)))
}

impl<M: Manager> Shared<M> {
    pub(crate) fn is_expired(&self, conn: &Conn<M::Connection>, now: Tick) -> bool {
        conn.expires.is_some_and(|at| now >= at)
    }

    fn new_conn(&self, raw: M::Connection, id: u64, now: Tick) -> Conn<M::Connection> {
        let expires = self.config.max_lifetime.map(|life| {
            // Up to 2.5% jitter so connections opened together do not all expire together.
            let jitter = life.mul_f64(fastrand::f64() * 0.025);
            now.after(life - jitter)
        });
        Conn {
            raw,
            id,
            created: now,
            expires,
            last_used: now,
            last_alive: now,
            checked_out: now,
            uses: 0,
        }
    }

    /// Counts how many connects to start now and reserves their slots: one per waiter not
    /// already covered by a connect in flight, plus the `min_idle` deficit, within `max_size`.
    pub(crate) fn plan_connects(&self, state: &mut State<M::Connection>) -> usize {
        let min_idle = self.config.min_idle as usize;
        self.plan_connects_for(state, min_idle.saturating_sub(state.idle.len()))
    }

    /// Like [`plan_connects`](Self::plan_connects) with an explicit number of connections
    /// wanted beyond one per waiter.
    fn plan_connects_for(&self, state: &mut State<M::Connection>, extra: usize) -> usize {
        if state.closed {
            return 0;
        }
        let wanted = state.waiters.len() + extra;
        let mut n = 0;
        while state.pending < wanted && state.slots_used() < self.config.max_size as usize {
            state.pending += 1;
            n += 1;
        }
        n
    }

    /// Starts `n` connector threads whose slots `plan_connects` reserved.
    pub(crate) fn spawn_connectors(self: &Arc<Self>, n: usize) {
        for _ in 0..n {
            let this = Arc::clone(self);
            let spawned = thread::Builder::new()
                .name(format!("pgpool-n{}", self.id))
                .spawn(move || this.connector());
            if let Err(e) = spawned {
                let err = Error::new(
                    ErrorKind::Connect,
                    format!("cannot start a connector thread: {e}"),
                );
                let mut state = self.state.lock();
                state.pending -= 1;
                state.last_connect_error = Some(err.clone());
                self.changed.notify_all();
                drop(state);
                emit(self.hook.as_ref(), Event::Error { error: err });
            }
        }
    }

    /// One connector thread: opens a connection for the pool, retrying transient failures with
    /// backoff while somebody still needs it.
    fn connector(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let started = Instant::now();
            match guarded("connect", || self.manager.connect()) {
                Ok(raw) => {
                    let took = started.elapsed();
                    let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1;
                    // Before the connection is visible: `Connect` precedes its `Acquire`.
                    emit(self.hook.as_ref(), Event::Connect { conn_id: id, took });
                    let conn = self.new_conn(raw, id, Tick::now());
                    let mut state = self.state.lock();
                    state.pending -= 1;
                    state.counters.created += 1;
                    state.last_connect_error = None;
                    let retired = if state.closed {
                        Some(self.retire(&mut state, conn, CloseReason::PoolClosed))
                    } else {
                        self.make_available(&mut state, conn)
                    };
                    self.changed.notify_all();
                    drop(state);
                    self.send_to_closer(retired);
                    return;
                }
                Err(err) => {
                    let mut state = self.state.lock();
                    state.counters.connect_errors += 1;
                    state.last_connect_error = Some(err.clone());
                    let needed = !state.waiters.is_empty()
                        || state.idle.len() < self.config.min_idle as usize;
                    if state.closed || !needed || err.is_permanent_connect() {
                        state.pending -= 1;
                        // A permanent error fails the oldest waiter at once; the others get
                        // connects of their own (and so the same verdict, one by one).
                        // The min_idle deficit is left to the reaper's next tick, so a bad
                        // password costs one attempt per tick, not a tight loop of logins.
                        if err.is_permanent_connect() {
                            if let Some(w) = state.waiters.pop_front() {
                                w.deliver(Delivery::Failed(err.clone()));
                            }
                        }
                        let spawn = self.plan_connects_for(&mut state, 0);
                        self.changed.notify_all();
                        drop(state);
                        emit(self.hook.as_ref(), Event::Error { error: err });
                        self.spawn_connectors(spawn);
                        return;
                    }
                    self.changed.notify_all();
                    drop(state);
                    emit(self.hook.as_ref(), Event::Error { error: err });
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Gives an available connection to the oldest waiter, else keeps it idle; returns it as
    /// retired when `max_idle` connections are already idle.
    pub(crate) fn make_available(
        &self,
        state: &mut State<M::Connection>,
        conn: Conn<M::Connection>,
    ) -> Option<Retired<M::Connection>> {
        if let Some(waiter) = state.waiters.pop_front() {
            state.in_use += 1;
            state.counters.acquires += 1;
            waiter.deliver(Delivery::Conn(conn));
            None
        } else if state.idle.len() >= self.config.max_idle as usize {
            Some(self.retire(state, conn, CloseReason::MaxIdle))
        } else {
            state.idle.push_back(conn);
            None
        }
    }

    /// Moves `conn` (already out of every other place) to `closing` and counts the reason.
    pub(crate) fn retire(
        &self,
        state: &mut State<M::Connection>,
        conn: Conn<M::Connection>,
        reason: CloseReason,
    ) -> Retired<M::Connection> {
        state.closing += 1;
        state.counters.closed[reason.index()] += 1;
        Retired { conn, reason }
    }

    pub(crate) fn send_to_closer(&self, retired: Option<Retired<M::Connection>>) {
        if let Some(r) = retired {
            // The closer lives as long as any sender; a failed send means it is gone, and
            // dropping here is the only option left.
            if let Err(e) = self.closer.send(r) {
                drop(e.into_inner());
            }
        }
    }

    /// Closes a connection that a caller's acquire took out but found unusable.
    fn discard_checked_out(&self, conn: Conn<M::Connection>, reason: CloseReason) {
        let mut state = self.state.lock();
        state.in_use -= 1;
        state.counters.acquires -= 1;
        let retired = self.retire(&mut state, conn, reason);
        drop(state);
        self.send_to_closer(Some(retired));
    }

    /// Acquire: an idle connection (this thread's last one if it is among the most recent,
    /// else the most recently used), else wait in line (starting a connect if there is room)
    /// until one is handed over or the deadline passes. One deadline covers the waits and the
    /// validation round trips of the whole call.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        timeout: Option<Duration>,
    ) -> Result<Conn<M::Connection>, Error> {
        // Precise time is read only once the caller has to wait: the fast path stays cheap.
        let mut start: Option<Instant> = None;
        let mut deadline: Option<Instant> = None;
        let mut first_in_line = false;
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return Err(Error::closed());
            }
            if let (Some(s), Some(d)) = (start, deadline) {
                if Instant::now() >= d {
                    return Err(self.timed_out(&mut state, s));
                }
            }
            let conn = match take_idle(&mut state.idle, self.id) {
                Some(conn) => {
                    state.in_use += 1;
                    state.counters.acquires += 1;
                    conn
                }
                None => {
                    if timeout == Some(Duration::ZERO) {
                        let spawn = self.plan_connects(&mut state);
                        MutexGuard::unlocked(&mut state, || self.spawn_connectors(spawn));
                        return Err(Error::new(ErrorKind::Timeout, "no idle connection"));
                    }
                    if let Some(max) = self.config.max_waiters {
                        if state.waiters.len() >= max {
                            state.counters.overloaded += 1;
                            return Err(Error::new(
                                ErrorKind::Overloaded,
                                format!(
                                    "pool overloaded: {} callers already waiting (max_waiters {max}); {}",
                                    state.waiters.len(),
                                    state.describe(self.config.max_size)
                                ),
                            ));
                        }
                    }
                    let waiter = Arc::new(Waiter {
                        cv: Condvar::new(),
                        slot: Mutex::new(None),
                    });
                    if first_in_line {
                        state.waiters.push_front(Arc::clone(&waiter));
                    } else {
                        state.waiters.push_back(Arc::clone(&waiter));
                    }
                    first_in_line = true;
                    let began = start_clock(&mut start, &mut deadline, timeout);
                    let spawn = self.plan_connects(&mut state);
                    if spawn > 0 {
                        MutexGuard::unlocked(&mut state, || self.spawn_connectors(spawn));
                    }
                    self.wait(&mut state, &waiter, deadline, began)?
                }
            };
            drop(state);
            match self.check_out(conn, timeout, &mut start, &mut deadline) {
                Ok(conn) => return Ok(conn),
                Err(()) => state = self.state.lock(),
            }
        }
    }

    /// Blocks on `waiter` until its slot is filled or `deadline` passes.
    fn wait(
        &self,
        state: &mut MutexGuard<'_, State<M::Connection>>,
        waiter: &Arc<Waiter<M::Connection>>,
        deadline: Option<Instant>,
        start: Instant,
    ) -> Result<Conn<M::Connection>, Error> {
        loop {
            if let Some(delivery) = waiter.slot.lock().take() {
                state.counters.wait_count += 1;
                state.counters.wait_duration += start.elapsed();
                return match delivery {
                    Delivery::Conn(conn) => Ok(conn),
                    Delivery::Failed(err) => Err(err),
                };
            }
            let timed_out = match deadline {
                Some(d) => waiter.cv.wait_until(state, d).timed_out(),
                None => {
                    waiter.cv.wait(state);
                    false
                }
            };
            if timed_out && waiter.slot.lock().is_none() {
                if let Some(pos) = state.waiters.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                    state.waiters.remove(pos);
                }
                return Err(self.timed_out(state, start));
            }
        }
    }

    fn timed_out(&self, state: &mut State<M::Connection>, start: Instant) -> Error {
        state.counters.acquire_timeouts += 1;
        state.counters.wait_count += 1;
        let waited = start.elapsed();
        state.counters.wait_duration += waited;
        Error::timeout(
            waited,
            &state.describe(self.config.max_size),
            state.last_connect_error.as_ref(),
        )
    }

    /// The checks before hand-out, outside the lock: lifetime, the zero-cost probe, and a
    /// validation round trip when the probe is suspicious or the connection sat unused longer
    /// than the skip window. A failed check closes the connection.
    fn check_out(
        &self,
        mut conn: Conn<M::Connection>,
        timeout: Option<Duration>,
        start: &mut Option<Instant>,
        deadline: &mut Option<Instant>,
    ) -> Result<Conn<M::Connection>, ()> {
        let now = Tick::now();
        if self.is_expired(&conn, now) {
            self.discard_checked_out(conn, CloseReason::Lifetime);
            return Err(());
        }
        let probe = self.manager.probe(&mut conn.raw);
        let validate = match probe {
            Probe::Broken => {
                self.discard_checked_out(conn, CloseReason::FailedValidation);
                return Err(());
            }
            Probe::Suspect => true,
            Probe::Healthy => {
                self.config.validate_on_acquire
                    && now.since(conn.last_alive) >= self.config.validation_skip_window
            }
        };
        if validate {
            // The round trip is bounded by what is left of the caller's one deadline.
            start_clock(start, deadline, timeout);
            let mut limit = self.config.validation_timeout;
            if let Some(d) = *deadline {
                let left = d.saturating_duration_since(Instant::now());
                limit = limit.min(left.max(Duration::from_millis(1)));
            }
            let result = guarded("validate", || self.manager.validate(&mut conn.raw, limit));
            self.state.lock().counters.validations += 1;
            if let Err(error) = result {
                emit(self.hook.as_ref(), Event::Error { error });
                self.discard_checked_out(conn, CloseReason::FailedValidation);
                return Err(());
            }
            conn.last_alive = Tick::now();
        }
        conn.checked_out = now;
        Ok(conn)
    }

    /// Release: reset outside the lock, then hand to the oldest waiter, keep idle, or retire.
    pub(crate) fn release(&self, mut conn: Conn<M::Connection>, panicking: bool) {
        LAST_RELEASED.with(|last| last.set((self.id, conn.id)));
        let now = Tick::now();
        conn.uses += 1;
        conn.last_used = now;
        conn.last_alive = now;
        // A panicking holder may have left the session in any state: no reset, discard.
        let clean = !panicking
            && panic::catch_unwind(AssertUnwindSafe(|| self.manager.reset(&mut conn.raw)))
                .unwrap_or(false);
        let reason = if !clean {
            Some(CloseReason::Broken)
        } else if self.config.max_uses.is_some_and(|max| conn.uses >= max) {
            Some(CloseReason::MaxUses)
        } else if self.is_expired(&conn, now) {
            Some(CloseReason::Lifetime)
        } else {
            None
        };
        let (id, held) = (conn.id, now.since(conn.checked_out));
        let mut state = self.state.lock();
        state.in_use -= 1;
        let retired = match reason {
            Some(reason) => Some(self.retire(&mut state, conn, reason)),
            None if state.closed => Some(self.retire(&mut state, conn, CloseReason::PoolClosed)),
            None => self.make_available(&mut state, conn),
        };
        drop(state);
        // Before the closer sees it: a connection's `Release` precedes its `Remove`.
        if self.hook.is_some() || log::log_enabled!(target: "pgpool", log::Level::Trace) {
            emit(self.hook.as_ref(), Event::Release { conn_id: id, held });
        }
        self.send_to_closer(retired);
    }

    /// Closes a connection its holder asked to discard.
    pub(crate) fn discard(&self, conn: Conn<M::Connection>) {
        let mut state = self.state.lock();
        state.in_use -= 1;
        let retired = self.retire(&mut state, conn, CloseReason::Discarded);
        drop(state);
        self.send_to_closer(Some(retired));
    }

    /// Marks the pool closed, fails every waiter, and sends idle connections to the closer.
    /// Returns false when it was already closed.
    pub(crate) fn shut(&self) -> bool {
        let mut state = self.state.lock();
        if state.closed {
            return false;
        }
        state.closed = true;
        for waiter in std::mem::take(&mut state.waiters) {
            waiter.deliver(Delivery::Failed(Error::closed()));
        }
        let idle: Vec<_> = state.idle.drain(..).collect();
        let retired: Vec<_> = idle
            .into_iter()
            .map(|c| self.retire(&mut state, c, CloseReason::PoolClosed))
            .collect();
        self.changed.notify_all();
        drop(state);
        self.stop.lock().take();
        for r in retired {
            self.send_to_closer(Some(r));
        }
        true
    }

    /// Waits until nothing is in use, being opened or being closed, or until `deadline`.
    pub(crate) fn wait_drained(&self, deadline: Instant) -> bool {
        let mut state = self.state.lock();
        loop {
            if state.in_use + state.checking + state.pending + state.closing == 0 {
                return true;
            }
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                return state.in_use + state.checking + state.pending + state.closing == 0;
            }
        }
    }

    /// Waits until `min_idle` connections are idle; fails at once on a permanent connect
    /// error, or at `deadline` with the last connect error.
    pub(crate) fn wait_ready(self: &Arc<Self>, timeout: Duration) -> Result<(), Error> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut state = self.state.lock();
        let spawn = self.plan_connects(&mut state);
        MutexGuard::unlocked(&mut state, || self.spawn_connectors(spawn));
        loop {
            if state.closed {
                return Err(Error::closed());
            }
            if state.idle.len() + state.in_use >= self.config.min_idle as usize {
                return Ok(());
            }
            if let Some(err) = &state.last_connect_error {
                if err.is_permanent_connect() {
                    return Err(err.clone());
                }
            }
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                return Err(Error::timeout(
                    start.elapsed(),
                    &state.describe(self.config.max_size),
                    state.last_connect_error.as_ref(),
                ));
            }
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let state = self.state.lock();
        let c = &state.counters;
        Stats {
            max_size: self.config.max_size,
            open: (state.idle.len() + state.in_use + state.checking) as u32,
            in_use: state.in_use as u32,
            idle: state.idle.len() as u32,
            checking: state.checking as u32,
            pending: state.pending as u32,
            closing: state.closing as u32,
            waiting: state.waiters.len() as u32,
            acquires: c.acquires,
            wait_count: c.wait_count,
            wait_duration: c.wait_duration,
            acquire_timeouts: c.acquire_timeouts,
            overloaded: c.overloaded,
            connections_created: c.created,
            connect_errors: c.connect_errors,
            validations: c.validations,
            closed_by_reason: c.closed,
        }
    }

    pub(crate) fn describe(&self) -> String {
        self.state.lock().describe(self.config.max_size)
    }

    /// For the closer thread: one connection is gone; maybe open its replacement.
    pub(crate) fn closed_one(self: &Arc<Self>) {
        let mut state = self.state.lock();
        state.closing -= 1;
        let spawn = self.plan_connects(&mut state);
        self.changed.notify_all();
        drop(state);
        self.spawn_connectors(spawn);
    }
}

thread_local! {
    /// `(pool id, connection id)` this thread released last: its session's client state is
    /// likely still in this CPU's caches.
    static LAST_RELEASED: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// How far from the most-recently-used end acquire looks for the caller's own last
/// connection. Small, so the scan under the lock stays a few comparisons.
const AFFINITY_WINDOW: usize = 4;

/// Takes an idle connection: the one this thread released last if it is among the most
/// recently used few (thread affinity, as HikariCP's thread-local list), else the most
/// recently used one.
fn take_idle<C>(idle: &mut VecDeque<Conn<C>>, pool_id: u64) -> Option<Conn<C>> {
    let (pool, conn) = LAST_RELEASED.with(|last| last.get());
    if pool == pool_id {
        let len = idle.len();
        let found = (len.saturating_sub(AFFINITY_WINDOW)..len)
            .rev()
            .find(|&i| idle[i].id == conn);
        if let Some(i) = found {
            return idle.remove(i);
        }
    }
    idle.pop_back()
}

/// Starts the caller's clock at its first slow step (a wait or a validation round trip), so
/// the fast path reads no precise clock and every later step shares one deadline.
fn start_clock(
    start: &mut Option<Instant>,
    deadline: &mut Option<Instant>,
    timeout: Option<Duration>,
) -> Instant {
    let began = *start.get_or_insert_with(Instant::now);
    if deadline.is_none() {
        *deadline = timeout.and_then(|t| began.checked_add(t));
    }
    began
}

impl<C> Waiter<C> {
    /// Fills the slot and wakes the waiter. Called with the pool lock held.
    fn deliver(&self, delivery: Delivery<C>) {
        *self.slot.lock() = Some(delivery);
        self.cv.notify_one();
    }
}

/// The closer thread: drops retired connections (a `postgres::Client`'s drop does network
/// I/O and can block for as long as `tcp_user_timeout`), then frees their slots. Exits when
/// every sender is gone, i.e. after the pool's shared state is dropped.
pub(crate) fn closer_thread<M: Manager>(
    rx: crossbeam_channel::Receiver<Retired<M::Connection>>,
    shared: Weak<Shared<M>>,
) {
    for Retired { conn, reason } in rx.iter() {
        let id = conn.id;
        let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(conn.raw)));
        if dropped.is_err() {
            log::error!(target: "pgpool", "closing conn {id} panicked");
        }
        if let Some(this) = shared.upgrade() {
            this.closed_one();
            emit(
                this.hook.as_ref(),
                Event::Remove {
                    conn_id: id,
                    reason,
                },
            );
        }
    }
}
