//! `pgpool_conn`: a connection checked out of a pool.
//!
//! A connection handle may move between threads but is used by one thread at a time: a
//! second thread using it concurrently gets `PGPOOL_ERR_BUSY`. Releasing it (or discarding
//! it) ends the handle; using it afterwards is `PGPOOL_ERR_INVALID_HANDLE`.

use std::ffi::c_char;
use std::sync::{Mutex, RwLock};

use crate::connection::PgConnection;
use crate::sync::{lock, read, try_lock, write};
use crate::PooledConnection;

use super::args;
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::{Inherit, Registry};
use super::panic::boundary;
use super::query;
use super::result::{self, pgpool_result};

/// Opaque connection handle. Give it back with `pgpool_conn_release` or
/// `pgpool_conn_discard`.
#[allow(non_camel_case_types)]
pub struct pgpool_conn {
    _private: (),
}

/// Where a COPY started through the C ABI stands (the Rust API keeps this in `CopyIn` /
/// `CopyOut` borrows, which cannot cross calls).
pub(crate) enum CopyState {
    None,
    In,
    Out {
        /// Data received but not yet handed to the caller.
        pending: bytes::Bytes,
        /// The row count, once the COPY has ended.
        rows: Option<u64>,
    },
}

pub(crate) struct SlotState {
    guard: Option<PooledConnection>,
    pub(crate) copy: CopyState,
}

/// A connection handle's entry: the guard behind a per-handle lock, and the session's
/// cancel key outside it, so a cancel works while another thread runs a statement.
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    /// Held shared while a cancel request is in flight; release takes it exclusively, so a
    /// session never goes back to the pool (and to another holder) with a cancel on its way.
    cancel: RwLock<Option<crate::CancelToken>>,
}

/// A connection of a pool made before `fork()` is the parent's session: refused in the
/// child (before its locks are touched: a parent thread may have held them), forgotten when
/// released there.
pub(crate) static CONNS: Registry<Slot> = Registry::new(0xC1, "pgpool_conn", Inherit::Refuse);

/// Registers a checked-out connection and returns its handle.
pub(crate) fn publish_conn(guard: PooledConnection) -> Result<*mut pgpool_conn, FfiError> {
    let cancel = guard.cancel_token();
    let slot = Slot {
        state: Mutex::new(SlotState {
            guard: Some(guard),
            copy: CopyState::None,
        }),
        cancel: RwLock::new(cancel),
    };
    Ok(CONNS.insert(slot)? as *mut pgpool_conn)
}

fn busy() -> FfiError {
    FfiError::new(
        pgpool_code::PGPOOL_ERR_BUSY,
        "the connection handle is in use by another thread",
    )
}

fn released() -> FfiError {
    FfiError::invalid_handle("invalid pgpool_conn handle: already released".into())
}

/// Runs `f` on the connection behind `conn` and its COPY state.
pub(crate) fn with_copy<T>(
    conn: *const pgpool_conn,
    f: impl FnOnce(&mut PgConnection, &mut CopyState) -> Result<T, FfiError>,
) -> Result<T, FfiError> {
    let slot = CONNS.get(args::handle(conn, "conn")?)?;
    let mut state = try_lock(&slot.state).ok_or_else(busy)?;
    let SlotState { guard, copy } = &mut *state;
    match guard.as_mut() {
        Some(pooled) => f(pooled, copy),
        None => Err(released()),
    }
}

/// Runs `f` on the connection behind `conn` (not while a COPY is in progress on it).
pub(crate) fn with_conn<T>(
    conn: *mut pgpool_conn,
    f: impl FnOnce(&mut PgConnection) -> Result<T, FfiError>,
) -> Result<T, FfiError> {
    with_copy(conn, |c, copy| match copy {
        CopyState::None => f(c),
        _ => Err(FfiError::usage(
            "a COPY is in progress on this connection: finish it first \
             (pgpool_conn_copy_in_end / _abort, or pgpool_conn_copy_out_read to the end)",
        )),
    })
}

/// Ends the handle and hands the connection to `finish` (once any concurrent use is over).
fn take_conn(
    conn: *mut pgpool_conn,
    finish: impl FnOnce(PooledConnection),
) -> Result<(), FfiError> {
    let Some(slot) = CONNS.remove(args::handle(conn, "conn")?)? else {
        // A parent's connection in a forked child: forgotten, nothing sent or locked.
        return Ok(());
    };
    // Wait for a cancel in flight (at most its 5 s bound), then no more can start.
    write(&slot.cancel).take();
    let taken = lock(&slot.state).guard.take();
    if let Some(pooled) = taken {
        finish(pooled);
    }
    Ok(())
}

