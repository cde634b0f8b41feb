//! [`PgConnection`]: a `postgres::Client` plus what the pool needs to know about it.
//!
//! It adds a bounded prepared-statement cache, a transaction helper, and bookkeeping that lets
//! the pool hand it back clean without a round trip in the common case: the connection knows
//! when a statement may have left a transaction open (transaction-control SQL, a multi-statement
//! batch, or raw access to the client) and only then does release send a `ROLLBACK`.

use std::os::unix::io::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use crate::error::Error;
use crate::ffi::os;
use crate::manager::Probe;
use crate::stmt_cache::StatementCache;

/// Query parameters, as the `postgres` crate takes them.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

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
    client: Client,
    cache: StatementCache,
    /// True when the session may be inside a transaction the pool did not start: release
    /// then rolls back with a round trip. False means known idle.
    maybe_in_transaction: bool,
    broken: bool,
    /// Nesting depth of `transaction` calls in progress.
    tx_depth: u32,
    fd: Option<RawFd>,
    backend_pid: i32,
}

/// True when `sql` contains a word that starts, ends or alters a transaction. Over-approximate
/// on purpose (`END` also closes a `CASE`): a false positive costs one `ROLLBACK` on release,
/// a false negative would hand a dirty session to the next user.
pub(crate) fn may_control_transaction(sql: &str) -> bool {
    sql.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| (2..=9).contains(&w.len()))
        .any(|w| {
            [
                "begin",
                "start",
                "commit",
                "end",
                "rollback",
                "abort",
                "savepoint",
                "release",
                "prepare",
                "call",
                "do",
            ]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k))
        })
}

impl PgConnection {
    pub(crate) fn new(
        client: Client,
        cache_capacity: usize,
        fd: Option<RawFd>,
        backend_pid: i32,
    ) -> PgConnection {
        PgConnection {
            client,
            cache: StatementCache::new(cache_capacity),
            maybe_in_transaction: false,
            broken: false,
            tx_depth: 0,
            fd,
            backend_pid,
        }
    }

    /// The server process id of this session (`pg_backend_pid()`).
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// True once an error showed the connection is unusable; the pool will discard it.
    pub fn is_broken(&self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// True when the pool will roll back on release (the session may be in a transaction).
    pub fn may_be_in_transaction(&self) -> bool {
        self.maybe_in_transaction
    }

    /// The socket bounds in force on this session's TCP socket, read back from the kernel;
    /// `None` for Unix-domain sockets or when the socket could not be located.
    pub fn socket_bounds(&self) -> Option<SocketBounds> {
        let (keepalive, idle, user_timeout) = os::tcp_bounds(self.fd?)?;
        Some(SocketBounds {
            keepalive,
            keepalive_idle: Duration::from_secs(u64::from(idle)),
            tcp_user_timeout: (user_timeout > 0)
                .then(|| Duration::from_millis(u64::from(user_timeout))),
        })
    }

    /// How many prepared statements are cached on this connection.
    pub fn cached_statements(&self) -> usize {
        self.cache.len()
    }

    /// The raw `postgres::Client`, for anything this type does not wrap (COPY, notifications,
    /// portals, ...). Because the pool cannot see what runs through it, the next release
    /// sends a `ROLLBACK` to be sure no transaction is left open.
    pub fn client(&mut self) -> &mut Client {
        self.maybe_in_transaction = true;
        &mut self.client
    }

    fn observe<T>(
        &mut self,
        sql: Option<&str>,
        result: Result<T, postgres::Error>,
    ) -> Result<T, Error> {
        result.map_err(|e| {
            let err = Error::from_query(e);
            if err.is_broken() {
                self.broken = true;
            }
            // A cached plan invalidated by DDL, or a statement the server no longer knows
            // (after DISCARD ALL): forget it so the next call prepares afresh.
            if let (Some(sql), Some("0A000" | "26000")) = (sql, err.sqlstate()) {
                self.cache.remove(sql);
            }
            err
        })
    }

    /// The cached prepared statement for `sql`, preparing (one round trip) on a miss.
    pub fn prepare_cached(&mut self, sql: &str) -> Result<Statement, Error> {
        let (statement, tx_control) = match self.cache.get(sql) {
            Some(hit) => hit,
            None => {
                let prepared = self.client.prepare(sql);
                let statement = self.observe(None, prepared)?;
                let tx_control = may_control_transaction(sql);
                self.cache.insert(sql, statement.clone(), tx_control);
                (statement, tx_control)
            }
        };
        if tx_control {
            self.maybe_in_transaction = true;
        }
        Ok(statement)
    }

    /// Runs a statement through the statement cache and returns its rows.
    pub fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Error> {
        let statement = self.prepare_cached(sql)?;
        let result = self.client.query(&statement, params);
        self.observe(Some(sql), result)
    }

    /// Like [`query`](Self::query) for exactly one row; zero or several rows are an error.
    pub fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, Error> {
        let statement = self.prepare_cached(sql)?;
        let result = self.client.query_one(&statement, params);
        self.observe(Some(sql), result)
    }

    /// Like [`query`](Self::query) for at most one row.
    pub fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, Error> {
        let statement = self.prepare_cached(sql)?;
        let result = self.client.query_opt(&statement, params);
        self.observe(Some(sql), result)
    }

    /// Runs a statement through the statement cache and returns the number of rows affected.
    pub fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        let statement = self.prepare_cached(sql)?;
        let result = self.client.execute(&statement, params);
        self.observe(Some(sql), result)
    }

