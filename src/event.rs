//! Pool events (pg-pool's `connect` / `acquire` / `release` / `remove` / `error`).
//!
//! Every event is logged through the `log` crate (target `pgpool`) and, when one is set, passed
//! to the user's hook. Neither ever runs under the pool lock.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// Why a connection left the pool. Also the key of [`Stats`](crate::Stats) close counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Idle longer than `idle_timeout`.
    IdleTimeout,
    /// Older than `max_lifetime` (or, for a `prefer-standby` session that fell back to a
    /// primary, than `fallback_lifetime`).
    Lifetime,
    /// Released while `max_idle` connections were already idle.
    MaxIdle,
    /// Checked out `max_uses` times.
    MaxUses,
    /// Reported itself broken, failed its reset, or was released by a panicking thread.
    Broken,
    /// Failed the zero-cost probe or the validation round trip before hand-out.
    FailedValidation,
    /// Failed the keepalive job's round trip.
    FailedKeepalive,
    /// The user discarded it explicitly.
    Discarded,
    /// The pool closed.
    PoolClosed,
    /// Taken back from a holder: held longer than `max_checkout`, or still held when
    /// [`Pool::close_timeout`](crate::Pool::close_timeout) ran out.
    Reclaimed,
    /// The server is no longer what `target_session_attrs` asked for: a standby was
    /// promoted, or a primary turned read-only (`default_transaction_read_only`). Seen in the
    /// parameters the server reports (PostgreSQL 14+) after a statement, a reset or a
    /// validation round trip.
    RoleChanged,
    /// On a hot standby further behind its primary than `max_replica_lag`, measured by a
    /// validation round trip or the keepalive.
    ReplicaLag,
}

impl CloseReason {
    /// Every reason, in the order the stats report them.
    pub const ALL: [CloseReason; 12] = [
        CloseReason::IdleTimeout,
        CloseReason::Lifetime,
        CloseReason::MaxIdle,
        CloseReason::MaxUses,
        CloseReason::Broken,
        CloseReason::FailedValidation,
        CloseReason::FailedKeepalive,
        CloseReason::Discarded,
        CloseReason::PoolClosed,
        CloseReason::Reclaimed,
        CloseReason::RoleChanged,
        CloseReason::ReplicaLag,
    ];

    /// A short, stable name (`"idle_timeout"`, `"lifetime"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Lifetime => "lifetime",
            CloseReason::MaxIdle => "max_idle",
            CloseReason::MaxUses => "max_uses",
            CloseReason::Broken => "broken",
            CloseReason::FailedValidation => "failed_validation",
            CloseReason::FailedKeepalive => "failed_keepalive",
            CloseReason::Discarded => "discarded",
            CloseReason::PoolClosed => "pool_closed",
            CloseReason::Reclaimed => "reclaimed",
            CloseReason::RoleChanged => "role_changed",
            CloseReason::ReplicaLag => "replica_lag",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Something that happened in the pool. Connection ids are unique within a pool.
///
/// Fields are only ever added (every variant is `#[non_exhaustive]`: match with `..`).
/// `backend_pid` is the server process of the session (`pg_backend_pid()`), `None` when the
/// [`Manager`](crate::Manager) does not know it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A new connection was opened; `took` is how long the connect took.
    #[non_exhaustive]
    Connect {
        /// The connection's id.
        conn_id: u64,
        /// Time spent connecting.
        took: Duration,
        /// The session's server process id.
        backend_pid: Option<i32>,
    },
    /// A caller acquired a connection after waiting `waited`.
    #[non_exhaustive]
    Acquire {
        /// The connection's id.
        conn_id: u64,
        /// Time from the call to hand-out.
        waited: Duration,
        /// The session's server process id.
        backend_pid: Option<i32>,
    },
    /// A caller gave a connection back.
    #[non_exhaustive]
    Release {
        /// The connection's id.
        conn_id: u64,
        /// How long the caller held it.
        held: Duration,
        /// The session's server process id.
        backend_pid: Option<i32>,
    },
    /// A connection was closed and left the pool.
    #[non_exhaustive]
    Remove {
        /// The connection's id.
        conn_id: u64,
        /// Why.
        reason: CloseReason,
        /// The session's server process id.
        backend_pid: Option<i32>,
        /// How long the connection lived, from its connect to its close (read from the
        /// coarse clock: within a few milliseconds).
        age: Duration,
    },
    /// Something failed in the background or on a connection: a connect attempt, a keepalive,
    /// a validation. Errors returned to a caller are not repeated here. A failed keepalive or
    /// validation names its connection, and its `Remove` (reason `FailedKeepalive` /
    /// `FailedValidation`) follows.
    #[non_exhaustive]
    Error {
        /// The failure.
        error: Error,
        /// The connection it happened on (`None` for a connect attempt or a pool thread).
        conn_id: Option<u64>,
        /// That connection's server process id.
        backend_pid: Option<i32>,
    },
    /// A connection has been held longer than `leak_threshold` (reported once per checkout).
    #[non_exhaustive]
    LeakSuspected {
        /// The connection's id.
        conn_id: u64,
        /// How long it has been held so far.
        held: Duration,
        /// Where it was acquired: `file:line:column` of the Rust caller, the label a C or Go
        /// caller passed, or `"unknown"`.
        site: String,
        /// The session's server process id.
        backend_pid: Option<i32>,
    },
    /// A connection held longer than `max_checkout` (or still held when a bounded close ran
    /// out) was taken back: statement cancelled, socket shut down, slot freed. This is the
    /// connection's removal: no `Remove` follows (it counts as
    /// [`CloseReason::Reclaimed`]).
    #[non_exhaustive]
    Reclaimed {
        /// The connection's id.
        conn_id: u64,
        /// How long it had been held.
        held: Duration,
        /// Where it was acquired (as in `LeakSuspected`).
        site: String,
        /// The session's server process id.
        backend_pid: Option<i32>,
    },
    /// A session received a notice from the server (WARNING, NOTICE, INFO, …).
    #[non_exhaustive]
    Notice {
        /// The notice's fields.
        notice: Box<crate::client::DbError>,
    },
}

