//! [`PgManager`]: opens PostgreSQL sessions for the pool with pgpool's own client.
//!
//! Every session gets socket bounds (TCP keepalives and `TCP_USER_TIMEOUT`, so a dead peer is
//! noticed in seconds), one deadline for the whole connect (every host, TCP, TLS, startup,
//! authentication), and `application_name` and `statement_timeout` as startup parameters
//! (no extra round trip).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::connect::{Connector, SocketSettings};
use crate::client::conninfo::{ConnConfig, TargetSessionAttrs};
use crate::client::lag;
use crate::client::tls::TlsConnector;
use crate::client::{NoticeHandler, TransactionStatus};
use crate::config::Config;
use crate::connection::{PgConnection, StatementMode, FULL_RESET};
use crate::error::Error;
use crate::event::CloseReason;
use crate::histogram::Histogram;
use crate::manager::{Interrupt, Manager, Probe};
use crate::query_log::QueryLog;

/// The PostgreSQL [`Manager`]. Built by [`Builder::build`](crate::Builder::build).
pub struct PgManager {
    connector: Connector,
    cache_capacity: usize,
    mode: StatementMode,
    reset_timeout: Duration,
    /// The full reset's batch (with `init_sql` after it), when `full_reset` is on.
    full_reset: Option<String>,
    init_sql: Option<String>,
    fallback_lifetime: Option<Duration>,
    query_timeout: Option<Duration>,
    /// Releases that needed a ROLLBACK (the session was not idle).
    rollbacks: AtomicU64,
    notice_handler: Option<NoticeHandler>,
    /// Statement times and log lines, shared by every session.
    query_log: Arc<QueryLog>,
}

impl std::fmt::Debug for PgManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.connector.config;
        f.debug_struct("PgManager")
            .field("hosts", &c.hosts)
            .field("dbname", &c.dbname)
            .field("user", &c.user)
            .field("sslmode", &c.sslmode)
            .finish()
    }
}

impl PgManager {
    /// Parses `conninfo` (URL or `key=value`, libpq's keys and environment) and applies the
    /// pool's session settings.
    pub fn new(conninfo: &str, pool: &Config) -> Result<PgManager, Error> {
        let config = ConnConfig::parse(conninfo)?;
        // Unreadable or invalid certificate files are settings errors: report them now.
        let tls = TlsConnector::new(&config)
            .map_err(Error::into_config)?
            .map(Arc::new);
        let idle = pool.tcp_keepalive_idle;
        let socket = SocketSettings {
            keepalives: config.keepalives,
            keepalive_idle: idle,
            keepalive_interval: config
                .keepalives_interval
                .unwrap_or_else(|| idle.min(Duration::from_secs(2))),
            keepalive_count: config.keepalives_count.unwrap_or(3),
            tcp_user_timeout: pool.tcp_user_timeout.or(config.tcp_user_timeout),
        };
        let mut startup = vec![("client_encoding".to_string(), "UTF8".to_string())];
        let app = pool
            .application_name
            .clone()
            .or_else(|| config.application_name.clone())
            .or_else(|| config.fallback_application_name.clone())
            .unwrap_or_else(|| "pgpool".to_string());
        startup.push(("application_name".into(), app));
        let mut options = config.options.clone().unwrap_or_default();
        if let Some(t) = pool.statement_timeout {
            if !options.is_empty() {
                options.push(' ');
            }
            options.push_str(&format!("-c statement_timeout={}", t.as_millis()));
        }
        if !options.is_empty() {
            startup.push(("options".into(), options));
        }
        Ok(PgManager {
            connector: Connector {
                config,
                tls,
                // The whole connect; the connection string's `connect_timeout` bounds
                // each attempt.
                timeout: pool.connect_timeout,
                socket,
                startup,
                max_replica_lag: pool.max_replica_lag,
            },
            cache_capacity: pool.statement_cache_capacity,
            mode: if pool.transaction_pooling {
                StatementMode::Unnamed
            } else {
                StatementMode::Cached
            },
            reset_timeout: pool.validation_timeout,
            full_reset: pool.full_reset.then(|| match &pool.init_sql {
                Some(init) => format!("{FULL_RESET}; {init}"),
                None => FULL_RESET.to_string(),
            }),
            init_sql: pool.init_sql.clone(),
            fallback_lifetime: pool.fallback_lifetime,
            query_timeout: pool.query_timeout,
            rollbacks: AtomicU64::new(0),
            notice_handler: None,
            query_log: Arc::new(QueryLog::new(pool)),
        })
    }