/// Asks the server to cancel the statement running on `conn`. The one function that may be
/// called while another thread is using the handle (that is its point: a watchdog, or a Go
/// context being cancelled). The running call then returns `PGPOOL_ERR_SERVER` with SQLSTATE
/// 57014, and the connection stays usable. A cancel that arrives when nothing runs is ignored
/// by the server and never affects a later statement: this call returns once the server has
/// taken the request, and releasing the handle waits for a cancel in flight.
///
/// Blocking: one connection to the server, at most 5 s.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE (released);
/// PGPOOL_ERR_USAGE (the server sent no cancel key); PGPOOL_ERR_BROKEN or
/// PGPOOL_ERR_TIMEOUT (the cancel request could not be delivered); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_cancel(
    conn: *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            let slot = CONNS.get(args::handle(conn, "conn")?)?;
            let token = read(&slot.cancel);
            let token = token.as_ref().ok_or_else(|| {
                FfiError::usage(
                    "the server sent no cancel key for this session (or it was released)",
                )
            })?;
            token.cancel()?;
            Ok(())
        })
    }
}

/// Gives the connection back to the pool (rolled back first if a transaction may be open).
/// The handle is dead afterwards.
///
/// Blocks for at most one bounded `ROLLBACK` round trip, and until a concurrent use of the
/// same handle finishes.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// In a child process after `fork()`, releasing a connection acquired before the fork
/// forgets it: `PGPOOL_OK`, and the parent's session is neither reset nor closed (nothing is
/// sent, no lock is taken, even one a parent thread held at the fork).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE (released already).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_release(
    conn: *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || take_conn(conn, drop)) }
}

/// Closes the connection instead of returning it (after a session change the next user must
/// not inherit); the pool opens a replacement if it needs one. The handle is dead afterwards.
///
/// Non-blocking (closing happens in the background). In a forked child, as
/// `pgpool_conn_release` (the parent's session is forgotten, not closed).
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE (released already).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_discard(
    conn: *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || take_conn(conn, PooledConnection::discard)) }
}

/// Runs `sql` with `nparams` parameters in text form (`params[i]` is `$i+1`, NULL for SQL
/// NULL; the server parses each as the type the statement expects, like libpq's
/// `PQexecParams`), through the connection's prepared-statement cache.
///
/// Ownership: on success `*out_result` receives a result freed with `pgpool_result_free`.
/// Blocking: one or two round trips, bounded by `statement_timeout` when configured.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_INVALID_ARGUMENT (parameter count);
/// PGPOOL_ERR_USAGE (a COPY in progress or started by `sql`); PGPOOL_ERR_SERVER;
/// PGPOOL_ERR_TIMEOUT (query timeout: SQLSTATE 57014); PGPOOL_ERR_BROKEN; PGPOOL_ERR_USAGE (too
/// many live results); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `sql` NULL or NUL-terminated; `params` NULL or `nparams` readable pointers, each NULL or
/// NUL-terminated; `out_result`/`out_err` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_query(
    conn: *mut pgpool_conn,
    sql: *const c_char,
    nparams: usize,
    params: *const *const c_char,
    out_result: *mut *mut pgpool_result,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let sql = args::string(sql, "sql")?;
            let params = args::params(nparams, params)?;
            args::out(out_result, "out_result")?;
            let rendered = with_conn(conn, |c| query::query(c, sql, &params))?;
            args::write(out_result, result::publish(rendered)?);
            Ok(())
        })
    }
}

/// Like `pgpool_conn_query` for a command: stores the number of rows affected in
/// `*out_rows` (no result object).
///
/// Blocking and errors as `pgpool_conn_query`.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_INVALID_ARGUMENT (parameter count);
/// PGPOOL_ERR_USAGE (a COPY in progress or started by `sql`); PGPOOL_ERR_SERVER;
/// PGPOOL_ERR_TIMEOUT (query timeout: SQLSTATE 57014); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// As `pgpool_conn_query`, with `out_rows` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_execute(
    conn: *mut pgpool_conn,
    sql: *const c_char,
    nparams: usize,
    params: *const *const c_char,
    out_rows: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let sql = args::string(sql, "sql")?;
            let params = args::params(nparams, params)?;
            args::out(out_rows, "out_rows")?;
            let rows = with_conn(conn, |c| query::execute(c, sql, &params))?;
            args::write(out_rows, rows);
            Ok(())
        })
    }
}

