//! `pgpool_config`: a mutable bag of pool options, one setter per Rust option, so options can
//! be added without breaking the ABI. Values are checked when the pool is created
//! (`PGPOOL_ERR_CONFIG`, the message naming the option); a value no option can take (a
//! negative duration where "never" is not allowed) is rejected at once with
//! `PGPOOL_ERR_INVALID_ARGUMENT`.
//!
//! Durations are milliseconds. For options that accept "never"/"none", a negative value
//! means that.

use std::time::Duration;

use crate::config::Builder;

use super::args;
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::{Inherit, Registry};
use super::log;
use super::panic::boundary;

/// Opaque pool configuration. Create with `pgpool_config_new`, free with `pgpool_config_free`.
/// May be used from any thread; setters on one config from several threads are serialised.
/// Usable in a forked child too (to create the child's pool).
#[allow(non_camel_case_types)]
pub struct pgpool_config {
    _private: (),
}

/// A config is an immutable builder that every setter replaces (copy on write), so it has
/// no lock of its own: only the table's, which the fork handlers keep usable in a child.
pub(crate) static CONFIGS: Registry<Builder> = Registry::new(0xC0, "pgpool_config", Inherit::Share);

/// The builder behind a config handle (a copy).
pub(crate) fn builder_of(cfg: *const pgpool_config) -> Result<Builder, FfiError> {
    let handle = args::handle(cfg, "cfg")?;
    Ok(Builder::clone(&*CONFIGS.get(handle)?))
}

fn millis(value: i64, option: &str) -> Result<Duration, FfiError> {
    u64::try_from(value)
        .map(Duration::from_millis)
        .map_err(|_| FfiError::invalid(format!("{option}: {value} ms is negative")))
}

fn optional_millis(value: i64) -> Option<Duration> {
    u64::try_from(value).ok().map(Duration::from_millis)
}

/// Applies `f` to (a copy of) the builder behind `cfg`. `f` may run more than once when
/// another thread changes the same config meanwhile.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[track_caller]
unsafe fn update(
    cfg: *mut pgpool_config,
    out_err: *mut *mut pgpool_error,
    f: impl Fn(Builder) -> Result<Builder, FfiError>,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            CONFIGS.update(args::handle(cfg, "cfg")?, |b| f(b.clone()))
        })
    }
}

/// Creates a configuration with every option at its default (see the Rust `Config` docs:
/// max_size 10, acquire_timeout 30 s, ...).
///
/// Ownership: on success `*out_cfg` receives a new handle the caller frees with
/// `pgpool_config_free`. Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_USAGE (too many live configs).
///
/// # Safety
/// `out_cfg` must be NULL or valid for writing one pointer; likewise `out_err`.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_new(
    out_cfg: *mut *mut pgpool_config,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: pointer validity is the caller's contract, checked for NULL before use.
    unsafe {
        boundary(out_err, || {
            log::init_from_env();
            args::out(out_cfg, "out_cfg")?;
            let handle = CONFIGS.insert(Builder::new())?;
            args::write(out_cfg, handle as *mut pgpool_config);
            Ok(())
        })
    }
}

/// Frees a configuration. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
/// `PGPOOL_ERR_INVALID_HANDLE`. Pools created from it are unaffected. Thread-safe,
/// non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE.
#[no_mangle]
pub extern "C" fn pgpool_config_free(cfg: *mut pgpool_config) -> pgpool_code {
    // SAFETY: a NULL `out_err` is always valid.
    unsafe {
        boundary(std::ptr::null_mut(), || {
            if !cfg.is_null() {
                CONFIGS.remove(cfg as usize)?;
            }
            Ok(())
        })
    }
}

/// Sets `max_size`: Most connections open at once (default 10; 1..=10000).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_max_size(
    cfg: *mut pgpool_config,
    value: u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.max_size(value))) }
}

/// Sets `min_idle`: Idle connections kept ready (default 0; at most `max_idle`).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_min_idle(
    cfg: *mut pgpool_config,
    value: u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.min_idle(value))) }
}

