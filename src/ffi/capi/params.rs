//! `pgpool_params`: typed query parameters, sent in binary (like `PQexecParams` with
//! binary formats, without the caller encoding anything).
//!
//! Each binder appends one parameter. At execution every value is encoded for the type the
//! server says the parameter has: integers go to any integer type that can hold them (and
//! to floats and `numeric`), floats to `float4`/`float8`/`numeric`, text to any text-like type
//! in binary and to every other type in PostgreSQL's text input form (the server parses it),
//! bytea to `bytea`. A value that does not fit is `PGPOOL_ERR_INVALID_ARGUMENT` naming the
//! parameter, before anything is sent.

use std::ffi::c_char;
use std::sync::Mutex;

use bytes::{BufMut, BytesMut};
use postgres::types::{Format, IsNull, ToSql, Type};

use crate::sync::{lock, try_lock};

use super::args;
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::{Inherit, Registry};
use super::panic::boundary;
use super::result::text_like;

/// Opaque parameter list. Create with `pgpool_params_new`, fill with the `pgpool_params_add_*`
/// binders, reuse with `pgpool_params_clear`, free with `pgpool_params_free`.
#[allow(non_camel_case_types)]
pub struct pgpool_params {
    _private: (),
}

/// One bound value.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytea(Vec<u8>),
    /// Text input form; the OID is what the caller said the type is (0: let the server say).
    Typed(u32, String),
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl Param {
    /// Whether this value goes in text form for `ty`.
    fn is_text_form(&self, ty: &Type) -> bool {
        match self {
            Param::Typed(..) => true,
            Param::Text(_) => !text_like(ty),
            Param::Int(_) | Param::Float(_) => *ty == Type::NUMERIC,
            _ => false,
        }
    }

    fn encode(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let fits = |what: &str| -> BoxError { format!("{what} does not fit type {ty}").into() };
        match self {
            Param::Null => return Ok(IsNull::Yes),
            Param::Typed(_, text) | Param::Text(text) if self.is_text_form(ty) => {
                out.put_slice(text.as_bytes())
            }
            Param::Text(text) => out.put_slice(text.as_bytes()),
            Param::Int(v) if *ty == Type::NUMERIC => out.put_slice(v.to_string().as_bytes()),
            Param::Float(v) if *ty == Type::NUMERIC => {
                if !v.is_finite() {
                    return Err(fits(&v.to_string()));
                }
                out.put_slice(v.to_string().as_bytes())
            }
            Param::Bool(b) if *ty == Type::BOOL => out.put_u8(u8::from(*b)),
            Param::Int(v) => match *ty {
                Type::INT2 => out.put_i16(i16::try_from(*v).map_err(|_| fits(&v.to_string()))?),
                Type::INT4 => out.put_i32(i32::try_from(*v).map_err(|_| fits(&v.to_string()))?),
                Type::INT8 => out.put_i64(*v),
                Type::OID => out.put_u32(u32::try_from(*v).map_err(|_| fits(&v.to_string()))?),
                Type::FLOAT4 => out.put_f32(*v as f32),
                Type::FLOAT8 => out.put_f64(*v as f64),
                _ => return Err(format!("an integer cannot be sent as {ty}").into()),
            },
            Param::Float(v) => match *ty {
                Type::FLOAT4 => out.put_f32(*v as f32),
                Type::FLOAT8 => out.put_f64(*v),
                _ => return Err(format!("a float cannot be sent as {ty}").into()),
            },
            Param::Bytea(b) if *ty == Type::BYTEA => out.put_slice(b),
            Param::Bool(_) => return Err(format!("a bool cannot be sent as {ty}").into()),
            Param::Bytea(_) => return Err(format!("bytea cannot be sent as {ty}").into()),
            Param::Typed(..) => unreachable!("typed text is always in text form"),
        }
        Ok(IsNull::No)
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.encode(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.encode(ty, out)
    }

    fn encode_format(&self, ty: &Type) -> Format {
        if self.is_text_form(ty) {
            Format::Text
        } else {
            Format::Binary
        }
    }
}

/// The parameter types a one-call statement declares: the OIDs of typed-text parameters
/// (0 for the others, inferred by the server); empty when there are none.
pub(crate) fn declared_types(params: &[Param]) -> Vec<u32> {
    if !params
        .iter()
        .any(|p| matches!(p, Param::Typed(oid, _) if *oid != 0))
    {
        return Vec::new();
    }
    params
        .iter()
        .map(|p| match p {
            Param::Typed(oid, _) => *oid,
            _ => 0,
        })
        .collect()
}

/// The data behind a `pgpool_params *`.
pub(crate) type ParamList = Mutex<Vec<Param>>;

/// A parameter list has a lock of its own, which a parent thread may have held at a
/// `fork()`: a list made before the fork is refused in the child, forgotten when freed there.
pub(crate) static PARAMS: Registry<ParamList> =
    Registry::new(0x9A, "pgpool_params", Inherit::Refuse);

/// Runs `f` with the parameters behind `params` (NULL: none), the list locked for the call:
/// another thread changing it meanwhile gets `PGPOOL_ERR_BUSY` (no copy, no allocation).
pub(crate) fn with_params<T>(
    params: *const pgpool_params,
    f: impl FnOnce(&[Param]) -> Result<T, FfiError>,
) -> Result<T, FfiError> {
    if params.is_null() {
        return f(&[]);
    }
    let list = PARAMS.get(params as usize)?;
    let values = try_lock(&list).ok_or_else(|| {
        FfiError::new(
            pgpool_code::PGPOOL_ERR_BUSY,
            "the parameter list is being changed by another thread",
        )
    })?;
    f(&values)
}

/// Creates an empty parameter list in `*out_params`.
///
/// Thread safety: a list may be filled and used from any thread, one at a time.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT (`out_params` is NULL).
///
/// # Safety
/// `out_params` and `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_new(
    out_params: *mut *mut pgpool_params,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: arguments are NULL-checked and used under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            args::out(out_params, "out_params")?;
            let handle = PARAMS.insert(Mutex::new(Vec::with_capacity(8)))?;
            args::write(out_params, handle as *mut pgpool_params);
            Ok(())
        })
    }
}

