//! Routing `log` records to C: a callback set with `pgpool_log_set_callback`, or stderr when
//! the `PGPOOL_LOG` environment variable names a level (`error`, `warn`, `info`, `debug`,
//! `trace`).
//!
//! The library installs its logger as the process's `log` logger the first time either is
//! used; if the host program already installed another Rust logger, records go there and
//! `pgpool_log_set_callback` reports `PGPOOL_ERR_USAGE`.

use std::ffi::{c_char, c_void, CString};
use std::io::Write;
use std::sync::{Once, OnceLock};

use parking_lot::RwLock;

use super::error::{pgpool_code, pgpool_error, FfiError};
use super::panic::boundary;

/// Log levels, for `pgpool_log_set_callback`'s `max_level` and the callback's `level`.
#[allow(non_camel_case_types, dead_code)]
#[repr(i32)]
pub enum pgpool_log_level {
    /// No logging (as `max_level`: switches the callback off).
    PGPOOL_LOG_OFF = 0,
    /// Failures.
    PGPOOL_LOG_ERROR = 1,
    /// Problems the pool recovered from (a failed background connect, a dead idle session).
    PGPOOL_LOG_WARN = 2,
    /// Rare lifecycle events.
    PGPOOL_LOG_INFO = 3,
    /// Connects, closes, notices.
    PGPOOL_LOG_DEBUG = 4,
    /// Every acquire and release.
    PGPOOL_LOG_TRACE = 5,
}

/// A log callback: `level` is a `pgpool_log_level` (PGPOOL_LOG_ERROR … PGPOOL_LOG_TRACE), `message` a NUL-terminated UTF-8
/// string valid only during the call, `user_data` what was passed at registration.
///
/// It may be called from any thread (including the pool's background threads), concurrently,
/// and must not unwind (C++ exceptions, Go panics) into the library.
#[allow(non_camel_case_types)]
pub type pgpool_log_fn =
    Option<unsafe extern "C" fn(level: i32, message: *const c_char, user_data: *mut c_void)>;

#[derive(Clone, Copy)]
struct Sink {
    callback: unsafe extern "C" fn(i32, *const c_char, *mut c_void),
    user_data: usize,
    max_level: log::LevelFilter,
}

struct FfiLogger {
    sink: RwLock<Option<Sink>>,
    stderr_level: RwLock<log::LevelFilter>,
}

static LOGGER: FfiLogger = FfiLogger {
    sink: parking_lot::const_rwlock(None),
    stderr_level: parking_lot::const_rwlock(log::LevelFilter::Off),
};
static INSTALLED: OnceLock<bool> = OnceLock::new();

impl log::Log for FfiLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let sink = self
            .sink
            .read()
            .map_or(log::LevelFilter::Off, |s| s.max_level);
        metadata.level() <= sink || metadata.level() <= *self.stderr_level.read()
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = record.level();
        if level <= *self.stderr_level.read() {
            let _ = writeln!(
                std::io::stderr(),
                "[pgpool {}] {}: {}",
                level,
                record.target(),
                record.args()
            );
        }
        // Copy the sink out so the callback runs without the lock held (it may re-register).
        let sink = *self.sink.read();
        if let Some(sink) = sink.filter(|s| level <= s.max_level) {
            let text = record.args().to_string().replace('\0', "\\0");
            let message = CString::new(text).unwrap_or_default();
            // SAFETY: the callback was registered by the host with this signature; the
            // message pointer is valid for the duration of the call; user_data is opaque.
            unsafe {
                (sink.callback)(
                    level as i32,
                    message.as_ptr(),
                    sink.user_data as *mut c_void,
                )
            };
        }
    }

    fn flush(&self) {}
}

fn level_from_int(level: i32) -> log::LevelFilter {
    match level {
        i32::MIN..=0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Installs the library's logger once; true when it is the process's logger.
fn install() -> bool {
    *INSTALLED.get_or_init(|| log::set_logger(&LOGGER).is_ok())
}

fn refresh_max_level() {
    let sink = LOGGER
        .sink
        .read()
        .map_or(log::LevelFilter::Off, |s| s.max_level);
    let stderr = *LOGGER.stderr_level.read();
    log::set_max_level(sink.max(stderr));
}

/// Honours `PGPOOL_LOG` (called when a config or pool is created).
pub(crate) fn init_from_env() {
    static ENV: Once = Once::new();
    ENV.call_once(|| {
        let Ok(value) = std::env::var("PGPOOL_LOG") else {
            return;
        };
        let Ok(level) = value.trim().parse::<log::LevelFilter>() else {
            return;
        };
        if install() {
            *LOGGER.stderr_level.write() = level;
            refresh_max_level();
        }
    });
}

/// Routes the library's log records at `max_level` or more severe (1 error … 5 trace; 0 or
/// a NULL `callback` switches the callback off) to `callback`.
///
/// Thread-safe; replaces any previous callback. After it returns, the previous callback may
/// still be running on another thread for a record already in flight.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_USAGE (another logger is installed in this process).
///
/// # Safety
/// `callback` must be NULL or a function with the `pgpool_log_fn` signature that stays
/// callable (and `user_data` usable by it) until replaced; `out_err` NULL or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_log_set_callback(
    callback: pgpool_log_fn,
    user_data: *mut c_void,
    max_level: i32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            init_from_env();
            if !install() {
                return Err(FfiError::usage(
                    "another logger is installed in this process; pgpool logs through it",
                ));
            }
            let level = level_from_int(max_level);
            *LOGGER.sink.write() = match callback {
                Some(callback) if level != log::LevelFilter::Off => Some(Sink {
                    callback,
                    user_data: user_data as usize,
                    max_level: level,
                }),
                _ => None,
            };
            refresh_max_level();
            Ok(())
        })
    }
}
