//! [`State`]: everything the pool lock guards, and every function that changes it.
//!
//! Nothing outside this file writes a field of `State` (they are private to it). The other
//! pool files take the lock, call one of the functions here, release the lock, and only then
//! do what may block or call user code: I/O, manager calls, events, thread spawns, drops of
//! retired connections. Each function here only moves values and counts, and ends with
//! [`State::check_invariants`].

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::clock::{Stamp, Tick};
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::event::CloseReason;
use crate::histogram::Counts;
use crate::manager::Interrupt;
use crate::pool::breaker::Breaker;
use crate::pool::checkout::{Overdue, Seats, Site};
use crate::stats::{Counters, Stats};
use crate::sync::{self, lock};

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
    /// When the current holder got it (stamped under the lock at hand-out, the same instant
    /// its seat records).
    pub(crate) checked_out: Tick,
    /// The precise moment of hand-out, for the hold-time histogram (`None` when histograms
    /// are off).
    pub(crate) lent_at: Option<Stamp>,
    pub(crate) uses: u64,
    /// The server process, from `Manager::backend_pid` at connect (for events).
    pub(crate) backend_pid: Option<i32>,
    /// Its seat in `State::seats` (taken when it joins the pool; `NO_SEAT` before).
    pub(crate) seat: u32,
    /// Stamped under the lock each time the connection enters `idle`: the release order.
    /// (`last_used` is read from the coarse clock before the lock is taken, so two neighbours
    /// may disagree with the list by a tick; this cannot.)
    idle_seq: u64,
}

impl<C> Conn<C> {
    pub(crate) fn new(raw: C, id: u64, now: Tick, expires: Option<Tick>) -> Conn<C> {
        Conn {
            raw,
            id,
            created: now,
            expires,
            last_used: now,
            last_alive: now,
            checked_out: now,
            lent_at: None,
            uses: 0,
            backend_pid: None,
            seat: NO_SEAT,
            idle_seq: 0,
        }
    }

    pub(crate) fn is_expired(&self, now: Tick) -> bool {
        self.expires.is_some_and(|at| now >= at)
    }
}

const NO_SEAT: u32 = u32::MAX;

/// A connection on its way to be closed; its slot is counted in `closing` until
/// [`State::closed_one`] (except a reclaimed one, see [`CheckIn::Dead`]).
pub(crate) struct Retired<C> {
    pub(crate) conn: Conn<C>,
    pub(crate) reason: CloseReason,
    /// Its interrupter, closed with it (outside the lock).
    pub(crate) interrupt: Option<Arc<dyn Interrupt>>,
}

/// What became of a connection its holder gave back.
pub(crate) enum CheckIn<C> {
    /// Idle again, or handed to a waiter.
    Kept,
    /// Retired: close it, then [`State::closed_one`].
    Retired(Retired<C>),
    /// The pool had reclaimed it while it was held: its slot was freed then, so just drop it
    /// (no `closed_one`).
    Dead(Retired<C>),
}

/// What a connector thread does next.
pub(crate) enum ConnectJob {
    /// Attempt a connect (counted in `connecting`), begun at this instant.
    Attempt(Instant),
    /// Nothing may start before this (backoff); wait on `Shared::changed` until then.
    Wait(Instant),
    /// No work: the thread ends (already subtracted from `connectors`).
    Exit,
}

/// What a waiter finds in its slot.
pub(crate) enum Delivery<C> {
    Conn(Conn<C>),
    Failed(Error),
}

/// One caller blocked in acquire. Its condvar is always waited on with the pool lock, and its
/// slot is only touched with the pool lock held (so it is never contended; it is a mutex
/// because the waiter owns it across the wait).
pub(crate) struct Waiter<C> {
    cv: Condvar,
    slot: Mutex<Option<Delivery<C>>>,
    /// Where the caller acquires from (recorded on the connection it gets).
    site: Site,
    /// When it joined the line: a failed connect attempt that started later does not fail it
    /// (it is owed an attempt of its own while the breaker is open).
    arrived: Instant,
}

impl<C> Waiter<C> {
    pub(crate) fn new(site: Site) -> Waiter<C> {
        Waiter {
            cv: Condvar::new(),
            slot: Mutex::new(None),
            site,
            arrived: Instant::now(),
        }
    }

    /// Fills the slot and wakes the waiter. Called with the pool lock held.
    fn deliver(&self, delivery: Delivery<C>) {
        self.fill(delivery);
        self.cv.notify_one();
    }

    /// Fills the slot without waking the waiter (see [`State::wake_later`]). Called with the
    /// pool lock held.
    fn fill(&self, delivery: Delivery<C>) {
        *lock(&self.slot) = Some(delivery);
    }

    /// Sleeps (releasing the pool lock) until woken or `deadline`; true when it timed out.
    /// It may also return false without a delivery (a spurious wakeup): the caller looks at
    /// its slot and parks again with the same deadline.
    pub(crate) fn park(&self, state: &mut StateGuard<'_, C>, deadline: Option<Instant>) -> bool {
        match deadline {
            Some(d) => state.wait_until(&self.cv, d),
            None => {
                state.wait(&self.cv);
                false
            }
        }
    }
}

/// Wakes a waiter whose slot a hand-off filled (off the fast path: a release with nobody
/// waiting wakes nobody).
#[cold]
#[inline(never)]
fn wake<C>(waiter: Arc<Waiter<C>>) {
    waiter.cv.notify_one();
}

/// The pool lock, held: the state behind a `std` guard (taken with `sync::lock`, so a
/// poisoned lock is taken all the same). Whenever it releases the lock (dropped, around
/// [`unlocked`](Self::unlocked), for a wait), it wakes the waiter that a hand-off filled
/// meanwhile ([`State::wake_later`]).
pub(crate) struct StateGuard<'a, C> {
    mutex: &'a Mutex<State<C>>,
    /// `Some` but while [`unlocked`](Self::unlocked) runs its closure or a wait sleeps (when
    /// nothing can reach the state through this guard).
    guard: Option<MutexGuard<'a, State<C>>>,
}

