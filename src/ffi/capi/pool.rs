//! `pgpool_pool`: create, acquire, one-shot query, stats, health, close, free.
//!
//! A pool handle may be shared freely between threads; every function here is thread-safe.

use std::ffi::c_char;
use std::time::Duration;

use crate::config::Builder;
use crate::Pool;

use super::args;
use super::config::{builder_of, pgpool_config};
use super::conn::{pgpool_conn, publish_conn};
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::{Inherit, Registry};
use super::log;
use super::panic::boundary;
use super::query;
use super::result::{self, pgpool_result};
use super::stats::{pgpool_health, pgpool_stats, sized_len, write_sized};

/// Opaque pool handle. Thread-safe: share it freely between threads. Freed with
/// `pgpool_pool_free`.
#[allow(non_camel_case_types)]
pub struct pgpool_pool {
    _private: (),
}

/// A pool made before `fork()` is the parent's: refused in the child, forgotten when freed
/// there (the engine would not touch its sessions either: `Shared::forked`).
pub(crate) static POOLS: Registry<Pool> = Registry::new(0x90, "pgpool_pool", Inherit::Refuse);

pub(crate) fn pool_of(pool: *const pgpool_pool) -> Result<std::sync::Arc<Pool>, FfiError> {
    POOLS.get(args::handle(pool, "pool")?)
}

/// Creates a pool for `conninfo` (a URL `postgres://user:pass@host:port/db?opt=val` or a
/// `key=value` string) with the options in `cfg` (NULL: all defaults; `cfg` is copied and
/// may be freed afterwards).
///
/// Returns at once: connections open in the background (`min_idle` of them) or on demand.
/// Ownership: on success `*out_pool` receives a handle the caller frees with
/// `pgpool_pool_free`. Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE (a freed `cfg`); PGPOOL_ERR_CONFIG (an invalid option or
/// connection string, naming it); PGPOOL_ERR_USAGE (too many live pools).
///
/// # Safety
/// `conninfo` must be NULL or NUL-terminated; `out_pool`/`out_err` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_create(
    conninfo: *const c_char,
    cfg: *const pgpool_config,
    out_pool: *mut *mut pgpool_pool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            log::init_from_env();
            let conninfo = args::string(conninfo, "conninfo")?;
            args::out(out_pool, "out_pool")?;
            let builder = if cfg.is_null() {
                Builder::new()
            } else {
                builder_of(cfg)?
            };
            let pool = builder.build(conninfo)?;
            let handle = POOLS.insert(pool)?;
            args::write(out_pool, handle as *mut pgpool_pool);
            Ok(())
        })
    }
}

/// Waits until `min_idle` connections are open, so a service can fail fast at start-up
/// (`timeout_ms` per the timeout rule: negative = the configured `acquire_timeout`).
///
/// Thread-safe; blocks at most `timeout_ms`.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and not ready); PGPOOL_ERR_TIMEOUT;
/// PGPOOL_ERR_CLOSED; PGPOOL_ERR_CONNECT (a permanent connect error); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_wait_ready(
    pool: *const pgpool_pool,
    timeout_ms: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            let wait = match timeout_ms {
                t if t < 0 => pool.config().acquire_timeout,
                0 => Duration::from_millis(1),
                t => Duration::from_millis(t as u64),
            };
            match pool.wait_ready(wait) {
                Err(e) if timeout_ms == 0 && e.is_timeout() => Err(FfiError::new(
                    pgpool_code::PGPOOL_ERR_WOULD_BLOCK,
                    format!("not ready yet (timeout 0: not waiting): {e}"),
                )),
                other => Ok(other?),
            }
        })
    }
}

