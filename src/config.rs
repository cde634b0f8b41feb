//! Pool configuration: every knob, its default and its valid range, checked in one place.
//!
//! A [`Config`] is only ever built through [`Builder`], whose `build*` methods call
//! [`Config::validate`]: an invalid combination is an [`Error`] of kind
//! [`ErrorKind::Config`](crate::ErrorKind::Config) naming the option, never a panic.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::event::{Event, EventHook};

/// The largest `max_size` accepted. PostgreSQL itself tops out far below this.
pub const MAX_POOL_SIZE: u32 = 10_000;

/// Validated pool settings. Read them back with [`Pool::config`](crate::Pool::config); make them with [`Builder`].
///
/// Durations that are `Option`s mean "never" when `None`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Most connections open at once: in use + idle + being opened + being closed.
    /// Defaults to 10; range 1..=10 000.
    pub max_size: u32,
    /// Idle connections the reaper keeps ready (opened at start, refilled after closes).
    /// Defaults to 0; must not exceed `max_idle` (and so `max_size`).
    pub min_idle: u32,
    /// Idle connections kept at most; a connection released while this many are idle is
    /// closed (Go's `SetMaxIdleConns`). Defaults to `max_size`; range `min_idle..=max_size`.
    pub max_idle: u32,
    /// A connection is closed once this old (with up to 2.5% random jitter subtracted, so a
    /// pool's connections do not all expire together); in-use connections close on release.
    /// Defaults to 30 minutes; `None` means never. Must be at least 1 ms.
    pub max_lifetime: Option<Duration>,
    /// An idle connection is closed after this long without use, but never below `min_idle`.
    /// Defaults to 10 minutes; `None` means never. Must be at least 1 ms.
    pub idle_timeout: Option<Duration>,
    /// How long [`Pool::get`](crate::Pool::get) waits for a connection. Defaults to 30 s; must be > 0.
    pub acquire_timeout: Duration,
    /// One deadline for a whole connect: every host name lookup (even when the resolver does
    /// not answer), every host and address tried, TCP connect, TLS handshake, startup,
    /// authentication and the first ReadyForQuery. Each attempt (one address of one host)
    /// gets the connection string's `connect_timeout` if it has one (libpq's per-attempt
    /// meaning), else a fair share of what is left (at least 500 ms), so a host that
    /// swallows packets leaves time for the hosts after it. Defaults to 10 s; must be > 0.
    pub connect_timeout: Duration,
    /// Retire a connection after this many checkouts (pg-pool's `maxUses`).
    /// Defaults to `None` (unlimited); `Some(0)` is rejected.
    pub max_uses: Option<u64>,
    /// Check a connection with a round trip before handing it out (SQLAlchemy's
    /// `pool_pre_ping`), unless it was used within `validation_skip_window`. Defaults to true.
    /// A zero-cost socket probe runs before every hand-out whatever this says.
    pub validate_on_acquire: bool,
    /// Connections used more recently than this are handed out without the validation round
    /// trip (HikariCP's 500 ms bypass window). Defaults to 500 ms; zero validates every time.
    pub validation_skip_window: Duration,
    /// Bound on one validation or keepalive round trip. Defaults to 5 s; must be > 0.
    pub validation_timeout: Duration,
    /// How often the housekeeper thread checks idle connections with a round trip and replaces
    /// dead ones. Defaults to 60 s; `None` disables the keepalives. Must be at least 1 ms.
    pub keepalive_interval: Option<Duration>,
    /// How often the housekeeper thread enforces `idle_timeout`, `max_lifetime` and `min_idle`.
    /// Defaults to 1 s; must be at least 1 ms.
    pub reaper_interval: Duration,
    /// When this many callers are already waiting, [`Pool::get`](crate::Pool::get) fails at once with
    /// [`ErrorKind::Overloaded`](crate::ErrorKind::Overloaded). Defaults to `None` (unbounded).
    pub max_waiters: Option<usize>,
    /// How long [`Pool::close`](crate::Pool::close) waits for in-use connections to come back. Defaults to 5 s.
    pub close_timeout: Duration,
    /// `statement_timeout` set on every new connection. Defaults to `None` (server default).
    pub statement_timeout: Option<Duration>,
    /// `application_name` set on every new connection (visible in `pg_stat_activity`).
    /// Defaults to `None`: the connection string's value, else `"pgpool"`.
    pub application_name: Option<String>,
    /// Prepared statements cached per connection (least recently used evicted).
    /// Defaults to 256; 0 switches the cache off.
    pub statement_cache_capacity: usize,
    /// `TCP_USER_TIMEOUT` on every socket: unacknowledged data fails the connection after this
    /// long instead of after the kernel's ~15 minutes. Defaults to 10 s; `None` leaves the
    /// connection string's (or the kernel's) setting.
    pub tcp_user_timeout: Option<Duration>,
    /// TCP keepalive idle time on every socket. Defaults to 5 s (with 2 s interval, 3 probes).
    pub tcp_keepalive_idle: Duration,
    /// Client-side bound on every statement of a checked-out connection: when a call runs
    /// longer, the statement is cancelled on the server and the call returns a timeout error
    /// (SQLSTATE `57014`); the session is kept if it answered the cancel within the timeout
    /// itself (counted as 1 to 5 s), else it is closed: a call returns at most that window
    /// past its timeout, even when the server or the network stopped answering.
    /// Each checkout starts with this value; [`PgConnection::set_query_timeout`]
    /// (crate::PgConnection::set_query_timeout) changes it for one checkout. Defaults to
    /// `None` (unbounded); must be at least 1 ms.
    pub query_timeout: Option<Duration>,
    /// Besides rolling back an open transaction, undo session state on every release in one
    /// extra round trip: `CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL;
    /// UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES` (prepared
    /// statements, which the pool caches, are kept). Costs one round trip per release (about
    /// as much as a small query). For applications that `SET` session variables, `LISTEN`, or
    /// take advisory locks. Defaults to false.
    pub full_reset: bool,
    /// For a transaction-pooling proxy such as PgBouncer (`pool_mode = transaction`): no
    /// named prepared statements (every execution parses the unnamed statement again, in the
    /// same message batch) and no session state assumed between transactions. Costs one extra
    /// round trip per statement (the describe). Defaults to false.
    pub transaction_pooling: bool,
    /// Connection attempts running at once, shared by warm-up, refill and growth on demand
    /// (userver's `connecting_limit`): connects run on at most this many short-lived threads,
    /// so a crowd of callers cannot start a login storm against a recovering server.
    /// Defaults to 2; at least 1 (a value above `max_size` acts as `max_size`).
    pub max_concurrent_connects: u32,
    /// The circuit breaker: after this many consecutive failed connects with no connection
    /// open (or at once for a permanent error such as a bad password), the pool reports itself
    /// down. One background probe keeps trying, with jittered exponential backoff up to
    /// `reconnect_backoff_max`; its first success closes the breaker. Meanwhile an acquire that
    /// needs a new connection waits for the outcome of one probe at most (the running one, or
    /// the next, which callers pull forward to 250 ms after the last attempt) if that fits in
    /// its deadline, and otherwise fails at once with the last connect error: never its whole
    /// timeout. A zero-timeout acquire fails at once. Defaults to 3; `None` switches the
    /// breaker off; `Some(0)` is rejected.
    pub breaker_threshold: Option<u32>,
    /// The longest pause between connect attempts after failures (they start at 10 ms, and
    /// at 250 ms once the breaker is open, doubling each time, ±20% jitter). Defaults to 5 s;
    /// at least 10 ms.
    pub reconnect_backoff_max: Duration,
    /// A connection held longer than this is logged as a suspected leak (once per checkout)
    /// with where it was acquired, and reported as a [`LeakSuspected`](crate::Event::LeakSuspected)
    /// event (HikariCP's `leakDetectionThreshold`). Checked every `reaper_interval`.
    /// Defaults to `None` (off); at least 1 ms.
    pub leak_threshold: Option<Duration>,
    /// A connection held longer than this is taken back: its statement is cancelled on the
    /// server, its socket shut down (the holder's next call fails with a "reclaimed" error),
    /// and its slot freed for other callers. Checked every `reaper_interval`. Defaults to
    /// `None` (never); at least 1 ms.
    pub max_checkout: Option<Duration>,
    /// Bound on [`Pool::health`](crate::Pool::health): acquire and round trip. Defaults to 2 s;
    /// must be > 0.
    pub health_timeout: Duration,
    /// The pool's name: the `pool` label of its Prometheus metrics, the prefix of its log
    /// lines, its key in a [`Registry`](crate::Registry). Defaults to `None` (`"default"`);
    /// 1 to 63 bytes of letters, digits, `_`, `-` and `.`.
    pub name: Option<String>,
    /// Keep latency histograms (acquire wait, connect, query, hold time) in
    /// [`Stats`](crate::Stats). Defaults to `true`: the cost is a few atomic adds per
    /// acquire and per query (see `docs/PERFORMANCE.md`).
    pub histograms: bool,
    /// Log one line with the pool's gauges, counters and p99s at info level (target
    /// `pgpool::stats`) this often. Defaults to `None` (never); at least 1 ms.
    pub stats_log_interval: Option<Duration>,
    /// Queries that take longer than this are logged at warn level (target `pgpool::query`)
    /// with their text, duration and rows; parameter values are never logged. Every query is
    /// logged so at debug level. Defaults to `None` (no warning); at least 1 ms.
    pub slow_query_threshold: Option<Duration>,
    /// [`Pool::health`](crate::Pool::health) reports the pool degraded while more than this
    /// many callers wait for a connection. Defaults to 10; `None` never.
    pub degraded_waiters: Option<usize>,
    /// A session on a hot standby whose replay is further behind its primary than this is
    /// not used: the connect refuses such a standby (the next host is tried, and
    /// `prefer-standby` falls back to the primary), and an open session found lagging is
    /// retired with [`CloseReason::ReplicaLag`](crate::CloseReason::ReplicaLag). A session
    /// on a standby is measured at connect, then before a hand-out once its last measure is
    /// older than half of this (a validation round trip), and by the keepalive. The lag is
    /// the standby's own measure: zero while it has replayed all it received, else the time
    /// since the commit it replayed last. Sessions on a primary are never measured.
    /// Defaults to `None` (any lag); at least 1 ms.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let reads = pgpool::Pool::builder().max_replica_lag(Some(Duration::from_secs(5)));
    /// assert_eq!(reads.config().max_replica_lag, Some(Duration::from_secs(5)));
    /// ```
    pub max_replica_lag: Option<Duration>,
    /// SQL run on every new session before the pool uses it: HikariCP's
    /// `connectionInitSql`, pgx's `AfterConnect`, psycopg_pool's `configure`. Several
    /// statements separated by `;` run in one round trip (the simple protocol, one implicit
    /// transaction unless they manage their own), bounded by what is left of
    /// `connect_timeout` (a script still running then is cancelled on the server). A
    /// failure fails the connect; an error of SQLSTATE class 42 (syntax,
    /// privilege, undefined object) is permanent, as a wrong password is, so
    /// [`Pool::wait_ready`](crate::Pool::wait_ready) and acquires report it at once. With
    /// `full_reset`, it runs again after each reset, in the same round trip, so every holder
    /// gets the session as it set it up. Settings that only need to be session defaults can
    /// also go in the connection string's `options` (`-c search_path=app`), which costs no
    /// round trip. Behind a transaction-pooling proxy (`transaction_pooling`) what it sets
    /// holds for that one server connection only; `build` logs a warning. Defaults to
    /// `None`; must not contain NUL.
    ///
    /// ```
    /// let builder = pgpool::Pool::builder().init_sql("SET search_path TO app, public");
    /// assert_eq!(builder.config().init_sql.as_deref(), Some("SET search_path TO app, public"));
    /// ```
    pub init_sql: Option<String>,
    /// How long a `target_session_attrs=prefer-standby` session that fell back to a primary
    /// (no standby accepted it at connect) is kept: its lifetime, enforced as `max_lifetime`
    /// is (never handed out past it, closed at release or by the reaper while idle, with
    /// [`CloseReason::Lifetime`](crate::CloseReason::Lifetime)), so that its replacement
    /// tries the standbys first again. So reads return to a standby
    /// that is back (restarted, caught up under `max_replica_lag`) within about this long,
    /// instead of within `max_lifetime`. Each such close costs a connect, and a silent
    /// standby host costs each of those connects its share of `connect_timeout`. Defaults
    /// to `None` (only `max_lifetime`); at least 1 ms.
    pub fallback_lifetime: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_size: 10,
            min_idle: 0,
            max_idle: 10,
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_uses: None,
            validate_on_acquire: true,
            validation_skip_window: Duration::from_millis(500),
            validation_timeout: Duration::from_secs(5),
            keepalive_interval: Some(Duration::from_secs(60)),
            reaper_interval: Duration::from_secs(1),
            max_waiters: None,
            close_timeout: Duration::from_secs(5),
            statement_timeout: None,
            application_name: None,
            statement_cache_capacity: 256,
            tcp_user_timeout: Some(Duration::from_secs(10)),
            tcp_keepalive_idle: Duration::from_secs(5),
            query_timeout: None,
            full_reset: false,
            transaction_pooling: false,
            max_concurrent_connects: 2,
            breaker_threshold: Some(3),
            reconnect_backoff_max: Duration::from_secs(5),
            leak_threshold: None,
            max_checkout: None,
            health_timeout: Duration::from_secs(2),
            name: None,
            histograms: true,
            stats_log_interval: None,
            slow_query_threshold: None,
            degraded_waiters: Some(10),
            max_replica_lag: None,
            init_sql: None,
            fallback_lifetime: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_size", &self.max_size)
            .field("min_idle", &self.min_idle)
            .field("max_idle", &self.max_idle)
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_uses", &self.max_uses)
            .field("validate_on_acquire", &self.validate_on_acquire)
            .field("validation_skip_window", &self.validation_skip_window)
            .field("validation_timeout", &self.validation_timeout)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("reaper_interval", &self.reaper_interval)
            .field("max_waiters", &self.max_waiters)
            .field("close_timeout", &self.close_timeout)
            .field("max_concurrent_connects", &self.max_concurrent_connects)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("reconnect_backoff_max", &self.reconnect_backoff_max)
            .field("leak_threshold", &self.leak_threshold)
            .field("max_checkout", &self.max_checkout)
            .field("health_timeout", &self.health_timeout)
            .field("name", &self.name)
            .field("histograms", &self.histograms)
            .field("stats_log_interval", &self.stats_log_interval)
            .field("slow_query_threshold", &self.slow_query_threshold)
            .field("degraded_waiters", &self.degraded_waiters)
            .field("max_replica_lag", &self.max_replica_lag)
            .field("init_sql", &self.init_sql)
            .field("fallback_lifetime", &self.fallback_lifetime)
            .field("statement_timeout", &self.statement_timeout)
            .field("application_name", &self.application_name)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .field("tcp_user_timeout", &self.tcp_user_timeout)
            .field("tcp_keepalive_idle", &self.tcp_keepalive_idle)
            .field("query_timeout", &self.query_timeout)
            .field("full_reset", &self.full_reset)
            .field("transaction_pooling", &self.transaction_pooling)
            .finish()
    }
}

