//! The one error type of pgpool.
//!
//! An [`Error`] has a [`ErrorKind`] (what went wrong, from the caller's point of view), a
//! message, an optional SQLSTATE when the server sent one, an optional source (for example the
//! underlying [`postgres::Error`]), and two facts that retry logic needs: whether the statement
//! may have run ([`Error::outcome_unknown`]) and whether trying again is safe
//! ([`Error::is_retry_safe`]).
//!
//! Errors are cheap to clone (one reference count), so the pool can keep the last connect error
//! and hand the same error to a waiter and to a log line.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::client::db_error::DbError;

/// What kind of failure an [`Error`] is. New kinds may be added; match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A deadline passed: no connection became available before the acquire deadline, or a
    /// query ran past its timeout (then it was cancelled on the server, SQLSTATE `57014`).
    Timeout,
    /// The pool is closed (or was closed while the caller waited).
    Closed,
    /// `max_waiters` callers were already queued: the pool refused to queue one more.
    Overloaded,
    /// Opening a new connection failed (network, authentication, unknown database, ...).
    Connect,
    /// The server answered a statement with an error; [`Error::sqlstate`] names it.
    Server,
    /// The connection broke (I/O error, server terminated the session, protocol error).
    Broken,
    /// A configuration value was invalid; the message names the option.
    Config,
    /// Code running inside the pool panicked; the pool recovered and stays usable.
    Panic,
    /// The caller passed something the API cannot accept (bad argument, misuse).
    Usage,
}

impl ErrorKind {
    /// A short, stable, lower-case name (`"timeout"`, `"server"`, ...), used in logs and by the C API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Connect => "connect",
            ErrorKind::Server => "server",
            ErrorKind::Broken => "broken",
            ErrorKind::Config => "config",
            ErrorKind::Panic => "panic",
            ErrorKind::Usage => "usage",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    sqlstate: Option<String>,
    option: Option<&'static str>,
    outcome_unknown: bool,
    /// A connect failure that retrying cannot fix (besides the permanent SQLSTATEs).
    permanent: bool,
    /// [`Error::forked`]: the C ABI gives it a code of its own.
    forked: bool,
    db: Option<Box<DbError>>,
    source: Option<Source>,
}

/// A pgpool error. See the [module documentation](self).
///
/// ```
/// use pgpool::{Error, ErrorKind};
/// let err = Error::config("max_size", "must be at least 1");
/// assert_eq!(err.kind(), ErrorKind::Config);
/// assert_eq!(err.option(), Some("max_size"));
/// assert!(err.to_string().contains("max_size"));
/// ```
#[derive(Clone)]
pub struct Error(Arc<Inner>);

/// SQLSTATEs after which the session is gone: admin shutdown, crash shutdown, cannot connect now,
/// idle-session timeout, and the whole connection-exception class (`08…`).
fn sqlstate_breaks_session(code: &str) -> bool {
    matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "25P03") || code.starts_with("08")
}

/// Connect errors that no amount of retrying will fix: bad password, no such role or
/// authorization failure, unknown database, a startup option the server rejects
/// (`options='-c statement_timeout=abc'`: 22023), and all of class 42 (syntax error or access
/// rule violation: an unknown parameter 42704, no privilege to connect 42501, an `init_sql`
/// that does not parse 42601).
fn sqlstate_is_permanent_connect(code: &str) -> bool {
    matches!(code, "28P01" | "28000" | "3D000" | "22023") || code.starts_with("42")
}

