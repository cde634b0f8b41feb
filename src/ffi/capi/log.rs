//! Routing `log` records to C: a callback set with `pgpool_log_set_callback`, or stderr when
//! the `PGPOOL_LOG` environment variable names a level (`error`, `warn`, `info`, `debug`,
//! `trace`).
//!
//! The library installs its logger as the process's `log` logger the first time either is
//! used; if the host program already installed another Rust logger, records go there and
//! `pgpool_log_set_callback` reports `PGPOOL_ERR_USAGE`.

use std::ffi::{c_char, c_void, CString};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::sys::fork::{HeldAcrossFork, HeldGuard};

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

/// The process's one logger. Its state survives `fork()` usable: the sink's lock is a `std`
/// lock that the fork handlers hold across the fork (see `sys::fork`), the stderr level an
/// atomic, and nothing in this file waits on a `Once` another thread may be running.
pub(crate) struct FfiLogger {
    sink: RwLock<Option<Sink>>,
    /// The guard of `sink` while the fork handlers hold it.
    held: HeldGuard<RwLockWriteGuard<'static, Option<Sink>>>,
    /// The `PGPOOL_LOG` level (a `log::LevelFilter` as a number).
    stderr_level: AtomicUsize,
}

pub(crate) static LOGGER: FfiLogger = FfiLogger {
    sink: RwLock::new(None),
    held: HeldGuard::new(),
    stderr_level: AtomicUsize::new(log::LevelFilter::Off as usize),
};

/// Whether the library's logger is the process's logger: 0 not known yet, 1 yes, 2 no.
static INSTALLED: AtomicU8 = AtomicU8::new(0);

impl FfiLogger {
    fn sink(&self) -> RwLockReadGuard<'_, Option<Sink>> {
        self.sink.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn stderr_level(&self) -> log::LevelFilter {
        filter_from(self.stderr_level.load(Ordering::Relaxed))
    }
}

fn filter_from(n: usize) -> log::LevelFilter {
    match n {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

impl HeldAcrossFork for FfiLogger {
    fn hold(&'static self) {
        let guard = self.sink.write().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the guard of `sink`'s lock, just taken by the prepare handler.
        unsafe { self.held.keep(guard) };
    }

    fn release(&'static self) {
        // SAFETY: called by the parent or child handler on the thread whose prepare handler
        // took the lock.
        unsafe { self.held.give_back() };
    }
}

impl log::Log for FfiLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let sink = self.sink().map_or(log::LevelFilter::Off, |s| s.max_level);
        metadata.level() <= sink || metadata.level() <= self.stderr_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = record.level();
        if level <= self.stderr_level() {
            let _ = writeln!(
                std::io::stderr(),
                "[pgpool {}] {}: {}",
                level,
                record.target(),
                record.args()
            );
        }
        // Copy the sink out so the callback runs without the lock held (it may re-register).
        let sink = *self.sink();
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

fn is_ours() -> bool {
    std::ptr::addr_eq(
        log::logger() as *const dyn log::Log,
        &LOGGER as *const FfiLogger,
    )
}

/// Installs the library's logger (the first time); true when it is the process's logger.
/// Not a `OnceLock`: a `fork()` while another thread ran its initialiser would leave the
/// child's copy half-run, and the child's next call waiting for it forever.
fn install() -> bool {
    match INSTALLED.load(Ordering::Acquire) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    // `set_logger` also fails while another thread is installing this same logger: look
    // again for a moment before concluding that another logger is installed.
    let ours = log::set_logger(&LOGGER).is_ok()
        || (0..1000).any(|_| {
            let ours = is_ours();
            if !ours {
                std::thread::yield_now();
            }
            ours
        });
    INSTALLED.store(if ours { 1 } else { 2 }, Ordering::Release);
    ours
}

fn refresh_max_level() {
    let sink = LOGGER.sink().map_or(log::LevelFilter::Off, |s| s.max_level);
    log::set_max_level(sink.max(LOGGER.stderr_level()));
}

/// Honours `PGPOOL_LOG` (called when a config or pool is created; the first call reads it).
pub(crate) fn init_from_env() {
    // A flag, not a `Once`, for the reason `install` gives.
    static READ: AtomicBool = AtomicBool::new(false);
    if READ.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(value) = std::env::var("PGPOOL_LOG") else {
        return;
    };
    let Ok(level) = value.trim().parse::<log::LevelFilter>() else {
        return;
    };
    if install() {
        LOGGER.stderr_level.store(level as usize, Ordering::Relaxed);
        refresh_max_level();
    }
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
            *LOGGER.sink.write().unwrap_or_else(PoisonError::into_inner) = match callback {
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