/// Runs one or more `;`-separated statements with the simple protocol (no parameters, no
/// rows returned). Blocking: one round trip.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (a COPY in progress or started
/// by `sql`); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query timeout); PGPOOL_ERR_BROKEN;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `sql` NULL or NUL-terminated; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_batch(
    conn: *mut pgpool_conn,
    sql: *const c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let sql = args::string(sql, "sql")?;
            with_conn(conn, |c| Ok(c.batch_execute(sql)?))
        })
    }
}

/// Runs a fixed transaction-control statement.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[track_caller]
unsafe fn control(
    conn: *mut pgpool_conn,
    run: fn(&mut PgConnection) -> Result<(), crate::Error>,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || with_conn(conn, |c| Ok(run(c)?))) }
}

/// Starts a transaction (`BEGIN`). A connection released with a transaction open is rolled
/// back before reuse. Blocking: one round trip.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_USAGE (a COPY in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query
/// timeout); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_begin(
    conn: *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe { control(conn, PgConnection::begin, out_err) }
}

/// Commits the open transaction (`COMMIT`). Blocking: one round trip.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_USAGE (a COPY in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query
/// timeout); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_commit(
    conn: *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe { control(conn, PgConnection::commit, out_err) }
}

/// Rolls back the open transaction (`ROLLBACK`). Blocking: one round trip.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_USAGE (a COPY in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query
/// timeout); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_rollback(
    conn: *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe { control(conn, PgConnection::rollback, out_err) }
}

/// Stores the server process id of the session (`pg_backend_pid()`) in `*out_pid`.
/// Non-blocking.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_pid` and `out_err` must be NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_backend_pid(
    conn: *const pgpool_conn,
    out_pid: *mut i32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            args::out(out_pid, "out_pid")?;
            let pid = with_copy(conn, |c, _| Ok(c.backend_pid()))?;
            args::write(out_pid, pid);
            Ok(())
        })
    }
}

/// Stores the connection's id in `*out_id`: unique within its pool and never reused, the
/// `conn_id` of the pool's events about it (see `pgpool_config_set_event_callback`).
/// Non-blocking.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_id` and `out_err` must be NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_id(
    conn: *const pgpool_conn,
    out_id: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            args::out(out_id, "out_id")?;
            let slot = CONNS.get(args::handle(conn, "conn")?)?;
            let state = try_lock(&slot.state).ok_or_else(busy)?;
            let id = state.guard.as_ref().map(|g| g.id()).ok_or_else(released)?;
            args::write(out_id, id);
            Ok(())
        })
    }
}

/// Bounds every following statement on this connection until it is released: a statement
/// that runs longer is cancelled on the server and its call returns `PGPOOL_ERR_TIMEOUT`
/// with SQLSTATE 57014; the connection stays usable if the server answered the cancel within
/// 5 s (otherwise it is closed and the call returns `PGPOOL_ERR_TIMEOUT` with the
/// `outcome_unknown` flag set). `timeout_ms`: positive = milliseconds; 0 = no limit;
/// negative = the pool's configured `query_timeout_ms`. Release restores the pool's value.
/// Non-blocking.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_set_query_timeout(
    conn: *mut pgpool_conn,
    timeout_ms: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            with_copy(conn, |c, _| {
                match timeout_ms {
                    t if t < 0 => c.restore_query_timeout(),
                    0 => c.set_query_timeout(None),
                    t => c.set_query_timeout(Some(std::time::Duration::from_millis(t as u64))),
                }
                Ok(())
            })
        })
    }
}

/// Stores the session's transaction status, as the server reported it after the last
/// statement, in `*out_status`: 0 = idle, 1 = in a transaction, 2 = in a failed transaction
/// (statements are rejected until ROLLBACK). Non-blocking, no round trip.
///
/// Thread safety: the handle may move between threads but is used by one at a time (a
/// concurrent call returns `PGPOOL_ERR_BUSY`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_status` and `out_err` must be NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_transaction_status(
    conn: *const pgpool_conn,
    out_status: *mut i32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            args::out(out_status, "out_status")?;
            let status = with_copy(conn, |c, _| {
                Ok(match c.transaction_status() {
                    crate::TransactionStatus::Idle => 0,
                    crate::TransactionStatus::InTransaction => 1,
                    crate::TransactionStatus::Failed => 2,
                })
            })?;
            args::write(out_status, status);
            Ok(())
        })
    }
}

/// The callback of `pgpool_conn_transaction`: runs statements on `conn` (inside the
/// transaction) and returns 0 to commit, anything else to roll back.
#[allow(non_camel_case_types)]
pub type pgpool_tx_fn =
    Option<unsafe extern "C" fn(conn: *mut pgpool_conn, user_data: *mut std::ffi::c_void) -> i32>;

