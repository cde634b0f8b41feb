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
/// PGPOOL_ERR_CLOSED; PGPOOL_ERR_CONNECT (a permanent connect error); PGPOOL_ERR_FORKED;
/// PGPOOL_ERR_USAGE (called from an event callback).
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
            super::events::refuse_wait("pgpool_pool_wait_ready")?;
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
/// PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT (a permanent connect error,
/// or the breaker open: see `pgpool_config_set_breaker_threshold`); PGPOOL_ERR_USAGE (too
/// many live connection handles); PGPOOL_ERR_FORKED (a pool made before fork(), in the
/// child).
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

/// As `pgpool_pool_acquire`, recording `site` (a NUL-terminated label, copied: a call site
/// such as `"worker.c:42"`, a request name; NULL for none) as where the connection was
/// acquired. Leak reports (`leak_threshold_ms`), reclaim events (`max_checkout_ms`) and
/// timeout messages name it. `PGPOOL_ACQUIRE(pool, timeout_ms, &conn, &err)` passes
/// `__FILE__:__LINE__`. Costs one small allocation per call for the label.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing idle); PGPOOL_ERR_TIMEOUT;
/// PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT (a permanent connect error,
/// or the breaker open); PGPOOL_ERR_USAGE (too many live connection handles);
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `site` must be NULL or a NUL-terminated string; `out_conn` and `out_err` NULL or valid
/// for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_acquire_at(
    pool: *mut pgpool_pool,
    timeout_ms: i64,
    site: *const std::ffi::c_char,
    out_conn: *mut *mut pgpool_conn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            args::out(out_conn, "out_conn")?;
            let site = if site.is_null() {
                crate::pool::checkout::Site::Unknown
            } else {
                // A label need not be UTF-8 (a path): shown with replacement characters.
                let label = std::ffi::CStr::from_ptr(site).to_string_lossy();
                crate::pool::checkout::Site::Label(label.as_ref().into())
            };
            let guard = super::exec::acquire_at(&pool, timeout_ms, site)?;
            args::write(out_conn, publish_conn(guard)?);
            Ok(())
        })
    }
}

/// Runs `callback(conn, user_data)` in a transaction on a connection of its own (acquired
/// per `timeout_ms`, released afterwards) like `pgpool_conn_transaction`, and runs it again,
/// on a fresh connection after a jittered pause (10 ms doubling to 1 s), when the attempt
/// failed in a way that is safe to retry: a serialization failure (40001) or deadlock
/// (40P01) the server rolled back (in COMMIT's error, or in the failed statement that made
/// the callback return non-zero), a transient connect error, or a connection that broke
/// before anything could be committed. Never after an error whose outcome is unknown (a
/// connection lost during COMMIT): that error is returned, flagged in `*out_err`, and never
/// after the callback returned a negative value (its way to say "roll back and stop"). At
/// most `max_attempts` attempts (0 counts as 1). The callback may run several times: keep
/// side effects outside the database out of it. `*out_callback_result` (may be NULL)
/// receives the last run's value.
///
/// Blocking: the acquires, round trips, callbacks and pauses of every attempt. Thread-safe.
///
/// Returns: PGPOOL_OK (committed); PGPOOL_ERR_ROLLED_BACK; PGPOOL_ERR_NULL_ARGUMENT;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing idle);
/// PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT;
/// PGPOOL_ERR_SERVER; PGPOOL_ERR_BROKEN; PGPOOL_ERR_BUSY (the callback released or misused
/// the handle); PGPOOL_ERR_USAGE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `callback` must be safe to call with a connection handle and `user_data`;
/// `out_callback_result` NULL or valid for writing an `int32_t`; `out_err` NULL or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_transaction_retry(
    pool: *mut pgpool_pool,
    timeout_ms: i64,
    max_attempts: u32,
    callback: super::conn::pgpool_tx_fn,
    user_data: *mut std::ffi::c_void,
    out_callback_result: *mut i32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees; the callback is the caller's.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            let callback = callback.ok_or_else(|| FfiError::null("callback"))?;
            let retry = crate::Retry {
                max_attempts: max_attempts.max(1),
                ..crate::Retry::default()
            };
            let mut attempt = 1;
            loop {
                let (result, again) = match super::exec::acquire(&pool, timeout_ms) {
                    Err(e) => {
                        let again = e.code == pgpool_code::PGPOOL_ERR_CONNECT && e.retry_safe;
                        (Err(e), again)
                    }
                    Ok(guard) => {
                        let conn = publish_conn(guard)?;
                        let mut ran = None;
                        let result =
                            super::conn::run_transaction(conn, callback, user_data, &mut ran);
                        if let (false, Some(rc)) = (out_callback_result.is_null(), ran) {
                            args::write(out_callback_result, rc);
                        }
                        let again = match &result {
                            Ok(()) => false,
                            // A negative value from the callback: roll back and stop.
                            Err(_) if ran.is_some_and(|rc| rc < 0) => false,
                            Err(e) => super::conn::may_retry(conn, e),
                        };
                        // The callback may have released the handle itself: that is its
                        // error to report, not this one.
                        let _ = super::conn::release(conn);
                        (result, again)
                    }
                };
                match result {
                    Err(e) if again && attempt < retry.max_attempts => {
                        ::log::debug!(
                            target: "pgpool",
                            "transaction attempt {attempt} failed, retrying: {}",
                            e.message
                        );
                        std::thread::sleep(retry.pause(attempt));
                        attempt += 1;
                    }
                    other => return other,
                }
            }
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
            super::events::refuse_wait("pgpool_pool_query")?;
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