impl Error {
    fn build(kind: ErrorKind, message: String) -> Inner {
        Inner {
            kind,
            message,
            sqlstate: None,
            option: None,
            outcome_unknown: false,
            permanent: false,
            forked: false,
            db: None,
            source: None,
        }
    }

    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Arc::new(Error::build(kind, message.into())))
    }

    /// An invalid configuration value; `option` is the option's name as the builder spells it.
    pub fn config(option: &'static str, message: impl fmt::Display) -> Error {
        let mut inner = Error::build(ErrorKind::Config, format!("invalid {option}: {message}"));
        inner.option = Some(option);
        Error(Arc::new(inner))
    }

    /// The pool was made before this process forked: its sessions belong to the parent.
    pub(crate) fn forked() -> Error {
        let mut inner = Error::build(
            ErrorKind::Usage,
            "this pool was created before fork(): its connections belong to the parent process; \
             create a new pool in the child"
                .to_string(),
        );
        inner.forked = true;
        Error(Arc::new(inner))
    }

    /// True for [`Error::forked`] (a [`ErrorKind::Usage`] error).
    pub(crate) fn is_forked(&self) -> bool {
        self.0.forked
    }

    /// A misuse of the API (bad argument, wrong state).
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    pub(crate) fn closed() -> Error {
        Error::new(ErrorKind::Closed, "the pool is closed")
    }

    pub(crate) fn panic(context: &str, payload: &(dyn std::any::Any + Send)) -> Error {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        Error::new(ErrorKind::Panic, format!("panic in {context}: {what}"))
    }

    /// An acquire refused because the circuit breaker is open: the last connect error (its
    /// SQLSTATE and server fields kept), with how long the pool has been failing.
    pub(crate) fn unavailable(last: &Error, failures: u32, ago: Duration) -> Error {
        let mut inner = (*last.0).clone();
        inner.kind = ErrorKind::Connect;
        inner.message = format!(
            "database unavailable: {failures} connect attempt(s) failed in a row, the last {} ms \
             ago (a background probe keeps retrying): {}",
            ago.as_millis(),
            last.0.message
        );
        inner.source = Some(Arc::new(last.clone()));
        Error(Arc::new(inner))
    }

    pub(crate) fn timeout(waited: Duration, state: &str, last_connect: Option<&Error>) -> Error {
        let mut message = format!(
            "timed out after {} ms waiting for a connection ({state})",
            waited.as_millis()
        );
        if let Some(last) = last_connect {
            message.push_str("; last connect error: ");
            message.push_str(&last.to_string());
        }
        let mut inner = Error::build(ErrorKind::Timeout, message);
        inner.source = last_connect.map(|e| Arc::new(e.clone()) as Source);
        Error(Arc::new(inner))
    }

    /// An error the server sent on an open session. `cancelled`: the call's deadline had
    /// passed and a cancel was sent, so `57014` is reported as a timeout.
    ///
    /// Connection-class SQLSTATEs (`08…`, `57P01`–`57P03`, …) and FATAL/PANIC severities
    /// mean the session is gone: [`ErrorKind::Broken`], outcome unknown.
    pub(crate) fn from_db(db: DbError, cancelled: bool) -> Error {
        let broken =
            sqlstate_breaks_session(db.code()) || matches!(db.severity(), "FATAL" | "PANIC");
        let kind = if broken {
            ErrorKind::Broken
        } else if cancelled && db.code() == "57014" {
            ErrorKind::Timeout
        } else {
            ErrorKind::Server
        };
        let message = if kind == ErrorKind::Timeout {
            format!("query timed out and was cancelled on the server: {db}")
        } else {
            db.to_string()
        };
        let mut inner = Error::build(kind, message);
        inner.outcome_unknown = broken;
        inner.sqlstate = Some(db.code().to_string());
        inner.db = Some(Box::new(db));
        Error(Arc::new(inner))
    }

    /// An error the server sent while a session was being opened.
    pub(crate) fn connect_db(db: DbError, context: &str) -> Error {
        let mut inner = Error::build(ErrorKind::Connect, format!("{context}: {db}"));
        inner.sqlstate = Some(db.code().to_string());
        inner.db = Some(Box::new(db));
        Error(Arc::new(inner))
    }

    /// A connect failure that no retry can fix (no password available, authentication
    /// method not supported, TLS refused under `sslmode=require`, certificate rejected, …).
    pub(crate) fn connect_permanent(message: impl Into<String>) -> Error {
        let mut inner = Error::build(ErrorKind::Connect, message.into());
        inner.permanent = true;
        Error(Arc::new(inner))
    }

    /// Adds context in front of the message, keeping everything else.
    pub(crate) fn context(self, context: &str) -> Error {
        self.changed(|e| e.message = format!("{context}: {}", e.message))
    }

    /// The same error with another message.
    pub(crate) fn with_message(self, message: String) -> Error {
        self.changed(|e| e.message = message)
    }

    /// The same error as a settings error (option `conninfo`), for settings that can only
    /// be checked when they are loaded (certificate files).
    pub(crate) fn into_config(self) -> Error {
        self.changed(|e| {
            let (message, source) = (std::mem::take(&mut e.message), e.source.take());
            *e = Error::build(ErrorKind::Config, message);
            e.option = Some("conninfo");
            e.source = source;
        })
    }

    /// The same error as a connect failure (for errors met while opening a session).
    pub(crate) fn into_connect(self) -> Error {
        if self.0.kind == ErrorKind::Connect {
            return self;
        }
        self.changed(|e| {
            e.kind = ErrorKind::Connect;
            e.option = None;
            e.outcome_unknown = false;
        })
    }

    /// This error with `f` applied to its fields (copied unless this is the only handle).
    fn changed(self, f: impl FnOnce(&mut Inner)) -> Error {
        let mut inner = Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone());
        f(&mut inner);
        Error(Arc::new(inner))
    }

    /// A COMMIT of a transaction the server had already failed: it was rolled back.
    pub(crate) fn rolled_back() -> Error {
        let mut inner = Error::build(
            ErrorKind::Server,
            "the transaction was rolled back, not committed: a statement in it had failed \
             (SQLSTATE 25P02)"
                .to_string(),
        );
        inner.sqlstate = Some("25P02".to_string());
        Error(Arc::new(inner))
    }

    /// An I/O failure on a session: it is broken and the statement's outcome is unknown.
    pub(crate) fn io(context: &str, err: std::io::Error) -> Error {
        // EAGAIN from a socket timeout is one of our deadlines; ETIMEDOUT is the kernel giving
        // up on the peer (TCP_USER_TIMEOUT, keepalive): a dead connection, not a deadline.
        let (kind, hint) = match err.kind() {
            std::io::ErrorKind::WouldBlock => (ErrorKind::Timeout, ""),
            std::io::ErrorKind::TimedOut => (
                ErrorKind::Broken,
                " (the network stopped answering: tcp_user_timeout or TCP keepalive gave up)",
            ),
            _ => (ErrorKind::Broken, ""),
        };
        let mut inner = Error::build(kind, format!("{context}: {err}{hint}"));
        inner.outcome_unknown = true;
        inner.source = Some(Arc::new(err));
        Error(Arc::new(inner))
    }

    /// A deadline passed on a session, which is closed because of it.
    pub(crate) fn timeout_io(message: &str) -> Error {
        let mut inner = Error::build(ErrorKind::Timeout, message.to_string());
        inner.outcome_unknown = true;
        Error(Arc::new(inner))
    }

    /// The server broke the protocol (or sent something this client does not handle): the
    /// session is closed.
    pub(crate) fn protocol(message: impl Into<String>) -> Error {
        let mut inner = Error::build(ErrorKind::Broken, message.into());
        inner.outcome_unknown = true;
        Error(Arc::new(inner))
    }

    pub(crate) fn protocol_io(err: std::io::Error) -> Error {
        Error::protocol(format!("malformed message from the server: {err}"))
    }

    /// The server's error or notice fields, when the server sent this error.
    pub fn db_error(&self) -> Option<&DbError> {
        self.0.db.as_deref()
    }

    /// Wraps a `postgres` error from a statement on an open connection.
    ///
    /// A server error keeps its kind `Server` unless its SQLSTATE means the session is gone;
    /// I/O and "closed" errors are `Broken` with an unknown outcome, because the statement may
    /// have reached the server before the connection died.
    pub fn from_query(err: postgres::Error) -> Error {
        let sqlstate = err.code().map(|c| c.code().to_string());
        let broken = err.is_closed()
            || sqlstate.as_deref().is_some_and(sqlstate_breaks_session)
            || (sqlstate.is_none() && is_io_like(&err));
        let kind = if broken {
            ErrorKind::Broken
        } else if sqlstate.is_some() {
            ErrorKind::Server
        } else {
            // Timeouts, conversions, unexpected messages: the driver's own failures.
            ErrorKind::Usage
        };
        let mut inner = Error::build(kind, describe_pg(&err));
        inner.outcome_unknown = kind == ErrorKind::Broken;
        inner.sqlstate = sqlstate;
        inner.source = Some(Arc::new(err));
        Error(Arc::new(inner))
    }

    /// Wraps a `postgres` error from opening a connection.
    pub fn from_connect(err: postgres::Error) -> Error {
        let mut inner = Error::build(ErrorKind::Connect, describe_pg(&err));
        inner.sqlstate = err.code().map(|c| c.code().to_string());
        inner.source = Some(Arc::new(err));
        Error(Arc::new(inner))
    }

    /// Wraps any error as a connect failure (for custom managers).
    pub fn connect_other(err: impl std::error::Error + Send + Sync + 'static) -> Error {
        let mut inner = Error::build(ErrorKind::Connect, err.to_string());
        inner.source = Some(Arc::new(err));
        Error(Arc::new(inner))
    }

    /// A TLS failure while connecting (certificate files, verification, the handshake);
    /// `source` is the underlying TLS or I/O error when there is one.
    pub(crate) fn tls(
        message: impl Into<String>,
        source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        let mut inner = Error::build(ErrorKind::Connect, message.into());
        inner.source = source;
        Error(Arc::new(inner))
    }

    /// Like [`Error::tls`], for a failure no retry can fix (the server's certificate was
    /// rejected, the handshake cannot agree on anything): [`Error::is_permanent_connect`].
    pub(crate) fn tls_permanent(
        message: impl Into<String>,
        source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        let mut inner = Error::build(ErrorKind::Connect, message.into());
        inner.permanent = true;
        inner.source = source;
        Error(Arc::new(inner))
    }

    /// Wraps any error as a broken connection (for custom managers).
    pub fn broken(message: impl Into<String>) -> Error {
        let mut inner = Error::build(ErrorKind::Broken, message.into());
        inner.outcome_unknown = true;
        Error(Arc::new(inner))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The human-readable message (also what `Display` prints).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The five-character SQLSTATE the server sent, if any (`"23505"`, `"57P01"`, ...).
    pub fn sqlstate(&self) -> Option<&str> {
        self.0.sqlstate.as_deref()
    }

    /// For [`ErrorKind::Config`] errors: the name of the offending option.
    pub fn option(&self) -> Option<&'static str> {
        self.0.option
    }

    /// The underlying `postgres` error, if this error wraps one.
    pub fn as_postgres(&self) -> Option<&postgres::Error> {
        self.0.source.as_deref()?.downcast_ref::<postgres::Error>()
    }

    /// True for acquire timeouts and query timeouts.
    pub fn is_timeout(&self) -> bool {
        self.0.kind == ErrorKind::Timeout
    }

    /// True when the pool was closed.
    pub fn is_closed(&self) -> bool {
        self.0.kind == ErrorKind::Closed
    }

    /// True when the connection this error came from can no longer be used.
    pub fn is_broken(&self) -> bool {
        self.0.kind == ErrorKind::Broken
    }

    /// A connect error that retrying cannot fix: wrong password, unknown role or database.
    pub fn is_permanent_connect(&self) -> bool {
        self.0.kind == ErrorKind::Connect
            && (self.0.permanent || self.sqlstate().is_some_and(sqlstate_is_permanent_connect))
    }

    /// True when the statement may or may not have been executed by the server (the connection
    /// died after it was sent). A caller must not blindly retry a non-idempotent statement.
    pub fn outcome_unknown(&self) -> bool {
        self.0.outcome_unknown
    }

    /// True when running the same work again is safe and may succeed: nothing ran (timeout,
    /// overload, transient connect failure) or the server rolled it back for a reason that
    /// retrying can cure (serialization failure `40001`, deadlock `40P01`).
    pub fn is_retry_safe(&self) -> bool {
        match self.0.kind {
            ErrorKind::Timeout => !self.0.outcome_unknown,
            ErrorKind::Overloaded => true,
            ErrorKind::Connect => !self.is_permanent_connect(),
            ErrorKind::Server => matches!(self.sqlstate(), Some("40001" | "40P01")),
            ErrorKind::Broken => !self.0.outcome_unknown,
            _ => false,
        }
    }
}