/// Frees a parameter list. NULL is a no-op. In a forked child, a list made before the fork
/// is forgotten (`PGPOOL_OK`; its memory is not reclaimed there).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already, or not a parameter list).
#[no_mangle]
pub extern "C" fn pgpool_params_free(params: *mut pgpool_params) -> pgpool_code {
    if params.is_null() {
        return pgpool_code::PGPOOL_OK;
    }
    // SAFETY: a NULL out_err is always valid.
    unsafe {
        boundary(std::ptr::null_mut(), || {
            PARAMS.remove(params as usize)?;
            Ok(())
        })
    }
}

fn push(params: *mut pgpool_params, value: Param) -> Result<(), FfiError> {
    let list = PARAMS.get(args::handle(params, "params")?)?;
    let mut values = lock(&list);
    if values.len() >= 65_535 {
        return Err(FfiError::invalid(
            "a statement takes at most 65535 parameters",
        ));
    }
    values.push(value);
    Ok(())
}

/// Appends SQL NULL (for a parameter of any type).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_null(
    params: *mut pgpool_params,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || push(params, Param::Null)) }
}

/// Appends a boolean (for a `bool` parameter).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_bool(
    params: *mut pgpool_params,
    value: bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || push(params, Param::Bool(value))) }
}

/// Appends a 16-bit integer (for any integer, float or numeric parameter it fits).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_int16(
    params: *mut pgpool_params,
    value: i16,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || push(params, Param::Int(i64::from(value)))) }
}

/// Appends a 32-bit integer (for any integer, float or numeric parameter it fits).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_int32(
    params: *mut pgpool_params,
    value: i32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || push(params, Param::Int(i64::from(value)))) }
}

/// Appends a 64-bit integer (for any integer, float or numeric parameter it fits).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_int64(
    params: *mut pgpool_params,
    value: i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || push(params, Param::Int(value))) }
}

/// Appends a 4-byte float (for a float4, float8 or numeric parameter).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_float4(
    params: *mut pgpool_params,
    value: f32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || push(params, Param::Float(f64::from(value)))) }
}

/// Appends an 8-byte float (for a float4, float8 or numeric parameter).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_float8(
    params: *mut pgpool_params,
    value: f64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe { boundary(out_err, || push(params, Param::Float(value))) }
}

/// Appends text: `len` bytes at `text` (UTF-8, not necessarily NUL-terminated; `len` may
/// be 0). For a text-like parameter it is the value; for any other type it is that type's
/// text input form (`'2024-01-31'`, `'{1,2}'`, `'12.50'`), parsed by the server. The bytes
/// are copied.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT (`params`, or `text` with `len` > 0);
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_INVALID_ARGUMENT (more
/// than 65535 parameters); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `text` must be valid for reading `len` bytes; `out_err` NULL or valid for one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_text(
    params: *mut pgpool_params,
    text: *const c_char,
    len: usize,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: the slice is built from the caller's pointer and length after a NULL check.
    unsafe {
        boundary(out_err, || {
            let bytes = args::bytes(text.cast(), len, "text")?;
            let text = std::str::from_utf8(bytes).map_err(|e| {
                FfiError::new(
                    pgpool_code::PGPOOL_ERR_INVALID_UTF8,
                    format!("argument `text` is not valid UTF-8: {e}"),
                )
            })?;
            push(params, Param::Text(text.to_string()))
        })
    }
}

/// Appends binary data for a `bytea` parameter: `len` bytes at `data` (copied).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT (`params`, or `data` with `len` > 0);
/// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters);
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `data` must be valid for reading `len` bytes; `out_err` NULL or valid for one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_bytea(
    params: *mut pgpool_params,
    data: *const u8,
    len: usize,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: the slice is built from the caller's pointer and length after a NULL check.
    unsafe {
        boundary(out_err, || {
            let bytes = args::bytes(data, len, "data")?;
            push(params, Param::Bytea(bytes.to_vec()))
        })
    }
}

/// Appends a value in its type's text input form, with the type's OID (what `PQexecParams`
/// offers for any type): `text` is NUL-terminated UTF-8, copied. The server parses it as
/// the parameter's type; a nonzero OID declares that type in a one-call statement (as
/// `PQexecParams`' `paramTypes` do; a `pgpool_stmt` declares its types itself).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters);
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// `text` must be NULL or a NUL-terminated string; `out_err` NULL or valid for one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_add_typed_text(
    params: *mut pgpool_params,
    type_oid: u32,
    text: *const c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `text` is NULL-checked and read under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            let text = args::string(text, "text")?;
            push(params, Param::Typed(type_oid, text.to_string()))
        })
    }
}

/// Removes every parameter (the list's memory is kept for reuse).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_err` must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_params_clear(
    params: *mut pgpool_params,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: `out_err` is forwarded under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            let list = PARAMS.get(args::handle(params, "params")?)?;
            lock(&list).clear();
            Ok(())
        })
    }
}