    /// Runs a statement prepared with [`prepare_cached`](Self::prepare_cached) and returns its
    /// rows together with the number of rows the command affected (for `UPDATE … RETURNING`
    /// both matter; for a plain `SELECT` the count is the number of rows).
    pub fn query_prepared(
        &mut self,
        statement: &Statement,
        params: Params<'_>,
    ) -> Result<(Vec<Row>, u64), Error> {
        use postgres::fallible_iterator::FallibleIterator;
        let result = self
            .client
            .query_raw(statement, params.iter().copied())
            .and_then(|mut it| {
                let mut rows = Vec::new();
                while let Some(row) = it.next()? {
                    rows.push(row);
                }
                let affected = it.rows_affected().unwrap_or(rows.len() as u64);
                Ok((rows, affected))
            });
        self.observe(None, result)
    }

    /// Runs a statement prepared with [`prepare_cached`](Self::prepare_cached) and returns the
    /// number of rows affected.
    pub fn execute_prepared(
        &mut self,
        statement: &Statement,
        params: Params<'_>,
    ) -> Result<u64, Error> {
        let result = self.client.execute(statement, params);
        self.observe(None, result)
    }

    /// `BEGIN`: starts a transaction. Prefer [`transaction`](Self::transaction), which cannot
    /// forget to end it; a session released with a transaction open is rolled back.
    pub fn begin(&mut self) -> Result<(), Error> {
        self.maybe_in_transaction = true;
        let result = self.client.batch_execute("BEGIN");
        self.observe(None, result)
    }

    /// `COMMIT`: commits the open transaction. On success the session is known to be idle, so
    /// its release costs no round trip.
    pub fn commit(&mut self) -> Result<(), Error> {
        let result = self.client.batch_execute("COMMIT");
        self.observe(None, result)?;
        if self.tx_depth == 0 {
            self.maybe_in_transaction = false;
        }
        Ok(())
    }

    /// `ROLLBACK`: rolls back the open transaction (if any).
    pub fn rollback(&mut self) -> Result<(), Error> {
        let result = self.client.batch_execute("ROLLBACK");
        self.observe(None, result)?;
        if self.tx_depth == 0 {
            self.maybe_in_transaction = false;
        }
        Ok(())
    }

    /// Runs one or more `;`-separated statements with the simple protocol (no parameters).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        if may_control_transaction(sql) {
            self.maybe_in_transaction = true;
        }
        let result = self.client.batch_execute(sql);
        self.observe(None, result)
    }

    /// Runs one or more statements with the simple protocol and returns every value as text.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<postgres::SimpleQueryMessage>, Error> {
        if may_control_transaction(sql) {
            self.maybe_in_transaction = true;
        }
        let result = self.client.simple_query(sql);
        self.observe(None, result)
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
        // Nested calls use savepoints, so an inner failure undoes only the inner work.
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
        let begun = self.client.batch_execute(&begin);
        self.observe(None, begun)?;
        self.maybe_in_transaction = true;
        self.tx_depth = depth + 1;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(self)));
        self.tx_depth = depth;
        let undo_work = |conn: &mut PgConnection| match &undo {
            None => {
                conn.reset_transaction();
            }
            Some(sql) => {
                let undone = conn.client.batch_execute(sql);
                if conn.observe(None, undone).is_err() {
                    conn.broken = true;
                }
            }
        };
        match outcome {
            Ok(Ok(value)) => {
                let committed = self.client.batch_execute(&commit);
                self.observe(None, committed)?;
                if depth == 0 {
                    self.maybe_in_transaction = false;
                }
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

    /// Rolls back whatever transaction may be open; true when the session is clean afterwards.
    pub(crate) fn reset_transaction(&mut self) -> bool {
        if self.is_broken() {
            return false;
        }
        let result = self.client.batch_execute("ROLLBACK");
        match self.observe(None, result) {
            Ok(()) => {
                self.maybe_in_transaction = false;
                true
            }
            Err(_) => {
                self.broken = true;
                false
            }
        }
    }

    /// The zero-cost probe: no round trip, one non-blocking `poll(2)` at most.
    pub(crate) fn probe(&self) -> Probe {
        if self.is_broken() {
            return Probe::Broken;
        }
        match self.fd {
            Some(fd) if os::readable_or_hung_up(fd) => Probe::Suspect,
            _ => Probe::Healthy,
        }
    }

    /// A round trip bounded by `timeout`. A timed-out session is unusable afterwards.
    pub(crate) fn validate(&mut self, timeout: Duration) -> Result<(), Error> {
        let result = self.client.is_valid(timeout);
        self.observe(None, result)
            .inspect_err(|_| self.broken = true)
    }

    /// Statement cache capacity this connection was opened with.
    pub fn statement_cache_capacity(&self) -> usize {
        self.cache.capacity()
    }

    /// Forgets every cached statement (for example after `DISCARD ALL`).
    pub fn clear_statement_cache(&mut self) {
        self.cache.clear();
    }
}

impl std::fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConnection")
            .field("backend_pid", &self.backend_pid)
            .field("broken", &self.is_broken())
            .field("maybe_in_transaction", &self.maybe_in_transaction)
            .field("cached_statements", &self.cache.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::may_control_transaction;

    #[test]
    fn transaction_control_is_recognised() {
        for sql in [
            "BEGIN",
            "begin isolation level serializable",
            "START TRANSACTION",
            "commit",
            "END",
            "ROLLBACK",
            "abort",
            "SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "insert into t values (1); COMMIT",
            "CALL proc()",
            "DO $$ BEGIN PERFORM 1; END $$",
        ] {
            assert!(may_control_transaction(sql), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "SELECT $1::int",
            "INSERT INTO t (a) VALUES ($1)",
            "UPDATE accounts SET balance = 0",
            "SELECT beginning FROM started",
        ] {
            assert!(!may_control_transaction(sql), "{sql}");
        }
    }
}
