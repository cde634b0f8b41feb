//! The connector abstraction: how the pool opens, checks and resets connections.
//!
//! [`PgManager`](crate::PgManager) is the PostgreSQL implementation. Any r2d2
//! [`ManageConnection`](r2d2::ManageConnection) can be used through [`R2d2Manager`], which is
//! also how the benchmarks run pgpool and r2d2 over the very same manager.

use std::time::Duration;

use crate::error::Error;

/// What a zero-cost probe found out about an idle connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Nothing suggests a problem.
    Healthy,
    /// Something unexpected (unread data on an idle socket): validate with a round trip.
    Suspect,
    /// Unusable: discard it.
    Broken,
}

/// Stops a connection's work from another thread, while its holder may be blocked on it:
/// what the pool uses to take back a connection held past `max_checkout` and to end
/// [`Pool::close_timeout`](crate::Pool::close_timeout) on time. Get one from
/// [`Manager::interrupter`].
pub trait Interrupt: Send + Sync {
    /// Asks the server to stop what the session is running (PostgreSQL's cancel request).
    /// May block for a bounded time (the pool calls it on a thread of its own).
    fn cancel(&self);
    /// Shuts the connection's socket down: the holder's blocked or next read or write fails
    /// at once. Must not block.
    fn sever(&self);
}

/// Opens and looks after connections for a [`Pool`](crate::Pool).
///
/// The pool never calls a manager method while holding its lock, and calls `connect` only on
/// background threads. Methods may be called from several threads at once (on different
/// connections).
pub trait Manager: Send + Sync + 'static {
    /// The connection type handed out by the pool.
    type Connection: Send + 'static;

    /// Opens a new connection. May block up to the connect timeout; may panic (the pool
    /// catches it, counts a connect error and gives the slot back).
    fn connect(&self) -> Result<Self::Connection, Error>;

    /// Checks the connection with a round trip bounded by `timeout`.
    fn validate(&self, conn: &mut Self::Connection, timeout: Duration) -> Result<(), Error>;

    /// A zero-cost check (no round trip, no blocking) run before every hand-out and on release.
    fn probe(&self, conn: &mut Self::Connection) -> Probe;

    /// Makes a returned connection clean for the next user (for example rolls back an open
    /// transaction). Runs on the releasing thread. Returns false when the connection must be
    /// discarded instead. The default does nothing.
    fn reset(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        true
    }

    /// A lifetime for `conn` shorter than the pool's `max_lifetime`, if it needs one (for
    /// PostgreSQL: `fallback_lifetime` for a `prefer-standby` session on a primary). Asked
    /// once, when the connection is opened; the pool enforces the shorter of the two like
    /// `max_lifetime` itself (before a hand-out, at release, and while idle), closing with
    /// [`CloseReason::Lifetime`](crate::CloseReason::Lifetime). The default: none.
    fn lifetime(&self, conn: &Self::Connection) -> Option<Duration> {
        let _ = conn;
        None
    }

    /// Why a healthy `conn` must leave the pool all the same, if it must: the server behind
    /// it is no longer the kind it was opened for
    /// ([`CloseReason::RoleChanged`](crate::CloseReason::RoleChanged); for PostgreSQL a
    /// standby promoted, or a primary turned read-only, against `target_session_attrs`), or
    /// it is a standby found too far behind its primary
    /// ([`CloseReason::ReplicaLag`](crate::CloseReason::ReplicaLag)). Asked after every
    /// reset, every successful validation and every keepalive; the pool then retires the
    /// connection with that reason. Must be cheap and must not block: it reads what the
    /// last round trip learnt. The default: never.
    fn unfit(&self, conn: &mut Self::Connection) -> Option<crate::CloseReason> {
        let _ = conn;
        None
    }

    /// Whether dropping a connection may block. Asked once, when the pool starts.
    ///
    /// `true` (the default): the pool drops retired connections on its closer thread
    /// (`pgpool-c<id>`, started the first time a connection is retired), so a slow close
    /// never holds up a caller. Closing a `postgres::Client`, for example, writes a
    /// termination message to the socket and can block for minutes on a cut network.
    ///
    /// `false`: the pool drops a retired connection on the thread that retired it (the
    /// releasing caller, a connector, the reaper...), right after releasing its lock, and
    /// never starts a closer thread. Return false only if `Drop` cannot block, for example a
    /// client that closes with a single non-blocking write (as pgpool's own client will).
    ///
    /// Either way the bookkeeping is the same: the slot counts as closing until the drop is
    /// over, then a replacement may be opened and a `Remove` event follows.
    fn close_may_block(&self) -> bool {
        true
    }

    /// A handle that interrupts `conn` from another thread, asked once per connection right
    /// after it opened. The default (`None`) means the pool cannot take a connection back:
    /// `max_checkout` only logs, and close waits for holders until its deadline.
    fn interrupter(&self, conn: &mut Self::Connection) -> Option<std::sync::Arc<dyn Interrupt>> {
        let _ = conn;
        None
    }

    /// The distribution of statement times on this manager's connections, for
    /// [`Stats::query_time`](crate::Stats::query_time). The default (`None`) leaves it empty:
    /// the pool does not see the statements a connection runs.
    fn query_time(&self) -> Option<crate::Histogram> {
        None
    }

    /// The server process serving `conn` (PostgreSQL's `pg_backend_pid()`), asked once per
    /// connection right after it opened: the `backend_pid` of its [`Event`](crate::Event)s.
    /// The default (`None`) means unknown.
    fn backend_pid(&self, conn: &Self::Connection) -> Option<i32> {
        let _ = conn;
        None
    }
}

/// Adapts any r2d2 [`ManageConnection`](r2d2::ManageConnection) to [`Manager`].
///
/// `is_valid` serves as validation (its own timeout applies; r2d2 has no bound), `has_broken`
/// as the probe.
///
/// ```
/// use pgpool::{Pool, R2d2Manager};
///
/// #[derive(Debug)]
/// struct Noop;
/// impl r2d2::ManageConnection for Noop {
///     type Connection = ();
///     type Error = std::io::Error;
///     fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
///     fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> { Ok(()) }
///     fn has_broken(&self, _: &mut ()) -> bool { false }
/// }
///
/// let pool = Pool::builder().max_size(2).build_with_manager(R2d2Manager(Noop)).unwrap();
/// let conn = pool.get().unwrap();
/// drop(conn);
/// assert_eq!(pool.stats().idle, 1);
/// ```
#[derive(Debug)]
pub struct R2d2Manager<M>(pub M);

impl<M: r2d2::ManageConnection> Manager for R2d2Manager<M> {
    type Connection = M::Connection;

    fn connect(&self) -> Result<M::Connection, Error> {
        self.0
            .connect()
            .map_err(|e| Error::new(crate::ErrorKind::Connect, e.to_string()))
    }

    fn validate(&self, conn: &mut M::Connection, _timeout: Duration) -> Result<(), Error> {
        self.0
            .is_valid(conn)
            .map_err(|e| Error::broken(e.to_string()))
    }

    fn probe(&self, conn: &mut M::Connection) -> Probe {
        if self.0.has_broken(conn) {
            Probe::Broken
        } else {
            Probe::Healthy
        }
    }

    fn reset(&self, conn: &mut M::Connection) -> bool {
        !self.0.has_broken(conn)
    }
}
