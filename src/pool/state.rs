//! [`State`]: everything the pool lock guards, and every function that changes it.
//!
//! Nothing outside this file writes a field of `State` (they are private to it). The other
//! pool files take the lock, call one of the functions here, release the lock, and only then
//! do what may block or call user code: I/O, manager calls, events, thread spawns, drops of
//! retired connections. Each function here only moves values and counts, and ends with
//! [`State::check_invariants`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::clock::Tick;
use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::event::CloseReason;
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
            uses: 0,
            idle_seq: 0,
        }
    }

    pub(crate) fn is_expired(&self, now: Tick) -> bool {
        self.expires.is_some_and(|at| now >= at)
    }
}

/// A connection on its way to be closed; its slot is counted in `closing` until
/// [`State::closed_one`].
pub(crate) struct Retired<C> {
    pub(crate) conn: Conn<C>,
    pub(crate) reason: CloseReason,
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
}

impl<C> Waiter<C> {
    pub(crate) fn new() -> Waiter<C> {
        Waiter {
            cv: Condvar::new(),
            slot: Mutex::new(None),
        }
    }

    /// Fills the slot and wakes the waiter. Called with the pool lock held.
    fn deliver(&self, delivery: Delivery<C>) {
        *self.slot.lock() = Some(delivery);
        self.cv.notify_one();
    }

    /// Sleeps (releasing the pool lock) until woken or `deadline`; true when it timed out.
    pub(crate) fn park(
        &self,
        state: &mut MutexGuard<'_, State<C>>,
        deadline: Option<Instant>,
    ) -> bool {
        match deadline {
            Some(d) => self.cv.wait_until(state, d).timed_out(),
            None => {
                self.cv.wait(state);
                false
            }
        }
    }
}

/// The configured bounds the state needs, copied once from [`Config`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_size: usize,
    pub(crate) min_idle: usize,
    pub(crate) max_idle: usize,
    pub(crate) max_waiters: Option<usize>,
}

impl Limits {
    pub(crate) fn of(config: &Config) -> Limits {
        Limits {
            max_size: config.max_size as usize,
            min_idle: config.min_idle as usize,
            max_idle: config.max_idle as usize,
            max_waiters: config.max_waiters,
        }
    }
}