impl Event {
    /// An `Error` not tied to a connection.
    pub(crate) fn error(error: Error) -> Event {
        Event::Error {
            error,
            conn_id: None,
            backend_pid: None,
        }
    }

    /// An `Error` on connection `conn_id`.
    pub(crate) fn conn_error(error: Error, conn_id: u64, backend_pid: Option<i32>) -> Event {
        Event::Error {
            error,
            conn_id: Some(conn_id),
            backend_pid,
        }
    }

    /// A short, stable name of the event's kind: `"connect"`, `"acquire"`, `"release"`,
    /// `"remove"`, `"error"`, `"leak_suspected"`, `"reclaimed"` or `"notice"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Event::Connect { .. } => "connect",
            Event::Acquire { .. } => "acquire",
            Event::Release { .. } => "release",
            Event::Remove { .. } => "remove",
            Event::Error { .. } => "error",
            Event::LeakSuspected { .. } => "leak_suspected",
            Event::Reclaimed { .. } => "reclaimed",
            Event::Notice { .. } => "notice",
        }
    }

    /// The connection the event is about (`None` for `Notice`, and for an `Error` not on a
    /// connection).
    pub fn conn_id(&self) -> Option<u64> {
        match self {
            Event::Connect { conn_id, .. }
            | Event::Acquire { conn_id, .. }
            | Event::Release { conn_id, .. }
            | Event::Remove { conn_id, .. }
            | Event::LeakSuspected { conn_id, .. }
            | Event::Reclaimed { conn_id, .. } => Some(*conn_id),
            Event::Error { conn_id, .. } => *conn_id,
            Event::Notice { .. } => None,
        }
    }

    /// The session's server process id, when the event is about a connection and the
    /// manager knows it.
    pub fn backend_pid(&self) -> Option<i32> {
        match self {
            Event::Connect { backend_pid, .. }
            | Event::Acquire { backend_pid, .. }
            | Event::Release { backend_pid, .. }
            | Event::Remove { backend_pid, .. }
            | Event::LeakSuspected { backend_pid, .. }
            | Event::Reclaimed { backend_pid, .. }
            | Event::Error { backend_pid, .. } => *backend_pid,
            Event::Notice { .. } => None,
        }
    }

    /// The duration the event carries: the connect's (`Connect`), the wait (`Acquire`), the
    /// hold (`Release`, `LeakSuspected`, `Reclaimed`), the connection's age (`Remove`);
    /// `None` for the others.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Event::Connect { took, .. } => Some(*took),
            Event::Remove { age, .. } => Some(*age),
            Event::Acquire { waited, .. } => Some(*waited),
            Event::Release { held, .. }
            | Event::LeakSuspected { held, .. }
            | Event::Reclaimed { held, .. } => Some(*held),
            _ => None,
        }
    }
}

/// The user's event callback.
pub type EventHook = Arc<dyn Fn(&Event) + Send + Sync + 'static>;

/// Makes a pool's hook once its final name is known (the C ABI's callback reports the name,
/// which the connection string or the environment may set): called with the name when the
/// options are resolved.
pub(crate) type HookFactory = Arc<dyn Fn(&str) -> EventHook + Send + Sync + 'static>;

/// Logs `event` and passes it to `hook`. A panicking hook is contained and logged.
pub(crate) fn emit(hook: Option<&EventHook>, event: Event) {
    match &event {
        Event::Connect { conn_id, took, .. } => {
            log::debug!(target: "pgpool", "connect: conn {conn_id} opened in {took:?}")
        }
        Event::Acquire {
            conn_id, waited, ..
        } => {
            log::trace!(target: "pgpool", "acquire: conn {conn_id} after {waited:?}")
        }
        Event::Release { conn_id, held, .. } => {
            log::trace!(target: "pgpool", "release: conn {conn_id} held {held:?}")
        }
        Event::Remove {
            conn_id,
            reason,
            age,
            ..
        } => {
            log::debug!(
                target: "pgpool",
                "remove: conn {conn_id} ({}) after {age:?}",
                reason.as_str()
            )
        }
        Event::Error {
            error,
            conn_id: Some(id),
            ..
        } => log::warn!(target: "pgpool", "error: conn {id}: {error}"),
        Event::Error { error, .. } => log::warn!(target: "pgpool", "error: {error}"),
        Event::LeakSuspected {
            conn_id,
            held,
            site,
            ..
        } => log::warn!(
            target: "pgpool",
            "possible leak: conn {conn_id} held for {held:?}, acquired at {site}"
        ),
        Event::Reclaimed {
            conn_id,
            held,
            site,
            ..
        } => log::warn!(
            target: "pgpool",
            "reclaimed: conn {conn_id} taken back after {held:?}, acquired at {site}"
        ),
        // Logged at debug level by the session that received it.
        Event::Notice { .. } => {}
    }
    if let Some(hook) = hook {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&event)));
        if result.is_err() {
            log::error!(target: "pgpool", "the event hook panicked on {event:?}");
        }
    }
}