/// `postgres::Error`'s Display drops the server's detail; add SQLSTATE, detail and hint.
fn describe_pg(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut s = format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(detail) = db.detail() {
                s.push_str("; detail: ");
                s.push_str(detail);
            }
            if let Some(hint) = db.hint() {
                s.push_str("; hint: ");
                s.push_str(hint);
            }
            s
        }
        None => {
            let mut s = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(inner) = source {
                let text = inner.to_string();
                if !s.contains(&text) {
                    s.push_str(": ");
                    s.push_str(&text);
                }
                source = inner.source();
            }
            s
        }
    }
}

fn is_io_like(err: &postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        if inner.is::<std::io::Error>() {
            return true;
        }
        source = inner.source();
    }
    // "unexpected EOF", "error communicating with the server" and similar carry no io::Error
    // in every version; the Display text is the stable part.
    let text = err.to_string();
    text.contains("communicating with the server") || text.contains("unexpected EOF")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(code) = &self.0.sqlstate {
            d.field("sqlstate", code);
        }
        if self.0.outcome_unknown {
            d.field("outcome_unknown", &true);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<postgres::Error> for Error {
    fn from(err: postgres::Error) -> Error {
        Error::from_query(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_error_names_option() {
        let e = Error::config("min_idle", "must not exceed max_size (8)");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.option(), Some("min_idle"));
        assert_eq!(
            e.to_string(),
            "invalid min_idle: must not exceed max_size (8)"
        );
        assert!(!e.is_retry_safe());
    }

    #[test]
    fn timeout_carries_state_and_last_connect_error() {
        let last = Error::new(ErrorKind::Connect, "connection refused");
        let e = Error::timeout(Duration::from_millis(250), "open 0/4", Some(&last));
        assert!(e.is_timeout());
        assert!(e.is_retry_safe());
        let text = e.to_string();
        assert!(text.contains("250 ms"), "{text}");
        assert!(text.contains("open 0/4"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
