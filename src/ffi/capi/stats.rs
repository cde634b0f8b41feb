//! `#[repr(C)]` structs for statistics and health, each led by a `size` field so the ABI can
//! grow: the caller sets `size = sizeof(struct)` and the library fills what both know.

use std::ffi::c_char;

use crate::event::CloseReason;
use crate::health::Health;
use crate::histogram::Histogram;
use crate::stats::Stats;

use super::error::FfiError;

/// Capacity of the text fields of `pgpool_health`, NUL included.
pub const PGPOOL_HEALTH_TEXT_LEN: usize = 64;

/// A snapshot of a pool's gauges and counters (`pgpool_pool_stats`).
///
/// Set `size` to `sizeof(pgpool_stats)` before the call; the library sets it to the number
/// of bytes it filled. Fields are only ever added at the end.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct pgpool_stats {
    /// In: `sizeof(pgpool_stats)` as the caller knows it. Out: bytes filled.
    pub size: u32,
    /// The configured maximum of open connections.
    pub max_size: u32,
    /// Established connections (in use + idle + being checked).
    pub open: u32,
    /// Connections held by callers.
    pub in_use: u32,
    /// Connections ready to hand out.
    pub idle: u32,
    /// Idle connections being checked by the keepalive job.
    pub checking: u32,
    /// Connection attempts in progress.
    pub pending: u32,
    /// Connections being closed.
    pub closing: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
    /// Always zero (alignment).
    pub reserved: u32,
    /// Successful acquires.
    pub acquires: u64,
    /// Acquires that had to wait.
    pub wait_count: u64,
    /// Total time those acquires waited, in microseconds.
    pub wait_duration_us: u64,
    /// Acquires that timed out.
    pub acquire_timeouts: u64,
    /// Acquires refused because `max_waiters` callers were waiting.
    pub overloaded: u64,
    /// Connections opened.
    pub connections_created: u64,
    /// Failed connection attempts.
    pub connect_errors: u64,
    /// Validation round trips before hand-out.
    pub validations: u64,
    /// Connections closed after `idle_timeout`.
    pub closed_idle_timeout: u64,
    /// Connections closed after `max_lifetime`.
    pub closed_lifetime: u64,
    /// Connections closed because `max_idle` were already idle.
    pub closed_max_idle: u64,
    /// Connections closed after `max_uses` checkouts.
    pub closed_max_uses: u64,
    /// Connections closed as broken.
    pub closed_broken: u64,
    /// Connections closed after failing the check before hand-out.
    pub closed_failed_validation: u64,
    /// Connections closed after failing a keepalive.
    pub closed_failed_keepalive: u64,
    /// Connections discarded by callers.
    pub closed_discarded: u64,
    /// Connections closed because the pool closed.
    pub closed_pool_closed: u64,
    /// Connections taken back from their holders (held past `max_checkout`, or still held
    /// when a bounded close ran out).
    pub closed_reclaimed: u64,
    /// Checkouts reported as suspected leaks (held past `leak_threshold`).
    pub leaks_suspected: u64,
    /// The pool's health: a `pgpool_health_state` value.
    pub health: i32,
    /// Connect attempts that failed in a row (0 after a success).
    pub consecutive_connect_failures: u32,
    /// Milliseconds since the last successful connect; -1 if there was none.
    pub since_connect_success_ms: i64,
    /// Milliseconds since the last failed connect; -1 if there was none.
    pub since_connect_failure_ms: i64,
    /// Connector threads running (at most `max_concurrent_connects`).
    pub connectors: u32,
    /// Always zero (alignment).
    pub reserved2: u32,
    /// Time from an acquire call to hand-out (zero-filled when histograms are off).
    pub acquire_wait: pgpool_histogram,
    /// Time each successful connect took.
    pub connect_time: pgpool_histogram,
    /// Time of each statement run on the pool's connections.
    pub query_time: pgpool_histogram,
    /// How long each checkout was held.
    pub hold_time: pgpool_histogram,
    /// Connections retired because the server changed role: a standby promoted, or a
    /// primary turned read-only, against the pool's `target_session_attrs`.
    pub closed_role_changed: u64,
    /// Connections retired because their standby was further behind its primary than
    /// `max_replica_lag`.
    pub closed_replica_lag: u64,
}

/// One latency distribution of `pgpool_stats`, in microseconds. Quantiles are within 6.25%
/// of the exact value; `max_us` is exact. All zero when nothing was recorded.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct pgpool_histogram {
    /// Values recorded.
    pub count: u64,
    /// Their sum.
    pub sum_us: u64,
    /// The median.
    pub p50_us: u64,
    /// The 90th percentile.
    pub p90_us: u64,
    /// The 99th percentile.
    pub p99_us: u64,
    /// The largest value.
    pub max_us: u64,
}