/// Runs a health check: acquires a connection, asks the server for its database name,
/// version and time, and fills `*out` (set `out->size = sizeof(pgpool_health)` first) with
/// the result, the round trip's latency, the pool's counts and its health state
/// (`pgpool_health_state`: healthy, degraded, down).
///
/// Returns `PGPOOL_OK` when healthy; otherwise the failure's code (with its detail in
/// `*out_err`), `*out` still filled with `ok = false`. Thread-safe; blocks for at most the
/// configured `health_timeout` (2 s by default) as a whole.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (`out->size` below 8); PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_CLOSED;
/// PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT; PGPOOL_ERR_SERVER; PGPOOL_ERR_BROKEN;
/// PGPOOL_ERR_FORKED (`*out` is not filled); PGPOOL_ERR_USAGE (called from an event
/// callback; `*out` is not filled).
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
            super::events::refuse_wait("pgpool_pool_health")?;
            let health = pool.health();
            write_sized(out, &pgpool_health::from(&health), "pgpool_health")?;
            match health.error {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        })
    }
}

/// Closes the pool: new acquires fail with `PGPOOL_ERR_CLOSED`, queued callers wake with it
/// at once, idle connections close, and the call waits up to `timeout_ms` (negative: the
/// configured `close_timeout`) for connections in use to come back, less a tenth of it (at
/// most 250 ms) kept for cancels. Then what is still held is reclaimed: its socket is shut
/// down (the holder's call fails with `PGPOOL_ERR_BROKEN`, "reclaimed"; it releases the
/// handle as usual) and its statement cancelled on the server from a background thread,
/// which the call waits for until the timeout is over: a program that exits right after
/// leaves nothing running on a reachable server, and the call returns on time even with the
/// server unreachable. With `timeout_ms` 0 nothing is reclaimed: connections in use close
/// as they come back. Idempotent. The handle stays valid (stats still work) until
/// `pgpool_pool_free`.
///
/// Thread-safe; blocks at most the timeout. Returns `PGPOOL_ERR_TIMEOUT` when connections
/// were still in use at the deadline (and were reclaimed).
///
/// In a child process after `fork()`, a pool made before the fork is left alone (its
/// connections are the parent's): `PGPOOL_OK` at once, without I/O.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and connections still in use); PGPOOL_ERR_TIMEOUT
/// (connections still in use at the deadline, now reclaimed); PGPOOL_ERR_USAGE (called from
/// an event callback with a `timeout_ms` other than 0).
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
            if timeout_ms != 0 {
                super::events::refuse_wait("pgpool_pool_close (timeout_ms other than 0)")?;
            }
            let drained = match u64::try_from(timeout_ms) {
                Ok(0) => pool.close_without_waiting(),
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
                        "pool closed, but not every connection was back in time: the rest \
                         were reclaimed ({})",
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