impl<'a, C> StateGuard<'a, C> {
    /// Takes the pool lock.
    #[inline]
    pub(crate) fn lock(mutex: &'a Mutex<State<C>>) -> StateGuard<'a, C> {
        StateGuard {
            mutex,
            guard: Some(lock(mutex)),
        }
    }

    /// Releases the lock, runs `f`, and takes the lock again (what `parking_lot`'s
    /// `MutexGuard::unlocked` did): the code after it must look at the state afresh.
    pub(crate) fn unlocked<T>(&mut self, f: impl FnOnce() -> T) -> T {
        self.release();
        let out = f();
        self.guard = Some(lock(self.mutex));
        out
    }

    /// Waits on `cv`, releasing the lock meanwhile, until notified (or spuriously).
    pub(crate) fn wait(&mut self, cv: &Condvar) {
        if let Some(mut guard) = self.guard.take() {
            wake_now(&mut guard);
            self.guard = Some(sync::wait(cv, guard));
        }
    }

    /// Waits on `cv`, releasing the lock meanwhile, until notified (or spuriously) or
    /// `deadline`; true when it timed out (see `sync::wait_until`).
    pub(crate) fn wait_until(&mut self, cv: &Condvar, deadline: Instant) -> bool {
        let Some(mut guard) = self.guard.take() else {
            return true;
        };
        wake_now(&mut guard);
        let (guard, timed_out) = sync::wait_until(cv, guard, deadline);
        self.guard = Some(guard);
        timed_out
    }

    /// Unlocks, then wakes the waiter due.
    #[inline(always)]
    fn release(&mut self) {
        let due = self.guard.as_mut().and_then(|state| state.to_wake.take());
        self.guard = None;
        if let Some(waiter) = due {
            wake(waiter);
        }
    }
}

/// Before a wait (which releases the lock itself): the waiter due is woken under the lock.
fn wake_now<C>(state: &mut State<C>) {
    if let Some(waiter) = state.to_wake.take() {
        wake(waiter);
    }
}

impl<C> Deref for StateGuard<'_, C> {
    type Target = State<C>;

    #[inline]
    fn deref(&self) -> &State<C> {
        self.guard.as_ref().expect("the pool lock is held")
    }
}

impl<C> DerefMut for StateGuard<'_, C> {
    #[inline]
    fn deref_mut(&mut self) -> &mut State<C> {
        self.guard.as_mut().expect("the pool lock is held")
    }
}

impl<C> Drop for StateGuard<'_, C> {
    #[inline(always)]
    fn drop(&mut self) {
        self.release();
    }
}

/// The configured bounds the state needs, copied once from [`Config`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_size: usize,
    pub(crate) min_idle: usize,
    pub(crate) max_idle: usize,
    pub(crate) max_waiters: Option<usize>,
    pub(crate) max_concurrent_connects: usize,
    pub(crate) breaker_threshold: Option<u32>,
    pub(crate) reconnect_backoff_max: Duration,
}

impl Limits {
    pub(crate) fn of(config: &Config) -> Limits {
        Limits {
            max_size: config.max_size as usize,
            min_idle: config.min_idle as usize,
            max_idle: config.max_idle as usize,
            max_waiters: config.max_waiters,
            max_concurrent_connects: config.max_concurrent_connects.min(config.max_size) as usize,
            breaker_threshold: config.breaker_threshold,
            reconnect_backoff_max: config.reconnect_backoff_max,
        }
    }
}

/// The pool's gauges at one moment, as messages print them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gauges {
    open: usize,
    max_size: usize,
    in_use: usize,
    idle: usize,
    connecting: usize,
    closing: usize,
    waiting: usize,
}

impl std::fmt::Display for Gauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "open {}/{}, in use {}, idle {}, connecting {}, closing {}, waiting {}",
            self.open,
            self.max_size,
            self.in_use,
            self.idle,
            self.connecting,
            self.closing,
            self.waiting
        )
    }
}

/// Why callers wait: the gauges, the longest checkout and its site, the oldest connect
/// attempt, the breaker, the last failed validation ([`State::explanation`]).
#[derive(Debug, Clone)]
pub(crate) struct Explanation {
    gauges: Gauges,
    longest: Option<(Duration, Site)>,
    oldest_attempt: Option<Duration>,
    failures: u32,
    health: crate::HealthState,
    last_validation: Option<(Duration, Error)>,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.gauges)?;
        if let Some((held, site)) = &self.longest {
            write!(
                f,
                ", longest held {} ms (acquired at {site})",
                held.as_millis()
            )?;
        }
        if let Some(running) = self.oldest_attempt {
            write!(
                f,
                ", a connect attempt running for {} ms",
                running.as_millis()
            )?;
        }
        if self.failures > 0 {
            write!(
                f,
                ", health {}: {} connect attempt(s) failed in a row",
                self.health.as_str(),
                self.failures
            )?;
        }
        if let Some((ago, err)) = &self.last_validation {
            write!(
                f,
                ", last failed validation {} ms ago: {err}",
                ago.as_millis()
            )?;
        }
        Ok(())
    }
}

/// A timed-out acquire, counted under the lock; [`into_error`](TimedOut::into_error) formats
/// its message once the lock is released.
#[derive(Debug)]
pub(crate) struct TimedOut {
    waited: Duration,
    explanation: Explanation,
    last_connect: Option<Error>,
}

impl TimedOut {
    pub(crate) fn new(
        waited: Duration,
        explanation: Explanation,
        last_connect: Option<Error>,
    ) -> TimedOut {
        TimedOut {
            waited,
            explanation,
            last_connect,
        }
    }

    pub(crate) fn into_error(self) -> Error {
        Error::timeout(
            self.waited,
            &self.explanation.to_string(),
            self.last_connect.as_ref(),
        )
    }
}