/// What a connector does after a failed attempt.
pub(crate) enum AfterConnectError {
    /// Somebody still needs the connection and the error is transient: back off and retry
    /// (the slot stays reserved).
    Retry,
    /// Give the slot back and end; start `spawn` connects (slots reserved) for the waiters
    /// still in line.
    GiveUp { spawn: usize },
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
pub(crate) struct State<C> {
    limits: Limits,
    idle: VecDeque<Conn<C>>,
    in_use: usize,
    checking: usize,
    pending: usize,
    closing: usize,
    waiters: VecDeque<Arc<Waiter<C>>>,
    closed: bool,
    last_connect_error: Option<Error>,
    counters: Counters,
    next_idle_seq: u64,
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
            closing: 0,
            waiters: VecDeque::new(),
            closed: false,
            last_connect_error: None,
            counters: Counters::default(),
            next_idle_seq: 0,
            #[cfg(debug_assertions)]
            seen_closed: false,
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
        self.last_connect_error.as_ref()
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "open {}/{}, in use {}, idle {}, connecting {}, closing {}, waiting {}",
            self.idle.len() + self.in_use + self.checking,
            self.limits.max_size,
            self.in_use,
            self.idle.len(),
            self.pending,
            self.closing,
            self.waiters.len()
        )
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
        }
    }

    // ---- Acquire -------------------------------------------------------------------------

    /// Checks out an idle connection: the one this thread released last if it is among the
    /// most recently used few (thread affinity, as HikariCP's thread-local list), else the
    /// most recently used one.
    pub(crate) fn check_out_idle(&mut self, pool_id: u64) -> Option<Conn<C>> {
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
        if conn.is_some() {
            self.in_use += 1;
            self.counters.acquires += 1;
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
        let delivery = waiter.slot.lock().take()?;
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
    pub(crate) fn abandon(&mut self, waiter: &Arc<Waiter<C>>, start: Instant) -> Option<Error> {
        if waiter.slot.lock().is_some() {
            return None;
        }
        if let Some(pos) = self.waiters.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            self.waiters.remove(pos);
        }
        Some(self.time_out(start))
    }

    /// Counts an acquire that timed out after waiting since `start`; the error describes the
    /// pool.
    pub(crate) fn time_out(&mut self, start: Instant) -> Error {
        self.counters.acquire_timeouts += 1;
        self.counters.wait_count += 1;
        let waited = start.elapsed();
        self.counters.wait_duration += waited;
        self.check_invariants();
        Error::timeout(waited, &self.describe(), self.last_connect_error.as_ref())
    }

    /// A connection checked out by acquire failed its hand-out checks: it is retired and the
    /// acquire is not counted.
    pub(crate) fn undo_check_out(&mut self, conn: Conn<C>, reason: CloseReason) -> Retired<C> {
        self.in_use -= 1;
        self.counters.acquires -= 1;
        let retired = self.retire(conn, reason);
        self.check_invariants();
        retired
    }

    pub(crate) fn count_validation(&mut self) {
        self.counters.validations += 1;
        self.check_invariants();
    }

    // ---- Release -------------------------------------------------------------------------

    /// A holder gave `conn` back (already reset outside the lock). Retired for `reason` if
    /// there is one or the pool is closed; else to the oldest waiter, or idle.
    pub(crate) fn check_in(
        &mut self,
        conn: Conn<C>,
        reason: Option<CloseReason>,
    ) -> Option<Retired<C>> {
        self.in_use -= 1;
        let retired = match reason {
            Some(reason) => Some(self.retire(conn, reason)),
            None if self.closed => Some(self.retire(conn, CloseReason::PoolClosed)),
            None => self.make_available(conn),
        };
        self.check_invariants();
        retired
    }

    /// A holder discarded `conn`.
    pub(crate) fn discard(&mut self, conn: Conn<C>) -> Retired<C> {
        self.in_use -= 1;
        let retired = self.retire(conn, CloseReason::Discarded);
        self.check_invariants();
        retired
    }

    /// Gives an available connection to the oldest waiter, else keeps it idle; returns it as
    /// retired when `max_idle` connections are already idle. The pool must be open.
    fn make_available(&mut self, conn: Conn<C>) -> Option<Retired<C>> {
        if let Some(waiter) = self.waiters.pop_front() {
            self.in_use += 1;
            self.counters.acquires += 1;
            waiter.deliver(Delivery::Conn(conn));
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
        Retired { conn, reason }
    }

    // ---- Connects ------------------------------------------------------------------------

    /// Counts how many connects to start now and reserves their slots: one per waiter not
    /// already covered by a connect in flight, plus the `min_idle` deficit, within `max_size`.
    pub(crate) fn plan_connects(&mut self) -> usize {
        let deficit = self.limits.min_idle.saturating_sub(self.idle.len());
        let n = self.reserve_connects(deficit);
        self.check_invariants();
        n
    }

    /// Like [`plan_connects`](Self::plan_connects) with `extra` connections wanted beyond one
    /// per waiter.
    fn reserve_connects(&mut self, extra: usize) -> usize {
        if self.closed {
            return 0;
        }
        let wanted = self.waiters.len() + extra;
        let mut n = 0;
        while self.pending < wanted && self.slots_used() < self.limits.max_size {
            self.pending += 1;
            n += 1;
        }
        n
    }

    /// A connector's thread could not be started: its reserved slot is given back.
    pub(crate) fn connector_not_started(&mut self, err: Error) {
        self.pending -= 1;
        self.last_connect_error = Some(err);
        self.check_invariants();
    }

    /// A connector opened `conn`: to the oldest waiter, idle, or (pool closed, `max_idle`
    /// reached) retired.
    pub(crate) fn connected(&mut self, conn: Conn<C>) -> Option<Retired<C>> {
        self.pending -= 1;
        self.counters.created += 1;
        self.last_connect_error = None;
        let retired = if self.closed {
            Some(self.retire(conn, CloseReason::PoolClosed))
        } else {
            self.make_available(conn)
        };
        self.check_invariants();
        retired
    }

    /// A connect attempt failed with `err`. The connector retries a transient error while a
    /// waiter or the `min_idle` deficit needs it; otherwise it gives its slot back. A
    /// permanent error fails the oldest waiter at once; the others get connects of their own
    /// (and so the same verdict, one by one). The `min_idle` deficit is left to the reaper's
    /// next tick, so a bad password costs one attempt per tick, not a tight loop of logins.
    pub(crate) fn connect_failed(&mut self, err: &Error) -> AfterConnectError {
        self.counters.connect_errors += 1;
        self.last_connect_error = Some(err.clone());
        let needed = !self.waiters.is_empty() || self.idle.len() < self.limits.min_idle;
        let verdict = if self.closed || !needed || err.is_permanent_connect() {
            self.pending -= 1;
            if err.is_permanent_connect() {
                if let Some(w) = self.waiters.pop_front() {
                    w.deliver(Delivery::Failed(err.clone()));
                }
            }
            AfterConnectError::GiveUp {
                spawn: self.reserve_connects(0),
            }
        } else {
            AfterConnectError::Retry
        };
        self.check_invariants();
        verdict
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

    /// The keepalive round trip on `conn` is over: alive, it goes back where it was in the LRU
    /// order (or to the oldest waiter); dead, or the pool closed meanwhile, it is retired.
    pub(crate) fn end_keepalive(&mut self, conn: Conn<C>, alive: bool) -> Option<Retired<C>> {
        self.checking -= 1;
        let retired = if !alive {
            Some(self.retire(conn, CloseReason::FailedKeepalive))
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
            self.waiters.iter().all(|w| w.slot.lock().is_none()),
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
        }
    }

    fn conn(id: u64) -> Conn<()> {
        Conn::new((), id, Tick::now(), None)
    }

    /// An open pool with two idle connections (1 released before 2) and one in use (3),
    /// built through the real transitions.
    fn busy() -> State<()> {
        let mut s = State::new(limits());
        let waiters: Vec<_> = (0..3).map(|_| Arc::new(Waiter::new())).collect();
        for w in &waiters {
            s.join_queue(Arc::clone(w), false).unwrap();
        }
        assert_eq!(s.plan_connects(), 3);
        for id in 1..=3 {
            assert!(s.connected(conn(id)).is_none()); // straight to a waiter
        }
        let mut got: Vec<_> = waiters
            .iter()
            .map(|w| s.take_delivery(w, Instant::now()).unwrap().unwrap())
            .collect();
        let c3 = got.pop().unwrap();
        for c in got {
            assert!(s.check_in(c, None).is_none());
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
        let w = Arc::new(Waiter::new());
        let c2 = s.check_out_idle(0).unwrap();
        s.join_queue(Arc::clone(&w), false).unwrap();
        assert!(s.end_keepalive(c, true).is_none()); // to the waiter
        let c = s.take_delivery(&w, Instant::now()).unwrap().unwrap();
        assert!(s.check_in(c, None).is_none());
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
        let taken = s.check_out_idle(0).unwrap();
        assert_eq!(taken.id, next);
        assert!(s.check_in(taken, None).is_none()); // released after `oldest`
        assert!(s.end_keepalive(oldest, true).is_none());
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
        s.waiters.push_back(Arc::new(Waiter::new()));
        s.check_invariants();
    }

    #[test]
    #[should_panic(expected = "no barging")]
    fn a_queued_waiter_with_a_delivery_fails() {
        let mut s = State::<()>::new(limits());
        let w = Arc::new(Waiter::new());
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
    #[should_panic(expected = "one place per connection")]
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
