//! Checked conversions of C arguments: NULL checks, UTF-8 checks, handle and output pointers.

use std::ffi::{c_char, CStr, CString};

use super::error::{pgpool_code, FfiError};

/// The most parameters one statement can have in PostgreSQL's protocol.
const MAX_PARAMS: usize = 65_535;

/// A borrowed C string as UTF-8.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that stays valid and unmodified
/// for `'a`.
pub(crate) unsafe fn string<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity for 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        FfiError::new(
            pgpool_code::PGPOOL_ERR_INVALID_UTF8,
            format!("argument `{name}` is not valid UTF-8: {e}"),
        )
    })
}

/// The handle value behind a handle pointer, after a NULL check.
pub(crate) fn handle<T>(ptr: *const T, name: &str) -> Result<usize, FfiError> {
    if ptr.is_null() {
        Err(FfiError::null(name))
    } else {
        Ok(ptr as usize)
    }
}

/// Checks that an output pointer is not NULL (before doing work whose result would be lost).
pub(crate) fn out<T>(ptr: *mut T, name: &str) -> Result<(), FfiError> {
    if ptr.is_null() {
        Err(FfiError::null(name))
    } else {
        Ok(())
    }
}

/// Writes a result through an output pointer already checked with [`out`].
///
/// # Safety
/// `ptr` must be non-NULL, aligned and valid for writing one `T`.
pub(crate) unsafe fn write<T>(ptr: *mut T, value: T) {
    // SAFETY: guaranteed by the caller.
    unsafe { ptr.write(value) }
}

/// Query parameters in text form: `nparams` entries, each a NUL-terminated UTF-8 string or
/// NULL for SQL NULL.
///
/// # Safety
/// When `nparams > 0`, `params` must be NULL or point to `nparams` readable pointers, each
/// NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn params<'a>(
    nparams: usize,
    params: *const *const c_char,
) -> Result<Vec<Option<&'a str>>, FfiError> {
    if nparams == 0 {
        return Ok(Vec::new());
    }
    if nparams > MAX_PARAMS {
        return Err(FfiError::invalid(format!(
            "nparams is {nparams}; PostgreSQL accepts at most {MAX_PARAMS}"
        )));
    }
    if params.is_null() {
        return Err(FfiError::null("params"));
    }
    // SAFETY: the caller guarantees `nparams` readable, initialised pointers at `params`.
    let slice = unsafe { std::slice::from_raw_parts(params, nparams) };
    slice
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            if p.is_null() {
                Ok(None)
            } else {
                // SAFETY: a non-NULL entry is a valid NUL-terminated string (caller's contract).
                unsafe { string(p, &format!("params[{i}] (${})", i + 1)) }.map(Some)
            }
        })
        .collect()
}

/// `len` bytes at `ptr` (which may be NULL only when `len` is 0).
///
/// # Safety
/// When `len > 0`, `ptr` must be valid for reading `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a [u8], FfiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::invalid(format!(
            "argument `{name}`: length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `text` as a C string for an object the library hands out; an embedded NUL (which C cannot
/// see past) is written as `\0`.
pub(crate) fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}