/// Acquires a connection, waiting per `timeout_ms` (negative: the configured
/// `acquire_timeout`; 0: only an idle one, `PGPOOL_ERR_WOULD_BLOCK` otherwise; positive:
/// milliseconds).
///
/// Ownership: on success `*out_conn` receives a handle the caller must give back with
/// `pgpool_conn_release` (or `pgpool_conn_discard`). Thread-safe; blocks at most the timeout
/// (plus one bounded validation round trip).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing idle); PGPOOL_ERR_TIMEOUT;
/// PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT (a permanent connect error);
/// PGPOOL_ERR_USAGE (too many live connection handles); PGPOOL_ERR_FORKED (a pool made
/// before fork(), in the child).
///
/// # Safety
/// `out_conn` and `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_acquire(
    pool: *mut pgpool_pool,
    timeout_ms: i64,
    out_conn: *mut *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            args::out(out_conn, "out_conn")?;
            let guard = super::exec::acquire(&pool, timeout_ms)?;
            args::write(out_conn, publish_conn(guard)?);
            Ok(())
        })
    }
}

/// Takes an idle connection without waiting; `PGPOOL_ERR_WOULD_BLOCK` when none is idle (a
/// connect is started if there is room, so a later call may succeed).
///
/// Ownership and errors as `pgpool_pool_acquire`. Thread-safe; does not wait for other
/// callers (a hand-out check may cost one bounded round trip).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_WOULD_BLOCK; PGPOOL_ERR_CLOSED; PGPOOL_ERR_CONNECT (a permanent connect error);
/// PGPOOL_ERR_USAGE (too many live connection handles); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_conn` and `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_try_acquire(
    pool: *mut pgpool_pool,
    out_conn: *mut *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            args::out(out_conn, "out_conn")?;
            match pool.try_get()? {
                Some(guard) => {
                    args::write(out_conn, publish_conn(guard)?);
                    Ok(())
                }
                None => Err(FfiError::new(
                    pgpool_code::PGPOOL_ERR_WOULD_BLOCK,
                    format!("no idle connection ({})", pool.state_line()),
                )),
            }
        })
    }
}

/// One-shot query: acquires a connection (waiting up to the configured `acquire_timeout`),
/// runs `sql` with `nparams` text parameters (`params[i]` NULL for SQL NULL) through its
/// statement cache, releases it.
///
/// Ownership: on success `*out_result` receives a result freed with `pgpool_result_free`.
/// Thread-safe; blocks for the acquire plus the statement (bounded by `statement_timeout`).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_INVALID_ARGUMENT (parameter count); PGPOOL_ERR_USAGE
/// (a COPY statement, or too many live results); PGPOOL_ERR_SERVER; PGPOOL_ERR_BROKEN;
/// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing idle); PGPOOL_ERR_TIMEOUT;
/// PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT (a permanent connect error);
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `sql` NULL or NUL-terminated; `params` NULL or `nparams` readable pointers, each NULL or
/// NUL-terminated; `out_result`/`out_err` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_query(
    pool: *mut pgpool_pool,
    sql: *const c_char,
    nparams: usize,
    params: *const *const c_char,
    out_result: *mut *mut pgpool_result,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            let sql = args::string(sql, "sql")?;
            let params = args::params(nparams, params)?;
            args::out(out_result, "out_result")?;
            let mut guard = pool.get()?;
            let rendered = query::query(&mut guard, sql, &params)?;
            drop(guard);
            args::write(out_result, result::publish(rendered)?);
            Ok(())
        })
    }
}

