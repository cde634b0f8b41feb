//! `pgpool_registry`: named pools from a TOML file or string, opened together, looked up by
//! name, closed together; `pgpool_shutdown_*`: closing them on SIGTERM / SIGINT.
//!
//! A registry handle may be shared freely between threads; every function here is
//! thread-safe.

use std::ffi::{c_char, CString};
use std::time::Duration;

use crate::registry::Registry as PoolRegistry;
use crate::shutdown::Shutdown;

use super::args;
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::{Inherit, Registry};
use super::log;
use super::panic::boundary;
use super::pool::{pgpool_pool, POOLS};

/// Opaque registry handle: named pools. Thread-safe: share it freely between threads.
/// Freed with `pgpool_registry_free`.
#[allow(non_camel_case_types)]
pub struct pgpool_registry {
    _private: (),
}

pub(crate) struct RegistryObj {
    pub(crate) registry: PoolRegistry,
    /// The names as C strings, for `pgpool_registry_name` (valid while the handle lives).
    names: Vec<CString>,
}

/// A registry made before `fork()` holds the parent's pools: refused in the child.
pub(crate) static REGISTRIES: Registry<RegistryObj> =
    Registry::new(0x97, "pgpool_registry", Inherit::Refuse);

pub(crate) fn registry_of(
    reg: *const pgpool_registry,
) -> Result<std::sync::Arc<RegistryObj>, FfiError> {
    REGISTRIES.get(args::handle(reg, "reg")?)
}

fn publish(registry: PoolRegistry) -> Result<usize, FfiError> {
    let names = registry.names().iter().map(|n| args::c_string(n)).collect();
    REGISTRIES.insert(RegistryObj { registry, names })
}

/// The one deadline of a close: negative means the longest `close_timeout` of the pools.
fn deadline(registry: Option<&PoolRegistry>, deadline_ms: i64) -> Duration {
    match u64::try_from(deadline_ms) {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => registry.map_or(Duration::from_secs(5), PoolRegistry::default_close_timeout),
    }
}

/// Reads a registry from the text of a TOML file: an optional `[defaults]` table of pool
/// options for every pool, and one `[pools.<name>]` table per pool with `url` (or `url_env`,
/// the name of an environment variable holding it) and any pool option by its name
/// (`max_size = 20`, `acquire_timeout = "5s"`, `validate_on_acquire = false`; the values of
/// the `pool_*` connection string keys). Every name, option and connection string is
/// checked; nothing connects (see `pgpool_registry_open_all`). `toml` is copied.
///
/// Ownership: on success `*out_reg` receives a handle the caller frees with
/// `pgpool_registry_free`. Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_CONFIG
/// (invalid TOML, an unknown key, a bad value, a missing url, an invalid pool name: the
/// message names the pool and the key); PGPOOL_ERR_USAGE (too many live registries).
///
/// # Safety
/// `toml` must be NULL or NUL-terminated; `out_reg`/`out_err` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_from_toml(
    toml: *const c_char,
    out_reg: *mut *mut pgpool_registry,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            log::init_from_env();
            let toml = args::string(toml, "toml")?;
            args::out(out_reg, "out_reg")?;
            let handle = publish(PoolRegistry::from_toml_str(toml)?)?;
            args::write(out_reg, handle as *mut pgpool_registry);
            Ok(())
        })
    }
}

/// Reads a registry from the TOML file at `path`, as `pgpool_registry_from_toml` reads its
/// text; errors name the file. `path` is copied.
///
/// Ownership: on success `*out_reg` receives a handle the caller frees with
/// `pgpool_registry_free`. Thread-safe; blocks for reading the file.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_CONFIG
/// (the file cannot be read, or its contents are invalid: the message names the file, the
/// pool and the key); PGPOOL_ERR_USAGE (too many live registries).
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `out_reg`/`out_err` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_from_file(
    path: *const c_char,
    out_reg: *mut *mut pgpool_registry,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            log::init_from_env();
            let path = args::string(path, "path")?;
            args::out(out_reg, "out_reg")?;
            let handle = publish(PoolRegistry::from_file(path)?)?;
            args::write(out_reg, handle as *mut pgpool_registry);
            Ok(())
        })
    }
}