/// Runs `callback(conn, user_data)` between BEGIN and COMMIT: 0 from the callback commits;
/// anything else rolls back and returns PGPOOL_ERR_ROLLED_BACK, with the callback's value
/// in `*out_callback_result` (may be NULL; set whenever the callback ran, an exception to the
/// outputs rule). A COMMIT the server turns into a rollback (a
/// statement in the transaction failed) returns PGPOOL_ERR_SERVER with SQLSTATE 25P02, never
/// PGPOOL_OK. The handle is free for the callback's own calls while it runs.
///
/// Blocking: BEGIN and COMMIT/ROLLBACK round trips plus the callback.
/// Returns: PGPOOL_OK (committed); PGPOOL_ERR_ROLLED_BACK; PGPOOL_ERR_NULL_ARGUMENT;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (a transaction or COPY
/// already in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `callback` must be safe to call with these arguments; `out_callback_result` and
/// `out_err` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_transaction(
    conn: *mut pgpool_conn,
    callback: pgpool_tx_fn,
    user_data: *mut std::ffi::c_void,
    out_callback_result: *mut i32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees; the callback is the caller's.
    unsafe {
        boundary(out_err, || {
            let callback = callback.ok_or_else(|| FfiError::null("callback"))?;
            let mut ran = None;
            let result = run_transaction(conn, callback, user_data, &mut ran);
            if let (false, Some(rc)) = (out_callback_result.is_null(), ran) {
                args::write(out_callback_result, rc);
            }
            result
        })
    }
}

/// A transaction callback, known to be non-NULL.
pub(crate) type TxCallback =
    unsafe extern "C" fn(conn: *mut pgpool_conn, user_data: *mut std::ffi::c_void) -> i32;

/// `pgpool_conn_transaction`'s work: BEGIN, the callback, then COMMIT (0) or ROLLBACK.
/// `ran` receives the callback's value if it ran.
///
/// # Safety
/// `callback` is called with `conn` and `user_data` under the caller's guarantees.
pub(crate) unsafe fn run_transaction(
    conn: *mut pgpool_conn,
    callback: TxCallback,
    user_data: *mut std::ffi::c_void,
    ran: &mut Option<i32>,
) -> Result<(), FfiError> {
    with_conn(conn, |c| {
        if c.transaction_status() != crate::TransactionStatus::Idle {
            return Err(FfiError::usage(
                "a transaction is already open on this connection",
            ));
        }
        Ok(c.begin()?)
    })?;
    // The handle is unlocked while the callback runs, so it can use `conn`.
    // SAFETY: the caller's callback, with the caller's data.
    let rc = unsafe { callback(conn, user_data) };
    *ran = Some(rc);
    with_conn(conn, |c| {
        if rc != 0 {
            c.rollback()?;
            return Err(FfiError::new(
                pgpool_code::PGPOOL_ERR_ROLLED_BACK,
                format!("the callback returned {rc}: rolled back"),
            ));
        }
        if c.transaction_status() == crate::TransactionStatus::Failed {
            c.rollback()?;
            let mut e = FfiError::new(
                pgpool_code::PGPOOL_ERR_SERVER,
                "a statement in the transaction failed: rolled back, not committed",
            );
            e.sqlstate = Some("25P02".into());
            return Err(e);
        }
        Ok(c.commit()?)
    })
}

/// Whether the failed transaction on `conn` (its outcome `result`) may run again: the
/// server rolled it back for a reason a retry can cure (`40001`, `40P01`: in the COMMIT's
/// error, or in the failed statement the callback saw), or the connection failed before
/// anything could be committed. Never an outcome-unknown error.
pub(crate) fn may_retry(conn: *mut pgpool_conn, result: &FfiError) -> bool {
    if result.outcome_unknown {
        return false;
    }
    let rolled_back = result.code == pgpool_code::PGPOOL_ERR_ROLLED_BACK
        || result.sqlstate.as_deref() == Some("25P02");
    if rolled_back {
        // What made the callback give up (or the transaction fail) is the last failed call.
        return with_conn(conn, |c| {
            Ok(c.last_error().is_some_and(crate::Retry::is_retryable))
        })
        .unwrap_or(false);
    }
    match result.code {
        pgpool_code::PGPOOL_ERR_SERVER => {
            matches!(result.sqlstate.as_deref(), Some("40001" | "40P01"))
        }
        pgpool_code::PGPOOL_ERR_BROKEN => true,
        _ => false,
    }
}

/// Gives `conn` back to the pool (`pgpool_conn_release`'s work).
pub(crate) fn release(conn: *mut pgpool_conn) -> Result<(), FfiError> {
    take_conn(conn, drop)
}
