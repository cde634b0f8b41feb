//! [`Shared`]: what every `Pool` clone, guard and background thread shares, and the paths
//! that drive the state through its transitions: acquire (with the hand-out checks), release,
//! discard, close, and disposing of retired connections.
//!
//! The pattern everywhere: do the slow or fallible part (reset, probe, validation, manager
//! calls) outside the lock; take the lock for one call into `state.rs`; release it; then emit
//! events, start connectors and close retired connections.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::clock::{stamp, Stamp, Tick};
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::event::{emit, CloseReason, Event, EventHook};
use crate::histogram::Recorder;
use crate::manager::{Manager, Probe};
use crate::pool::checkout::{Overdue, Site};
use crate::pool::state::{
    self, CheckIn, Conn, Limits, Retired, State, StateGuard, TimedOut, Waiter,
};
use crate::pool::threads;
use crate::stats::Stats;
use crate::sync::lock;

pub(crate) struct Shared<M: Manager> {
    pub(crate) id: u64,
    pub(crate) manager: M,
    pub(crate) config: Config,
    pub(crate) hook: Option<EventHook>,
    /// The pool lock. See [`State`] for what it guards and its invariants.
    pub(crate) state: Mutex<State<M::Connection>>,
    /// Notified (with the pool lock) when a connect finishes or a slot is freed: what `close`
    /// and `wait_ready` wait on.
    pub(crate) changed: Condvar,
    /// Source of connection ids (not under the lock: ids are handed out before it is taken).
    pub(crate) next_conn_id: AtomicU64,
    /// `!manager.close_may_block()`, asked once at start: retired connections are dropped on
    /// the thread that retired them instead of on the closer thread.
    pub(crate) close_inline: bool,
    /// The closer thread's channel, started the first time a connection is retired (never
    /// when `close_inline`). Dropping it (with `Shared`) ends the closer.
    pub(crate) closer: Mutex<Option<Sender<Retired<M::Connection>>>>,
    /// Dropping this sender stops the housekeeper thread.
    pub(crate) stop: Mutex<Option<Sender<()>>>,
    /// The process's fork generation when the pool was made: in a forked child the sessions
    /// belong to the parent, and the pool never touches them (nor its lock, which a parent
    /// thread may have held at the fork).
    fork_generation: u64,
    /// The latency histograms the pool keeps itself (`None` when `Config::histograms` is
    /// off); query times are the manager's (`Manager::query_time`).
    pub(crate) histograms: Option<PoolHistograms>,
}

/// Acquire wait and connect time of one pool (hold times are kept under the pool lock, in
/// `State`). Only acquires that had to wait are recorded: the others, which read no clock,
/// are the rest of the `acquires` counter and count as zero.
pub(crate) struct PoolHistograms {
    pub(crate) acquire_wait: Recorder,
    pub(crate) connect_time: Recorder,
}

/// Canceller threads (`Shared::interrupt`) still sending, process-wide.
static CANCELS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The most of a bounded close's time kept at its end for the cancel requests of what it
/// reclaims (a tenth of the time, at most this).
const CANCEL_RESERVE: Duration = Duration::from_millis(250);

/// Waits up to `bound` until the cancel requests of reclaimed statements are sent (each is
/// bounded by 2 s on its own): what a program about to exit after closing its pools needs, or
/// the statements would run on in the server. True when none is left.
fn wait_for_cancels(bound: Duration) -> bool {
    let until = Instant::now() + bound;
    while CANCELS_IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// In a forked child: the parent's canceller threads are not there. (An atomic store: safe
/// in the `fork` child handler.)
pub(crate) fn forget_cancels() {
    CANCELS_IN_FLIGHT.store(0, Ordering::SeqCst);
}

/// Runs `f`, turning a panic into an error.
pub(crate) fn guarded<T>(context: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(Error::panic(context, &*p)))
}

impl<M: Manager> Shared<M> {
    /// The shared state of a new pool, and the receiving end of its stop channel (for the
    /// the housekeeper thread). Config must already be validated.
    pub(crate) fn new(
        id: u64,
        manager: M,
        config: Config,
        hook: Option<EventHook>,
    ) -> (Arc<Shared<M>>, Receiver<()>) {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let shared = Arc::new(Shared {
            id,
            close_inline: !manager.close_may_block(),
            manager,
            hook,
            state: Mutex::new({
                let mut state = State::new(Limits::of(&config));
                if config.histograms {
                    state.keep_hold_times();
                }
                state
            }),
            changed: Condvar::new(),
            next_conn_id: AtomicU64::new(0),
            closer: Mutex::new(None),
            stop: Mutex::new(Some(stop_tx)),
            fork_generation: crate::sys::fork::generation(),
            histograms: config.histograms.then(|| PoolHistograms {
                acquire_wait: Recorder::new(),
                connect_time: Recorder::new(),
            }),
            config,
        });
        (shared, stop_rx)
    }

