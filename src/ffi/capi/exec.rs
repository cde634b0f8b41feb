//! Typed execution: `pgpool_stmt` (a statement prepared once per session, executed many
//! times) and the exec functions, which take a `pgpool_params` list and fill a reusable
//! `pgpool_result`.

use std::ffi::c_char;
use std::time::Duration;

use crate::pool::checkout::Site;

use super::args;
use super::conn::{pgpool_conn, with_conn};
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::{Inherit, Registry};
use super::panic::boundary;
use super::params::{self, pgpool_params};
use super::pool::{pgpool_pool, pool_of};
use super::query;
use super::result::{fill_into, pgpool_result};

/// Opaque prepared statement: SQL text and declared parameter types, not tied to one
/// connection. Each session prepares it once (on first use, through its statement cache)
/// and executes it by name afterwards. Free with `pgpool_stmt_free`; read-only, so it may
/// be used from several threads at once.
#[allow(non_camel_case_types)]
pub struct pgpool_stmt {
    _private: (),
}

pub(crate) struct Stmt {
    sql: String,
    types: Vec<u32>,
}

/// Statements are immutable text and types: usable in a forked child too.
pub(crate) static STMTS: Registry<Stmt> = Registry::new(0x57, "pgpool_stmt", Inherit::Share);

/// Creates a statement for `sql` (`$1`, `$2`, … for parameters) in `*out_stmt`.
/// `param_types` holds `ntypes` type OIDs for the first parameters (0 = let the server
/// infer; NULL when `ntypes` is 0); the rest are inferred. Nothing is sent to a server
/// here: syntax errors surface at the first execution.
///
/// Non-blocking, thread-safe.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 types).
///
/// # Safety
/// `sql` NULL or NUL-terminated; `param_types` valid for reading `ntypes` values;
/// `out_stmt`/`out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_stmt_new(
    sql: *const c_char,
    ntypes: usize,
    param_types: *const u32,
    out_stmt: *mut *mut pgpool_stmt,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and read under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let sql = args::string(sql, "sql")?;
            args::out(out_stmt, "out_stmt")?;
            #[cfg(feature = "test-hooks")]
            if sql == super::test_hooks::HOLD_TABLE_MAGIC {
                STMTS.hold_lock_for(super::test_hooks::HOLD_TABLE_FOR);
            }
            if ntypes > 65_535 {
                return Err(FfiError::invalid(
                    "a statement takes at most 65535 parameters",
                ));
            }
            let types = if ntypes == 0 {
                Vec::new()
            } else if param_types.is_null() {
                return Err(FfiError::null("param_types"));
            } else {
                std::slice::from_raw_parts(param_types, ntypes).to_vec()
            };
            let handle = STMTS.insert(Stmt {
                sql: sql.to_string(),
                types,
            })?;
            args::write(out_stmt, handle as *mut pgpool_stmt);
            Ok(())
        })
    }
}

/// Frees a statement (sessions that prepared it keep it in their cache). NULL is a no-op.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE.
#[no_mangle]
pub extern "C" fn pgpool_stmt_free(stmt: *mut pgpool_stmt) -> pgpool_code {
    if stmt.is_null() {
        return pgpool_code::PGPOOL_OK;
    }
    // SAFETY: a NULL out_err is always valid.
    unsafe {
        boundary(std::ptr::null_mut(), || {
            STMTS.remove(stmt as usize)?;
            Ok(())
        })
    }
}

/// Runs `sql` or `stmt` on `c` with `params`, rows into the caller's result, the count
/// through `out_affected`.
///
/// # Safety
/// `inout_res` and `out_affected` NULL or valid for reading and writing.
unsafe fn exec_on(
    c: &mut crate::PgConnection,
    sql: &str,
    types: &[u32],
    params: &[params::Param],
    inout_res: *mut *mut pgpool_result,
    out_affected: *mut u64,
) -> Result<(), FfiError> {
    let affected = if inout_res.is_null() {
        query::exec_typed(c, sql, types, params, None)?
    } else {
        let mut affected = 0;
        // SAFETY: non-NULL and valid under the caller's guarantee.
        unsafe {
            fill_into(inout_res, |result| {
                affected = query::exec_typed(c, sql, types, params, Some(result))?;
                Ok(())
            })?;
        }
        affected
    };
    if !out_affected.is_null() {
        // SAFETY: non-NULL and valid under the caller's guarantee.
        unsafe { out_affected.write(affected) };
    }
    Ok(())
}