/// Sets `max_idle`: Idle connections kept at most (default: `max_size`).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_max_idle(
    cfg: *mut pgpool_config,
    value: u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.max_idle(value))) }
}

/// Sets `max_lifetime_ms`: Close connections this old (default 30 min; negative: never; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_max_lifetime_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.max_lifetime(optional_millis(value)))) }
}

/// Sets `idle_timeout_ms`: Close idle connections after this long (default 10 min; negative: never; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_idle_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.idle_timeout(optional_millis(value)))) }
}

/// Sets `acquire_timeout_ms`: Default wait of an acquire (default 30 s; must be > 0).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_acquire_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.acquire_timeout(millis(value, "acquire_timeout_ms")?))
        })
    }
}

/// Sets `connect_timeout_ms`: Bound on one connection attempt (default 10 s; must be > 0).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_connect_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.connect_timeout(millis(value, "connect_timeout_ms")?))
        })
    }
}

/// Sets `max_uses`: Retire a connection after this many checkouts (default 0: unlimited).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_max_uses(
    cfg: *mut pgpool_config,
    value: u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.max_uses((value > 0).then_some(value)))
        })
    }
}

/// Sets `validate_on_acquire`: Check a connection with a round trip before handing it out (default true).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_validate_on_acquire(
    cfg: *mut pgpool_config,
    value: bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.validate_on_acquire(value))) }
}

/// Sets `validation_skip_window_ms`: Skip that round trip for connections used this recently (default 500; >= 0).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_validation_skip_window_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.validation_skip_window(millis(value, "validation_skip_window_ms")?))
        })
    }
}

/// Sets `validation_timeout_ms`: Bound on a validation or keepalive round trip (default 5 s; must be > 0).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_validation_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.validation_timeout(millis(value, "validation_timeout_ms")?))
        })
    }
}

/// Sets `keepalive_interval_ms`: How often idle connections are checked (default 60 s; negative: never; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_keepalive_interval_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.keepalive_interval(optional_millis(value)))
        })
    }
}

/// Sets `reaper_interval_ms`: How often idle/lifetime limits are enforced (default 1 s; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_reaper_interval_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.reaper_interval(millis(value, "reaper_interval_ms")?))
        })
    }
}

/// Sets `max_waiters`: Fail acquires at once (`PGPOOL_ERR_OVERLOADED`) when this many callers wait (default 0: unbounded).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_max_waiters(
    cfg: *mut pgpool_config,
    value: u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.max_waiters((value > 0).then(|| usize::try_from(value).unwrap_or(usize::MAX))))
        })
    }
}

/// Sets `close_timeout_ms`: Default bound of a close waiting for connections in use (default 5 s; >= 0).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_close_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.close_timeout(millis(value, "close_timeout_ms")?))
        })
    }
}

/// Sets `statement_timeout_ms`: `statement_timeout` of every session (default: server's; negative: server's; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_statement_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.statement_timeout(optional_millis(value)))
        })
    }
}

/// Sets `statement_cache_capacity`: Prepared statements cached per connection (default 256; 0: no cache).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_statement_cache_capacity(
    cfg: *mut pgpool_config,
    value: u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.statement_cache_capacity(usize::try_from(value).unwrap_or(usize::MAX)))
        })
    }
}

/// Sets `tcp_user_timeout_ms`: `TCP_USER_TIMEOUT` of every socket (default 10 s; negative: leave the system's).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_tcp_user_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.tcp_user_timeout(optional_millis(value)))
        })
    }
}

/// Sets `tcp_keepalive_idle_ms`: TCP keepalive idle time of every socket (default 5 s; must be > 0).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_tcp_keepalive_idle_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.tcp_keepalive_idle(millis(value, "tcp_keepalive_idle_ms")?))
        })
    }
}