    /// Takes the pool lock.
    #[inline]
    pub(crate) fn lock_state(&self) -> StateGuard<'_, M::Connection> {
        StateGuard::lock(&self.state)
    }

    /// True in a process forked after the pool was made (see `fork_generation`).
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        crate::sys::fork::forked_since(self.fork_generation)
    }

    /// Wraps a freshly opened connection, with its lifetime deadline: the shorter of
    /// `max_lifetime` and the manager's [`lifetime`](Manager::lifetime) for it.
    pub(crate) fn new_conn(&self, raw: M::Connection, id: u64, now: Tick) -> Conn<M::Connection> {
        // A panicking manager gives no lifetime of its own.
        let own =
            panic::catch_unwind(AssertUnwindSafe(|| self.manager.lifetime(&raw))).unwrap_or(None);
        let life = match (self.config.max_lifetime, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let expires = life.map(|life| {
            // Up to 2.5% jitter so connections opened together do not all expire together.
            let jitter = life.mul_f64(fastrand::f64() * 0.025);
            now.after(life - jitter)
        });
        let mut conn = Conn::new(raw, id, now, expires);
        conn.backend_pid = self.manager.backend_pid(&conn.raw);
        conn
    }

    /// Disposes of what a check-in left: a retired connection is closed (see `dispose`); a
    /// reclaimed one is just dropped (its slot was freed when it was reclaimed).
    pub(crate) fn dispose_check_in(self: &Arc<Self>, out: CheckIn<M::Connection>) {
        match out {
            CheckIn::Kept => {}
            CheckIn::Retired(r) => self.dispose([r]),
            CheckIn::Dead(r) => {
                drop_retired(r);
            }
        }
    }

    /// Closes retired connections: here and now when closing cannot block (the lock is not
    /// held: callers release it first), else on the closer thread.
    pub(crate) fn dispose(
        self: &Arc<Self>,
        retired: impl IntoIterator<Item = Retired<M::Connection>>,
    ) {
        for r in retired {
            if self.close_inline {
                self.close_retired(r);
            } else {
                threads::send_to_closer(self, r);
            }
        }
    }

    /// Closes a retired connection on this thread: drops it, then [`closed_one`](Self::closed_one).
    pub(crate) fn close_retired(self: &Arc<Self>, retired: Retired<M::Connection>) {
        self.closed_one(drop_retired(retired));
    }

    /// Connection `id` is closed: frees its slot (maybe starting a replacement), wakes
    /// `close` and `wait_ready`, then emits `Remove`. The same steps on the closer thread and
    /// inline.
    pub(crate) fn closed_one(self: &Arc<Self>, closed: Closed) {
        let age = Tick::now().since(closed.created);
        let mut state = self.lock_state();
        let spawn = state.closed_one();
        self.changed.notify_all();
        drop(state);
        threads::spawn_connectors(self, spawn);
        emit(
            self.hook.as_ref(),
            Event::Remove {
                conn_id: closed.id,
                reason: closed.reason,
                backend_pid: closed.backend_pid,
                age,
            },
        );
    }

    /// Acquire: an idle connection (this thread's last one if it is among the most recent,
    /// else the most recently used), else wait in line (starting a connect if there is room)
    /// until one is handed over or the deadline passes. One deadline covers the waits and the
    /// validation round trips of the whole call.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        timeout: Option<Duration>,
        site: Site,
    ) -> Result<Conn<M::Connection>, Error> {
        // Precise time is read only once the caller has to wait: the fast path stays cheap.
        let mut start: Option<Instant> = None;
        let mut deadline: Option<Instant> = None;
        let mut first_in_line = false;
        if self.forked() {
            return Err(Error::forked());
        }
        let mut state = self.lock_state();
        loop {
            if state.is_closed() {
                return Err(Error::closed());
            }
            if let (Some(s), Some(d)) = (start, deadline) {
                if Instant::now() >= d {
                    let timed_out = state.time_out(s);
                    drop(state);
                    return Err(timed_out.into_error());
                }
            }
            let conn = match state.check_out_idle(self.id, &site) {
                Some(conn) => conn,
                None => {
                    // The breaker is open: wait for the probe's one attempt, or fail now with
                    // the cause instead of waiting out the timeout.
                    let may_wait = timeout != Some(Duration::ZERO);
                    let now = Instant::now();
                    let until = deadline.or_else(|| timeout.and_then(|t| now.checked_add(t)));
                    match state.pass_breaker(now, may_wait, until) {
                        Ok((spawn, woke)) => {
                            if woke {
                                self.changed.notify_all(); // a probe sleeping on its backoff
                            }
                            if spawn > 0 {
                                // The loop looks at the state afresh after this.
                                state.unlocked(|| threads::spawn_connectors(self, spawn));
                                continue;
                            }
                        }
                        Err(err) => {
                            drop(state);
                            return Err(err);
                        }
                    }
                    if timeout == Some(Duration::ZERO) {
                        let spawn = state.plan_connects_for_try();
                        drop(state);
                        threads::spawn_connectors(self, spawn);
                        return Err(Error::new(ErrorKind::Timeout, "no idle connection"));
                    }
                    let waiter = Arc::new(Waiter::new(site.clone()));
                    state.join_queue(Arc::clone(&waiter), first_in_line)?;
                    first_in_line = true;
                    let began = start_clock(&mut start, &mut deadline, timeout);
                    let spawn = state.plan_connects();
                    if spawn > 0 {
                        // The waiter is queued: a hand-off while the lock is released here
                        // lands in its slot, which `wait` looks at first.
                        state.unlocked(|| threads::spawn_connectors(self, spawn));
                    }
                    match wait(&mut state, &waiter, deadline, began) {
                        Ok(conn) => conn,
                        Err(refused) => {
                            drop(state);
                            return Err(refused.into_error());
                        }
                    }
                }
            };
            drop(state);
            match self.check_out(conn, timeout, &mut start, &mut deadline) {
                Ok(mut conn) => {
                    if let Some(h) = &self.histograms {
                        if let Some(s) = start {
                            h.acquire_wait.record(s.elapsed());
                        }
                        conn.lent_at = Some(stamp());
                    }
                    return Ok(conn);
                }
                Err(()) => state = self.lock_state(),
            }
        }
    }

    /// The checks before hand-out, outside the lock: lifetime, the zero-cost probe, and a
    /// validation round trip when the probe is suspicious or the connection sat unused longer
    /// than the skip window. A failed check closes the connection.
    fn check_out(
        self: &Arc<Self>,
        mut conn: Conn<M::Connection>,
        timeout: Option<Duration>,
        start: &mut Option<Instant>,
        deadline: &mut Option<Instant>,
    ) -> Result<Conn<M::Connection>, ()> {
        // Stamped at hand-out, a moment ago: no second clock read.
        let now = conn.checked_out;
        if conn.is_expired(now) {
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
            // The round trip is bounded by what is left of the caller's one deadline; a
            // zero-timeout acquire (which does not wait for other callers) gives it the whole
            // `validation_timeout`, so a healthy session is never closed for want of a budget.
            let mut limit = self.config.validation_timeout;
            if timeout != Some(Duration::ZERO) {
                start_clock(start, deadline, timeout);
                if let Some(d) = *deadline {
                    let left = d.saturating_duration_since(Instant::now());
                    limit = limit.min(left.max(Duration::from_millis(1)));
                }
            }
            let result = guarded("validate", || self.manager.validate(&mut conn.raw, limit));
            self.lock_state().count_validation(result.as_ref().err());
            if let Err(error) = result {
                let event = Event::conn_error(error, conn.id, conn.backend_pid);
                emit(self.hook.as_ref(), event);
                self.discard_checked_out(conn, CloseReason::FailedValidation);
                return Err(());
            }
            conn.last_alive = Tick::now();
            if let Some(reason) = self.unfit(&mut conn) {
                self.discard_checked_out(conn, reason);
                return Err(());
            }
        }
        Ok(conn)
    }

    /// Why a healthy `conn` must leave all the same (see [`Manager::unfit`]); a panicking
    /// manager makes it broken, as a panicking reset does at release.
    pub(crate) fn unfit(&self, conn: &mut Conn<M::Connection>) -> Option<CloseReason> {
        panic::catch_unwind(AssertUnwindSafe(|| self.manager.unfit(&mut conn.raw)))
            .unwrap_or(Some(CloseReason::Broken))
    }

    /// Closes a connection that a caller's acquire took out but found unusable.
    fn discard_checked_out(self: &Arc<Self>, conn: Conn<M::Connection>, reason: CloseReason) {
        let out = self.lock_state().undo_check_out(conn, reason);
        self.dispose_check_in(out);
    }

    /// Release: reset outside the lock, then hand to the oldest waiter, keep idle, or retire.
    pub(crate) fn release(self: &Arc<Self>, mut conn: Conn<M::Connection>, panicking: bool) {
        if self.forked() {
            // The parent's session: neither reset (a write) nor closed (a Terminate).
            std::mem::forget(conn);
            return;
        }
        state::note_released(self.id, conn.id);
        let now = Tick::now();
        conn.uses += 1;
        conn.last_used = now;
        conn.last_alive = now;
        // A panicking holder may have left the session in any state: no reset, discard.
        let unfit = if panicking {
            Some(CloseReason::Broken)
        } else {
            panic::catch_unwind(AssertUnwindSafe(|| {
                if !self.manager.reset(&mut conn.raw) {
                    Some(CloseReason::Broken)
                } else {
                    self.manager.unfit(&mut conn.raw)
                }
            }))
            .unwrap_or(Some(CloseReason::Broken))
        };
        let reason = unfit.or_else(|| {
            if self.config.max_uses.is_some_and(|max| conn.uses >= max) {
                Some(CloseReason::MaxUses)
            } else if conn.is_expired(now) {
                Some(CloseReason::Lifetime)
            } else {
                None
            }
        });
        let precise = conn.lent_at.take().map(Stamp::elapsed);
        let (id, pid) = (conn.id, conn.backend_pid);
        let held = precise.unwrap_or(now.since(conn.checked_out));
        let mut state = self.lock_state();
        if let Some(held) = precise {
            state.record_hold(held);
        }
        let out = state.check_in(conn, reason);
        drop(state);
        // Before the connection is closed: a connection's `Release` precedes its `Remove`.
        if self.hook.is_some() || log::log_enabled!(target: "pgpool", log::Level::Trace) {
            let event = Event::Release {
                conn_id: id,
                held,
                backend_pid: pid,
            };
            emit(self.hook.as_ref(), event);
        }
        self.dispose_check_in(out);
    }

    /// Closes a connection its holder asked to discard.
    pub(crate) fn discard(self: &Arc<Self>, mut conn: Conn<M::Connection>) {
        if self.forked() {
            std::mem::forget(conn);
            return;
        }
        let held = conn.lent_at.take().map(Stamp::elapsed);
        let mut state = self.lock_state();
        if let Some(held) = held {
            state.record_hold(held);
        }
        let out = state.discard(conn);
        drop(state);
        self.dispose_check_in(out);
    }

    /// Marks the pool closed, fails every waiter, stops the reaper and keepalive, and closes
    /// idle connections. Returns false when it was already closed.
    pub(crate) fn shut(self: &Arc<Self>) -> bool {
        let mut state = self.lock_state();
        let Some(retired) = state.shut() else {
            return false;
        };
        self.changed.notify_all();
        drop(state);
        lock(&self.stop).take();
        self.dispose(retired);
        true
    }

    /// A bounded close: shut, wait for holders until `deadline`, then take back what is
    /// still held (socket shut down at once, statement cancelled on a thread of its own, so
    /// an unreachable server cannot hold this up), and wait briefly for connects and closes in
    /// flight. True when every connection came back or closed before `deadline`.
    pub(crate) fn close_by(self: &Arc<Self>, deadline: Instant) -> bool {
        self.shut();
        // The end of the time is kept for the cancel requests of what is reclaimed, so they
        // reach the server before the call returns (a program may exit right after, and the
        // server does not notice a gone client while a statement runs).
        let reserve = (deadline.saturating_duration_since(Instant::now()) / 10).min(CANCEL_RESERVE);
        if self.wait_drained(deadline.checked_sub(reserve).unwrap_or(deadline)) {
            return true;
        }
        let reclaimed = self.lock_state().reclaim_all(Tick::now());
        let cancelling = !reclaimed.is_empty();
        self.interrupt(reclaimed);
        if cancelling {
            wait_for_cancels(deadline.saturating_duration_since(Instant::now()));
        }
        false
    }

    /// Severs reclaimed connections now, reports them, and sends their cancel requests from a
    /// short-lived thread (each bounded; nobody waits for them).
    pub(crate) fn interrupt(self: &Arc<Self>, overdue: Vec<Overdue>) {
        let mut cancels = Vec::new();
        for o in overdue {
            let site = o.site.to_string();
            match o.interrupt {
                Some(interrupt) => {
                    interrupt.sever();
                    cancels.push(interrupt);
                    emit(
                        self.hook.as_ref(),
                        Event::Reclaimed {
                            conn_id: o.conn_id,
                            held: o.held,
                            site,
                            backend_pid: o.backend_pid,
                        },
                    );
                }
                None => emit(
                    self.hook.as_ref(),
                    Event::LeakSuspected {
                        conn_id: o.conn_id,
                        held: o.held,
                        site,
                        backend_pid: o.backend_pid,
                    },
                ),
            }
        }
        if !cancels.is_empty() {
            CANCELS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
            let spawned = std::thread::Builder::new()
                .name(format!("pgpool-x{}", self.id))
                .spawn(move || {
                    cancels.iter().for_each(|i| i.cancel());
                    CANCELS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                CANCELS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
                log::warn!(target: "pgpool", "cannot start a thread for cancel requests: {e}");
            }
        }
        self.changed.notify_all();
    }

    /// Waits until nothing is in use, being opened or being closed, or until `deadline`.
    pub(crate) fn wait_drained(&self, deadline: Instant) -> bool {
        let mut state = self.lock_state();
        loop {
            if state.is_drained() {
                return true;
            }
            if state.wait_until(&self.changed, deadline) {
                return state.is_drained();
            }
        }
    }

    /// Waits until `min_idle` connections are open; fails at once on a permanent connect
    /// error, or at `deadline` with the last connect error.
    pub(crate) fn wait_ready(self: &Arc<Self>, timeout: Duration) -> Result<(), Error> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut state = self.lock_state();
        let spawn = state.plan_connects();
        state.unlocked(|| threads::spawn_connectors(self, spawn));
        loop {
            if state.is_closed() {
                return Err(Error::closed());
            }
            if state.is_ready() {
                return Ok(());
            }
            if let Some(err) = state.last_connect_error() {
                if err.is_permanent_connect() {
                    return Err(err.clone());
                }
            }
            if state.wait_until(&self.changed, deadline) {
                let timed_out = TimedOut::new(
                    start.elapsed(),
                    state.explanation(),
                    state.last_connect_error().cloned(),
                );
                drop(state);
                return Err(timed_out.into_error());
            }
        }
    }

    /// The state's figures, then the histograms (read after the lock is released).
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.lock_state().stats();
        if let Some(h) = &self.histograms {
            stats.acquire_wait = h.acquire_wait.snapshot();
            let waited = stats.acquire_wait.count();
            stats
                .acquire_wait
                .add_zeros(stats.acquires.saturating_sub(waited));
            stats.connect_time = h.connect_time.snapshot();
            stats.query_time = self.manager.query_time().unwrap_or_default();
        }
        stats
    }

    pub(crate) fn describe(&self) -> String {
        self.lock_state().describe()
    }
}

