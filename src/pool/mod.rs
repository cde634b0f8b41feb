//! [`Pool`]: the public face of the pool.
//!
//! | file | holds |
//! |---|---|
//! | `state.rs` | `State`, the one lock's contents, its invariants and every change to it |
//! | `shared.rs` | `Shared` and the paths through the state: acquire, release, close |
//! | `threads.rs` | the connector, housekeeper (reaper, checkouts, keepalive) and closer threads |
//! | `breaker.rs` | `Breaker`: connect outcomes, health state, backoff |
//! | `checkout.rs` | `Seats`: who holds which connection, since when, from where |
//! | `guard.rs` | `PooledConnection`, the RAII guard |
//! | `build.rs` | `Builder::build` and `Builder::build_with_manager` |

pub(crate) mod breaker;
mod build;
pub(crate) mod checkout;
mod guard;
pub(crate) mod shared;
pub(crate) mod state;
mod threads;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use breaker::HealthState;
pub use guard::PooledConnection;
pub(crate) use shared::forget_cancels;

use crate::client::{Params, Row};
use crate::config::{Builder, Config};
use crate::connection::PgConnection;
use crate::error::Error;
use crate::event::{emit, Event, EventHook};
use crate::health::Health;
use crate::manager::Manager;
use crate::pg::PgManager;
use crate::stats::Stats;
use checkout::Site;
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
    #[track_caller]
    pub fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let mut conn = self.get()?;
        conn.transaction(f)
    }

    /// Runs `f` in a transaction like [`transaction`](Pool::transaction), and runs it again
    /// (on a freshly acquired connection, after a jittered pause) when the attempt failed in
    /// a way that is safe to retry: a serialization failure (`40001`) or deadlock (`40P01`)
    /// that the server rolled back, a transient connect error, or a connection that broke
    /// before anything could have been committed. Never after an error whose outcome is
    /// unknown (a connection lost during `COMMIT`): that error is returned as it is, flagged
    /// by [`Error::outcome_unknown`]. Returns the last error after `retry.max_attempts`.
    ///
    /// `f` may run several times: keep side effects outside the database out of it.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), pgpool::Error> {
    /// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
    /// let id: i64 = pool.transaction_with_retry(pgpool::Retry::default(), |tx| {
    ///     tx.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[])?;
    ///     let next: i64 = tx.query_one("SELECT coalesce(max(id), 0) + 1 FROM jobs", &[])?.get(0);
    ///     tx.execute("INSERT INTO jobs (id) VALUES ($1)", &[&next])?;
    ///     Ok(next)
    /// })?;
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn transaction_with_retry<T, F>(&self, retry: crate::Retry, mut f: F) -> Result<T, Error>
    where
        F: FnMut(&mut PgConnection) -> Result<T, Error>,
    {
        let site = Site::Rust(std::panic::Location::caller());
        let timeout = self.config().acquire_timeout;
        let mut attempt = 1;
        loop {
            let result = self
                .get_at(timeout, site.clone())
                .and_then(|mut conn| conn.transaction(&mut f));
            match result {
                Err(e) if attempt < retry.max_attempts.max(1) && crate::Retry::is_retryable(&e) => {
                    log::debug!(target: "pgpool", "transaction attempt {attempt} failed, retrying: {e}");
                    std::thread::sleep(retry.pause(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One-shot query: acquire, run through the statement cache, release.
    #[track_caller]
    pub fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        self.get()?.query(sql, params)
    }

    /// One-shot command: acquire, execute, release; returns the rows affected.
    #[track_caller]
    pub fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        self.get()?.execute(sql, params)
    }

    /// A health check (the seeds' `/health` endpoint): acquires a connection, asks the server
    /// for its database name, version and time, and reports the round trip's latency with
    /// the pool's counts and its breaker state. The whole check is bounded by
    /// [`health_timeout`](Config::health_timeout) (2 s by default), whatever the acquire
    /// timeout. A failure is reported in [`Health::error`], not as an `Err`; while the
    /// breaker is open it fails at once with the last connect error.
    #[track_caller]
    pub fn health(&self) -> Health {
        let timeout = self.config().health_timeout;
        let start = Instant::now();
        let result = self.get_timeout(timeout).and_then(|mut conn| {
            let left = timeout.saturating_sub(start.elapsed());
            conn.set_query_timeout(Some(left.max(Duration::from_millis(1))));
            conn.query_one(
                concat!(
                    "SELECT current_database()::text, \
                     to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                     current_setting('server_version'), pg_catalog.pg_is_in_recovery(), ",
                    crate::client::lag::replica_lag_seconds!()
                ),
                &[],
            )
        });
        let latency = start.elapsed();
        Health::assess(
            self.name(),
            self.config(),
            &self.stats(),
            result,
            latency,
            self.last_connect_error(),
        )
    }
}

impl<M: Manager> Pool<M> {
    /// Starts a pool around `manager`: spawns the housekeeper thread and the first
    /// `min_idle` connects (the closer thread starts when first needed, if ever). Config must
    /// already be validated.
    pub(crate) fn start(manager: M, config: Config, hook: Option<EventHook>) -> Pool<M> {
        let id = NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed);
        let (shared, stop) = Shared::new(id, manager, config, hook);
        threads::start_maintenance(&shared, stop);
        let spawn = shared.lock_state().plan_connects();
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
                    backend_pid: conn.backend_pid,
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
    #[track_caller]
    pub fn get(&self) -> Result<PooledConnection<M>, Error> {
        self.get_timeout(self.shared().config.acquire_timeout)
    }

    /// Like [`get`](Pool::get) with an explicit wait bound (zero behaves like
    /// [`try_get`](Pool::try_get) but returns a `Timeout` error instead of `None`).
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledConnection<M>, Error> {
        let site = Site::Rust(std::panic::Location::caller());
        self.get_at(timeout, site)
    }

    /// [`get_timeout`](Pool::get_timeout) recording `site` as where the connection was
    /// acquired (what leak reports and timeout messages name).
    pub(crate) fn get_at(
        &self,
        timeout: Duration,
        site: Site,
    ) -> Result<PooledConnection<M>, Error> {
        let start = self.event_start();
        let conn = self.shared().acquire(Some(timeout), site)?;
        Ok(self.guard(conn, start))
    }

    /// [`get_timeout`](Pool::get_timeout) with a label for where the connection is acquired
    /// (a request name, `file.c:42`...), which leak reports, reclaim events and timeout
    /// messages show instead of the Rust call site. Costs one allocation per call.
    pub fn get_labelled(
        &self,
        timeout: Duration,
        label: &str,
    ) -> Result<PooledConnection<M>, Error> {
        self.get_at(timeout, Site::Label(label.into()))
    }

    /// Takes an idle connection without waiting for other callers; `Ok(None)` when none is
    /// idle (a connect is started if there is room, so a later call may succeed). The
    /// hand-out checks (probe, validation) still run.
    #[track_caller]
    pub fn try_get(&self) -> Result<Option<PooledConnection<M>>, Error> {
        self.try_get_at(Site::Rust(std::panic::Location::caller()))
    }

    /// [`try_get`](Pool::try_get) recording `site`.
    pub(crate) fn try_get_at(&self, site: Site) -> Result<Option<PooledConnection<M>>, Error> {
        let start = self.event_start();
        match self.shared().acquire(Some(Duration::ZERO), site) {
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

    /// The most recent connect error since the last successful connect (`None` after a
    /// success): what the breaker and timed-out acquires report.
    pub fn last_connect_error(&self) -> Option<Error> {
        self.shared().lock_state().last_connect_error().cloned()
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

    /// The Prometheus text exposition of this pool's [`stats`](Self::stats), labelled
    /// `pool="<name>"`: see [`prometheus`](crate::prometheus) for the families.
    pub fn prometheus(&self) -> String {
        crate::prometheus::render(&[(self.name(), &self.stats())])
    }

    /// The pool's name ([`Config::name`], else `"default"`).
    ///
    /// ```
    /// # fn main() -> Result<(), pgpool::Error> {
    /// let pool = pgpool::Pool::builder()
    ///     .name("reports")
    ///     .build("host=127.0.0.1 port=1 user=nobody")?;
    /// assert_eq!(pool.name(), "reports");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        self.config().name.as_deref().unwrap_or("default")
    }

    /// The connection manager.
    pub fn manager(&self) -> &M {
        &self.shared().manager
    }

    /// True once the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.shared().lock_state().is_closed()
    }

    /// Closes the pool within `close_timeout`; see [`close_timeout`](Pool::close_timeout).
    pub fn close(&self) -> bool {
        self.close_timeout(self.shared().config.close_timeout)
    }

    /// Closes the pool within `timeout`, even with the server unreachable:
    ///
    /// 1. new acquires fail, and every queued caller wakes at once with a "pool closed" error;
    /// 2. idle connections close;
    /// 3. the call waits for connections in use to come back (each closes as it does), for
    ///    `timeout` less a tenth of it (at most 250 ms) kept for step 4;
    /// 4. then whatever is still held is reclaimed: its socket is shut down at once (the
    ///    holder's call fails with a "reclaimed" error) and its statement cancelled on the
    ///    server from a thread of its own; the call waits for those cancel requests until
    ///    `timeout` is over, so a program that exits right after leaves nothing running on
    ///    a reachable server (an unreachable one's cancels go on in the background).
    ///
    /// Idempotent and safe to call from several threads. Returns true when every connection
    /// came back and closed (and every connect in flight ended) within `timeout`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), pgpool::Error> {
    /// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
    /// let clean = pool.close_timeout(std::time::Duration::from_secs(5));
    /// if !clean {
    ///     eprintln!("some connections were still in use and were reclaimed");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn close_timeout(&self, timeout: Duration) -> bool {
        self.shared().close_by(Instant::now() + timeout)
    }

    /// Closes the pool without waiting and without reclaiming anything: connections in use
    /// close as they come back (what dropping the last clone does). True when nothing was in
    /// use, being opened or being closed.
    pub fn close_without_waiting(&self) -> bool {
        self.shared().shut();
        self.shared().wait_drained(Instant::now())
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