/// Opens every pool not open yet (each starts warming its `min_idle` connections in the
/// background) and, when `wait_ms` is positive, waits until every pool is ready (its
/// `min_idle` connections open; with `min_idle` 0, one connection made and checked), all
/// pools at once within that one deadline. `wait_ms` 0 or negative: returns once the pools
/// are opened, without waiting for connections (the exception to the timeout rule: there is
/// no configured wait). The pools stay open when this fails; `pgpool_registry_close_all`
/// closes them.
///
/// Thread-safe; blocks at most `wait_ms`.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_TIMEOUT (some pool not ready in time: the message names each such pool and its
/// last connect error); PGPOOL_ERR_CONNECT (every pool not ready failed with a permanent
/// connect error, such as a bad password); PGPOOL_ERR_CLOSED (`pgpool_registry_close_all` ran
/// before some pool opened); PGPOOL_ERR_CONFIG; PGPOOL_ERR_USAGE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_open_all(
    reg: *const pgpool_registry,
    wait_ms: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            let obj = registry_of(reg)?;
            let wait = u64::try_from(wait_ms)
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis);
            Ok(obj.registry.open_all(wait)?)
        })
    }
}

/// Stores in `*out_count` the number of pools in the registry.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_count` and `out_err` must be NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_count(
    reg: *const pgpool_registry,
    out_count: *mut usize,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let obj = registry_of(reg)?;
            args::out(out_count, "out_count")?;
            args::write(out_count, obj.names.len());
            Ok(())
        })
    }
}

/// Stores in `*out_name` the name of the pool at `index` (0 ≤ index < count; a file's pools
/// are sorted by name).
///
/// Ownership: the string belongs to the registry and stays valid until
/// `pgpool_registry_free(reg)`. Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE (`index` ≥ the count); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_name` and `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_name(
    reg: *const pgpool_registry,
    index: usize,
    out_name: *mut *const c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let obj = registry_of(reg)?;
            args::out(out_name, "out_name")?;
            let name = obj.names.get(index).ok_or_else(|| {
                FfiError::new(
                    pgpool_code::PGPOOL_ERR_OUT_OF_RANGE,
                    format!(
                        "index {index} is out of range: the registry has {} pools",
                        obj.names.len()
                    ),
                )
            })?;
            // The CString's buffer lives as long as the registry object, which the table
            // keeps until pgpool_registry_free.
            args::write(out_name, name.as_ptr());
            Ok(())
        })
    }
}

/// Looks up the pool `name`, opening it if it is not open yet, and stores in `*out_pool` a
/// new handle to it.
///
/// Ownership: the handle is the caller's, a reference of its own to the registry's pool:
/// free it with `pgpool_pool_free` (freeing it does not close the pool, which the registry
/// still holds; `pgpool_registry_close_all` closes it). It stays valid after
/// `pgpool_registry_free`: the pool then closes when its last handle is freed, and a closed
/// pool's calls fail with PGPOOL_ERR_CLOSED, never undefined behaviour. Calling this again
/// gives another handle to the same pool. Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_USAGE (no pool has that name: the message lists the
/// registry's pools; or too many live pool handles); PGPOOL_ERR_CLOSED (the pool never opened
/// before `pgpool_registry_close_all`); PGPOOL_ERR_CONFIG; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `name` must be NULL or NUL-terminated; `out_pool`/`out_err` NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_get(
    reg: *const pgpool_registry,
    name: *const c_char,
    out_pool: *mut *mut pgpool_pool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let obj = registry_of(reg)?;
            let name = args::string(name, "name")?;
            args::out(out_pool, "out_pool")?;
            let pool = obj.registry.get(name)?;
            let handle = POOLS.insert(pool)?;
            args::write(out_pool, handle as *mut pgpool_pool);
            Ok(())
        })
    }
}