/// Everything `Shared::state` guards.
///
/// # Invariants
///
/// True at the end of every function in this file, i.e. whenever the pool lock is free
/// (checked by [`check_invariants`](State::check_invariants) in debug builds):
///
/// 1. **Slot accounting.** `idle.len() + in_use + checking + pending + closing <= max_size`:
///    every connection that exists, is being opened, or is being closed holds one slot.
/// 2. **One place per connection.** A connection is in `idle`, with a caller (`in_use`, which
///    includes one sitting in a waiter's slot), with the keepalive job (`checking`), or
///    retired (`closing`). Derivable: `created == closed by any reason + idle + in_use +
///    checking`.
/// 3. **No barging.** `!waiters.is_empty()` implies `idle.is_empty()`: a connection that
///    becomes available goes straight to the oldest waiter, first come, first served. A
///    queued waiter's slot is empty (a filled one has left the queue).
/// 4. **LRU order.** `idle` is ordered by release time: the back is the most recently
///    released (handed out first, unless the caller's own last connection is among the few
///    most recent), the front the least (reaped and kept alive first).
/// 5. **Closing is final.** `closed` only goes from false to true; once closed, no connection
///    is idle and nobody waits.
/// 6. **Counters agree.** `acquires >= in_use`, `wait_count >= acquire_timeouts`.
/// 7. **Bounded connect work.** `connecting <= pending`, `connecting <= connectors <=
///    max_concurrent_connects`, and reservations not being attempted have a thread to
///    attempt them: `pending > connecting` implies `connectors > 0`.
/// 8. **Seats match.** Every open connection (idle, in use, checking) holds a seat, and the
///    seats lent (not reclaimed) are exactly `in_use`. A reclaimed connection holds no slot.
pub(crate) struct State<C> {
    limits: Limits,
    idle: VecDeque<Conn<C>>,
    /// Held by callers (including one in a waiter's slot); reclaimed ones excluded.
    in_use: usize,
    checking: usize,
    /// Slots reserved for connects: being attempted (`connecting`) or waiting for a turn.
    pending: usize,
    /// Connector threads alive.
    connectors: usize,
    /// When each connect attempt running now began (`connecting()` is their number): timeout
    /// messages name the oldest.
    attempts: Vec<Instant>,
    closing: usize,
    waiters: VecDeque<Arc<Waiter<C>>>,
    closed: bool,
    breaker: Breaker,
    seats: Seats,
    last_validation_error: Option<(Instant, Error)>,
    counters: Counters,
    /// How long checkouts were held (`None` when histograms are off): recorded by release
    /// under the lock it takes anyway, so without atomics.
    hold_time: Option<Counts>,
    next_idle_seq: u64,
    /// A waiter a connection was just handed to, woken once the lock is released (by
    /// [`StateGuard`]).
    to_wake: Option<Arc<Waiter<C>>>,
    /// `closed` as the last check saw it, to catch a true → false change.
    #[cfg(debug_assertions)]
    seen_closed: bool,
}