/// Sets `application_name` of every session (default: the connection string's, else
/// "pgpool"; shorter than 64 bytes). The string is copied.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string; `out_err` NULL or valid for writing one
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_application_name(
    cfg: *mut pgpool_config,
    value: *const std::ffi::c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `value` and `out_err` are used under the caller's guarantees.
    unsafe {
        update(cfg, out_err, |b| {
            let name = args::string(value, "value")?;
            super::test_hooks::maybe_panic(name);
            super::test_hooks::maybe_unlisted(name)?;
            Ok(b.application_name(name))
        })
    }
}

/// Sets `fallback_lifetime_ms`: how long a `target_session_attrs=prefer-standby` session
/// that fell back to a primary (no standby accepted it) is kept: its lifetime, enforced as
/// `max_lifetime_ms` is (PGPOOL_CLOSE_LIFETIME), so that its replacement tries the standbys
/// first (default: off, only `max_lifetime_ms`; negative: off; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_fallback_lifetime_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.fallback_lifetime(optional_millis(value)))
        })
    }
}

/// Sets `init_sql`: SQL run on every new session before the pool uses it (several statements
/// separated by `;`, one round trip, bounded by what is left of `connect_timeout_ms`). A
/// failure fails the connect (PGPOOL_ERR_CONNECT; permanent for SQLSTATE class 42: syntax,
/// privilege, undefined object). With `full_reset`, it runs again after each reset. NULL or
/// an empty string: none (the default). The string is copied.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_NULL_ARGUMENT (`cfg`);
/// PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `sql` must be NULL or a NUL-terminated string; `out_err` NULL or valid for writing one
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_init_sql(
    cfg: *mut pgpool_config,
    sql: *const std::ffi::c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `sql` and `out_err` are used under the caller's guarantees.
    unsafe {
        update(cfg, out_err, |b| {
            let text = if sql.is_null() {
                ""
            } else {
                args::string(sql, "sql")?
            };
            Ok(b.init_sql(text))
        })
    }
}

/// Sets `query_timeout_ms`: every statement of a checked-out connection is cancelled on the
/// server after this long and returns `PGPOOL_ERR_TIMEOUT` (SQLSTATE 57014) (default:
/// unbounded; negative: unbounded; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_query_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(
            cfg,
            out_err,
            |b| Ok(b.query_timeout(optional_millis(value))),
        )
    }
}

/// Sets `full_reset`: undo session state (SET, LISTEN, advisory locks, temporary tables) on
/// every release, in one extra round trip (default false).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_full_reset(
    cfg: *mut pgpool_config,
    value: bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.full_reset(value))) }
}

/// Sets `transaction_pooling`: for a transaction-pooling proxy such as PgBouncer, no named
/// prepared statements and no session state assumed (default false).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_transaction_pooling(
    cfg: *mut pgpool_config,
    value: bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.transaction_pooling(value))) }
}

/// Sets `max_concurrent_connects`: connection attempts running at once, shared by warm-up,
/// refill and growth on demand, so a crowd of callers cannot start a login storm (default 2;
/// at least 1; above `max_size` acts as `max_size`; 0 fails `pgpool_pool_create` with
/// PGPOOL_ERR_CONFIG).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_max_concurrent_connects(
    cfg: *mut pgpool_config,
    value: u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.max_concurrent_connects(value))) }
}

/// Sets `breaker_threshold`: after this many failed connects in a row with no connection
/// open (or one permanent error such as a bad password), the pool is down: an acquire that
/// needs a new connection waits for one background probe at most, then fails with the last
/// connect error (PGPOOL_ERR_CONNECT) instead of waiting out its timeout (default 3; 0 switches
/// the breaker off).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_breaker_threshold(
    cfg: *mut pgpool_config,
    value: u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    let threshold = (value > 0).then_some(value);
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.breaker_threshold(threshold))) }
}

/// Sets `reconnect_backoff_max_ms`: the longest pause between connect attempts after
/// failures (default 5 s; at least 10, else `pgpool_pool_create` fails with
/// PGPOOL_ERR_CONFIG).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_reconnect_backoff_max_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.reconnect_backoff_max(millis(value, "reconnect_backoff_max_ms")?))
        })
    }
}

