//! [`PgConnection`]: the session the pool hands out — pgpool's own client plus a bounded
//! prepared-statement cache, the transaction helper and per-call query timeouts.
//!
//! Whether a session is clean is never guessed: every ReadyForQuery carries the server's
//! transaction status, and release rolls back only when it is not idle.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::conninfo::TargetSessionAttrs;
use crate::client::copy::{CopyIn, CopyOut};
use crate::client::lag::{self, LagWatch};
use crate::client::query::RowSink;
use crate::client::session::{OnDeadline, Session, DEFAULT_DRAIN};
use crate::client::{
    CancelToken, NoticeHandler, Notification, Params, Row, SimpleQueryMessage, Statement,
    TransactionStatus,
};
use crate::error::Error;
use crate::manager::Probe;
use crate::query_log::QueryLog;
use crate::stmt_cache::StatementCache;
use crate::sys::socket;

/// TCP settings of a session's socket, from [`PgConnection::socket_bounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketBounds {
    /// `SO_KEEPALIVE` is on.
    pub keepalive: bool,
    /// Idle time before the first keepalive probe.
    pub keepalive_idle: Duration,
    /// `TCP_USER_TIMEOUT`, if set.
    pub tcp_user_timeout: Option<Duration>,
}

/// How the connection prepares statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementMode {
    /// Named statements kept in the per-session cache.
    Cached,
    /// The unnamed statement, parsed again with every execution: nothing survives a Sync,
    /// as a transaction-pooling proxy (PgBouncer) requires.
    Unnamed,
}

/// A pooled PostgreSQL session. The pool's guard dereferences to it.
///
/// ```no_run
/// # fn main() -> Result<(), pgpool::Error> {
/// let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
/// let mut conn = pool.get()?;
/// let row = conn.query_one("SELECT $1::int + 1", &[&41])?;
/// assert_eq!(row.get::<_, i32>(0), 42);
/// # Ok(()) }
/// ```
pub struct PgConnection {
    /// Boxed so that moving the connection (into and out of the pool's idle list, the
    /// guard) copies a pointer, not the whole wire state.
    session: Box<Session>,
    cache: StatementCache,
    mode: StatementMode,
    next_statement: u64,
    /// Nesting depth of `transaction` calls in progress.
    tx_depth: u32,
    query_timeout: Option<Duration>,
    /// What each checkout starts with (the pool's `query_timeout`).
    default_query_timeout: Option<Duration>,
    /// The error of the last failed call in this checkout (cleared on release).
    last_error: Option<Error>,
    /// Where statement times and log lines go (the pool's; none for a bare session).
    query_log: Option<Arc<QueryLog>>,
}

/// Keeps the first row of a result and counts the rest (`query_one`, `query_opt`): no
/// `Vec` for a single row.
#[derive(Default)]
struct FirstRow {
    row: Option<Row>,
    count: usize,
}

impl RowSink for FirstRow {
    fn push(
        &mut self,
        statement: &Statement,
        body: postgres_protocol::message::backend::DataRowBody,
    ) -> Result<(), Error> {
        self.count += 1;
        if self.row.is_none() {
            self.row = Some(Row::new(statement.clone(), body)?);
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The statement cache's key: the text, plus the declared parameter types when there are
/// any (NUL cannot occur in a statement's text).
fn cache_key<'a>(sql: &'a str, types: &[u32]) -> std::borrow::Cow<'a, str> {
    if types.is_empty() {
        std::borrow::Cow::Borrowed(sql)
    } else {
        std::borrow::Cow::Owned(format!("{sql}\0{types:?}"))
    }
}

/// SQLSTATEs after which a cached statement is stale: "prepared statement does not exist"
/// (after `DEALLOCATE`) and "cached plan must not change result type" (after DDL).
fn stale_statement(err: &Error) -> bool {
    matches!(err.sqlstate(), Some("26000" | "0A000"))
}

impl PgConnection {
    pub(crate) fn new(
        session: Session,
        cache_capacity: usize,
        mode: StatementMode,
    ) -> PgConnection {
        PgConnection {
            session: Box::new(session),
            cache: StatementCache::new(if mode == StatementMode::Unnamed {
                0
            } else {
                cache_capacity
            }),
            mode,
            next_statement: 0,
            tx_depth: 0,
            query_timeout: None,
            default_query_timeout: None,
            last_error: None,
            query_log: None,
        }
    }

