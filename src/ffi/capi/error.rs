//! Result codes and the `pgpool_error` detail object.
//!
//! Every fallible function returns a [`pgpool_code`]; when the caller passes a non-NULL
//! `pgpool_error **out_err`, a failure also stores a detail object there (message, SQLSTATE,
//! category, and the two retry flags). Nothing is kept per thread.

use std::ffi::{c_char, CStr, CString};

use crate::error::{Error, ErrorKind};

use super::args::c_string;
use super::handle::{Inherit, Registry};
use super::panic::boundary_value;

/// Result codes. Numbers are part of the ABI: they never change, new codes are only added.
#[allow(non_camel_case_types)]
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum pgpool_code {
    /// Success.
    PGPOOL_OK = 0,
    /// A required pointer argument was NULL.
    PGPOOL_ERR_NULL_ARGUMENT = 1,
    /// A string argument was not valid UTF-8.
    PGPOOL_ERR_INVALID_UTF8 = 2,
    /// A handle was released or freed already, never issued, or of the wrong type.
    PGPOOL_ERR_INVALID_HANDLE = 3,
    /// An argument was out of its domain (negative duration, wrong parameter count, bad size).
    PGPOOL_ERR_INVALID_ARGUMENT = 4,
    /// A configuration value was rejected when the pool was created; the message names it.
    PGPOOL_ERR_CONFIG = 5,
    /// No connection became available in time (or a bounded close did not finish in time).
    PGPOOL_ERR_TIMEOUT = 6,
    /// The pool is closed.
    PGPOOL_ERR_CLOSED = 7,
    /// Too many callers were already waiting (`max_waiters`).
    PGPOOL_ERR_OVERLOADED = 8,
    /// A new connection could not be opened.
    PGPOOL_ERR_CONNECT = 9,
    /// The server answered with an error; the detail object carries its SQLSTATE.
    PGPOOL_ERR_SERVER = 10,
    /// The connection broke; the statement's outcome may be unknown.
    PGPOOL_ERR_BROKEN = 11,
    /// A row or column index was out of range.
    PGPOOL_ERR_OUT_OF_RANGE = 12,
    /// A typed getter was used on a column of another type.
    PGPOOL_ERR_TYPE_MISMATCH = 13,
    /// A typed getter was used on an SQL NULL.
    PGPOOL_ERR_NULL_VALUE = 14,
    /// The value's type cannot be rendered as text by the library; the message names it.
    PGPOOL_ERR_UNSUPPORTED_TYPE = 15,
    /// A non-blocking call found nothing ready (no idle connection).
    PGPOOL_ERR_WOULD_BLOCK = 16,
    /// A connection handle was used by two threads at once.
    PGPOOL_ERR_BUSY = 17,
    /// The library caught a panic; the pool stays usable.
    PGPOOL_ERR_PANIC = 18,
    /// Any other misuse or driver-level failure; the message explains.
    PGPOOL_ERR_USAGE = 19,
    /// A transaction callback asked for a rollback (returned nonzero); it was rolled back.
    PGPOOL_ERR_ROLLED_BACK = 20,
    /// In a child process after `fork()`: the pool, connection, result or parameter list was
    /// made before the fork and belongs to the parent. Nothing was sent or locked; only the
    /// functions that end the object work on it (they forget it). Create a new pool.
    PGPOOL_ERR_FORKED = 21,
}

use pgpool_code::*;

impl pgpool_code {
    /// The stable lower-case name of the code (the error's category).
    pub(crate) fn name(self) -> &'static CStr {
        match self {
            PGPOOL_OK => c"ok",
            PGPOOL_ERR_NULL_ARGUMENT => c"null_argument",
            PGPOOL_ERR_INVALID_UTF8 => c"invalid_utf8",
            PGPOOL_ERR_INVALID_HANDLE => c"invalid_handle",
            PGPOOL_ERR_INVALID_ARGUMENT => c"invalid_argument",
            PGPOOL_ERR_CONFIG => c"config",
            PGPOOL_ERR_TIMEOUT => c"timeout",
            PGPOOL_ERR_CLOSED => c"closed",
            PGPOOL_ERR_OVERLOADED => c"overloaded",
            PGPOOL_ERR_CONNECT => c"connect",
            PGPOOL_ERR_SERVER => c"server",
            PGPOOL_ERR_BROKEN => c"broken",
            PGPOOL_ERR_OUT_OF_RANGE => c"out_of_range",
            PGPOOL_ERR_TYPE_MISMATCH => c"type_mismatch",
            PGPOOL_ERR_NULL_VALUE => c"null_value",
            PGPOOL_ERR_UNSUPPORTED_TYPE => c"unsupported_type",
            PGPOOL_ERR_WOULD_BLOCK => c"would_block",
            PGPOOL_ERR_BUSY => c"busy",
            PGPOOL_ERR_PANIC => c"panic",
            PGPOOL_ERR_USAGE => c"usage",
            PGPOOL_ERR_ROLLED_BACK => c"rolled_back",
            PGPOOL_ERR_FORKED => c"forked",
        }
    }
}