const ONE_MS: Duration = Duration::from_millis(1);

fn at_least_1ms(option: &'static str, value: Option<Duration>) -> Result<(), Error> {
    match value {
        Some(d) if d < ONE_MS => Err(Error::config(
            option,
            format!("{d:?} is below 1 ms (use None for \"never\")"),
        )),
        _ => Ok(()),
    }
}

fn positive(option: &'static str, value: Duration) -> Result<(), Error> {
    if value.is_zero() {
        Err(Error::config(option, "must be greater than zero"))
    } else {
        Ok(())
    }
}

impl Config {
    /// Checks every option and every combination; the first problem found is returned as an
    /// error naming the option.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_size == 0 {
            return Err(Error::config("max_size", "must be at least 1"));
        }
        if self.max_size > MAX_POOL_SIZE {
            return Err(Error::config(
                "max_size",
                format!("{} exceeds the limit of {MAX_POOL_SIZE}", self.max_size),
            ));
        }
        if self.max_idle > self.max_size {
            return Err(Error::config(
                "max_idle",
                format!("{} exceeds max_size ({})", self.max_idle, self.max_size),
            ));
        }
        if self.min_idle > self.max_size {
            return Err(Error::config(
                "min_idle",
                format!("{} exceeds max_size ({})", self.min_idle, self.max_size),
            ));
        }
        if self.min_idle > self.max_idle {
            return Err(Error::config(
                "min_idle",
                format!(
                    "{} exceeds max_idle ({}): the pool would close what it must keep",
                    self.min_idle, self.max_idle
                ),
            ));
        }
        at_least_1ms("max_lifetime", self.max_lifetime)?;
        at_least_1ms("idle_timeout", self.idle_timeout)?;
        at_least_1ms("keepalive_interval", self.keepalive_interval)?;
        at_least_1ms("query_timeout", self.query_timeout)?;
        at_least_1ms("leak_threshold", self.leak_threshold)?;
        at_least_1ms("max_checkout", self.max_checkout)?;
        positive("health_timeout", self.health_timeout)?;
        at_least_1ms("stats_log_interval", self.stats_log_interval)?;
        at_least_1ms("slow_query_threshold", self.slow_query_threshold)?;
        at_least_1ms("max_replica_lag", self.max_replica_lag)?;
        at_least_1ms("fallback_lifetime", self.fallback_lifetime)?;
        if let Some(name) = &self.name {
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
            if name.is_empty() || name.len() > 63 || !name.chars().all(valid) {
                return Err(Error::config(
                    "name",
                    "must be 1 to 63 letters, digits, '_', '-' or '.'",
                ));
            }
        }
        if self.max_concurrent_connects == 0 {
            return Err(Error::config(
                "max_concurrent_connects",
                "must be at least 1",
            ));
        }
        if self.breaker_threshold == Some(0) {
            return Err(Error::config(
                "breaker_threshold",
                "must be at least 1 (use None to switch the breaker off)",
            ));
        }
        if self.reconnect_backoff_max < Duration::from_millis(10) {
            return Err(Error::config(
                "reconnect_backoff_max",
                "must be at least 10 ms",
            ));
        }
        // What the server and the kernel accept: a value beyond these passes here but makes
        // every connect fail.
        const INT_MAX_MS: Duration = Duration::from_millis(i32::MAX as u64);
        if let Some(t) = self.statement_timeout {
            if t > INT_MAX_MS || t < ONE_MS {
                return Err(Error::config(
                    "statement_timeout",
                    format!(
                        "{} ms is outside 1..=2147483647 ms (PostgreSQL's range)",
                        t.as_millis()
                    ),
                ));
            }
        }
        if let Some(t) = self.tcp_user_timeout {
            if t > INT_MAX_MS || t < ONE_MS {
                return Err(Error::config(
                    "tcp_user_timeout",
                    format!("{} ms is outside 1..=2147483647 ms", t.as_millis()),
                ));
            }
        }
        if self.tcp_keepalive_idle < Duration::from_secs(1)
            || self.tcp_keepalive_idle > Duration::from_secs(32_767)
        {
            return Err(Error::config(
                "tcp_keepalive_idle",
                format!(
                    "{} ms is outside 1000..=32767000 ms (whole seconds, as the kernel takes it)",
                    self.tcp_keepalive_idle.as_millis()
                ),
            ));
        }
        positive("acquire_timeout", self.acquire_timeout)?;
        positive("connect_timeout", self.connect_timeout)?;
        positive("validation_timeout", self.validation_timeout)?;
        positive("tcp_keepalive_idle", self.tcp_keepalive_idle)?;
        at_least_1ms("reaper_interval", Some(self.reaper_interval))?;
        if self.max_uses == Some(0) {
            return Err(Error::config(
                "max_uses",
                "must be at least 1 (use None for unlimited)",
            ));
        }
        if self.max_waiters == Some(0) {
            return Err(Error::config(
                "max_waiters",
                "must be at least 1 (use None for unbounded)",
            ));
        }
        if let Some(t) = self.statement_timeout {
            if t < ONE_MS {
                return Err(Error::config(
                    "statement_timeout",
                    "must be at least 1 ms (PostgreSQL treats 0 as no timeout: use None)",
                ));
            }
        }
        if let Some(t) = self.tcp_user_timeout {
            if t < ONE_MS {
                return Err(Error::config(
                    "tcp_user_timeout",
                    "must be at least 1 ms (use None to leave the system default)",
                ));
            }
        }
        if self.init_sql.as_ref().is_some_and(|sql| sql.contains('\0')) {
            return Err(Error::config("init_sql", "must not contain NUL"));
        }
        if let Some(name) = &self.application_name {
            if name.len() >= 64 || name.contains('\0') {
                return Err(Error::config(
                    "application_name",
                    "must be shorter than 64 bytes and contain no NUL",
                ));
            }
        }
        Ok(())
    }
}