    /// The server process id of this session (`pg_backend_pid()`).
    pub fn backend_pid(&self) -> i32 {
        self.session.process_id()
    }

    /// True once an error showed the connection is unusable; the pool will discard it.
    pub fn is_broken(&self) -> bool {
        self.session.is_broken()
    }

    /// The transaction status the server reported after the last command.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.session.status()
    }

    /// True when the session is inside a transaction (or a failed one): release will roll
    /// it back.
    pub fn may_be_in_transaction(&self) -> bool {
        self.session.status() != TransactionStatus::Idle
    }

    /// A run-time parameter the server reports (`server_version`, `TimeZone`,
    /// `in_hot_standby`, `default_transaction_read_only`, `application_name`, …).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.session.parameter(name)
    }

    /// What the pool needs to take this connection back from a holder: a cancel request and a
    /// shutdown of the socket. `None` when the socket cannot be duplicated.
    pub(crate) fn interrupter(&mut self) -> Option<std::sync::Arc<dyn crate::manager::Interrupt>> {
        match self.session.interrupt_parts() {
            Ok((severer, cancel, reclaimed)) => Some(std::sync::Arc::new(PgInterrupt {
                severer,
                cancel,
                reclaimed,
            })),
            Err(e) => {
                log::debug!(target: "pgpool", "no interrupter for this connection: {e}");
                None
            }
        }
    }

    /// The error of the last call that failed on this connection since it was acquired (what
    /// a C transaction callback's failure is judged by when deciding on a retry).
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    /// A token that cancels this session's running statement from another thread.
    pub fn cancel_token(&self) -> Option<CancelToken> {
        self.session.cancel_token().cloned()
    }

    /// Bounds every following call on this connection (until changed, or until it goes back
    /// to the pool, which restores its [`query_timeout`](crate::Config::query_timeout)): when a call runs longer, the statement is cancelled on the server, the
    /// call returns a [`Timeout`](crate::ErrorKind::Timeout) error with SQLSTATE `57014`, and
    /// the session is kept if it answered the cancel in time (within the timeout itself,
    /// counted as 1 to 5 s; else it is closed). A call therefore returns by its timeout plus
    /// at most that window, even when the server or the network stopped answering.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), pgpool::Error> {
    /// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
    /// let mut conn = pool.get()?;
    /// conn.set_query_timeout(Some(std::time::Duration::from_millis(200)));
    /// let err = conn.execute("SELECT pg_sleep(5)", &[]).unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.sqlstate(), Some("57014"));
    /// conn.execute("SELECT 1", &[])?; // the same session, still usable
    /// # Ok(()) }
    /// ```
    pub fn set_query_timeout(&mut self, timeout: Option<Duration>) {
        self.query_timeout = timeout.filter(|t| !t.is_zero());
    }

    /// Restores the pool's [`query_timeout`](crate::Config::query_timeout).
    pub fn restore_query_timeout(&mut self) {
        self.query_timeout = self.default_query_timeout;
    }

    pub(crate) fn set_default_query_timeout(&mut self, timeout: Option<Duration>) {
        self.default_query_timeout = timeout;
        self.query_timeout = timeout;
    }

    /// The query timeout in force (see [`set_query_timeout`](Self::set_query_timeout)).
    pub fn query_timeout(&self) -> Option<Duration> {
        self.query_timeout
    }

    /// Where the server's notices (WARNING, NOTICE, …) go besides the `log` crate.
    pub fn set_notice_handler(&mut self, handler: Option<NoticeHandler>) {
        self.session.set_notice_handler(handler);
    }

    /// The socket bounds in force on this session's TCP socket, read back from the kernel;
    /// `None` for Unix-domain sockets.
    pub fn socket_bounds(&self) -> Option<SocketBounds> {
        if !self.session.stream().is_tcp() {
            return None;
        }
        let (keepalive, idle, user_timeout) = socket::tcp_bounds(self.session.stream().fd())?;
        Some(SocketBounds {
            keepalive,
            keepalive_idle: Duration::from_secs(u64::from(idle)),
            tcp_user_timeout: (user_timeout > 0)
                .then(|| Duration::from_millis(u64::from(user_timeout))),
        })
    }

    /// True when the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.session.stream().is_tls()
    }

    /// How many prepared statements are cached on this connection.
    pub fn cached_statements(&self) -> usize {
        self.cache.len()
    }

    /// Statement cache capacity this connection was opened with.
    pub fn statement_cache_capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// Forgets every cached statement and closes them on the server.
    pub fn clear_statement_cache(&mut self) {
        self.cache.clear();
        if !self.session.is_broken() {
            // One round trip closes all of them.
            let _ = self.call(|s| s.simple_query("DEALLOCATE ALL").map(drop));
        }
    }

    pub(crate) fn set_query_log(&mut self, log: Arc<QueryLog>) {
        self.query_log = Some(log);
    }

    /// Runs one statement the caller asked for (`f`), timing and logging it when the pool
    /// keeps a query log; `rows` reads the row count off the result.
    #[inline]
    fn observed<T>(
        &mut self,
        sql: &str,
        params: usize,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
        rows: impl FnOnce(&T) -> u64,
    ) -> Result<T, Error> {
        let Some(start) = self.query_log.as_ref().and_then(|l| l.start()) else {
            return f(self);
        };
        let result = f(self);
        if let Some(log) = &self.query_log {
            log.finish(start, sql, params, result.as_ref().ok().map(rows));
        }
        result
    }

    /// Runs `f` under the query timeout, then notices what the exchange changed.
    fn call<T>(&mut self, f: impl FnOnce(&mut Session) -> Result<T, Error>) -> Result<T, Error> {
        if let Some(t) = self.query_timeout {
            self.session.set_deadline(Some((
                Instant::now() + t,
                OnDeadline::Cancel {
                    drain: drain_for(t),
                },
            )));
        }
        let result = f(&mut self.session);
        if self.query_timeout.is_some() {
            self.session.clear_deadline();
        }
        if let Err(e) = &result {
            self.last_error = Some(e.clone());
        }
        if self.session.statements_dropped {
            self.session.statements_dropped = false;
            self.cache.clear();
        }
        result
    }

    /// Prepares `sql` (one round trip) outside the cache. The statement stays valid on this
    /// session until the session closes.
    ///
    /// With [`transaction_pooling`](crate::Config::transaction_pooling) the statement is the
    /// unnamed one, parsed again with every execution (nothing named survives a proxy's
    /// switch of server).
    pub fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
        if self.mode == StatementMode::Unnamed {
            return self.call(|s| s.prepare("", sql));
        }
        let name = self.new_statement_name();
        self.call(|s| s.prepare(&name, sql))
    }

    fn new_statement_name(&mut self) -> String {
        self.next_statement += 1;
        format!("pgpool_{}", self.next_statement)
    }

    /// The cached prepared statement for `sql`, preparing (one round trip) on a miss.
    pub fn prepare_cached(&mut self, sql: &str) -> Result<Statement, Error> {
        self.prepare_cached_typed(sql, &[])
    }

    /// As [`prepare_cached`](Self::prepare_cached), declaring parameter types by OID (0: let
    /// the server infer); cached per statement text and types.
    pub fn prepare_cached_typed(&mut self, sql: &str, types: &[u32]) -> Result<Statement, Error> {
        if self.mode == StatementMode::Unnamed {
            return self.call(|s| s.prepare_typed("", sql, types));
        }
        let key = cache_key(sql, types);
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let name = self.new_statement_name();
        let statement = self.call(|s| s.prepare_typed(&name, sql, types))?;
        if self.cache.capacity() > 0 {
            if let Some(evicted) = self.cache.insert(&key, statement.clone()) {
                self.session.queue_close(evicted.name());
            }
        }
        Ok(statement)
    }

    fn run_statement(
        &mut self,
        statement: &Statement,
        params: Params<'_>,
        rows: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<u64, Error> {
        let unnamed = statement.name().is_empty();
        self.call(|s| {
            if unnamed {
                s.execute_unnamed(statement, params, rows)
            } else {
                s.execute(statement, params, rows)
            }
        })
    }

    /// Runs `sql` through the cache. A cached statement the server no longer knows (or
    /// whose result type changed) is dropped and, outside a transaction, prepared again and
    /// run once more; inside one the error is returned (the transaction is failed anyway).
    fn run_sql(
        &mut self,
        sql: &str,
        params: Params<'_>,
        rows: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<u64, Error> {
        self.run_sql_typed(sql, &[], params, rows)
    }

    /// [`run_sql`](Self::run_sql) with declared parameter types.
    pub(crate) fn run_sql_typed(
        &mut self,
        sql: &str,
        types: &[u32],
        params: Params<'_>,
        rows: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<u64, Error> {
        self.observed(
            sql,
            params.len(),
            |c| c.run_sql_unobserved(sql, types, params, rows),
            |n| *n,
        )
    }

    fn run_sql_unobserved(
        &mut self,
        sql: &str,
        types: &[u32],
        params: Params<'_>,
        mut rows: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<u64, Error> {
        let statement = self.prepare_cached_typed(sql, types)?;
        match self.run_statement(&statement, params, rows.as_deref_mut()) {
            Err(e) if stale_statement(&e) && !statement.name().is_empty() => {
                self.cache.remove(&cache_key(sql, types));
                let nothing_delivered = rows.as_deref().is_none_or(|r| r.is_empty());
                if self.session.status() == TransactionStatus::Idle && nothing_delivered {
                    let statement = self.prepare_cached_typed(sql, types)?;
                    self.run_statement(&statement, params, rows)
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    /// Runs a statement through the statement cache and returns its rows.
    pub fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        let mut rows = Vec::new();
        self.run_sql(sql, params, Some(&mut rows as &mut dyn RowSink))?;
        Ok(rows)
    }

    /// Like [`query`](Self::query) for exactly one row; zero or several rows are an error.
    /// Allocates nothing for a cached statement whose row has at most 8 columns.
    pub fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
        let mut one = FirstRow::default();
        self.run_sql(sql, params, Some(&mut one))?;
        match (one.count, one.row) {
            (1, Some(row)) => Ok(row),
            (n, _) => Err(Error::usage(format!("query_one expected 1 row, got {n}"))),
        }
    }

    /// Like [`query`](Self::query) for at most one row.
    pub fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error> {
        let mut one = FirstRow::default();
        self.run_sql(sql, params, Some(&mut one))?;
        match one.count {
            0 | 1 => Ok(one.row),
            n => Err(Error::usage(format!(
                "query_opt expected at most 1 row, got {n}"
            ))),
        }
    }

    /// Runs a statement through the statement cache and returns the number of rows affected.
    pub fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        self.run_sql(sql, params, None)
    }

    /// Runs a prepared statement and returns its rows together with the number of rows the
    /// command affected (for `UPDATE … RETURNING` both matter; for a plain `SELECT` the count
    /// is the number of rows).
    pub fn query_prepared(
        &mut self,
        statement: &Statement,
        params: Params<'_>,
    ) -> Result<(Vec<Row>, u64), Error> {
        let mut rows = Vec::new();
        let affected = self.observed(
            statement.sql(),
            params.len(),
            |c| c.run_statement(statement, params, Some(&mut rows as &mut dyn RowSink)),
            |n| *n,
        )?;
        Ok((rows, affected))
    }

    /// Runs a prepared statement and returns the number of rows affected.
    pub fn execute_prepared(
        &mut self,
        statement: &Statement,
        params: Params<'_>,
    ) -> Result<u64, Error> {
        self.observed(
            statement.sql(),
            params.len(),
            |c| c.run_statement(statement, params, None),
            |n| *n,
        )
    }

    /// `BEGIN`: starts a transaction. Prefer [`transaction`](Self::transaction), which cannot
    /// forget to end it; a session released with a transaction open is rolled back.
    pub fn begin(&mut self) -> Result<(), Error> {
        self.batch_execute("BEGIN")
    }

    /// `COMMIT`: commits the open transaction. When a statement in it had failed, the server
    /// can only roll it back: that is an error (SQLSTATE `25P02`), never a success.
    pub fn commit(&mut self) -> Result<(), Error> {
        if self.session.status() == TransactionStatus::Failed {
            self.batch_execute("ROLLBACK")?;
            return Err(Error::rolled_back());
        }
        self.batch_execute("COMMIT")
    }

    /// `ROLLBACK`: rolls back the open transaction (if any).
    pub fn rollback(&mut self) -> Result<(), Error> {
        self.batch_execute("ROLLBACK")
    }

    /// Runs one or more `;`-separated statements with the simple protocol (no parameters).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.simple_query(sql).map(drop)
    }

    /// Runs one or more statements with the simple protocol and returns every value as text.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.observed(
            sql,
            0,
            |c| c.call(|s| s.simple_query(sql)),
            |messages| {
                let rows = messages
                    .iter()
                    .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                    .count();
                rows as u64
            },
        )
    }

    /// Starts `COPY … FROM STDIN`; write the data to the returned [`CopyIn`].
    pub fn copy_in(&mut self, sql: &str) -> Result<CopyIn<'_>, Error> {
        CopyIn::start(&mut self.session, sql)
    }

    /// Starts `COPY … TO STDOUT`; read the data from the returned [`CopyOut`].
    pub fn copy_out(&mut self, sql: &str) -> Result<CopyOut<'_>, Error> {
        CopyOut::start(&mut self.session, sql)
    }

    /// The next notification already received (after `LISTEN`), without waiting.
    pub fn next_notification(&mut self) -> Option<Notification> {
        self.session.take_notification()
    }

    /// Waits up to `timeout` for a notification (after `LISTEN channel`).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), pgpool::Error> {
    /// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
    /// let mut conn = pool.get()?;
    /// conn.batch_execute("LISTEN jobs")?;
    /// if let Some(n) = conn.wait_for_notification(std::time::Duration::from_secs(1))? {
    ///     println!("{}: {}", n.channel, n.payload);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn wait_for_notification(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Notification>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(n) = self.session.take_notification() {
                return Ok(Some(n));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.session.poll_async(left)?;
        }
    }

    /// Runs `f` inside `BEGIN` … `COMMIT`. An `Err` from `f`, or a panic, rolls back (the panic
    /// then continues); a failed `COMMIT` is returned as an error. Called inside another
    /// `transaction`, it uses a savepoint: an inner failure undoes only the inner work.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), pgpool::Error> {
    /// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
    /// let mut conn = pool.get()?;
    /// let moved = conn.transaction(|tx| {
    ///     tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = $1", &[&1i32])?;
    ///     tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = $1", &[&2i32])
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let depth = self.tx_depth;
        let (begin, commit, undo) = if depth == 0 {
            ("BEGIN".to_string(), "COMMIT".to_string(), None)
        } else {
            let sp = format!("pgpool_sp{depth}");
            (
                format!("SAVEPOINT {sp}"),
                format!("RELEASE SAVEPOINT {sp}"),
                Some(format!("ROLLBACK TO SAVEPOINT {sp}")),
            )
        };
        self.batch_execute(&begin)?;
        self.tx_depth = depth + 1;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(self)));
        self.tx_depth = depth;
        let undo_work = |conn: &mut PgConnection| match &undo {
            None => {
                conn.reset_transaction(DEFAULT_DRAIN);
            }
            Some(sql) => {
                if conn.batch_execute(sql).is_err() {
                    conn.session.mark_broken();
                }
            }
        };
        match outcome {
            Ok(Ok(_)) if self.session.status() == TransactionStatus::Failed => {
                // The closure swallowed a statement's error: committing would roll back.
                undo_work(self);
                Err(Error::rolled_back().into())
            }
            Ok(Ok(value)) => {
                self.batch_execute(&commit)?;
                Ok(value)
            }
            Ok(Err(e)) => {
                undo_work(self);
                Err(e)
            }
            Err(payload) => {
                undo_work(self);
                panic::resume_unwind(payload)
            }
        }
    }

    /// Rolls back whatever transaction is open, bounded by `timeout`; true when the session
    /// is idle afterwards.
    pub(crate) fn reset_transaction(&mut self, timeout: Duration) -> bool {
        if self.is_broken() {
            return false;
        }
        if self.session.status() == TransactionStatus::Idle {
            return true;
        }
        self.session
            .set_deadline(Some((Instant::now() + timeout, OnDeadline::Break)));
        let ok = self.session.simple_query("ROLLBACK").is_ok();
        self.session.clear_deadline();
        ok && self.session.status() == TransactionStatus::Idle
    }

    /// The session, for the C ABI's COPY state machine.
    pub(crate) fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Makes a returned session clean for the next user, running the `full` reset batch when
    /// there is one; false means discard it.
    pub(crate) fn reset(&mut self, timeout: Duration, full: Option<&str>) -> bool {
        if self.session.in_copy {
            // A COPY left unfinished: the protocol state is the server's, not ours.
            return false;
        }
        self.query_timeout = self.default_query_timeout;
        self.tx_depth = 0;
        self.last_error = None;
        if !self.reset_transaction(timeout) {
            return false;
        }
        // Notifications received for this holder are not the next one's.
        while self.session.take_notification().is_some() {}
        if let Some(batch) = full {
            self.session
                .set_deadline(Some((Instant::now() + timeout, OnDeadline::Break)));
            let result = self.session.simple_query(batch);
            self.session.clear_deadline();
            if let Err(e) = &result {
                log::warn!(
                    target: "pgpool",
                    "the full reset of backend {} failed; the session is closed: {e}",
                    self.session.process_id()
                );
            }
            let ok = result.is_ok();
            // UNLISTEN may have raced with a NOTIFY: drop what came with the reset too.
            while self.session.take_notification().is_some() {}
            return ok && self.session.status() == TransactionStatus::Idle;
        }
        !self.is_broken()
    }

    /// Runs the pool's `init_sql` on a new session, by `deadline`. Its error is a connect
    /// error, permanent for SQLSTATE class 42 (syntax, privilege, undefined object). A
    /// script still running at the deadline is cancelled on the server (best effort, within
    /// a second) so that it does not run on after its session is dropped.
    pub(crate) fn run_init(&mut self, sql: &str, deadline: Instant) -> Result<(), Error> {
        self.session
            .set_deadline(Some((deadline, OnDeadline::Break)));
        let result = self.session.simple_query(sql).map(drop);
        self.session.clear_deadline();
        if result.is_err() && Instant::now() >= deadline {
            if let Some(token) = self.session.cancel_token() {
                let _ = token.cancel_bounded(Duration::from_secs(1));
            }
        }
        let status = self.session.status();
        match result {
            Ok(()) if status == TransactionStatus::Idle => Ok(()),
            Ok(()) => Err(Error::connect_permanent(format!(
                "init_sql left the session inside a transaction ({status:?}): end what it begins"
            ))),
            // Class 42 (syntax, privilege, undefined object) is a permanent connect error.
            Err(e) => Err(e.into_connect().context("init_sql failed")),
        }
    }

    /// False once the server reported a role that `target_session_attrs` does not accept.
    pub(crate) fn keeps_its_role(&mut self) -> bool {
        self.session.keeps_its_role()
    }

    /// The zero-cost probe: no round trip, one non-blocking `poll(2)`. A standby session
    /// whose lag is due to be measured again is suspect, so that the validation measures it.
    pub(crate) fn probe(&mut self) -> Probe {
        if self.is_broken() || self.session.in_copy {
            Probe::Broken
        } else if self.session.replica_lag.is_some_and(|w| w.due()) {
            Probe::Suspect
        } else if self.session.looks_idle() {
            Probe::Healthy
        } else {
            Probe::Suspect
        }
    }

    /// A round trip bounded by `timeout`: an empty query, or on a watched standby the lag
    /// measure. A timed-out session is broken.
    pub(crate) fn validate(&mut self, timeout: Duration) -> Result<(), Error> {
        self.session
            .set_deadline(Some((Instant::now() + timeout, OnDeadline::Break)));
        let result = if let Some(watch) = self.session.replica_lag {
            // No lag (not in recovery): promoted, which the role check reports where the
            // pool asked for a standby; a primary is not measured again.
            lag::measure(&mut self.session)
                .map(|behind| self.session.replica_lag = behind.map(|b| watch.measured(b)))
        } else {
            self.session.simple_query("").map(drop)
        };
        self.session.clear_deadline();
        if result.is_err() {
            self.session.mark_broken();
        }
        result
    }

    /// What the connect accepted the server as (`Any` for a `prefer-standby` session that
    /// found no standby).
    pub(crate) fn accepted_as(&self) -> TargetSessionAttrs {
        self.session.role_target()
    }

    /// The last measured lag when it is past `max_replica_lag` (a standby session only).
    pub(crate) fn replica_lag_too_far(&self) -> Option<LagWatch> {
        self.session.replica_lag.filter(LagWatch::too_far)
    }

    /// Notifications received and not yet read.
    pub fn pending_notifications(&self) -> usize {
        self.session.pending_notifications()
    }
}