thread_local! {
    /// `(pool id, connection id)` this thread released last: its session's client state is
    /// likely still in this CPU's caches.
    static LAST_RELEASED: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Records, outside the lock, which connection this thread is releasing (thread affinity).
pub(crate) fn note_released(pool_id: u64, conn_id: u64) {
    LAST_RELEASED.with(|last| last.set((pool_id, conn_id)));
}

/// How far from the most-recently-used end acquire looks for the caller's own last
/// connection. Small, so the scan under the lock stays a few comparisons.
const AFFINITY_WINDOW: usize = 4;

impl<C> State<C> {
    pub(crate) fn new(limits: Limits) -> State<C> {
        State {
            limits,
            idle: VecDeque::new(),
            in_use: 0,
            checking: 0,
            pending: 0,
            connectors: 0,
            attempts: Vec::with_capacity(limits.max_concurrent_connects),
            closing: 0,
            waiters: VecDeque::new(),
            closed: false,
            breaker: Breaker::new(limits.breaker_threshold, limits.reconnect_backoff_max),
            seats: Seats::with_capacity(limits.max_size),
            last_validation_error: None,
            counters: Counters::default(),
            hold_time: None,
            next_idle_seq: 0,
            to_wake: None,
            #[cfg(debug_assertions)]
            seen_closed: false,
        }
    }

    /// Keeps the hold-time histogram from now on.
    pub(crate) fn keep_hold_times(&mut self) {
        self.hold_time = Some(Counts::new());
    }

    /// Records how long a checkout that is being released was held.
    pub(crate) fn record_hold(&mut self, held: Duration) {
        if let Some(h) = &mut self.hold_time {
            h.record(held);
        }
    }

    /// Has `waiter` (whose slot was just filled) woken once the lock is released, by the
    /// [`StateGuard`]: woken under the lock, it would at once wait again, for the lock (a
    /// `std` condvar wakes its waiter, where `parking_lot`'s moved it over to the mutex's
    /// queue until the unlock), and every hand-off in a busy pool would cost two thread
    /// switches instead of one. A waiter already due is woken now.
    fn wake_later(&mut self, waiter: Arc<Waiter<C>>) {
        if let Some(due) = self.to_wake.replace(waiter) {
            wake(due);
        }
    }

    // ---- Reading -------------------------------------------------------------------------

    fn slots_used(&self) -> usize {
        self.idle.len() + self.in_use + self.checking + self.pending + self.closing
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Nothing in use, being checked, opened or closed.
    pub(crate) fn is_drained(&self) -> bool {
        self.in_use + self.checking + self.pending + self.closing == 0
    }

    /// `min_idle` connections are open (idle or in use).
    pub(crate) fn is_ready(&self) -> bool {
        self.idle.len() + self.in_use >= self.limits.min_idle
    }

    pub(crate) fn idle_len(&self) -> usize {
        self.idle.len()
    }

    pub(crate) fn last_connect_error(&self) -> Option<&Error> {
        self.breaker.last_error()
    }

    /// Open connections: idle, in use, being checked.
    fn live(&self) -> usize {
        self.idle.len() + self.in_use + self.checking
    }

    fn is_down(&self) -> bool {
        self.breaker.is_down(self.live())
    }

    /// The error for an acquire that needs a new connection while the breaker is open
    /// (`None` while it is not).
    pub(crate) fn unavailable(&self) -> Option<Error> {
        if !self.is_down() {
            return None;
        }
        let last = self.breaker.last_error()?;
        let ago = self.breaker.last_failure().map(|t| t.elapsed());
        Some(Error::unavailable(
            last,
            self.breaker.failures(),
            ago.unwrap_or_default(),
        ))
    }

    /// What an acquire that found nothing idle does about the breaker: `Ok((n, woke))` to go
    /// on and wait (starting `n` connector threads; `woke`: the next probe was pulled forward,
    /// so a probe sleeping on its backoff must be woken), or the error to fail with at once.
    ///
    /// With the breaker open, a caller waits for the outcome of one probe if it fits before
    /// its `deadline` (`None`: no deadline): the probe running now, or the next one, pulled
    /// forward to 250 ms after the last attempt ended (so demand starts at most four probes a
    /// second). Otherwise, and always for a zero-timeout acquire (`may_wait` false), it fails
    /// at once with the last connect error.
    pub(crate) fn pass_breaker(
        &mut self,
        now: Instant,
        may_wait: bool,
        deadline: Option<Instant>,
    ) -> Result<(usize, bool), Error> {
        if !self.is_down() {
            return Ok((0, false));
        }
        let probe_at = self.breaker.earliest_probe(now);
        let out = if may_wait && self.connecting() > 0 {
            Ok((0, false))
        } else if may_wait && deadline.is_none_or(|d| probe_at < d) {
            self.breaker.pull_forward(probe_at);
            Ok((self.hire(), true))
        } else {
            // (The probe keeps running even if nobody waits for it.)
            let spawn = self.hire();
            match self.unavailable() {
                Some(err) => Err(err),
                None => Ok((spawn, false)),
            }
        };
        self.check_invariants();
        out
    }

    /// [`describe`](Self::describe) plus the causes: the longest checkout (how long, where
    /// from), the breaker, the last failed validation. What a timed-out acquire reports,
    /// gathered under the lock (copies and `Arc` clones) and formatted after it is released.
    pub(crate) fn explanation(&self) -> Explanation {
        let now = Tick::now();
        Explanation {
            gauges: self.gauges(),
            longest: self
                .seats
                .longest(now)
                .map(|(held, site)| (held, site.clone())),
            oldest_attempt: self.attempts.iter().min().map(|at| at.elapsed()),
            failures: self.breaker.failures(),
            health: self.breaker.state(self.live()),
            last_validation: self
                .last_validation_error
                .as_ref()
                .map(|(at, err)| (at.elapsed(), err.clone())),
        }
    }

    fn gauges(&self) -> Gauges {
        Gauges {
            open: self.idle.len() + self.in_use + self.checking,
            max_size: self.limits.max_size,
            in_use: self.in_use,
            idle: self.idle.len(),
            connecting: self.pending,
            closing: self.closing,
            waiting: self.waiters.len(),
        }
    }

    pub(crate) fn describe(&self) -> String {
        self.gauges().to_string()
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            max_size: self.limits.max_size as u32,
            open: (self.idle.len() + self.in_use + self.checking) as u32,
            in_use: self.in_use as u32,
            idle: self.idle.len() as u32,
            checking: self.checking as u32,
            pending: self.pending as u32,
            closing: self.closing as u32,
            waiting: self.waiters.len() as u32,
            acquires: c.acquires,
            wait_count: c.wait_count,
            wait_duration: c.wait_duration,
            acquire_timeouts: c.acquire_timeouts,
            overloaded: c.overloaded,
            connections_created: c.created,
            connect_errors: c.connect_errors,
            validations: c.validations,
            closed_by_reason: c.closed,
            leaks_suspected: c.leaks,
            health: self.breaker.state(self.live()),
            consecutive_connect_failures: self.breaker.failures(),
            since_connect_success: self.breaker.last_success().map(|t| t.elapsed()),
            since_connect_failure: self.breaker.last_failure().map(|t| t.elapsed()),
            connectors: self.connectors as u32,
            hold_time: self
                .hold_time
                .as_ref()
                .map(Counts::snapshot)
                .unwrap_or_default(),
            ..Stats::default()
        }
    }

    // ---- Acquire -------------------------------------------------------------------------

    /// Checks out an idle connection: the one this thread released last if it is among the
    /// most recently used few (thread affinity, as HikariCP's thread-local list), else the
    /// most recently used one.
    pub(crate) fn check_out_idle(&mut self, pool_id: u64, site: &Site) -> Option<Conn<C>> {
        let (pool, last) = LAST_RELEASED.with(|last| last.get());
        let len = self.idle.len();
        let found = if pool == pool_id {
            (len.saturating_sub(AFFINITY_WINDOW)..len)
                .rev()
                .find(|&i| self.idle[i].id == last)
        } else {
            None
        };
        let conn = match found {
            Some(i) => self.idle.remove(i),
            None => self.idle.pop_back(),
        };
        let mut conn = conn;
        if let Some(c) = &mut conn {
            self.in_use += 1;
            self.counters.acquires += 1;
            c.checked_out = Tick::now();
            self.seats.lend(c.seat, c.checked_out, site.clone());
        }
        self.check_invariants();
        conn
    }

    /// Puts `waiter` in line: at the back, or at the front for a caller who already waited
    /// once and lost its connection to a failed check. Fails with `Overloaded` when
    /// `max_waiters` callers already wait. Only called when nothing is idle.
    pub(crate) fn join_queue(
        &mut self,
        waiter: Arc<Waiter<C>>,
        first_in_line: bool,
    ) -> Result<(), Error> {
        debug_assert!(self.idle.is_empty());
        if let Some(max) = self.limits.max_waiters {
            if self.waiters.len() >= max {
                self.counters.overloaded += 1;
                self.check_invariants();
                return Err(Error::new(
                    ErrorKind::Overloaded,
                    format!(
                        "pool overloaded: {} callers already waiting (max_waiters {max}); {}",
                        self.waiters.len(),
                        self.describe()
                    ),
                ));
            }
        }
        if first_in_line {
            self.waiters.push_front(waiter);
        } else {
            self.waiters.push_back(waiter);
        }
        self.check_invariants();
        Ok(())
    }

    /// Takes what was delivered to `waiter` (which left the queue when it was filled), and
    /// counts the wait that began at `start`.
    pub(crate) fn take_delivery(
        &mut self,
        waiter: &Waiter<C>,
        start: Instant,
    ) -> Option<Result<Conn<C>, Error>> {
        let delivery = lock(&waiter.slot).take()?;
        self.counters.wait_count += 1;
        self.counters.wait_duration += start.elapsed();
        self.check_invariants();
        Some(match delivery {
            Delivery::Conn(conn) => Ok(conn),
            Delivery::Failed(err) => Err(err),
        })
    }

    /// A waiter's deadline passed: it leaves the queue and its timeout is counted. `None` when
    /// a delivery arrived meanwhile (take it instead).
    pub(crate) fn abandon(&mut self, waiter: &Arc<Waiter<C>>, start: Instant) -> Option<TimedOut> {
        if lock(&waiter.slot).is_some() {
            return None;
        }
        if let Some(pos) = self.waiters.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            self.waiters.remove(pos);
        }
        Some(self.time_out(start))
    }

    /// Counts an acquire that timed out after waiting since `start`; the error describes the
    /// pool.
    pub(crate) fn time_out(&mut self, start: Instant) -> TimedOut {
        self.counters.acquire_timeouts += 1;
        self.counters.wait_count += 1;
        let waited = start.elapsed();
        self.counters.wait_duration += waited;
        self.check_invariants();
        TimedOut {
            waited,
            explanation: self.explanation(),
            last_connect: self.breaker.last_error().cloned(),
        }
    }

    /// A connection checked out by acquire failed its hand-out checks: it is retired and the
    /// acquire is not counted.
    pub(crate) fn undo_check_out(&mut self, conn: Conn<C>, reason: CloseReason) -> CheckIn<C> {
        let out = match self.end_checkout(conn) {
            Ok(conn) => {
                self.counters.acquires -= 1;
                CheckIn::Retired(self.retire(conn, reason))
            }
            Err(dead) => CheckIn::Dead(dead),
        };
        self.check_invariants();
        out
    }

    /// Ends a checkout: `Ok` (no longer counted in use), or `Err` with the connection ready
    /// to drop when the pool had reclaimed it (its slot was freed then; now its seat is).
    fn end_checkout(&mut self, conn: Conn<C>) -> Result<Conn<C>, Retired<C>> {
        if self.seats.unlend(conn.seat) {
            let interrupt = self.seats.give_back(conn.seat);
            return Err(Retired {
                conn,
                reason: CloseReason::Reclaimed,
                interrupt,
            });
        }
        self.in_use -= 1;
        Ok(conn)
    }

    /// Counts a validation round trip; `failed` records why it failed (for timeout messages).
    pub(crate) fn count_validation(&mut self, failed: Option<&Error>) {
        self.counters.validations += 1;
        if let Some(err) = failed {
            self.last_validation_error = Some((Instant::now(), err.clone()));
        }
        self.check_invariants();
    }

    // ---- Release -------------------------------------------------------------------------

    /// A holder gave `conn` back (already reset outside the lock). Retired for `reason` if
    /// there is one or the pool is closed; else to the oldest waiter, or idle.
    pub(crate) fn check_in(&mut self, conn: Conn<C>, reason: Option<CloseReason>) -> CheckIn<C> {
        let out = match self.end_checkout(conn) {
            Err(dead) => CheckIn::Dead(dead),
            Ok(conn) => match reason {
                Some(reason) => CheckIn::Retired(self.retire(conn, reason)),
                None if self.closed => CheckIn::Retired(self.retire(conn, CloseReason::PoolClosed)),
                None => match self.make_available(conn) {
                    Some(retired) => CheckIn::Retired(retired),
                    None => CheckIn::Kept,
                },
            },
        };
        self.check_invariants();
        out
    }

    /// A holder discarded `conn`.
    pub(crate) fn discard(&mut self, conn: Conn<C>) -> CheckIn<C> {
        let out = match self.end_checkout(conn) {
            Err(dead) => CheckIn::Dead(dead),
            Ok(conn) => CheckIn::Retired(self.retire(conn, CloseReason::Discarded)),
        };
        self.check_invariants();
        out
    }

    /// Gives an available connection to the oldest waiter, else keeps it idle; returns it as
    /// retired when `max_idle` connections are already idle. The pool must be open.
    fn make_available(&mut self, conn: Conn<C>) -> Option<Retired<C>> {
        if let Some(waiter) = self.waiters.pop_front() {
            self.in_use += 1;
            self.counters.acquires += 1;
            let mut conn = conn;
            conn.checked_out = Tick::now();
            self.seats
                .lend(conn.seat, conn.checked_out, waiter.site.clone());
            waiter.fill(Delivery::Conn(conn));
            self.wake_later(waiter);
            None
        } else if self.idle.len() >= self.limits.max_idle {
            Some(self.retire(conn, CloseReason::MaxIdle))
        } else {
            self.push_idle(conn);
            None
        }
    }

    fn push_idle(&mut self, mut conn: Conn<C>) {
        self.next_idle_seq += 1;
        conn.idle_seq = self.next_idle_seq;
        self.idle.push_back(conn);
    }

    /// Moves `conn` (already out of every other place) to `closing` and counts the reason.
    fn retire(&mut self, conn: Conn<C>, reason: CloseReason) -> Retired<C> {
        self.closing += 1;
        self.counters.closed[reason.index()] += 1;
        let interrupt = self.seats.give_back(conn.seat);
        Retired {
            conn,
            reason,
            interrupt,
        }
    }

    // ---- Connects ------------------------------------------------------------------------

    /// Reserves slots for the connects needed now: one per waiter not already covered by a
    /// connect in flight, plus the `min_idle` deficit, within `max_size`. Returns how many
    /// connector threads to start (already counted in `connectors`).
    pub(crate) fn plan_connects(&mut self) -> usize {
        let deficit = self.limits.min_idle.saturating_sub(self.idle.len());
        let n = self.reserve_connects(deficit);
        self.check_invariants();
        n
    }

    /// Like [`plan_connects`](Self::plan_connects) for a zero-timeout acquire that found
    /// nothing idle: one connect more, so a later try can succeed (if there is room and none
    /// is already under way).
    pub(crate) fn plan_connects_for_try(&mut self) -> usize {
        let deficit = self.limits.min_idle.saturating_sub(self.idle.len());
        let n = self.reserve_connects(deficit.max(1));
        self.check_invariants();
        n
    }

    /// Reserves connects for the waiters plus `extra`, then hires threads for them. While the
    /// breaker is open nothing is reserved: the single probe reserves its own slot.
    fn reserve_connects(&mut self, extra: usize) -> usize {
        if self.closed {
            return 0;
        }
        if !self.is_down() {
            let wanted = self.waiters.len() + extra;
            while self.pending < wanted && self.slots_used() < self.limits.max_size {
                self.pending += 1;
            }
        }
        self.hire()
    }

    /// How many connector threads to start for the work reserved (counted in `connectors`
    /// now): up to `max_concurrent_connects`, or the one probe while the breaker is open.
    fn hire(&mut self) -> usize {
        if self.closed {
            return 0;
        }
        let want = if self.is_down() {
            1
        } else {
            self.pending.min(self.limits.max_concurrent_connects)
        };
        let n = want.saturating_sub(self.connectors);
        self.connectors += n;
        n
    }

    /// A connector thread asks for work. While the breaker is open only one attempt runs at a
    /// time (the probe, reserving its own slot); otherwise one per reservation not yet being
    /// attempted. Either waits out the breaker's backoff first.
    pub(crate) fn next_connect(&mut self, now: Instant) -> ConnectJob {
        let job = if self.closed {
            // Reservations nobody attempts yet are dropped.
            self.pending = self.connecting();
            ConnectJob::Exit
        } else if self.is_down() {
            if self.connecting() > 0 {
                ConnectJob::Exit
            } else if let Some(at) = self.breaker.wait_until(now) {
                ConnectJob::Wait(at)
            } else if self.pending == 0 && self.slots_used() >= self.limits.max_size {
                ConnectJob::Wait(now + Duration::from_millis(10))
            } else {
                self.pending = self.pending.max(1);
                self.attempts.push(now);
                ConnectJob::Attempt(now)
            }
        } else if self.pending <= self.connecting() {
            ConnectJob::Exit
        } else if let Some(at) = self.breaker.wait_until(now) {
            ConnectJob::Wait(at)
        } else {
            self.attempts.push(now);
            ConnectJob::Attempt(now)
        };
        if matches!(job, ConnectJob::Exit) {
            self.connectors -= 1;
        }
        self.check_invariants();
        job
    }

    /// A connector thread could not be started: it is not counted, and if no connector is
    /// left, the reservations it would have served are given back.
    pub(crate) fn connector_not_started(&mut self, err: Error) {
        self.connectors -= 1;
        if self.connectors == 0 {
            self.pending = self.connecting();
        }
        self.breaker.failed(&err, Instant::now());
        self.check_invariants();
    }

    /// A connect attempt opened `conn`: the breaker closes; the connection goes to the oldest
    /// waiter, idle, or (pool closed, `max_idle` reached) is retired. Returns it if retired,
    /// and how many connector threads to start (for the rest of the `min_idle` deficit).
    pub(crate) fn connected(
        &mut self,
        mut conn: Conn<C>,
        interrupt: Option<Arc<dyn Interrupt>>,
        started: Instant,
    ) -> (Option<Retired<C>>, usize) {
        self.attempt_over(started);
        self.pending -= 1;
        self.counters.created += 1;
        self.breaker.succeeded(Instant::now());
        conn.seat = self.seats.take(conn.id, conn.backend_pid, interrupt);
        let retired = if self.closed {
            Some(self.retire(conn, CloseReason::PoolClosed))
        } else {
            self.make_available(conn)
        };
        let deficit = self.limits.min_idle.saturating_sub(self.idle.len());
        let spawn = self.reserve_connects(deficit);
        self.check_invariants();
        (retired, spawn)
    }

    /// A connect attempt (begun at `started`) failed with `err`. With the breaker open, every
    /// waiter that was already waiting when the attempt began fails at once with the
    /// "unavailable" error; later ones wait for the next probe, pulled forward for them (see
    /// [`pass_breaker`](Self::pass_breaker)); the reservations are dropped (the probe reserves
    /// its own slot). A permanent error fails the oldest waiter at once (the others keep their
    /// reservations, so each gets the verdict of its own attempt). A transient error keeps
    /// the reservation while a waiter or the `min_idle` deficit needs it: the next attempt
    /// starts after the breaker's backoff. Returns how many connector threads to start.
    pub(crate) fn connect_failed(&mut self, err: &Error, started: Instant) -> usize {
        self.attempt_over(started);
        self.counters.connect_errors += 1;
        self.breaker.failed(err, Instant::now());
        let needed = !self.waiters.is_empty() || self.idle.len() < self.limits.min_idle;
        if self.closed {
            self.pending -= 1;
        } else if self.is_down() {
            // Callers who were already waiting when this attempt started fail now; those who
            // came later are owed an attempt of their own: the next probe comes early.
            if let Some(e) = self.unavailable() {
                let (old, new): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiters)
                    .into_iter()
                    .partition(|w| w.arrived <= started);
                for w in old {
                    w.deliver(Delivery::Failed(e.clone()));
                }
                if !new.is_empty() {
                    let at = self.breaker.earliest_probe(Instant::now());
                    self.breaker.pull_forward(at);
                }
                self.waiters = new;
            }
            self.pending = self.connecting();
        } else if err.is_permanent_connect() {
            self.pending -= 1;
            if let Some(w) = self.waiters.pop_front() {
                w.deliver(Delivery::Failed(err.clone()));
            }
        } else if !needed {
            self.pending -= 1;
        }
        let spawn = self.hire();
        self.check_invariants();
        spawn
    }

    /// Connect attempts running now.
    fn connecting(&self) -> usize {
        self.attempts.len()
    }

    fn attempt_over(&mut self, started: Instant) {
        if let Some(i) = self.attempts.iter().position(|&t| t == started) {
            self.attempts.swap_remove(i);
        }
    }

    // ---- Checkouts -----------------------------------------------------------------------

    /// The housekeeper's look at checkouts: those held past `leak` are reported once; those
    /// held past `max` are reclaimed (if the manager gave an interrupter: else only reported),
    /// which frees their slots. Returns them (sever and cancel the reclaimed ones, outside the
    /// lock) and how many connector threads to start for the freed slots.
    pub(crate) fn scan_checkouts(
        &mut self,
        now: Tick,
        leak: Option<Duration>,
        max: Option<Duration>,
    ) -> (Vec<Overdue>, usize) {
        let mut found = Vec::new();
        let (mut reclaimed, mut leaks) = (0, 0);
        for seat in self.seats.lent_mut() {
            let Some(lent) = seat.lent.as_mut() else {
                continue;
            };
            let held = now.since(lent.since);
            let reclaim = max.is_some_and(|m| held >= m) && seat.interrupt.is_some();
            let warn =
                !lent.warned && (leak.is_some_and(|l| held >= l) || max.is_some_and(|m| held >= m));
            if reclaim {
                lent.reclaimed = true;
                reclaimed += 1;
            } else if warn {
                lent.warned = true;
                leaks += 1;
            } else {
                continue;
            }
            found.push(Overdue {
                conn_id: seat.conn_id,
                backend_pid: seat.backend_pid,
                held,
                site: lent.site.clone(),
                interrupt: if reclaim {
                    seat.interrupt.clone()
                } else {
                    None
                },
            });
        }
        self.in_use -= reclaimed;
        self.counters.closed[CloseReason::Reclaimed.index()] += reclaimed as u64;
        self.counters.leaks += leaks;
        let spawn = if reclaimed > 0 {
            let deficit = self.limits.min_idle.saturating_sub(self.idle.len());
            self.reserve_connects(deficit)
        } else {
            0
        };
        self.check_invariants();
        (found, spawn)
    }

    /// A bounded close ran out of time: every checkout that can be interrupted is reclaimed.
    /// Returns them, to sever and cancel outside the lock.
    pub(crate) fn reclaim_all(&mut self, now: Tick) -> Vec<Overdue> {
        let mut found = Vec::new();
        for seat in self.seats.lent_mut() {
            let (Some(lent), Some(interrupt)) = (seat.lent.as_mut(), seat.interrupt.as_ref())
            else {
                continue;
            };
            lent.reclaimed = true;
            found.push(Overdue {
                conn_id: seat.conn_id,
                backend_pid: seat.backend_pid,
                held: now.since(lent.since),
                site: lent.site.clone(),
                interrupt: Some(Arc::clone(interrupt)),
            });
        }
        self.in_use -= found.len();
        self.counters.closed[CloseReason::Reclaimed.index()] += found.len() as u64;
        self.check_invariants();
        found
    }

    // ---- Closing -------------------------------------------------------------------------

    /// A retired connection is gone: its slot is free. Returns how many connects to start
    /// (slots reserved) to replace it.
    pub(crate) fn closed_one(&mut self) -> usize {
        self.closing -= 1;
        let deficit = self.limits.min_idle.saturating_sub(self.idle.len());
        let spawn = self.reserve_connects(deficit);
        self.check_invariants();
        spawn
    }

    /// Marks the pool closed, fails every waiter, and retires every idle connection. `None`
    /// when it was already closed.
    pub(crate) fn shut(&mut self) -> Option<Vec<Retired<C>>> {
        if self.closed {
            return None;
        }
        self.closed = true;
        for waiter in std::mem::take(&mut self.waiters) {
            waiter.deliver(Delivery::Failed(Error::closed()));
        }
        let idle = std::mem::take(&mut self.idle);
        let retired = idle
            .into_iter()
            .map(|c| self.retire(c, CloseReason::PoolClosed))
            .collect();
        self.check_invariants();
        Some(retired)
    }

    // ---- Maintenance ---------------------------------------------------------------------

    /// The reaper's pass: retires idle connections past their lifetime, then those idle
    /// longer than `idle_timeout` (longest idle first, never below `min_idle`). Returns them
    /// and how many connects to start (slots reserved) to refill `min_idle`.
    pub(crate) fn reap(
        &mut self,
        now: Tick,
        idle_timeout: Option<Duration>,
    ) -> (Vec<Retired<C>>, usize) {
        if self.closed {
            return (Vec::new(), 0);
        }
        let mut retired = Vec::new();
        let mut i = 0;
        while i < self.idle.len() {
            if self.idle[i].is_expired(now) {
                if let Some(conn) = self.idle.remove(i) {
                    retired.push(self.retire(conn, CloseReason::Lifetime));
                }
            } else {
                i += 1;
            }
        }
        if let Some(limit) = idle_timeout {
            let keep = self.limits.min_idle;
            let mut i = 0;
            // Front = least recently used, so the longest-idle go first.
            while i < self.idle.len() && self.idle.len() > keep {
                if now.since(self.idle[i].last_used) >= limit {
                    if let Some(conn) = self.idle.remove(i) {
                        retired.push(self.retire(conn, CloseReason::IdleTimeout));
                    }
                } else {
                    i += 1;
                }
            }
        }
        let deficit = self.limits.min_idle.saturating_sub(self.idle.len());
        let spawn = self.reserve_connects(deficit);
        self.check_invariants();
        (retired, spawn)
    }

    /// Reserves for the keepalive job the least recently used idle connection that has not
    /// proved alive for `interval`: it leaves `idle` (counted in `checking`), so no caller can
    /// get it meanwhile. `None` when there is none or the pool is closed.
    pub(crate) fn start_keepalive(&mut self, now: Tick, interval: Duration) -> Option<Conn<C>> {
        if self.closed {
            return None;
        }
        let pos = self
            .idle
            .iter()
            .position(|c| now.since(c.last_alive) >= interval)?;
        let conn = self.idle.remove(pos)?;
        self.checking += 1;
        self.check_invariants();
        Some(conn)
    }

    /// The keepalive round trip on `conn` is over: alive (`unfit` is `None`), it goes back
    /// where it was in the LRU order (or to the oldest waiter); unfit (dead, with the error
    /// kept for timeout messages, or changed role), or the pool closed meanwhile, it is
    /// retired.
    pub(crate) fn end_keepalive(
        &mut self,
        conn: Conn<C>,
        unfit: Option<(CloseReason, Option<&Error>)>,
    ) -> Option<Retired<C>> {
        self.checking -= 1;
        if let Some((_, Some(err))) = unfit {
            self.last_validation_error = Some((Instant::now(), err.clone()));
        }
        let retired = if let Some((reason, _)) = unfit {
            Some(self.retire(conn, reason))
        } else if self.closed {
            Some(self.retire(conn, CloseReason::PoolClosed))
        } else if self.waiters.is_empty() {
            let at = self.idle.partition_point(|c| c.idle_seq < conn.idle_seq);
            self.idle.insert(at, conn);
            None
        } else {
            self.make_available(conn)
        };
        self.check_invariants();
        retired
    }

    // ---- Invariants ----------------------------------------------------------------------

    /// Panics if an invariant listed on [`State`] does not hold. Debug builds only: in
    /// release builds this is empty.
    #[cfg(debug_assertions)]
    pub(crate) fn check_invariants(&mut self) {
        let used = self.slots_used();
        assert!(
            used <= self.limits.max_size,
            "pool invariant (slot accounting): {used} slots used, max_size {}: {}",
            self.limits.max_size,
            self.describe()
        );
        assert!(
            self.waiters.is_empty() || self.idle.is_empty(),
            "pool invariant (no barging): {} waiters while {} connections are idle",
            self.waiters.len(),
            self.idle.len()
        );
        assert!(
            self.waiters.iter().all(|w| lock(&w.slot).is_none()),
            "pool invariant (no barging): a queued waiter's slot is already filled"
        );
        if let Some(i) =
            (1..self.idle.len()).find(|&i| self.idle[i - 1].idle_seq >= self.idle[i].idle_seq)
        {
            panic!(
                "pool invariant (LRU order): idle[{}] (conn {}) was released after idle[{i}] (conn {})",
                i - 1,
                self.idle[i - 1].id,
                self.idle[i].id
            );
        }
        assert!(
            self.closed || !self.seen_closed,
            "pool invariant (closing is final): closed went from true to false"
        );
        self.seen_closed = self.closed;
        assert!(
            !self.closed || (self.idle.is_empty() && self.waiters.is_empty()),
            "pool invariant (closing is final): closed, yet {} idle and {} waiting",
            self.idle.len(),
            self.waiters.len()
        );
        assert!(
            self.connecting() <= self.pending
                && self.connecting() <= self.connectors
                && self.connectors <= self.limits.max_concurrent_connects
                && (self.pending == self.connecting() || self.connectors > 0),
            "pool invariant (bounded connect work): pending {}, connecting {}, connectors {} (limit {})",
            self.pending,
            self.connecting(),
            self.connectors,
            self.limits.max_concurrent_connects
        );
        let (seated, lent) = self.seats.counts();
        assert!(
            seated == self.live() && lent == self.in_use,
            "pool invariant (seats match): {seated} seated, {lent} lent; {}",
            self.describe()
        );
        let c = &self.counters;
        let closed: u64 = c.closed.iter().sum();
        let open = (self.idle.len() + self.in_use + self.checking) as u64;
        assert_eq!(
            c.created,
            closed + open,
            "pool invariant (one place per connection): created {} != closed {closed} + open {open}",
            c.created
        );
        assert!(
            c.acquires >= self.in_use as u64,
            "pool invariant (counters): {} acquires, {} in use",
            c.acquires,
            self.in_use
        );
        assert!(
            c.wait_count >= c.acquire_timeouts,
            "pool invariant (counters): {} waits, {} timeouts",
            c.wait_count,
            c.acquire_timeouts
        );
    }

    /// Panics if an invariant listed on [`State`] does not hold. Debug builds only: in
    /// release builds this is empty.
    #[cfg(not(debug_assertions))]
    #[inline(always)]
    pub(crate) fn check_invariants(&mut self) {}
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_size: 3,
            min_idle: 0,
            max_idle: 3,
            max_waiters: None,
            max_concurrent_connects: 3,
            breaker_threshold: Some(3),
            reconnect_backoff_max: Duration::from_secs(1),
        }
    }

    fn conn(id: u64) -> Conn<()> {
        Conn::new((), id, Tick::now(), None)
    }

    /// An open pool with two idle connections (1 released before 2) and one in use (3),
    /// built through the real transitions.
    fn busy() -> State<()> {
        let mut s = State::new(limits());
        let waiters: Vec<_> = (0..3)
            .map(|_| Arc::new(Waiter::new(Site::Unknown)))
            .collect();
        for w in &waiters {
            s.join_queue(Arc::clone(w), false).unwrap();
        }
        assert_eq!(s.plan_connects(), 3);
        for id in 1..=3 {
            let ConnectJob::Attempt(at) = s.next_connect(Instant::now()) else {
                panic!("an attempt was due");
            };
            let (retired, spawn) = s.connected(conn(id), None, at);
            assert!(retired.is_none() && spawn == 0); // straight to a waiter
        }
        for _ in 0..3 {
            assert!(matches!(s.next_connect(Instant::now()), ConnectJob::Exit));
        }
        let mut got: Vec<_> = waiters
            .iter()
            .map(|w| s.take_delivery(w, Instant::now()).unwrap().unwrap())
            .collect();
        let c3 = got.pop().unwrap();
        for c in got {
            assert!(matches!(s.check_in(c, None), CheckIn::Kept));
        }
        assert_eq!(c3.id, 3); // stays in use: the counts still hold it
        s
    }

    #[test]
    fn a_valid_history_passes() {
        let mut s = busy();
        assert_eq!(s.idle.len(), 2);
        assert_eq!(s.in_use, 1);
        let c = s.start_keepalive(Tick::now(), Duration::ZERO).unwrap();
        let w = Arc::new(Waiter::new(Site::Unknown));
        let c2 = s.check_out_idle(0, &Site::Unknown).unwrap();
        s.join_queue(Arc::clone(&w), false).unwrap();
        assert!(s.end_keepalive(c, None).is_none()); // to the waiter
        let c = s.take_delivery(&w, Instant::now()).unwrap().unwrap();
        assert!(matches!(s.check_in(c, None), CheckIn::Kept));
        let _ = s.discard(c2);
        assert_eq!(s.closed_one(), 0);
        let retired = s.shut().unwrap();
        assert_eq!(retired.len(), 1);
        assert!(s.shut().is_none());
    }

    #[test]
    fn keepalive_puts_a_connection_back_in_release_order() {
        let mut s = busy();
        let oldest = s.start_keepalive(Tick::now(), Duration::ZERO).unwrap();
        let next = s.idle[0].id;
        let taken = s.check_out_idle(0, &Site::Unknown).unwrap();
        assert_eq!(taken.id, next);
        assert!(matches!(s.check_in(taken, None), CheckIn::Kept)); // released after `oldest`
        assert!(s.end_keepalive(oldest, None).is_none());
        assert_eq!(s.idle.front().unwrap().id, 1);
    }

    #[test]
    #[should_panic(expected = "slot accounting")]
    fn too_many_slots_fail() {
        let mut s = busy();
        s.pending += 1;
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "no barging")]
    fn a_waiter_beside_an_idle_connection_fails() {
        let mut s = busy();
        s.waiters.push_back(Arc::new(Waiter::new(Site::Unknown)));
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "no barging")]
    fn a_queued_waiter_with_a_delivery_fails() {
        let mut s = State::<()>::new(limits());
        let w = Arc::new(Waiter::new(Site::Unknown));
        s.join_queue(Arc::clone(&w), false).unwrap();
        w.deliver(Delivery::Failed(Error::closed()));
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "LRU order")]
    fn idle_out_of_release_order_fails() {
        let mut s = busy();
        s.idle.swap(0, 1);
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "closed went from true to false")]
    fn reopening_fails() {
        let mut s = busy();
        s.shut().unwrap();
        s.closed = false;
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "closed, yet 2 idle")]
    fn idle_connections_after_close_fail() {
        let mut s = busy();
        s.closed = true;
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "seats match")]
    fn a_lost_connection_fails() {
        let mut s = busy();
        s.idle.pop_back(); // gone without being retired
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "one place per connection")]
    fn a_close_counted_twice_fails() {
        let mut s = busy();
        s.counters.closed[CloseReason::Broken.index()] += 1;
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "acquires")]
    fn more_in_use_than_acquired_fails() {
        let mut s = busy();
        s.counters.acquires = 0;
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "timeouts")]
    fn more_timeouts_than_waits_fails() {
        let mut s = busy();
        s.counters.acquire_timeouts = s.counters.wait_count + 1;
        s.check_invariants();
    }
}