impl From<&Histogram> for pgpool_histogram {
    fn from(h: &Histogram) -> pgpool_histogram {
        pgpool_histogram {
            count: h.count(),
            sum_us: micros(h.sum()),
            p50_us: micros(h.p50()),
            p90_us: micros(h.p90()),
            p99_us: micros(h.p99()),
            max_us: micros(h.max()),
        }
    }
}

/// A pool's health (`pgpool_stats.health`, `pgpool_health.state`).
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pgpool_health_state {
    /// The last connect attempt (if any) succeeded.
    PGPOOL_HEALTHY = 0,
    /// Recent connect attempts failed, but the breaker is not open (or connections are still
    /// open and serve callers).
    PGPOOL_DEGRADED = 1,
    /// The breaker is open: connects keep failing and no connection is open; acquires that
    /// need a new connection fail with the last connect error after one probe at most.
    PGPOOL_DOWN = 2,
}

impl From<crate::HealthState> for pgpool_health_state {
    fn from(h: crate::HealthState) -> pgpool_health_state {
        match h {
            crate::HealthState::Degraded => pgpool_health_state::PGPOOL_DEGRADED,
            crate::HealthState::Down => pgpool_health_state::PGPOOL_DOWN,
            _ => pgpool_health_state::PGPOOL_HEALTHY,
        }
    }
}

fn millis_or_none(d: Option<std::time::Duration>) -> i64 {
    d.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The result of a health check (`pgpool_pool_health`).
///
/// Set `size` to `sizeof(pgpool_health)` before the call.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pgpool_health {
    /// In: `sizeof(pgpool_health)` as the caller knows it. Out: bytes filled.
    pub size: u32,
    /// Open connections.
    pub open: u32,
    /// Idle connections.
    pub idle: u32,
    /// Waiting callers.
    pub waiting: u32,
    /// Time for acquire + round trip, in microseconds.
    pub latency_us: u64,
    /// True when the round trip succeeded.
    pub ok: bool,
    /// Always zero (alignment).
    pub reserved: [u8; 7],
    /// `current_database()`, NUL-terminated (empty on failure).
    pub database: [c_char; PGPOOL_HEALTH_TEXT_LEN],
    /// The server's `now()` as text, NUL-terminated (empty on failure).
    pub server_time: [c_char; PGPOOL_HEALTH_TEXT_LEN],
    /// The pool's health at the end of the check: a `pgpool_health_state` value.
    pub state: i32,
    /// Connect attempts that failed in a row (0 after a success).
    pub consecutive_connect_failures: u32,
    /// Connections held by callers.
    pub in_use: u32,
    /// Always zero (alignment).
    pub reserved2: u32,
    /// The server's `server_version`, NUL-terminated (empty on failure).
    pub server_version: [c_char; PGPOOL_HEALTH_TEXT_LEN],
    /// The configured maximum of open connections.
    pub max_size: u32,
    /// Always zero (alignment).
    pub reserved3: u32,
    /// Why the state is not healthy, the reasons joined by "; ", NUL-terminated and cut to
    /// fit (empty when healthy; `pgpool_pool_health_json` has them whole).
    pub reasons: [c_char; PGPOOL_HEALTH_REASONS_LEN],
    /// 1 when the server is a standby (`pg_is_in_recovery()`), 0 when not, -1 on failure.
    pub in_recovery: i32,
    /// Always zero (alignment).
    pub reserved4: u32,
    /// On a standby, how far its replay is behind its primary (the measure of
    /// `max_replica_lag_ms`), in microseconds; -1 on a primary or on failure.
    pub replica_lag_us: i64,
}

/// Capacity of `pgpool_health.reasons`, NUL included.
pub const PGPOOL_HEALTH_REASONS_LEN: usize = 256;

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The caller's `out->size`, checked: below 8 (the size field and one more) is
/// `PGPOOL_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `out` must be non-NULL and valid for reading its leading `u32`.
pub(crate) unsafe fn sized_len<T>(out: *const T, what: &str) -> Result<usize, FfiError> {
    // SAFETY: the caller guarantees `out` points to a struct whose first field is its size.
    let size = unsafe { out.cast::<u32>().read_unaligned() } as usize;
    if size < 8 {
        return Err(FfiError::invalid(format!(
            "{what}.size is {size}: set it to sizeof({what}) before the call"
        )));
    }
    Ok(size)
}