/// Sets `leak_threshold_ms`: a connection held longer is reported once as a suspected leak
/// (logged with where it was acquired: see PGPOOL_ACQUIRE), and counted in
/// `pgpool_stats.leaks_suspected` (default: off; negative: off; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_leak_threshold_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.leak_threshold(optional_millis(value)))
        })
    }
}

/// Sets `max_checkout_ms`: a connection held longer is taken back: its statement cancelled
/// on the server, its socket shut down (the holder's next call fails with PGPOOL_ERR_BROKEN,
/// "reclaimed"; release it as usual), its slot freed for other callers (default: off;
/// negative: off; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_max_checkout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.max_checkout(optional_millis(value)))) }
}

/// Sets `health_timeout_ms`: the bound on `pgpool_pool_health` as a whole (default 2 s;
/// must be > 0, else `pgpool_pool_create` fails with PGPOOL_ERR_CONFIG).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_health_timeout_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.health_timeout(millis(value, "health_timeout_ms")?))
        })
    }
}

/// Sets `name`: the pool's name, used as the `pool` label of `pgpool_pool_metrics` and in
/// log lines (default "default"; 1 to 63 letters, digits, '_', '-', '.', else
/// `pgpool_pool_create` fails with PGPOOL_ERR_CONFIG). The string is copied.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
/// PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string; `out_err` NULL or valid for writing one
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_name(
    cfg: *mut pgpool_config,
    value: *const std::ffi::c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `value` and `out_err` are used under the caller's guarantees.
    unsafe {
        update(cfg, out_err, |b| {
            let name = args::string(value, "value")?;
            Ok(b.name(name))
        })
    }
}

/// Sets `histograms`: keep the latency histograms of `pgpool_stats` (acquire wait, connect,
/// query and hold time; default true). When false they stay empty.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_histograms(
    cfg: *mut pgpool_config,
    value: bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.histograms(value))) }
}

/// Sets `stats_log_interval_ms`: log one line of gauges, counters and p99s at info level
/// (target "pgpool::stats", see `pgpool_log_set_callback`) this often (default: never;
/// negative: never; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_stats_log_interval_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.stats_log_interval(optional_millis(value)))
        })
    }
}

/// Sets `slow_query_threshold_ms`: queries slower than this are logged at warn level (target
/// "pgpool::query") with their text, duration and rows, never their parameter values
/// (default: off; negative: off; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_slow_query_threshold_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.slow_query_threshold(optional_millis(value)))
        })
    }
}

/// Sets `degraded_waiters`: `pgpool_pool_health` reports the pool degraded while more than
/// this many callers wait for a connection (default 10; negative: never).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_degraded_waiters(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.degraded_waiters(
                usize::try_from(value)
                    .ok()
                    .or((value >= 0).then_some(usize::MAX)),
            ))
        })
    }
}

/// Sets `max_replica_lag_ms`: a session on a hot standby whose replay is further behind its
/// primary is not used: the connect refuses such a standby (the next host is tried;
/// `target_session_attrs=prefer-standby` falls back to the primary), and an open session
/// found lagging is closed (PGPOOL_CLOSE_REPLICA_LAG, `pgpool_stats.closed_replica_lag`).
/// Measured at connect, before a hand-out once the last measure is older than half of
/// this, and by the keepalive (default: off; negative: off; at least 1).
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_max_replica_lag_ms(
    cfg: *mut pgpool_config,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        update(cfg, out_err, |b| {
            Ok(b.max_replica_lag(optional_millis(value)))
        })
    }
}

