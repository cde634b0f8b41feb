//! COPY through buffers: `COPY … FROM STDIN` fed with `pgpool_conn_copy_in_write`,
//! `COPY … TO STDOUT` read with `pgpool_conn_copy_out_read`. While a COPY is in progress the
//! connection accepts only the COPY functions (and `pgpool_conn_cancel`); releasing it
//! mid-COPY closes the session instead of returning it to the pool.

use std::ffi::{c_char, c_void};

use bytes::Buf;

use crate::client::copy::{self, OutPiece};

use super::args;
use super::conn::{pgpool_conn, with_copy, CopyState};
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::panic::boundary;

fn not_in(what: &str) -> FfiError {
    FfiError::usage(format!("no COPY {what} is in progress on this connection"))
}

/// Starts `sql`, which must be `COPY … FROM STDIN` (`in`) or `COPY … TO STDOUT`.
fn begin(conn: *mut pgpool_conn, sql: &str, want_in: bool) -> Result<(), FfiError> {
    with_copy(conn, |c, state| {
        if !matches!(state, CopyState::None) {
            return Err(FfiError::usage(
                "a COPY is already in progress on this connection",
            ));
        }
        copy::begin(c.session_mut(), sql, want_in)?;
        *state = if want_in {
            CopyState::In
        } else {
            CopyState::Out {
                pending: bytes::Bytes::new(),
                rows: None,
            }
        };
        Ok(())
    })
}

/// Starts `sql`, a `COPY … FROM STDIN` statement; then send the data (in the COPY's format)
/// with `pgpool_conn_copy_in_write` and end with `pgpool_conn_copy_in_end` (or
/// `pgpool_conn_copy_in_abort`).
///
/// Blocking: one round trip.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (not a COPY FROM STDIN, or a
/// COPY already in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `sql` NULL or NUL-terminated; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_copy_in_begin(
    conn: *mut pgpool_conn,
    sql: *const c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `sql` is NULL-checked and read under the caller's guarantee.
    unsafe { boundary(out_err, || begin(conn, args::string(sql, "sql")?, true)) }
}

/// Sends `len` bytes of COPY data (any split: rows may span calls).
///
/// Blocking: only while the socket's send buffer is full.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_ARGUMENT (`len` above
/// PTRDIFF_MAX); PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (no COPY FROM
/// STDIN in progress); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `data` valid for reading `len` bytes; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_copy_in_write(
    conn: *mut pgpool_conn,
    data: *const c_void,
    len: usize,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: the slice is built from the caller's pointer and length after a NULL check.
    unsafe {
        boundary(out_err, || {
            let bytes = args::bytes(data.cast(), len, "data")?;
            with_copy(conn, |c, state| match state {
                CopyState::In if bytes.is_empty() => Ok(()),
                CopyState::In => Ok(copy::send_data(c.session_mut(), bytes)?),
                _ => Err(not_in("FROM STDIN")),
            })
        })
    }
}

/// Ends the COPY; `*out_rows` (may be NULL) receives the number of rows copied.
///
/// Blocking: one round trip.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_USAGE (no COPY FROM STDIN in progress); PGPOOL_ERR_SERVER (bad data: nothing
/// was copied); PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_rows` and `out_err` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_copy_in_end(
    conn: *mut pgpool_conn,
    out_rows: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_rows` is NULL-checked and written under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            let rows = with_copy(conn, |c, state| match state {
                CopyState::In => {
                    *state = CopyState::None;
                    Ok(copy::end_in(c.session_mut())?)
                }
                _ => Err(not_in("FROM STDIN")),
            })?;
            if !out_rows.is_null() {
                args::write(out_rows, rows);
            }
            Ok(())
        })
    }
}

/// Aborts the COPY with `reason` (NULL: a generic one); nothing is copied. `PGPOOL_OK` also
/// when the server had already rejected data sent before (the COPY is over either way).
///
/// Blocking: one round trip.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (no COPY FROM STDIN in
/// progress); PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `reason` NULL or NUL-terminated; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_copy_in_abort(
    conn: *mut pgpool_conn,
    reason: *const c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `reason` is read under the caller's guarantee after a NULL check.
    unsafe {
        boundary(out_err, || {
            let reason = if reason.is_null() {
                "COPY aborted by the client"
            } else {
                args::string(reason, "reason")?
            };
            with_copy(conn, |c, state| match state {
                CopyState::In => {
                    *state = CopyState::None;
                    Ok(copy::abort_in(c.session_mut(), reason)?)
                }
                _ => Err(not_in("FROM STDIN")),
            })
        })
    }
}

/// Starts `sql`, a `COPY … TO STDOUT` statement; then read the data with
/// `pgpool_conn_copy_out_read` until it reports the end.
///
/// Blocking: one round trip.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (not a COPY TO STDOUT, or a
/// COPY already in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `sql` NULL or NUL-terminated; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_copy_out_begin(
    conn: *mut pgpool_conn,
    sql: *const c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `sql` is NULL-checked and read under the caller's guarantee.
    unsafe { boundary(out_err, || begin(conn, args::string(sql, "sql")?, false)) }
}

/// Copies up to `cap` bytes of COPY data into `buf` and stores how many in `*out_len`.
/// `*out_len` 0 means the COPY has ended: the connection is usable again and `*out_rows`
/// (may be NULL) receives the number of rows copied.
///
/// Blocking: until data arrives.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_ARGUMENT (`cap` 0);
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (no COPY TO STDOUT in
/// progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `buf` valid for writing `cap` bytes; `out_len`, `out_rows`, `out_err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_copy_out_read(
    conn: *mut pgpool_conn,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    out_rows: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `buf` is NULL-checked and written for at most `cap` bytes, `out_len` and
    // `out_rows` after NULL checks, all under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            args::out(buf, "buf")?;
            args::out(out_len, "out_len")?;
            if cap == 0 {
                return Err(FfiError::invalid("cap must be at least 1"));
            }
            let (n, rows) = with_copy(conn, |c, state| {
                let CopyState::Out { pending, rows } = state else {
                    return Err(not_in("TO STDOUT"));
                };
                while pending.is_empty() && rows.is_none() {
                    match copy::next_out(c.session_mut()) {
                        Ok(OutPiece::Data(data)) => *pending = data,
                        Ok(OutPiece::End(n)) => *rows = Some(n),
                        Err(e) => {
                            *state = CopyState::None;
                            return Err(e.into());
                        }
                    }
                }
                if pending.is_empty() {
                    let n = rows.unwrap_or(0);
                    *state = CopyState::None;
                    return Ok((0, Some(n)));
                }
                let n = cap.min(pending.len());
                std::ptr::copy_nonoverlapping(pending.as_ptr(), buf.cast::<u8>(), n);
                pending.advance(n);
                Ok((n, None))
            })?;
            args::write(out_len, n);
            if let (Some(rows), false) = (rows, out_rows.is_null()) {
                args::write(out_rows, rows);
            }
            Ok(())
        })
    }
}