/// Builds a [`Pool`](crate::Pool): set options, then [`build`](Builder::build) with a connection string.
///
/// Setters take any value; nothing is checked until `build`, which reports the first invalid
/// option by name.
///
/// An option set here outranks the same option in the connection string (`pool_max_size=…`)
/// and in the environment (`PGPOOL_MAX_SIZE`): see [`options`](crate::options) for those
/// layers and [`Builder::env`] to switch the environment off.
///
/// ```
/// use std::time::Duration;
/// let err = pgpool::Pool::builder()
///     .max_size(4)
///     .min_idle(8)
///     .build("host=127.0.0.1 user=nobody")
///     .unwrap_err();
/// assert_eq!(err.option(), Some("min_idle"));
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    pub(crate) config: Config,
    max_idle_set: bool,
    pub(crate) hook: Option<EventHook>,
    /// Makes the hook from the pool's final name instead (see `event::HookFactory`).
    pub(crate) hook_for: Option<crate::event::HookFactory>,
    /// The options a setter was called for: they outrank the connection string and the
    /// environment.
    pub(crate) explicit: BTreeSet<&'static str>,
    /// [`Builder::env`]`(false)`: the `PGPOOL_*` variables are not read.
    pub(crate) env_off: bool,
    /// [`Builder::env_aliases`]`(true)`: other tools' variable names are read too.
    pub(crate) env_aliases: bool,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Builder {
            self.config.$name = value;
            self.explicit.insert(stringify!($name));
            self
        }
    };
}