/// Closes every open pool at once, all within one deadline: new acquires fail at once with
/// PGPOOL_ERR_CLOSED (work stops being accepted), idle connections close, and connections in
/// use get until `deadline_ms` (negative: the longest `close_timeout` of the pools; 0: none)
/// to come back; what is still held then is reclaimed as `pgpool_pool_close` describes.
/// Pools that never opened never will. `*out_reclaimed` (may be NULL) receives the number of
/// connections reclaimed, over every pool; it is set whether the call returns PGPOOL_OK or
/// PGPOOL_ERR_TIMEOUT. Idempotent (a second call finds what is still held). Handles from
/// `pgpool_registry_get` stay valid: their calls fail with PGPOOL_ERR_CLOSED.
///
/// Thread-safe; blocks at most the deadline (pools close in parallel).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_TIMEOUT (connections still in use at the deadline, now reclaimed: the message
/// names the pools); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_reclaimed` must be NULL or valid for writing a `uint32_t`; `out_err` NULL or valid
/// for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_registry_close_all(
    reg: *const pgpool_registry,
    deadline_ms: i64,
    out_reclaimed: *mut u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let obj = registry_of(reg)?;
            let report = obj
                .registry
                .close_all(deadline(Some(&obj.registry), deadline_ms));
            if !out_reclaimed.is_null() {
                args::write(out_reclaimed, report.reclaimed());
            }
            if report.clean() {
                Ok(())
            } else {
                Err(FfiError::new(
                    pgpool_code::PGPOOL_ERR_TIMEOUT,
                    format!("not every connection was back in time: {report}"),
                ))
            }
        })
    }
}

/// Frees the registry handle. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
/// `PGPOOL_ERR_INVALID_HANDLE`. Pools with no handle from `pgpool_registry_get` left close
/// without waiting (call `pgpool_registry_close_all` first for a bounded, complete close);
/// the others stay usable until their handles are freed. Strings from
/// `pgpool_registry_name` become invalid. Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already).
#[no_mangle]
pub extern "C" fn pgpool_registry_free(reg: *mut pgpool_registry) -> pgpool_code {
    // SAFETY: a NULL `out_err` is always valid.
    unsafe {
        boundary(std::ptr::null_mut(), || {
            if !reg.is_null() {
                REGISTRIES.remove(reg as usize)?;
            }
            Ok(())
        })
    }
}

/// Takes over SIGTERM and SIGINT for the process (through the signal-hook crate; once per
/// process, later calls only add what they are given): the first such signal no longer ends
/// the process but requests a shutdown, which `pgpool_shutdown_requested` reports and
/// `pgpool_shutdown_wait` waits for. When `reg` is not NULL, a library thread then closes
/// its pools as `pgpool_registry_close_all` does, within `deadline_ms` counted from the
/// signal (negative: the longest `close_timeout` of its pools). A second SIGTERM or SIGINT
/// while the shutdown runs ends the process at once with status 128 + the signal's number
/// (143, 130). The registry is kept (not the handle: `reg` may be freed afterwards).
///
/// Not for a program whose runtime handles signals itself (Go: use os/signal and
/// `pgpool_registry_close_all`). Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_USAGE (the signal handlers or
/// the library's threads could not be set up); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_shutdown_on_signals(
    reg: *const pgpool_registry,
    deadline_ms: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            let obj = if reg.is_null() {
                None
            } else {
                Some(registry_of(reg)?)
            };
            let shutdown = Shutdown::install()?;
            if let Some(obj) = obj {
                let deadline = deadline(Some(&obj.registry), deadline_ms);
                shutdown.close_on_signal(&obj.registry, deadline);
            }
            Ok(())
        })
    }
}