/// The full reset: what a session may carry between users besides a transaction, undone in
/// one round trip (prepared statements, which the pool owns, are kept).
pub(crate) const FULL_RESET: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
    UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

impl std::fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnection")
            .field("backend_pid", &self.backend_pid())
            .field("broken", &self.is_broken())
            .field("transaction_status", &self.transaction_status())
            .field("cached_statements", &self.cache.len())
            .finish()
    }
}

/// How long a call whose query timeout `t` passed waits for the cancel request and the
/// server's answer to it before the session is given up: `t` itself, within 1..=5 s. So a
/// call returns by `t` plus at most that, even when the server stopped answering.
fn drain_for(t: Duration) -> Duration {
    t.clamp(Duration::from_secs(1), DEFAULT_DRAIN)
}

/// [`Interrupt`](crate::manager::Interrupt) for a [`PgConnection`]: a cancel request, then a
/// shutdown of the socket through a descriptor of its own.
struct PgInterrupt {
    severer: crate::client::stream::Severer,
    cancel: Option<CancelToken>,
    reclaimed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl crate::manager::Interrupt for PgInterrupt {
    fn cancel(&self) {
        if let Some(token) = &self.cancel {
            if let Err(e) = token.cancel_bounded(Duration::from_secs(2)) {
                log::debug!(target: "pgpool", "cancel request failed: {e}");
            }
        }
    }

    fn sever(&self) {
        self.reclaimed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.severer.sever();
    }
}
