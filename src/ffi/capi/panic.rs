//! The panic boundary every exported function body runs inside.
//!
//! A panic never unwinds into C: it is caught here and turned into `PGPOOL_ERR_PANIC`. The
//! pool's own locks do not poison and its guards give connections back while unwinding, so
//! the pool stays usable after a caught panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{pgpool_code, pgpool_error, publish, FfiError};

/// Runs `f`; maps its outcome (or a panic) to a result code and, when `out_err` is not
/// NULL, stores the detail object there (NULL on success).
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[track_caller]
pub(crate) unsafe fn boundary(
    out_err: *mut *mut pgpool_error,
    f: impl FnOnce() -> Result<(), FfiError>,
) -> pgpool_code {
    #[cfg(feature = "test-hooks")]
    let caller = std::panic::Location::caller();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let result = catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|payload| Err(FfiError::panic(&*payload)));
        match result {
            Ok(()) => (pgpool_code::PGPOOL_OK, std::ptr::null_mut()),
            Err(e) if out_err.is_null() => (e.code, std::ptr::null_mut()),
            Err(e) => (e.code, publish(e)),
        }
    }));
    // A panic while building the detail object (only in an out-of-memory-like situation)
    // still yields a code.
    let (code, detail) = outcome.unwrap_or((pgpool_code::PGPOOL_ERR_PANIC, std::ptr::null_mut()));
    #[cfg(feature = "test-hooks")]
    listed::check(caller, code);
    if !out_err.is_null() {
        // SAFETY: the caller guarantees a non-NULL `out_err` is valid for one pointer write.
        unsafe { out_err.write(detail) };
    }
    code
}

/// Runs `f` for functions that return a plain value; a panic yields `fallback`.
pub(crate) fn boundary_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The test-hooks build checks every code a function returns against the `Returns:` list
/// of its doc comment (which is also the header's): an unlisted code aborts the process, so
/// the C test programs fail loudly. PGPOOL_ERR_PANIC is always allowed (the preamble says
/// so).
#[cfg(feature = "test-hooks")]
mod listed {
    use super::pgpool_code;

    include!(concat!(env!("OUT_DIR"), "/returns.rs"));

    pub(super) fn check(caller: &std::panic::Location<'_>, code: pgpool_code) {
        let file = caller.file().rsplit('/').next().unwrap_or("");
        let line = caller.line();
        let entry = RETURNS
            .iter()
            .find(|(f, first, last, _, _)| *f == file && (*first..*last).contains(&line));
        match entry {
            Some((_, _, _, name, codes)) => {
                if code != pgpool_code::PGPOOL_ERR_PANIC && !codes.contains(&code) {
                    eprintln!(
                        "pgpool: {name} returned {}, which its documentation does not list",
                        code.name().to_string_lossy()
                    );
                    std::process::abort();
                }
            }
            None => {
                eprintln!(
                    "pgpool: a C boundary at {file}:{line} is not inside a documented function \
                     (mark helpers that call boundary with #[track_caller])"
                );
                std::process::abort();
            }
        }
    }
}