/// Whether a shutdown was requested: 0 not yet (or `pgpool_shutdown_on_signals` never ran),
/// the signal's number (SIGTERM 15, SIGINT 2) when a signal requested it, -1 when
/// `pgpool_shutdown_request` did. A worker loop's condition: stop taking new work once it is
/// nonzero. Thread-safe, non-blocking, never fails.
#[no_mangle]
pub extern "C" fn pgpool_shutdown_requested() -> i32 {
    super::panic::boundary_value(0, || match Shutdown::installed() {
        Some(s) if s.requested() => s.signal().unwrap_or(-1),
        _ => 0,
    })
}

/// Requests the shutdown as a signal would (for a program that decides to stop by itself):
/// the pools given to `pgpool_shutdown_on_signals` close. Idempotent. Thread-safe,
/// non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_USAGE (`pgpool_shutdown_on_signals` never ran).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_shutdown_request(out_err: *mut *mut pgpool_error) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            installed()?.request();
            Ok(())
        })
    }
}

fn installed() -> Result<Shutdown, FfiError> {
    Shutdown::installed()
        .ok_or_else(|| FfiError::usage("call pgpool_shutdown_on_signals first".to_string()))
}

/// Waits until a shutdown was requested and every pool given to `pgpool_shutdown_on_signals`
/// is closed (`timeout_ms`: negative waits without bound, 0 only checks, positive
/// milliseconds). `*out_reclaimed` (may be NULL) receives the number of connections that
/// were still in use at the deadline and were reclaimed. `main` then returns, ending the
/// process with its usual status.
///
/// Thread-safe; blocks at most `timeout_ms`.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and not done);
/// PGPOOL_ERR_TIMEOUT (not done in time); PGPOOL_ERR_USAGE (`pgpool_shutdown_on_signals`
/// never ran).
///
/// # Safety
/// `out_reclaimed` must be NULL or valid for writing a `uint32_t`; `out_err` NULL or valid
/// for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_shutdown_wait(
    timeout_ms: i64,
    out_reclaimed: *mut u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let shutdown = installed()?;
            let report = match u64::try_from(timeout_ms) {
                Err(_) => Some(shutdown.wait_closed()),
                Ok(ms) => shutdown.wait_closed_timeout(Duration::from_millis(ms)),
            };
            match report {
                Some(report) => {
                    if !out_reclaimed.is_null() {
                        args::write(out_reclaimed, report.reclaimed());
                    }
                    Ok(())
                }
                None if timeout_ms == 0 => Err(FfiError::new(
                    pgpool_code::PGPOOL_ERR_WOULD_BLOCK,
                    "the shutdown is not done (timeout 0: not waiting)",
                )),
                None => Err(FfiError::new(
                    pgpool_code::PGPOOL_ERR_TIMEOUT,
                    format!("the shutdown was not done within {timeout_ms} ms"),
                )),
            }
        })
    }
}

/// Stores the pool's configured `acquire_timeout` in `*out_acquire_ms` and its
/// `query_timeout` in `*out_query_ms` (-1 when unbounded), in milliseconds rounded up: what
/// a wrapper needs to combine a pool's own bounds (set in a registry's file, say) with a
/// caller's deadline. Either output may be NULL.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_acquire_ms` and `out_query_ms` must be NULL or valid for writing an `int64_t`;
/// `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_pool_timeouts(
    pool: *const pgpool_pool,
    out_acquire_ms: *mut i64,
    out_query_ms: *mut i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let pool = super::pool::pool_of(pool)?;
            let ms =
                |d: Duration| i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
            if !out_acquire_ms.is_null() {
                args::write(out_acquire_ms, ms(pool.config().acquire_timeout));
            }
            if !out_query_ms.is_null() {
                args::write(out_query_ms, pool.config().query_timeout.map_or(-1, ms));
            }
            Ok(())
        })
    }
}