    /// Sends the server's notices (WARNING, NOTICE, …) of every session to `handler`
    /// besides the `log` crate (target `pgpool`, level debug).
    pub fn with_notice_handler(mut self, handler: NoticeHandler) -> PgManager {
        self.notice_handler = Some(handler);
        self
    }

    /// How many releases found the session inside a transaction and rolled it back.
    pub fn rollbacks_on_release(&self) -> u64 {
        self.rollbacks.load(Ordering::Relaxed)
    }

    /// Opens one session outside any pool (for tools and tests that want a single
    /// connection): the same settings, deadline and TLS as the pool's sessions.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), pgpool::Error> {
    /// let settings = pgpool::Pool::builder().application_name("vacuum-tool");
    /// let manager = pgpool::PgManager::new("postgres://app@localhost/app", settings.config())?;
    /// let mut conn = manager.open()?;
    /// conn.batch_execute("VACUUM")?;
    /// # Ok(()) }
    /// ```
    pub fn open(&self) -> Result<PgConnection, Error> {
        self.connect()
    }

    /// The connection settings sessions are opened with.
    pub fn conn_config(&self) -> &ConnConfig {
        &self.connector.config
    }
}

impl Manager for PgManager {
    type Connection = PgConnection;

    fn connect(&self) -> Result<PgConnection, Error> {
        let deadline = Instant::now() + self.connector.timeout;
        let session = self.connector.connect()?;
        let mut conn = PgConnection::new(session, self.cache_capacity, self.mode);
        conn.set_default_query_timeout(self.query_timeout);
        conn.set_notice_handler(self.notice_handler.clone());
        conn.set_query_log(Arc::clone(&self.query_log));
        if let Some(sql) = &self.init_sql {
            conn.run_init(sql, deadline)?;
        }
        Ok(conn)
    }

    fn validate(&self, conn: &mut PgConnection, timeout: Duration) -> Result<(), Error> {
        conn.validate(timeout)
    }

    fn probe(&self, conn: &mut PgConnection) -> Probe {
        conn.probe()
    }

    fn reset(&self, conn: &mut PgConnection) -> bool {
        if conn.transaction_status() != TransactionStatus::Idle {
            self.rollbacks.fetch_add(1, Ordering::Relaxed);
        }
        conn.reset(self.reset_timeout, self.full_reset.as_deref())
    }

    /// Closing sends Terminate with a non-blocking write and closes without linger: it never
    /// blocks, so retired sessions close on the thread that retired them (no closer thread).
    fn close_may_block(&self) -> bool {
        false
    }

    fn unfit(&self, conn: &mut PgConnection) -> Option<CloseReason> {
        if !conn.keeps_its_role() {
            log::info!(
                target: "pgpool",
                "retiring the session of backend {}: the server no longer satisfies \
                 target_session_attrs={} (in_hot_standby={}, default_transaction_read_only={})",
                conn.backend_pid(),
                self.connector.config.target_session_attrs.as_str(),
                conn.parameter("in_hot_standby").unwrap_or("?"),
                conn.parameter("default_transaction_read_only").unwrap_or("?"),
            );
            return Some(CloseReason::RoleChanged);
        }
        let watch = conn.replica_lag_too_far()?;
        log::info!(
            target: "pgpool",
            "retiring the session of backend {}: its standby is {} behind its primary \
             (max_replica_lag {} ms)",
            conn.backend_pid(),
            lag::describe(watch.behind),
            watch.max.as_millis(),
        );
        Some(CloseReason::ReplicaLag)
    }

    /// `fallback_lifetime` for a `prefer-standby` session that found no standby (accepted
    /// as any server), so that its replacement tries the standbys again.
    fn lifetime(&self, conn: &PgConnection) -> Option<Duration> {
        let fell_back = self.connector.config.target_session_attrs
            == TargetSessionAttrs::PreferStandby
            && conn.accepted_as() == TargetSessionAttrs::Any;
        self.fallback_lifetime.filter(|_| fell_back)
    }

    fn interrupter(&self, conn: &mut PgConnection) -> Option<std::sync::Arc<dyn Interrupt>> {
        conn.interrupter()
    }

    fn query_time(&self) -> Option<Histogram> {
        self.query_log.histogram()
    }

    /// The pid the server sent at login (BackendKeyData); `None` if it sent none.
    fn backend_pid(&self, conn: &PgConnection) -> Option<i32> {
        Some(conn.backend_pid()).filter(|&pid| pid != 0)
    }
}
