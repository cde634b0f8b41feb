//! [`Pool`]: the public face of the pool.
//!
//! | file | holds |
//! |---|---|
//! | `state.rs` | `State`, the one lock's contents, its invariants and every change to it |
//! | `shared.rs` | `Shared` and the paths through the state: acquire, release, close |
//! | `threads.rs` | the connector, reaper, keepalive and closer threads |
//! | `guard.rs` | `PooledConnection`, the RAII guard |
//! | `build.rs` | `Builder::build` and `Builder::build_with_manager` |

mod build;
mod guard;
pub(crate) mod shared;
pub(crate) mod state;
mod threads;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use guard::PooledConnection;

use crate::client::{Params, Row};
use crate::config::{Builder, Config};
use crate::connection::PgConnection;
use crate::error::Error;
use crate::event::{emit, Event, EventHook};
use crate::manager::Manager;
use crate::pg::PgManager;
use crate::stats::Stats;
use shared::Shared;

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// Closes the pool when the last [`Pool`] clone is dropped (guards do not count).
struct Handle<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> Drop for Handle<M> {
    fn drop(&mut self) {
        if self.shared.forked() {
            // In a forked child: the sessions (and maybe the lock) are the parent's. Leak the
            // pool rather than close them; the parent's copy is unaffected.
            std::mem::forget(Arc::clone(&self.shared));
            return;
        }
        self.shared.shut();
    }
}

/// A blocking, thread-safe connection pool. Cheap to clone: clones share one pool, and the
/// pool closes when the last clone is dropped (or explicitly with [`close`](Pool::close)).
///
/// ```no_run
/// use std::time::Duration;
///
/// # fn main() -> Result<(), pgpool::Error> {
/// let pool = pgpool::Pool::builder()
///     .max_size(8)
///     .min_idle(2)
///     .acquire_timeout(Duration::from_secs(5))
///     .statement_timeout(Some(Duration::from_secs(30)))
///     .build("postgres://app:secret@127.0.0.1:5432/app")?;
///
/// let mut conn = pool.get()?;
/// let n: i64 = conn.query_one("SELECT count(*) FROM pg_class", &[])?.get(0);
/// drop(conn); // back to the pool
///
/// println!("{n} relations; {:?}", pool.stats());
/// pool.close();
/// # Ok(()) }
/// ```
pub struct Pool<M: Manager = PgManager> {
    handle: Arc<Handle<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            handle: Arc::clone(&self.handle),
        }
    }
}

impl Pool<PgManager> {
    /// A [`Builder`] with every option at its default.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A pool with default options. See [`Builder::build`].
    pub fn connect(conninfo: &str) -> Result<Pool<PgManager>, Error> {
        Builder::new().build(conninfo)
    }

    /// Runs `f` in a transaction on a pooled connection (acquire, `BEGIN`, `f`, `COMMIT`,
    /// release); an error or panic in `f` rolls back. See [`PgConnection::transaction`].
    pub fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let mut conn = self.get()?;
        conn.transaction(f)
    }

    /// One-shot query: acquire, run through the statement cache, release.
    pub fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        self.get()?.query(sql, params)
    }

    /// One-shot command: acquire, execute, release; returns the rows affected.
    pub fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        self.get()?.execute(sql, params)
    }

    /// A health check (the seeds' `/health` endpoint): acquires a connection, asks the server
    /// for its database name and time, and reports the round trip's latency with the pool's
    /// counts. A failure is reported in [`Health::error`], not as an `Err`.
    pub fn health(&self) -> Health {
        let start = Instant::now();
        let result = self.get().and_then(|mut conn| {
            conn.query_one("SELECT current_database()::text, now()::text", &[])
        });
        let latency = start.elapsed();
        let stats = self.stats();
        let (ok, database, server_time, error) = match result {
            Ok(row) => (true, row.get(0), row.get(1), None),
            Err(e) => (false, String::new(), String::new(), Some(e)),
        };
        Health {
            ok,
            database,
            server_time,
            latency,
            open: stats.open,
            idle: stats.idle,
            waiting: stats.waiting,
            error,
        }
    }
}

/// The result of [`Pool::health`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Health {
    /// The round trip succeeded.
    pub ok: bool,
    /// `current_database()`, empty on failure.
    pub database: String,
    /// The server's `now()` as text, empty on failure.
    pub server_time: String,
    /// Time for acquire + round trip.
    pub latency: Duration,
    /// Open connections (pg-pool's `totalCount`).
    pub open: u32,
    /// Idle connections (`idleCount`).
    pub idle: u32,
    /// Waiting callers (`waitingCount`).
    pub waiting: u32,
    /// Why it failed.
    pub error: Option<Error>,
}