impl Builder {
    /// A builder with every option at its default.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// See [`Config::max_size`].
    pub fn max_size(mut self, value: u32) -> Builder {
        self.config.max_size = value;
        if !self.max_idle_set {
            self.config.max_idle = value;
        }
        self.explicit.insert("max_size");
        self
    }

    /// See [`Config::max_idle`].
    pub fn max_idle(mut self, value: u32) -> Builder {
        self.config.max_idle = value;
        self.max_idle_set = true;
        self.explicit.insert("max_idle");
        self
    }

    setter!(
        /// See [`Config::min_idle`].
        min_idle: u32
    );
    setter!(
        /// See [`Config::max_lifetime`].
        max_lifetime: Option<Duration>
    );
    setter!(
        /// See [`Config::idle_timeout`].
        idle_timeout: Option<Duration>
    );
    setter!(
        /// See [`Config::acquire_timeout`].
        acquire_timeout: Duration
    );
    setter!(
        /// See [`Config::connect_timeout`].
        connect_timeout: Duration
    );
    setter!(
        /// See [`Config::max_uses`].
        max_uses: Option<u64>
    );
    setter!(
        /// See [`Config::validate_on_acquire`].
        validate_on_acquire: bool
    );
    setter!(
        /// See [`Config::validation_skip_window`].
        validation_skip_window: Duration
    );
    setter!(
        /// See [`Config::validation_timeout`].
        validation_timeout: Duration
    );
    setter!(
        /// See [`Config::keepalive_interval`].
        keepalive_interval: Option<Duration>
    );
    setter!(
        /// See [`Config::reaper_interval`].
        reaper_interval: Duration
    );
    setter!(
        /// See [`Config::max_waiters`].
        max_waiters: Option<usize>
    );
    setter!(
        /// See [`Config::close_timeout`].
        close_timeout: Duration
    );
    setter!(
        /// See [`Config::statement_timeout`].
        statement_timeout: Option<Duration>
    );
    setter!(
        /// See [`Config::statement_cache_capacity`].
        statement_cache_capacity: usize
    );
    setter!(
        /// See [`Config::tcp_user_timeout`].
        tcp_user_timeout: Option<Duration>
    );
    setter!(
        /// See [`Config::tcp_keepalive_idle`].
        tcp_keepalive_idle: Duration
    );
    setter!(
        /// See [`Config::query_timeout`].
        query_timeout: Option<Duration>
    );
    setter!(
        /// See [`Config::full_reset`].
        full_reset: bool
    );
    setter!(
        /// See [`Config::transaction_pooling`].
        transaction_pooling: bool
    );
    setter!(
        /// See [`Config::max_concurrent_connects`].
        max_concurrent_connects: u32
    );
    setter!(
        /// See [`Config::breaker_threshold`].
        breaker_threshold: Option<u32>
    );
    setter!(
        /// See [`Config::reconnect_backoff_max`].
        reconnect_backoff_max: Duration
    );
    setter!(
        /// See [`Config::leak_threshold`].
        leak_threshold: Option<Duration>
    );
    setter!(
        /// See [`Config::max_checkout`].
        max_checkout: Option<Duration>
    );
    setter!(
        /// See [`Config::health_timeout`].
        health_timeout: Duration
    );
    setter!(
        /// See [`Config::histograms`].
        histograms: bool
    );
    setter!(
        /// See [`Config::stats_log_interval`].
        stats_log_interval: Option<Duration>
    );
    setter!(
        /// See [`Config::slow_query_threshold`].
        slow_query_threshold: Option<Duration>
    );
    setter!(
        /// See [`Config::degraded_waiters`].
        degraded_waiters: Option<usize>
    );
    setter!(
        /// See [`Config::max_replica_lag`].
        max_replica_lag: Option<Duration>
    );
    setter!(
        /// See [`Config::fallback_lifetime`].
        fallback_lifetime: Option<Duration>
    );

