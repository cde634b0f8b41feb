//! Pool statistics: a superset of Go's `sql.DBStats` and pg-pool's counters.

use std::time::Duration;

use crate::event::CloseReason;
use crate::histogram::Histogram;
use crate::pool::breaker::HealthState;

/// Monotonic counters kept under the pool lock (so a snapshot is consistent).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) acquires: u64,
    pub(crate) wait_count: u64,
    pub(crate) wait_duration: Duration,
    pub(crate) acquire_timeouts: u64,
    pub(crate) overloaded: u64,
    pub(crate) created: u64,
    pub(crate) connect_errors: u64,
    pub(crate) validations: u64,
    pub(crate) closed: [u64; CloseReason::ALL.len()],
    pub(crate) leaks: u64,
}

/// A consistent snapshot of a pool's state and counters, from [`Pool::stats`](crate::Pool::stats).
///
/// Gauges (`open`, `in_use`, ...) describe the moment of the snapshot; counters only grow.
/// Always `open == in_use + idle + checking` and `open + pending + closing <= max_size`.
///
/// The histograms are empty when [`Config::histograms`](crate::Config::histograms) is off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// The configured `max_size` (Go's `MaxOpenConnections`).
    pub max_size: u32,
    /// Established connections: in use, idle, or being checked by the keepalive job.
    pub open: u32,
    /// Connections held by callers (Go's `InUse`).
    pub in_use: u32,
    /// Connections ready to hand out (Go's `Idle`).
    pub idle: u32,
    /// Idle connections the keepalive job is checking right now.
    pub checking: u32,
    /// Connection attempts in progress.
    pub pending: u32,
    /// Retired connections not yet closed (queued for or on the closer thread, or being
    /// dropped by the thread that retired them; see `Manager::close_may_block`).
    pub closing: u32,
    /// Callers waiting for a connection right now (pg-pool's `waitingCount`).
    pub waiting: u32,
    /// Successful acquires.
    pub acquires: u64,
    /// Acquires that had to block, for a busy pool or for a new connection to open (Go's
    /// `WaitCount`, which counts only the former).
    pub wait_count: u64,
    /// Total time spent waiting by those acquires (Go's `WaitDuration`).
    pub wait_duration: Duration,
    /// Acquires that failed with a timeout.
    pub acquire_timeouts: u64,
    /// Acquires refused because `max_waiters` callers were already waiting.
    pub overloaded: u64,
    /// Connections opened.
    pub connections_created: u64,
    /// Failed connection attempts.
    pub connect_errors: u64,
    /// Validation round trips run before hand-out.
    pub validations: u64,
    /// Connections closed, indexed like [`CloseReason::ALL`]; see [`Stats::closed`].
    pub closed_by_reason: [u64; CloseReason::ALL.len()],
    /// Checkouts reported as suspected leaks (held past `leak_threshold`).
    pub leaks_suspected: u64,
    /// Healthy, degraded or down (the circuit breaker; see [`HealthState`]).
    pub health: HealthState,
    /// Connect attempts that failed in a row (0 after a success).
    pub consecutive_connect_failures: u32,
    /// Time since the last successful connect, `None` if there was none.
    pub since_connect_success: Option<Duration>,
    /// Time since the last failed connect, `None` if there was none.
    pub since_connect_failure: Option<Duration>,
    /// Connector threads running (at most `max_concurrent_connects`).
    pub connectors: u32,
    /// Time from the call to hand-out of every successful acquire (zero when an idle
    /// connection was ready: that path reads no clock).
    pub acquire_wait: Histogram,
    /// Time each successful connect took (TCP, TLS, authentication, session setup).
    pub connect_time: Histogram,
    /// Time of each statement a caller ran: from the call to the end of its result,
    /// preparation included (PostgreSQL sessions only; `pgpool_pool_exec` and COPY too).
    pub query_time: Histogram,
    /// How long each checkout was held, from hand-out to release (or discard).
    pub hold_time: Histogram,
}

/// One line of a pool's figures, as the periodic stats log line prints them:
/// `healthy, open 3/10 (in use 2, idle 1), waiting 0, acquires 1234 (timeouts 0),
/// connects 3 (errors 0), closed 0, p99 acquire <ms> query <ms> hold <ms>`.
pub(crate) fn summary(s: &Stats) -> String {
    use crate::histogram::ms;
    let mut line = format!(
        "{}, open {}/{} (in use {}, idle {}), waiting {}, acquires {} (timeouts {}), \
         connects {} (errors {}), closed {}",
        crate::health::state_name(s.health),
        s.open,
        s.max_size,
        s.in_use,
        s.idle,
        s.waiting,
        s.acquires,
        s.acquire_timeouts,
        s.connections_created,
        s.connect_errors,
        s.closed_total(),
    );
    if s.acquire_wait.count() + s.query_time.count() + s.hold_time.count() > 0 {
        line.push_str(&format!(
            ", p99 acquire {} query {} hold {}",
            ms(s.acquire_wait.p99()),
            ms(s.query_time.p99()),
            ms(s.hold_time.p99())
        ));
    }
    line
}

impl Stats {
    /// Connections closed for `reason` (Go's `MaxIdleClosed`, `MaxLifetimeClosed`, ...).
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed_by_reason[reason.index()]
    }

    /// Connections closed for any reason.
    pub fn closed_total(&self) -> u64 {
        self.closed_by_reason.iter().sum()
    }
}