/// Runs `sql` with typed `params` (NULL: none) on `conn`, through its statement cache, in
/// one round trip once the statement is cached.
///
/// Rows: when `inout_res` is NULL they are discarded (a command). When `*inout_res` is NULL
/// a new result is stored there (free it with `pgpool_result_free`). When `*inout_res` is a
/// result, it is reused: its previous rows and every pointer read from them become invalid,
/// and a loop that reuses one result allocates nothing per query in the steady state. On
/// failure `*inout_res` is not changed (a reused result is left empty).
/// `out_affected` (may be NULL) receives the command's row count.
///
/// Blocking: the statement's round trip, bounded by the connection's query timeout.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_INVALID_ARGUMENT (parameter count);
/// PGPOOL_ERR_USAGE (a parameter that does not fit its type, a COPY in progress or started
/// by `sql`); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query timeout: SQLSTATE 57014);
/// PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `sql` NULL or NUL-terminated; `inout_res`, `out_affected`, `out_err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_exec(
    conn: *mut pgpool_conn,
    sql: *const c_char,
    params: *const pgpool_params,
    inout_res: *mut *mut pgpool_result,
    out_affected: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let sql = args::string(sql, "sql")?;
            params::with_params(params, |values| {
                let types = params::declared_types(values);
                with_conn(conn, |c| {
                    exec_on(c, sql, &types, values, inout_res, out_affected)
                })
            })
        })
    }
}

/// As `pgpool_conn_exec`, for a statement made with `pgpool_stmt_new` (its declared
/// parameter types apply).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_INVALID_ARGUMENT (parameter count); PGPOOL_ERR_USAGE (a parameter that does
/// not fit its type, a COPY in progress or started by the statement); PGPOOL_ERR_SERVER;
/// PGPOOL_ERR_TIMEOUT (query timeout: SQLSTATE 57014); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `inout_res`, `out_affected`, `out_err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_exec_stmt(
    conn: *mut pgpool_conn,
    stmt: *const pgpool_stmt,
    params: *const pgpool_params,
    inout_res: *mut *mut pgpool_result,
    out_affected: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let stmt = STMTS.get(args::handle(stmt, "stmt")?)?;
            params::with_params(params, |values| {
                with_conn(conn, |c| {
                    exec_on(c, &stmt.sql, &stmt.types, values, inout_res, out_affected)
                })
            })
        })
    }
}

/// Acquires a connection from `pool` (waiting per `timeout_ms`: negative = the pool's
/// `acquire_timeout_ms`, 0 = only an idle one, positive = milliseconds), runs `stmt` (or,
/// when `stmt` is NULL, `sql`) as `pgpool_conn_exec_stmt` / `pgpool_conn_exec` do, and
/// releases the connection: one call for the whole round (one crossing for cgo callers).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY (the parameter list or the result is in use by
/// another thread); PGPOOL_ERR_INVALID_ARGUMENT (parameter count); PGPOOL_ERR_USAGE
/// (a parameter that does not fit its type, a COPY statement); PGPOOL_ERR_SERVER;
/// PGPOOL_ERR_BROKEN; PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing
/// idle), PGPOOL_ERR_CLOSED, PGPOOL_ERR_OVERLOADED, PGPOOL_ERR_CONNECT (a permanent connect
/// error), PGPOOL_ERR_TIMEOUT (no connection in time); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `sql` NULL or NUL-terminated; `inout_res`, `out_affected`, `out_err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_exec(
    pool: *mut pgpool_pool,
    timeout_ms: i64,
    stmt: *const pgpool_stmt,
    sql: *const c_char,
    params: *const pgpool_params,
    inout_res: *mut *mut pgpool_result,
    out_affected: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            let statement = if stmt.is_null() {
                None
            } else {
                Some(STMTS.get(stmt as usize)?)
            };
            let text = match &statement {
                Some(s) => s.sql.as_str(),
                None => args::string(sql, "sql")?,
            };
            params::with_params(params, |values| {
                let declared;
                let types: &[u32] = match &statement {
                    Some(s) => &s.types,
                    None => {
                        declared = params::declared_types(values);
                        &declared
                    }
                };
                let mut guard = acquire(&pool, timeout_ms)?;
                exec_on(&mut guard, text, types, values, inout_res, out_affected)
            })
        })
    }
}

/// The one meaning of a C timeout argument for acquiring: negative = the pool's configured
/// acquire timeout, 0 = do not wait (`PGPOOL_ERR_WOULD_BLOCK`), positive = milliseconds.
pub(crate) fn acquire(
    pool: &crate::Pool,
    timeout_ms: i64,
) -> Result<crate::PooledConnection, FfiError> {
    acquire_at(pool, timeout_ms, Site::Unknown)
}

/// [`acquire`] recording `site` as where the connection was acquired.
pub(crate) fn acquire_at(
    pool: &crate::Pool,
    timeout_ms: i64,
    site: Site,
) -> Result<crate::PooledConnection, FfiError> {
    if timeout_ms != 0 {
        super::events::refuse_wait("waiting for a connection (timeout_ms other than 0)")?;
    }
    match timeout_ms {
        t if t < 0 => Ok(pool.get_at(pool.config().acquire_timeout, site)?),
        0 => pool.try_get_at(site)?.ok_or_else(|| {
            FfiError::new(
                pgpool_code::PGPOOL_ERR_WOULD_BLOCK,
                "no idle connection (timeout 0: not waiting)",
            )
        }),
        t => Ok(pool.get_at(Duration::from_millis(t as u64), site)?),
    }
}