    /// See [`Config::name`].
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.config.name = Some(name.into());
        self.explicit.insert("name");
        self
    }

    /// See [`Config::application_name`].
    pub fn application_name(mut self, value: impl Into<String>) -> Builder {
        self.config.application_name = Some(value.into());
        self.explicit.insert("application_name");
        self
    }

    /// See [`Config::init_sql`]. An empty text is none.
    pub fn init_sql(mut self, sql: impl Into<String>) -> Builder {
        let sql = sql.into();
        self.config.init_sql = (!sql.trim().is_empty()).then_some(sql);
        self.explicit.insert("init_sql");
        self
    }

    /// Calls `hook` for every pool [`Event`] (connect, acquire, release, remove, error, leak
    /// suspected, reclaimed, notice; see `docs/operations/events.md`).
    ///
    /// The hook never runs under the pool lock, but it does run on the thread where the event
    /// happened (a caller's thread for acquire/release): keep it fast and non-blocking.
    pub fn event_hook(mut self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Builder {
        self.hook = Some(Arc::new(hook));
        self.hook_for = None;
        self
    }

    /// The configuration as the setters left it (not yet validated, and without the
    /// connection string's and the environment's options: [`Builder::config_for`] has those).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Validates the options and hands them over (to `build*`, in `src/pool/build.rs`).
    pub(crate) fn into_validated(self) -> Result<(Config, Option<EventHook>), Error> {
        self.config.validate()?;
        let hook = match &self.hook_for {
            Some(make) => Some(make(self.config.name.as_deref().unwrap_or("default"))),
            None => self.hook,
        };
        Ok((self.config, hook))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(builder: Builder) -> Error {
        let mut config = builder.config;
        if !builder.max_idle_set {
            config.max_idle = config.max_size;
        }
        config.validate().unwrap_err()
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn every_invalid_option_is_named() {
        let ms = Duration::from_micros(1);
        let cases: Vec<(Builder, &str)> = vec![
            (Builder::new().max_size(0), "max_size"),
            (Builder::new().max_size(MAX_POOL_SIZE + 1), "max_size"),
            (Builder::new().max_size(4).min_idle(5), "min_idle"),
            (Builder::new().max_size(4).max_idle(5), "max_idle"),
            (
                Builder::new().max_size(8).max_idle(2).min_idle(3),
                "min_idle",
            ),
            (Builder::new().max_lifetime(Some(ms)), "max_lifetime"),
            (
                Builder::new().idle_timeout(Some(Duration::ZERO)),
                "idle_timeout",
            ),
            (
                Builder::new().keepalive_interval(Some(ms)),
                "keepalive_interval",
            ),
            (
                Builder::new().acquire_timeout(Duration::ZERO),
                "acquire_timeout",
            ),
            (
                Builder::new().connect_timeout(Duration::ZERO),
                "connect_timeout",
            ),
            (
                Builder::new().validation_timeout(Duration::ZERO),
                "validation_timeout",
            ),
            (Builder::new().reaper_interval(ms), "reaper_interval"),
            (Builder::new().max_uses(Some(0)), "max_uses"),
            (Builder::new().max_waiters(Some(0)), "max_waiters"),
            (
                Builder::new().statement_timeout(Some(ms)),
                "statement_timeout",
            ),
            (
                Builder::new().tcp_user_timeout(Some(ms)),
                "tcp_user_timeout",
            ),
            (
                Builder::new().tcp_keepalive_idle(Duration::ZERO),
                "tcp_keepalive_idle",
            ),
            (
                Builder::new().application_name("x".repeat(64)),
                "application_name",
            ),
            (Builder::new().application_name("a\0b"), "application_name"),
            (
                Builder::new().statement_timeout(Some(Duration::from_millis(1 << 31))),
                "statement_timeout",
            ),
            (
                Builder::new().tcp_user_timeout(Some(Duration::from_millis(1 << 31))),
                "tcp_user_timeout",
            ),
            (
                Builder::new().tcp_keepalive_idle(Duration::from_millis(999)),
                "tcp_keepalive_idle",
            ),
            (
                Builder::new().tcp_keepalive_idle(Duration::from_millis(1 << 32)),
                "tcp_keepalive_idle",
            ),
            (Builder::new().query_timeout(Some(ms)), "query_timeout"),
        ];
        for (builder, option) in cases {
            let err = invalid(builder);
            assert_eq!(err.option(), Some(option), "{err}");
            assert!(err.to_string().contains(option), "{err}");
        }
    }

    #[test]
    fn max_idle_follows_max_size_unless_set() {
        assert_eq!(Builder::new().max_size(3).config().max_idle, 3);
        let b = Builder::new().max_idle(2).max_size(5);
        assert_eq!(b.config().max_idle, 2);
        assert_eq!(b.config().max_size, 5);
    }
}