/// Drops a retired connection's session (a panic in its `Drop` is logged, not spread);
/// returns its id and why it was retired.
pub(crate) fn drop_retired<C>(
    Retired {
        conn,
        reason,
        interrupt,
    }: Retired<C>,
) -> Closed {
    let closed = Closed {
        id: conn.id,
        backend_pid: conn.backend_pid,
        reason,
        created: conn.created,
    };
    let raw = conn.raw;
    drop(interrupt);
    if panic::catch_unwind(AssertUnwindSafe(move || drop(raw))).is_err() {
        log::error!(target: "pgpool", "closing conn {} panicked", closed.id);
    }
    closed
}

/// What is left of a connection once it is closed: what its `Remove` event reports.
pub(crate) struct Closed {
    pub(crate) id: u64,
    pub(crate) backend_pid: Option<i32>,
    pub(crate) reason: CloseReason,
    /// When it was opened (its age goes into the event).
    pub(crate) created: Tick,
}

/// Blocks on `waiter` until its slot is filled or `deadline` passes.
fn wait<C>(
    state: &mut StateGuard<'_, C>,
    waiter: &Arc<Waiter<C>>,
    deadline: Option<Instant>,
    start: Instant,
) -> Result<Conn<C>, Refused> {
    loop {
        if let Some(delivery) = state.take_delivery(waiter, start) {
            return delivery.map_err(Refused::Failed);
        }
        if waiter.park(state, deadline) {
            if let Some(timed_out) = state.abandon(waiter, start) {
                return Err(Refused::TimedOut(Box::new(timed_out)));
            }
        }
    }
}

/// Why a wait in line ended without a connection.
enum Refused {
    /// A failure handed to the waiter (a connect error, the pool closing).
    Failed(Error),
    /// The deadline passed; the message is formatted once the lock is released.
    TimedOut(Box<TimedOut>),
}

impl Refused {
    fn into_error(self) -> Error {
        match self {
            Refused::Failed(e) => e,
            Refused::TimedOut(t) => t.into_error(),
        }
    }
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