/// Sets the event callback: `callback` receives every event of the pools created from this
/// config (connect, acquire, release, remove, error, leak suspected, reclaimed, notice) as a
/// `pgpool_event`. NULL removes it (then `user_data` and `free_user_data` are ignored).
///
/// Threads: the callback runs on the thread where the event happened: a caller's thread
/// (ACQUIRE in `pgpool_pool_acquire`, RELEASE and REMOVE in `pgpool_conn_release`, ...) or
/// one of the pool's background threads (CONNECT and connect ERRORs on a connector thread,
/// keepalive and reaper events on the housekeeper), possibly on several threads at once. It
/// runs outside the pool's lock, but inside the call that caused the event: keep it short
/// and non-blocking (copy the event to a queue, bump a counter). It must return normally:
/// no longjmp, C++ exception or Go panic may leave it.
///
/// Re-entry: the callback may call the library, except functions that wait for a pool,
/// which return PGPOOL_ERR_USAGE when called from inside an event callback, because it may
/// be running on the very thread they would wait for: `pgpool_pool_acquire` and
/// `pgpool_pool_acquire_at` with a `timeout_ms` other than 0, `pgpool_pool_query`,
/// `pgpool_pool_exec`, `pgpool_pool_transaction_retry`, `pgpool_pool_health`,
/// `pgpool_pool_wait_ready`, and `pgpool_pool_close` with a `timeout_ms` other than 0.
/// Everything else works (stats, `pgpool_pool_try_acquire`, calls on a connection the
/// thread holds, freeing a pool); releasing a connection from the callback delivers that
/// release's events to the callback first, nested.
///
/// Lifetimes: the event and its strings are valid only during the call. `user_data` is
/// passed to every call; when the library no longer needs it (this config and every pool
/// created from it are freed, and their last connections and background threads are gone)
/// it calls `free_user_data(user_data)` once, on whichever thread lets go last (NULL
/// `free_user_data`: nothing is called; keep `user_data` valid for as long as the process
/// may deliver events). When this function fails, `free_user_data` is not called. Pools
/// created before the call keep the callback they were created with.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `callback` must be NULL or a function with the `pgpool_event_fn` signature that stays
/// callable, with `user_data` usable by it, until `free_user_data` is called (with a NULL
/// `free_user_data`: for the rest of the process); `free_user_data` NULL or a function with
/// the `pgpool_free_fn` signature; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_event_callback(
    cfg: *mut pgpool_config,
    callback: super::events::pgpool_event_fn,
    user_data: *mut std::ffi::c_void,
    free_user_data: super::events::pgpool_free_fn,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    let registration =
        callback.map(|cb| super::events::CallbackRef::new(cb, user_data, free_user_data));
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    let code = unsafe {
        update(cfg, out_err, |b| {
            Ok(super::events::with_callback(b, registration.as_ref()))
        })
    };
    if code != pgpool_code::PGPOOL_OK {
        if let Some(registration) = &registration {
            registration.disarm();
        }
    }
    code
}

/// Sets whether pools read the `PGPOOL_*` environment variables (one per option:
/// `PGPOOL_MAX_SIZE=20`, `PGPOOL_ACQUIRE_TIMEOUT=5s`, ...; a setter and the connection
/// string's `pool_*` keys outrank them). Default true, as libpq reads `PGHOST` and the like;
/// false for a pool whose settings must not depend on the environment. With it on, a
/// `PGPOOL_*` variable that names no option makes `pgpool_pool_create` fail with
/// PGPOOL_ERR_CONFIG.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_env(
    cfg: *mut pgpool_config,
    value: bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.env(value))) }
}

/// Sets whether pools also read other tools' environment variables for pool options, below
/// `PGPOOL_*`, with those tools' units: Go `database/sql` conventions (`DB_MAX_OPEN_CONNS`,
/// `DB_MAX_IDLE_CONNS`, `DB_CONN_MAX_LIFETIME`, `DB_CONN_MAX_IDLE_TIME`) and node-postgres
/// ones (`PG_POOL_MAX`, `PG_POOL_MIN`, `PG_IDLE_TIMEOUT`, `PG_CONNECTION_TIMEOUT`,
/// `PG_STATEMENT_TIMEOUT`, `PG_QUERY_TIMEOUT`, `PG_APP_NAME`). Default false: other code in
/// the process may read these names with its own meaning. No effect while
/// `pgpool_config_set_env` is false.
///
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_config_set_env_aliases(
    cfg: *mut pgpool_config,
    value: bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { update(cfg, out_err, |b| Ok(b.env_aliases(value))) }
}