/// A failure on its way to C.
#[derive(Debug, Clone)]
pub(crate) struct FfiError {
    pub(crate) code: pgpool_code,
    pub(crate) message: String,
    pub(crate) sqlstate: Option<String>,
    pub(crate) outcome_unknown: bool,
    pub(crate) retry_safe: bool,
}

impl FfiError {
    pub(crate) fn new(code: pgpool_code, message: impl Into<String>) -> FfiError {
        FfiError {
            code,
            message: message.into(),
            sqlstate: None,
            outcome_unknown: false,
            retry_safe: false,
        }
    }

    pub(crate) fn null(argument: &str) -> FfiError {
        FfiError::new(
            PGPOOL_ERR_NULL_ARGUMENT,
            format!("argument `{argument}` must not be NULL"),
        )
    }

    pub(crate) fn invalid_handle(message: String) -> FfiError {
        FfiError::new(PGPOOL_ERR_INVALID_HANDLE, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> FfiError {
        FfiError::new(PGPOOL_ERR_INVALID_ARGUMENT, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> FfiError {
        FfiError::new(PGPOOL_ERR_USAGE, message)
    }

    /// A parent's object used in a forked child.
    pub(crate) fn forked(what: &str) -> FfiError {
        FfiError::new(
            PGPOOL_ERR_FORKED,
            format!(
                "this {what} was made before fork(): it belongs to the parent process \
                 (in the child only releasing or freeing it works, and that forgets it); \
                 create a new pool in the child"
            ),
        )
    }

    pub(crate) fn panic(payload: &(dyn std::any::Any + Send)) -> FfiError {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        FfiError::new(
            PGPOOL_ERR_PANIC,
            format!("panic inside pgpool (caught; the pool stays usable): {what}"),
        )
    }
}

impl From<Error> for FfiError {
    fn from(err: Error) -> FfiError {
        let code = match err.kind() {
            _ if err.is_forked() => PGPOOL_ERR_FORKED,
            ErrorKind::Timeout => PGPOOL_ERR_TIMEOUT,
            ErrorKind::Closed => PGPOOL_ERR_CLOSED,
            ErrorKind::Overloaded => PGPOOL_ERR_OVERLOADED,
            ErrorKind::Connect => PGPOOL_ERR_CONNECT,
            ErrorKind::Server => PGPOOL_ERR_SERVER,
            ErrorKind::Broken => PGPOOL_ERR_BROKEN,
            ErrorKind::Config => PGPOOL_ERR_CONFIG,
            ErrorKind::Panic => PGPOOL_ERR_PANIC,
            _ => PGPOOL_ERR_USAGE,
        };
        FfiError {
            code,
            message: err.message().to_string(),
            sqlstate: err.sqlstate().map(str::to_string),
            outcome_unknown: err.outcome_unknown(),
            retry_safe: err.is_retry_safe(),
        }
    }
}

/// The detail object behind a `pgpool_error *`.
pub(crate) struct ErrorObj {
    code: pgpool_code,
    message: CString,
    sqlstate: Option<CString>,
    outcome_unknown: bool,
    retry_safe: bool,
}

/// Opaque error detail object. Created by the library on failure, freed with
/// `pgpool_error_free`. Immutable: may be read from any thread.
#[allow(non_camel_case_types)]
pub struct pgpool_error {
    _private: (),
}

pub(crate) static ERRORS: Registry<ErrorObj> = Registry::new(0xE5, "pgpool_error", Inherit::Share);

/// Registers `err` and returns the handle to give to C (NULL if the table is exhausted).
pub(crate) fn publish(err: FfiError) -> *mut pgpool_error {
    let obj = ErrorObj {
        code: err.code,
        message: c_string(&err.message),
        sqlstate: err.sqlstate.as_deref().map(c_string),
        outcome_unknown: err.outcome_unknown,
        retry_safe: err.retry_safe,
    };
    match ERRORS.insert(obj) {
        Ok(handle) => handle as *mut pgpool_error,
        Err(_) => std::ptr::null_mut(),
    }
}

fn lookup<R>(err: *const pgpool_error, f: impl FnOnce(&ErrorObj) -> R) -> Option<R> {
    if err.is_null() {
        return None;
    }
    ERRORS.get(err as usize).ok().map(|obj| f(&obj))
}

/// The result code this error was returned with.
///
/// Thread-safe, non-blocking.
///
/// Returns: the code the error was returned with (never PGPOOL_OK); PGPOOL_OK for a NULL `err`
/// (there is no error); PGPOOL_ERR_INVALID_HANDLE for a freed or unknown handle.
#[no_mangle]
pub extern "C" fn pgpool_error_code(err: *const pgpool_error) -> pgpool_code {
    boundary_value(PGPOOL_ERR_PANIC, || {
        if err.is_null() {
            return PGPOOL_OK;
        }
        lookup(err, |e| e.code).unwrap_or(PGPOOL_ERR_INVALID_HANDLE)
    })
}

/// The human-readable message (UTF-8, NUL-terminated).
///
/// Ownership: the string belongs to the error object and stays valid until
/// `pgpool_error_free(err)`. For NULL or an invalid handle a static string saying so is
/// returned (never NULL). Thread-safe, non-blocking.
#[no_mangle]
pub extern "C" fn pgpool_error_message(err: *const pgpool_error) -> *const c_char {
    boundary_value(c"(panic while reading the error)".as_ptr(), || {
        if err.is_null() {
            return c"(no error: NULL pgpool_error)".as_ptr();
        }
        // The pointer targets the CString's heap buffer, which lives as long as the object
        // stays registered (until pgpool_error_free).
        lookup(err, |e| e.message.as_ptr())
            .unwrap_or(c"(invalid pgpool_error handle: already freed or never issued)".as_ptr())
    })
}

/// The five-character SQLSTATE the server sent, or NULL when there is none (or `err` is NULL
/// or invalid). Valid until `pgpool_error_free(err)`. Thread-safe, non-blocking.
#[no_mangle]
pub extern "C" fn pgpool_error_sqlstate(err: *const pgpool_error) -> *const c_char {
    boundary_value(std::ptr::null(), || {
        lookup(err, |e| {
            e.sqlstate.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
        })
        .unwrap_or(std::ptr::null())
    })
}

/// The error's category: the stable name of its code (`"timeout"`, `"closed"`,
/// `"overloaded"`, `"connect"`, `"server"`, `"invalid_argument"`, ...). A static string,
/// never freed; `"invalid_handle"` for NULL or an invalid handle. Thread-safe, non-blocking.
#[no_mangle]
pub extern "C" fn pgpool_error_category(err: *const pgpool_error) -> *const c_char {
    boundary_value(c"panic".as_ptr(), || {
        lookup(err, |e| e.code.name().as_ptr()).unwrap_or(PGPOOL_ERR_INVALID_HANDLE.name().as_ptr())
    })
}

/// True when the statement may have run on the server although an error was returned (the
/// connection died after the statement was sent): do not blindly retry non-idempotent work.
/// False for NULL or an invalid handle. Thread-safe, non-blocking.
#[no_mangle]
pub extern "C" fn pgpool_error_outcome_unknown(err: *const pgpool_error) -> bool {
    boundary_value(false, || {
        lookup(err, |e| e.outcome_unknown).unwrap_or(false)
    })
}

/// True when running the same work again is safe and may succeed (nothing ran, or the server
/// rolled it back for a retryable reason such as a serialization failure). False for NULL
/// or an invalid handle. Thread-safe, non-blocking.
#[no_mangle]
pub extern "C" fn pgpool_error_retry_safe(err: *const pgpool_error) -> bool {
    boundary_value(false, || lookup(err, |e| e.retry_safe).unwrap_or(false))
}

/// Frees an error object. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
/// `PGPOOL_ERR_INVALID_HANDLE`. Strings obtained from the object become invalid.
/// Thread-safe, non-blocking.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already).
#[no_mangle]
pub extern "C" fn pgpool_error_free(err: *mut pgpool_error) -> pgpool_code {
    boundary_value(PGPOOL_ERR_PANIC, || {
        if err.is_null() {
            return PGPOOL_OK;
        }
        match ERRORS.remove(err as usize) {
            Ok(_) => PGPOOL_OK,
            Err(e) => e.code,
        }
    })
}

/// The stable name of a result code (`"ok"`, `"timeout"`, ...), or `"unknown"` for a number
/// this version does not know. A static string. Thread-safe, non-blocking.
#[no_mangle]
pub extern "C" fn pgpool_code_name(code: i32) -> *const c_char {
    boundary_value(c"unknown".as_ptr(), || {
        ALL_CODES
            .iter()
            .find(|c| **c as i32 == code)
            .map_or(c"unknown".as_ptr(), |c| c.name().as_ptr())
    })
}

const ALL_CODES: [pgpool_code; 22] = [
    PGPOOL_OK,
    PGPOOL_ERR_NULL_ARGUMENT,
    PGPOOL_ERR_INVALID_UTF8,
    PGPOOL_ERR_INVALID_HANDLE,
    PGPOOL_ERR_INVALID_ARGUMENT,
    PGPOOL_ERR_CONFIG,
    PGPOOL_ERR_TIMEOUT,
    PGPOOL_ERR_CLOSED,
    PGPOOL_ERR_OVERLOADED,
    PGPOOL_ERR_CONNECT,
    PGPOOL_ERR_SERVER,
    PGPOOL_ERR_BROKEN,
    PGPOOL_ERR_OUT_OF_RANGE,
    PGPOOL_ERR_TYPE_MISMATCH,
    PGPOOL_ERR_NULL_VALUE,
    PGPOOL_ERR_UNSUPPORTED_TYPE,
    PGPOOL_ERR_WOULD_BLOCK,
    PGPOOL_ERR_BUSY,
    PGPOOL_ERR_PANIC,
    PGPOOL_ERR_USAGE,
    PGPOOL_ERR_ROLLED_BACK,
    PGPOOL_ERR_FORKED,
];