/// Fills `*out` with a consistent snapshot of the pool's gauges and counters. Set
/// `out->size = sizeof(pgpool_stats)` first.
///
/// Thread-safe, non-blocking (takes the pool lock briefly).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (`out->size` below 8); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or point to a writable `pgpool_stats` whose `size` field is set;
/// `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_stats(
    pool: *const pgpool_pool,
    out: *mut pgpool_stats,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out` is NULL-checked; the caller guarantees a writable struct with `size` set.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            args::out(out, "out")?;
            write_sized(out, &pgpool_stats::from(&pool.stats()), "pgpool_stats")
        })
    }
}

/// Runs a health check: acquires a connection, asks the server for its database name and
/// time, and fills `*out` (set `out->size = sizeof(pgpool_health)` first) with the result,
/// the round trip's latency and the pool's counts.
///
/// Returns `PGPOOL_OK` when healthy; otherwise the failure's code (with its detail in
/// `*out_err`), `*out` still filled with `ok = false`. Thread-safe; blocks for at most the
/// configured `acquire_timeout` plus one round trip.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (`out->size` below 8); PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_CLOSED;
/// PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT; PGPOOL_ERR_SERVER; PGPOOL_ERR_BROKEN;
/// PGPOOL_ERR_FORKED (`*out` is not filled).
///
/// # Safety
/// As `pgpool_pool_stats`, for `pgpool_health`.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_health(
    pool: *const pgpool_pool,
    out: *mut pgpool_health,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out` is NULL-checked; the caller guarantees a writable struct with `size` set.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            args::out(out, "out")?;
            // Checked before the round trip, which must not run for nothing.
            sized_len(out, "pgpool_health")?;
            let health = pool.health();
            write_sized(out, &pgpool_health::from(&health), "pgpool_health")?;
            match health.error {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        })
    }
}

/// Closes the pool: new acquires fail with `PGPOOL_ERR_CLOSED`, waiters wake with it, idle
/// connections close, and the call waits up to `timeout_ms` (negative: the configured
/// `close_timeout`; 0: not at all) for connections in use to come back. Idempotent. The handle stays valid
/// (stats still work) until `pgpool_pool_free`.
///
/// Thread-safe; blocks at most the timeout. Returns `PGPOOL_ERR_TIMEOUT` when connections
/// were still in use at the deadline (they close when released).
///
/// In a child process after `fork()`, a pool made before the fork is left alone (its
/// connections are the parent's): `PGPOOL_OK` at once, without I/O.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and connections still in use); PGPOOL_ERR_TIMEOUT
/// (connections still in use at the deadline; they close as they come back).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_close(
    pool: *mut pgpool_pool,
    timeout_ms: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            let pool = match pool_of(pool) {
                Err(e) if e.code == pgpool_code::PGPOOL_ERR_FORKED => return Ok(()),
                other => other?,
            };
            let drained = match u64::try_from(timeout_ms) {
                Ok(ms) => pool.close_timeout(Duration::from_millis(ms)),
                Err(_) => pool.close(),
            };
            if drained {
                Ok(())
            } else if timeout_ms == 0 {
                Err(FfiError::new(
                    pgpool_code::PGPOOL_ERR_WOULD_BLOCK,
                    format!(
                        "pool closed; connections still in use close as they come back ({})",
                        pool.state_line()
                    ),
                ))
            } else {
                Err(FfiError::new(
                    pgpool_code::PGPOOL_ERR_TIMEOUT,
                    format!(
                        "pool closed, but not every connection was back in time ({})",
                        pool.state_line()
                    ),
                ))
            }
        })
    }
}

/// Frees the pool handle. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
/// `PGPOOL_ERR_INVALID_HANDLE`. The pool closes (without waiting) when its last handle is
/// freed; connections still held stay usable and close when released.
/// Thread-safe, non-blocking.
///
/// In a child process after `fork()`, freeing a pool made before the fork forgets it:
/// `PGPOOL_OK`, and the parent's connections are neither reset nor closed (nothing is sent,
/// no lock is taken; the child does not reclaim the memory).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already).
#[no_mangle]
pub extern "C" fn pgpool_pool_free(pool: *mut pgpool_pool) -> pgpool_code {
    // SAFETY: a NULL `out_err` is always valid.
    unsafe {
        boundary(std::ptr::null_mut(), || {
            if !pool.is_null() {
                POOLS.remove(pool as usize)?;
            }
            Ok(())
        })
    }
}