impl<M: Manager> Pool<M> {
    /// Starts a pool around `manager`: spawns the housekeeper thread and the first
    /// `min_idle` connects (the closer thread starts when first needed, if ever). Config must
    /// already be validated.
    pub(crate) fn start(manager: M, config: Config, hook: Option<EventHook>) -> Pool<M> {
        let id = NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed);
        let (shared, stop) = Shared::new(id, manager, config, hook);
        threads::start_maintenance(&shared, stop);
        let spawn = shared.state.lock().plan_connects();
        threads::spawn_connectors(&shared, spawn);
        Pool {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Arc<Shared<M>> {
        &self.handle.shared
    }

    /// The start time for an Acquire event, read only when somebody listens.
    fn event_start(&self) -> Option<Instant> {
        let listening =
            self.shared().hook.is_some() || log::log_enabled!(target: "pgpool", log::Level::Trace);
        listening.then(Instant::now)
    }

    fn guard(
        &self,
        conn: state::Conn<M::Connection>,
        start: Option<Instant>,
    ) -> PooledConnection<M> {
        if let Some(start) = start {
            emit(
                self.shared().hook.as_ref(),
                Event::Acquire {
                    conn_id: conn.id,
                    waited: start.elapsed(),
                },
            );
        }
        PooledConnection::new(Arc::clone(self.shared()), conn)
    }

    /// Acquires a connection, waiting up to the configured `acquire_timeout`.
    ///
    /// Errors: [`Timeout`](crate::ErrorKind::Timeout) (the message gives the wait, the pool's
    /// state and the last connect error), [`Closed`](crate::ErrorKind::Closed),
    /// [`Overloaded`](crate::ErrorKind::Overloaded) when `max_waiters` is reached, or
    /// [`Connect`](crate::ErrorKind::Connect) at once for a permanent connect error (bad
    /// password, unknown database).
    pub fn get(&self) -> Result<PooledConnection<M>, Error> {
        self.get_timeout(self.shared().config.acquire_timeout)
    }

    /// Like [`get`](Pool::get) with an explicit wait bound (zero behaves like
    /// [`try_get`](Pool::try_get) but returns a `Timeout` error instead of `None`).
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection<M>, Error> {
        let start = self.event_start();
        let conn = self.shared().acquire(Some(timeout))?;
        Ok(self.guard(conn, start))
    }

    /// Takes an idle connection without waiting for other callers; `Ok(None)` when none is
    /// idle (a connect is started if there is room, so a later call may succeed). The
    /// hand-out checks (probe, validation) still run.
    pub fn try_get(&self) -> Result<Option<PooledConnection<M>>, Error> {
        let start = self.event_start();
        match self.shared().acquire(Some(Duration::ZERO)) {
            Ok(conn) => Ok(Some(self.guard(conn, start))),
            Err(e) if e.is_timeout() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Blocks until `min_idle` connections are open, so a service can fail fast at start-up.
    /// Fails at once on a permanent connect error, or after `timeout` with the last connect
    /// error.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.shared().wait_ready(timeout)
    }

    /// This pool's id, unique in the process; background threads are named after it
    /// (`pgpool-h<id>` housekeeper (reaper and keepalive), `pgpool-c<id>` closer, started
    /// when first needed, `pgpool-n<id>` connectors).
    pub fn id(&self) -> u64 {
        self.shared().id
    }

    /// A consistent snapshot of the pool's gauges and counters.
    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    /// The pool's state in one line (`open 3/8, in use 2, idle 1, ...`), as timeout errors
    /// report it.
    pub fn state_line(&self) -> String {
        self.shared().describe()
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.shared().config
    }

    /// The connection manager.
    pub fn manager(&self) -> &M {
        &self.shared().manager
    }

    /// True once the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.shared().state.lock().is_closed()
    }

    /// Closes the pool: new acquires fail, every waiter wakes with a "pool closed" error, idle
    /// connections close, and the call waits up to `close_timeout` for connections in use to
    /// come back (they are closed as they do). Idempotent. Returns true when every connection
    /// was closed within the bound.
    pub fn close(&self) -> bool {
        self.close_timeout(self.shared().config.close_timeout)
    }

    /// [`close`](Pool::close) with an explicit bound.
    pub fn close_timeout(&self, timeout: Duration) -> bool {
        self.shared().shut();
        self.shared().wait_drained(Instant::now() + timeout)
    }
}

impl<M: Manager> std::fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("id", &self.shared().id)
            .field("state", &self.shared().describe())
            .finish()
    }
}
