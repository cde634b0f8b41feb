//! Text for operators: the Prometheus exposition and the health check as JSON, returned as
//! `malloc`'d strings the caller frees.

use std::ffi::c_char;

use super::args;
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::panic::boundary;
use super::pool::{pgpool_pool, pool_of};
use super::registry::{pgpool_registry, registry_of};

/// A copy of `text` in memory from `malloc` (NUL-terminated; an inner NUL, which our texts
/// never contain, would cut it short).
fn malloc_string(text: &str) -> Result<*mut c_char, FfiError> {
    // SAFETY: a plain allocation of len + 1 bytes; NULL is handled below.
    let ptr = unsafe { libc::malloc(text.len() + 1) }.cast::<u8>();
    if ptr.is_null() {
        return Err(FfiError::invalid("out of memory"));
    }
    // SAFETY: `ptr` has room for len + 1 bytes and does not overlap `text`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), ptr, text.len());
        ptr.add(text.len()).write(0);
    }
    Ok(ptr.cast())
}

/// Checks `out` (named `name` in the error), then writes a `malloc`'d copy of the text
/// `produce` returns through it.
///
/// # Safety
/// `out` must be NULL or valid for writing one pointer.
unsafe fn text_out(
    out: *mut *mut c_char,
    name: &str,
    produce: impl FnOnce() -> Result<String, FfiError>,
) -> Result<(), FfiError> {
    args::out(out, name)?;
    let text = malloc_string(&produce()?)?;
    // SAFETY: `out` is non-NULL (checked above) and valid for writing (the caller's promise).
    unsafe { args::write(out, text) };
    Ok(())
}

/// Stores the pool's statistics as Prometheus text (exposition format 0.0.4: serve it as
/// `text/plain; version=0.0.4`) in `*out_text`: every gauge, counter and histogram, labelled
/// with the pool's name (`pgpool_config_set_name`), close counters by reason. The families
/// are listed in the README (Operations).
///
/// Ownership: `*out_text` is a new NUL-terminated string from `malloc`; free it with
/// `pgpool_string_free` (or `free`). Thread-safe, non-blocking (a consistent snapshot under
/// the pool's lock).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (out of memory).
///
/// # Safety
/// `out_text` must be NULL or valid for writing one pointer; `out_err` NULL or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_metrics(
    pool: *const pgpool_pool,
    out_text: *mut *mut c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_text` is NULL-checked and written once; `out_err` is forwarded.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            text_out(out_text, "out_text", || Ok(pool.prometheus()))
        })
    }
}

/// Runs a health check (as `pgpool_pool_health`) and stores its result as one JSON object
/// in `*out_json`: `ok`, `pool`, `state` ("healthy", "degraded", "down"), `reasons` (an array
/// of phrases), `database`, `timestamp` (the server's time, ISO 8601 UTC), `serverVersion`,
/// `latencyMs`, `maxSize`, `poolSize` (open), `idleCount`, `inUseCount`, `waitingCount`,
/// `consecutiveConnectFailures`, `lastConnectError` and `error` (strings or null).
///
/// An unhealthy pool is not a failure of this call: the JSON says so and the call returns
/// PGPOOL_OK. Ownership: `*out_json` is a new string from `malloc`; free it with
/// `pgpool_string_free` (or `free`). Thread-safe; blocks at most the configured
/// `health_timeout` (2 s by default).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (out of memory); PGPOOL_ERR_FORKED.
///
/// # Safety
/// As `pgpool_pool_metrics`.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_health_json(
    pool: *const pgpool_pool,
    out_json: *mut *mut c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_json` is NULL-checked and written once; `out_err` is forwarded.
    unsafe {
        boundary(out_err, || {
            let pool = pool_of(pool)?;
            text_out(out_json, "out_json", || {
                let health = pool.health();
                match health.error.as_ref().filter(|e| e.is_forked()) {
                    Some(e) => Err(e.clone().into()),
                    None => Ok(health.to_json()),
                }
            })
        })
    }
}

/// Stores the statistics of every opened pool of `reg` as one Prometheus text (as
/// `pgpool_pool_metrics`: one block per metric family, a `pool` label per pool) in
/// `*out_text`. Pools not opened yet are left out.
///
/// Ownership: `*out_text` is a new string from `malloc`; free it with `pgpool_string_free`
/// (or `free`). Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (out of memory); PGPOOL_ERR_FORKED.
///
/// # Safety
/// As `pgpool_pool_metrics`.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_metrics(
    reg: *const pgpool_registry,
    out_text: *mut *mut c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_text` is NULL-checked and written once; `out_err` is forwarded.
    unsafe {
        boundary(out_err, || {
            let registry = registry_of(reg)?;
            text_out(out_text, "out_text", || Ok(registry.registry.prometheus()))
        })
    }
}

/// Runs a health check of every opened pool of `reg` in parallel and stores the result as
/// one JSON object in `*out_json`: `ok` (every check succeeded), `state` (the worst pool's:
/// "healthy", "degraded", "down") and `pools`, an array of `pgpool_pool_health_json`
/// objects. Unhealthy pools are not a failure of this call.
///
/// Ownership: `*out_json` is a new string from `malloc`; free it with `pgpool_string_free`
/// (or `free`). Thread-safe; blocks at most the longest `health_timeout` of the pools.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (out of memory); PGPOOL_ERR_FORKED.
///
/// # Safety
/// As `pgpool_pool_metrics`.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_health_json(
    reg: *const pgpool_registry,
    out_json: *mut *mut c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_json` is NULL-checked and written once; `out_err` is forwarded.
    unsafe {
        boundary(out_err, || {
            let registry = registry_of(reg)?;
            text_out(out_json, "out_json", || Ok(registry.registry.health_json()))
        })
    }
}

/// Frees a string returned by `pgpool_pool_metrics`, `pgpool_registry_metrics`,
/// `pgpool_pool_health_json` or `pgpool_registry_health_json`. NULL is
/// ignored. Thread-safe; each string is freed once.
///
/// Returns nothing (never fails).
///
/// # Safety
/// `text` must be NULL or a string those functions returned, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn pgpool_string_free(text: *mut c_char) {
    // SAFETY: the caller guarantees `text` is NULL or came from `malloc` in this library.
    unsafe { libc::free(text.cast()) }
}