/// Writes `value` into the caller's struct of `out->size` bytes (the first field of every
/// sized struct): the library fills `min(size, sizeof(T))` bytes and stores that count in
/// `size`, so a program built against an older, smaller struct keeps working with a newer
/// library and the other way round. A size below 8 (the size field and one more) is
/// `PGPOOL_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `out` must be non-NULL and valid for reading 4 bytes and writing `out->size` bytes; `T`
/// must be `repr(C)` with a leading `u32` size field.
pub(crate) unsafe fn write_sized<T>(out: *mut T, value: &T, what: &str) -> Result<(), FfiError> {
    // SAFETY: forwarded under the caller's guarantee.
    let size = unsafe { sized_len(out, what) }?;
    let n = size.min(std::mem::size_of::<T>());
    // SAFETY: `value` is a whole `T`; the caller's struct has room for `size >= n` bytes;
    // the two do not overlap (one is ours, on the stack).
    unsafe {
        std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), out.cast::<u8>(), n);
        out.cast::<u32>().write_unaligned(n as u32);
    }
    Ok(())
}

impl From<&Stats> for pgpool_stats {
    fn from(s: &Stats) -> pgpool_stats {
        pgpool_stats {
            size: std::mem::size_of::<pgpool_stats>() as u32,
            max_size: s.max_size,
            open: s.open,
            in_use: s.in_use,
            idle: s.idle,
            checking: s.checking,
            pending: s.pending,
            closing: s.closing,
            waiting: s.waiting,
            reserved: 0,
            acquires: s.acquires,
            wait_count: s.wait_count,
            wait_duration_us: micros(s.wait_duration),
            acquire_timeouts: s.acquire_timeouts,
            overloaded: s.overloaded,
            connections_created: s.connections_created,
            connect_errors: s.connect_errors,
            validations: s.validations,
            closed_idle_timeout: s.closed(CloseReason::IdleTimeout),
            closed_lifetime: s.closed(CloseReason::Lifetime),
            closed_max_idle: s.closed(CloseReason::MaxIdle),
            closed_max_uses: s.closed(CloseReason::MaxUses),
            closed_broken: s.closed(CloseReason::Broken),
            closed_failed_validation: s.closed(CloseReason::FailedValidation),
            closed_failed_keepalive: s.closed(CloseReason::FailedKeepalive),
            closed_discarded: s.closed(CloseReason::Discarded),
            closed_pool_closed: s.closed(CloseReason::PoolClosed),
            closed_reclaimed: s.closed(CloseReason::Reclaimed),
            leaks_suspected: s.leaks_suspected,
            health: pgpool_health_state::from(s.health) as i32,
            consecutive_connect_failures: s.consecutive_connect_failures,
            since_connect_success_ms: millis_or_none(s.since_connect_success),
            since_connect_failure_ms: millis_or_none(s.since_connect_failure),
            connectors: s.connectors,
            reserved2: 0,
            acquire_wait: (&s.acquire_wait).into(),
            connect_time: (&s.connect_time).into(),
            query_time: (&s.query_time).into(),
            hold_time: (&s.hold_time).into(),
            closed_role_changed: s.closed(CloseReason::RoleChanged),
            closed_replica_lag: s.closed(CloseReason::ReplicaLag),
        }
    }
}

fn fixed_text<const N: usize>(text: &str) -> [c_char; N] {
    let mut out = [0 as c_char; N];
    let mut end = text.len().min(N - 1);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    for (slot, byte) in out.iter_mut().zip(text[..end].bytes()) {
        *slot = byte as c_char;
    }
    out
}

impl From<&Health> for pgpool_health {
    fn from(h: &Health) -> pgpool_health {
        pgpool_health {
            size: std::mem::size_of::<pgpool_health>() as u32,
            open: h.open,
            idle: h.idle,
            waiting: h.waiting,
            latency_us: micros(h.latency),
            ok: h.ok,
            reserved: [0; 7],
            database: fixed_text(&h.database),
            server_time: fixed_text(&h.server_time),
            state: pgpool_health_state::from(h.state) as i32,
            consecutive_connect_failures: h.consecutive_connect_failures,
            in_use: h.in_use,
            reserved2: 0,
            server_version: fixed_text(&h.server_version),
            max_size: h.max_size,
            reserved3: 0,
            reasons: fixed_text(&h.reasons.join("; ")),
            in_recovery: h.in_recovery.map_or(-1, i32::from),
            reserved4: 0,
            replica_lag_us: h
                .replica_lag
                .map_or(-1, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        }
    }
}
