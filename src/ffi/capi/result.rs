//! `pgpool_result`: the rows of one query, kept as the server sent them (binary) and decoded
//! only when read.
//!
//! Typed getters read the binary values directly; text is rendered on first request and
//! kept. A result may be read from several threads at once; reusing it for another query
//! (`inout_res` of the exec functions) needs it to be unused by other threads
//! (`PGPOOL_ERR_BUSY` otherwise). Pointers it hands out stay valid until it is freed or
//! reused, whatever happens to the connection or the pool: the result owns the bytes.

use std::ffi::{c_char, CString};
use std::ops::Range;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use postgres_protocol::message::backend::DataRowBody;

use crate::client::query::RowSink;
use crate::client::Statement;
use crate::error::Error;
use crate::sync::{read as read_lock, try_write};

use super::args::{self, c_string};
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::{Inherit, Registry};
use super::panic::boundary;
use super::render::{render, RenderError};

/// Opaque query result. Freed with `pgpool_result_free`.
#[allow(non_camel_case_types)]
pub struct pgpool_result {
    _private: (),
}

struct Column {
    name: CString,
    type_name: CString,
    ty: Type,
}

/// A value's text: rendered once, with a trailing NUL, or why it cannot be.
type Rendered = Result<Box<[u8]>, (pgpool_code, String)>;

/// The data behind a `pgpool_result *`.
#[derive(Default)]
pub(crate) struct QueryResult {
    statement: Option<Statement>,
    columns: Vec<Column>,
    /// One DataRow body per row (shared with nothing once the session reads on).
    bodies: Vec<Bytes>,
    /// Row-major cells: the value's range in its row's body, `None` for NULL.
    cells: Vec<Option<Range<u32>>>,
    affected: u64,
    rendered: OnceLock<Box<[OnceLock<Rendered>]>>,
}

/// A result has a lock of its own, which a parent thread may have held at a `fork()`: a
/// result made before the fork is refused in the child, forgotten when freed there.
pub(crate) static RESULTS: Registry<RwLock<QueryResult>> =
    Registry::new(0x5E, "pgpool_result", Inherit::Refuse);

/// Types whose binary form is their text (UTF-8 as the session's client_encoding).
pub(crate) fn text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
            | Type::JSON
            | Type::XML
    ) || matches!(ty.kind(), postgres::types::Kind::Enum(_))
}

impl RowSink for QueryResult {
    fn begin(&mut self, statement: &Statement) {
        let same = self
            .statement
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(&s.0, &statement.0));
        if !same {
            self.columns = statement
                .columns()
                .iter()
                .map(|c| Column {
                    name: c_string(c.name()),
                    type_name: c_string(c.type_().name()),
                    ty: c.type_().clone(),
                })
                .collect();
            self.statement = Some(statement.clone());
        }
    }

    fn push(&mut self, _statement: &Statement, body: DataRowBody) -> Result<(), Error> {
        let start = self.cells.len();
        let mut ranges = body.ranges();
        while let Some(range) = ranges.next().map_err(Error::protocol_io)? {
            self.cells.push(range.map(|r| r.start as u32..r.end as u32));
        }
        if self.cells.len() - start != self.columns.len() {
            self.cells.truncate(start);
            return Err(Error::protocol(
                "a row does not match its statement's columns",
            ));
        }
        self.bodies.push(body.buffer_bytes().clone());
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }
}

impl QueryResult {
    /// Empties the result for reuse, keeping its allocations.
    pub(crate) fn clear(&mut self) {
        self.bodies.clear();
        self.cells.clear();
        self.affected = 0;
        self.rendered = OnceLock::new();
    }

    pub(crate) fn set_affected(&mut self, affected: u64) {
        self.affected = affected;
    }

    fn rows(&self) -> usize {
        self.bodies.len()
    }

    fn column(&self, col: u32) -> Result<&Column, FfiError> {
        self.columns.get(col as usize).ok_or_else(|| {
            FfiError::new(
                pgpool_code::PGPOOL_ERR_OUT_OF_RANGE,
                format!(
                    "column {col} out of range: the result has {} columns",
                    self.columns.len()
                ),
            )
        })
    }

    /// The cell index and column of (`row`, `col`).
    fn locate(&self, row: u64, col: u32) -> Result<(usize, usize, &Column), FfiError> {
        let column = self.column(col)?;
        let r = usize::try_from(row)
            .ok()
            .filter(|r| *r < self.rows())
            .ok_or_else(|| {
                FfiError::new(
                    pgpool_code::PGPOOL_ERR_OUT_OF_RANGE,
                    format!(
                        "row {row} out of range: the result has {} rows",
                        self.rows()
                    ),
                )
            })?;
        Ok((r, r * self.columns.len() + col as usize, column))
    }

    /// The raw (binary) bytes of a value; `None` for NULL.
    fn raw(&self, row: u64, col: u32) -> Result<(Option<&[u8]>, &Column, usize), FfiError> {
        let (r, cell, column) = self.locate(row, col)?;
        let bytes = self.cells[cell]
            .clone()
            .map(|range| &self.bodies[r][range.start as usize..range.end as usize]);
        Ok((bytes, column, cell))
    }

    /// The non-NULL raw bytes of a value whose type is one of `accepts`.
    fn typed(
        &self,
        row: u64,
        col: u32,
        want: &str,
        accepts: &[Type],
    ) -> Result<(&[u8], &Type), FfiError> {
        let (raw, column, _) = self.raw(row, col)?;
        if !accepts.contains(&column.ty) {
            return Err(FfiError::new(
                pgpool_code::PGPOOL_ERR_TYPE_MISMATCH,
                format!(
                    "column {col} ({}) has type {}, which cannot be read as {want}",
                    column.name.to_string_lossy(),
                    column.ty.name()
                ),
            ));
        }
        let raw = raw.ok_or_else(|| {
            FfiError::new(
                pgpool_code::PGPOOL_ERR_NULL_VALUE,
                format!("row {row}, column {col} is NULL"),
            )
        })?;
        Ok((raw, &column.ty))
    }

    /// The text of a value (rendered once), with a trailing NUL; `None` for NULL.
    fn text(&self, row: u64, col: u32) -> Result<Option<&[u8]>, FfiError> {
        let (raw, column, cell) = self.raw(row, col)?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let slots = self
            .rendered
            .get_or_init(|| (0..self.cells.len()).map(|_| OnceLock::new()).collect());
        let rendered = slots[cell].get_or_init(|| match render(&column.ty, raw) {
            Ok(text) => {
                let mut bytes = text.replace('\0', "\\0").into_bytes();
                bytes.push(0);
                Ok(bytes.into_boxed_slice())
            }
            Err(RenderError::Unsupported(m)) => Err((pgpool_code::PGPOOL_ERR_UNSUPPORTED_TYPE, m)),
            Err(RenderError::Malformed(m)) => Err((pgpool_code::PGPOOL_ERR_USAGE, m)),
        });
        match rendered {
            Ok(bytes) => Ok(Some(bytes)),
            Err((code, message)) => Err(FfiError::new(*code, message.clone())),
        }
    }
}

/// Registers a result and returns its handle.
pub(crate) fn publish(result: QueryResult) -> Result<*mut pgpool_result, FfiError> {
    Ok(RESULTS.insert(RwLock::new(result))? as *mut pgpool_result)
}

/// Runs `fill` into the caller's result: a new one when `*inout` is NULL (stored there on
/// success), else `*inout` reused (emptied first; left empty on failure).
///
/// # Safety
/// `inout` must be non-NULL and valid for reading and writing one pointer.
pub(crate) unsafe fn fill_into(
    inout: *mut *mut pgpool_result,
    fill: impl FnOnce(&mut QueryResult) -> Result<(), FfiError>,
) -> Result<(), FfiError> {
    // SAFETY: guaranteed by the caller.
    let current = unsafe { inout.read() };
    if current.is_null() {
        let mut result = QueryResult::default();
        fill(&mut result)?;
        let handle = publish(result)?;
        // SAFETY: as above.
        unsafe { inout.write(handle) };
        return Ok(());
    }
    let shared = RESULTS.get(current as usize)?;
    let mut result = try_write(&shared).ok_or_else(|| {
        FfiError::new(
            pgpool_code::PGPOOL_ERR_BUSY,
            "the result is being read by another thread: it cannot be reused now",
        )
    })?;
    result.clear();
    let outcome = fill(&mut result);
    if outcome.is_err() {
        result.clear();
    }
    outcome
}

/// Looks `res` up, runs `f`, writes its value through `out`.
///
/// # Safety
/// `out` must be NULL or valid for writing one `T`; `out_err` NULL or valid for one pointer.
#[track_caller]
unsafe fn read<T>(
    res: *const pgpool_result,
    out: *mut T,
    out_err: *mut *mut pgpool_error,
    f: impl FnOnce(&QueryResult) -> Result<T, FfiError>,
) -> pgpool_code {
    // SAFETY: pointers are used under the caller's guarantees after NULL checks.
    unsafe {
        boundary(out_err, || {
            let shared = RESULTS.get(args::handle(res, "res")?)?;
            args::out(out, "out")?;
            let value = f(&read_lock(&shared))?;
            args::write(out, value);
            Ok(())
        })
    }
}

/// Stores the number of rows in `*out`.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_nrows(
    res: *const pgpool_result,
    out: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees.
    unsafe { read(res, out, out_err, |r| Ok(r.rows() as u64)) }
}

/// Stores the number of columns in `*out` (also known when there are no rows).
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_ncols(
    res: *const pgpool_result,
    out: *mut u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees.
    unsafe { read(res, out, out_err, |r| Ok(r.columns.len() as u32)) }
}

/// Stores the number of rows the command affected in `*out` (`INSERT`/`UPDATE`/`DELETE`
/// counts; for `SELECT` the number of rows).
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_affected_rows(
    res: *const pgpool_result,
    out: *mut u64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees.
    unsafe { read(res, out, out_err, |r| Ok(r.affected)) }
}

/// Stores a pointer to column `col`'s name (NUL-terminated, owned by the result) in `*out`.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_column_name(
    res: *const pgpool_result,
    col: u32,
    out: *mut *const c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees; the pointer targets the CString's
    // heap buffer, which lives as long as the result (until freed or reused).
    unsafe { read(res, out, out_err, |r| Ok(r.column(col)?.name.as_ptr())) }
}

/// Stores column `col`'s type OID in `*out` (`pg_type.oid`: 23 int4, 25 text, …).
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_column_type(
    res: *const pgpool_result,
    col: u32,
    out: *mut u32,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees.
    unsafe { read(res, out, out_err, |r| Ok(r.column(col)?.ty.oid())) }
}

/// Stores a pointer to column `col`'s type name (`"int4"`, `"text"`, …; owned by the
/// result) in `*out`.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_column_type_name(
    res: *const pgpool_result,
    col: u32,
    out: *mut *const c_char,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees; see pgpool_result_column_name.
    unsafe { read(res, out, out_err, |r| Ok(r.column(col)?.type_name.as_ptr())) }
}

/// Stores whether the value at (`row`, `col`) is SQL NULL in `*out`.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_is_null(
    res: *const pgpool_result,
    row: u64,
    col: u32,
    out: *mut bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees.
    unsafe { read(res, out, out_err, |r| Ok(r.raw(row, col)?.0.is_none())) }
}

/// The value at (`row`, `col`) as text, for every type: `*out_text` points to NUL-terminated
/// UTF-8 owned by the result (numeric exact, timestamps ISO 8601, arrays and records in
/// PostgreSQL's text form), `*out_len` its length without the NUL, `*out_is_null` false. For
/// SQL NULL: `*out_text` NULL, `*out_len` 0 and `*out_is_null` true. Rendered on first use
/// and kept.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_UNSUPPORTED_TYPE (a type the library cannot render:
/// cast it to text in SQL); PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
///
/// # Safety
/// The three output pointers must be NULL or valid for writing; `out_err` NULL or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_value(
    res: *const pgpool_result,
    row: u64,
    col: u32,
    out_text: *mut *const c_char,
    out_len: *mut usize,
    out_is_null: *mut bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: every pointer is NULL-checked before it is written, under the caller's
    // guarantees; text pointers target the result's boxed bytes, alive until it is freed.
    unsafe {
        boundary(out_err, || {
            let shared = RESULTS.get(args::handle(res, "res")?)?;
            args::out(out_text, "out_text")?;
            args::out(out_len, "out_len")?;
            args::out(out_is_null, "out_is_null")?;
            let result = read_lock(&shared);
            let (text, len, null) = match result.text(row, col)? {
                None => (std::ptr::null(), 0, true),
                Some(bytes) => (bytes.as_ptr() as *const c_char, bytes.len() - 1, false),
            };
            args::write(out_text, text);
            args::write(out_len, len);
            args::write(out_is_null, null);
            Ok(())
        })
    }
}

/// The value at (`row`, `col`) as text without copying when it can: for text, varchar,
/// char, name, json, xml and enum columns `*out_text` points into the received row (NOT
/// NUL-terminated: use `*out_len`); for other types it is the rendered text of
/// `pgpool_result_value`. Owned by the result.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_NULL_VALUE (SQL NULL: check with
/// `pgpool_result_is_null`); PGPOOL_ERR_UNSUPPORTED_TYPE; PGPOOL_ERR_USAGE; PGPOOL_ERR_FORKED.
///
/// # Safety
/// The output pointers must be NULL or valid for writing; `out_err` NULL or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_get_text(
    res: *const pgpool_result,
    row: u64,
    col: u32,
    out_text: *mut *const c_char,
    out_len: *mut usize,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: pointers are NULL-checked and written under the caller's guarantees; they
    // target bytes the result owns.
    unsafe {
        boundary(out_err, || {
            let shared = RESULTS.get(args::handle(res, "res")?)?;
            args::out(out_text, "out_text")?;
            args::out(out_len, "out_len")?;
            let result = read_lock(&shared);
            let (raw, column, _) = result.raw(row, col)?;
            let null = || {
                FfiError::new(
                    pgpool_code::PGPOOL_ERR_NULL_VALUE,
                    format!("row {row}, column {col} is NULL"),
                )
            };
            let (ptr, len) = if text_like(&column.ty) {
                let raw = raw.ok_or_else(null)?;
                (raw.as_ptr(), raw.len())
            } else {
                let text = result.text(row, col)?.ok_or_else(null)?;
                (text.as_ptr(), text.len() - 1)
            };
            args::write(out_text, ptr as *const c_char);
            args::write(out_len, len);
            Ok(())
        })
    }
}

/// The bytes of a `bytea` value: `*out_data` points into the received row (owned by the
/// result), `*out_len` is its length.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH (not bytea); PGPOOL_ERR_NULL_VALUE;
/// PGPOOL_ERR_FORKED.
///
/// # Safety
/// The output pointers must be NULL or valid for writing; `out_err` NULL or valid for
/// writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_get_bytea(
    res: *const pgpool_result,
    row: u64,
    col: u32,
    out_data: *mut *const u8,
    out_len: *mut usize,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: pointers are NULL-checked and written under the caller's guarantees.
    unsafe {
        boundary(out_err, || {
            let shared = RESULTS.get(args::handle(res, "res")?)?;
            args::out(out_data, "out_data")?;
            args::out(out_len, "out_len")?;
            let result = read_lock(&shared);
            let (raw, _) = result.typed(row, col, "bytea", &[Type::BYTEA])?;
            args::write(out_data, raw.as_ptr());
            args::write(out_len, raw.len());
            Ok(())
        })
    }
}

fn be_int(raw: &[u8], ty: &Type) -> Result<i64, FfiError> {
    let bad = || FfiError::usage(format!("malformed {ty} value ({} bytes)", raw.len()));
    Ok(match *ty {
        Type::INT2 => i64::from(i16::from_be_bytes(raw.try_into().map_err(|_| bad())?)),
        Type::INT4 => i64::from(i32::from_be_bytes(raw.try_into().map_err(|_| bad())?)),
        Type::OID => i64::from(u32::from_be_bytes(raw.try_into().map_err(|_| bad())?)),
        _ => i64::from_be_bytes(raw.try_into().map_err(|_| bad())?),
    })
}

/// Stores an integer value (int2, int4, int8, oid) in `*out`, decoded from binary.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH; PGPOOL_ERR_NULL_VALUE;
/// PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_get_int64(
    res: *const pgpool_result,
    row: u64,
    col: u32,
    out: *mut i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    const INTS: [Type; 4] = [Type::INT2, Type::INT4, Type::INT8, Type::OID];
    // SAFETY: forwarded under the caller's guarantees.
    unsafe {
        read(res, out, out_err, |r| {
            let (raw, ty) = r.typed(row, col, "int64", &INTS)?;
            be_int(raw, ty)
        })
    }
}

/// Stores a number (float4, float8, int2, int4, int8, or numeric converted to the nearest
/// double; exact numeric text: `pgpool_result_value`) in `*out`.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH; PGPOOL_ERR_NULL_VALUE;
/// PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_get_double(
    res: *const pgpool_result,
    row: u64,
    col: u32,
    out: *mut f64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    const NUMBERS: [Type; 6] = [
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
        Type::INT2,
        Type::INT4,
        Type::INT8,
    ];
    // SAFETY: forwarded under the caller's guarantees.
    unsafe {
        read(res, out, out_err, |r| {
            let (raw, ty) = r.typed(row, col, "double", &NUMBERS)?;
            let bad = || FfiError::usage(format!("malformed {ty} value"));
            match *ty {
                Type::FLOAT4 => Ok(f64::from(f32::from_be_bytes(
                    raw.try_into().map_err(|_| bad())?,
                ))),
                Type::FLOAT8 => Ok(f64::from_be_bytes(raw.try_into().map_err(|_| bad())?)),
                Type::NUMERIC => {
                    let text = r.text(row, col)?.ok_or_else(bad)?;
                    let text = std::str::from_utf8(&text[..text.len() - 1]).map_err(|_| bad())?;
                    text.parse().map_err(|e| {
                        FfiError::usage(format!("cannot read {text:?} as double: {e}"))
                    })
                }
                _ => Ok(be_int(raw, ty)? as f64),
            }
        })
    }
}

/// Stores a `bool` value in `*out`.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH; PGPOOL_ERR_NULL_VALUE;
/// PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_get_bool(
    res: *const pgpool_result,
    row: u64,
    col: u32,
    out: *mut bool,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees.
    unsafe {
        read(res, out, out_err, |r| {
            let (raw, _) = r.typed(row, col, "bool", &[Type::BOOL])?;
            match raw {
                [b] => Ok(*b != 0),
                _ => Err(FfiError::usage("malformed bool value")),
            }
        })
    }
}

/// Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// Stores a `timestamp` or `timestamptz` value as microseconds since the Unix epoch
/// (1970-01-01 00:00:00 UTC; for `timestamp` without time zone, as if it were UTC) in
/// `*out`. `infinity` and `-infinity` are INT64_MAX and INT64_MIN.
///
/// Thread-safe, non-blocking.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
/// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH; PGPOOL_ERR_NULL_VALUE;
/// PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out` must be NULL or valid for writing; `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_result_get_timestamp(
    res: *const pgpool_result,
    row: u64,
    col: u32,
    out: *mut i64,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: forwarded under the caller's guarantees.
    unsafe {
        read(res, out, out_err, |r| {
            let (raw, _) = r.typed(row, col, "timestamp", &[Type::TIMESTAMP, Type::TIMESTAMPTZ])?;
            let v = i64::from_be_bytes(
                raw.try_into()
                    .map_err(|_| FfiError::usage("malformed timestamp value"))?,
            );
            Ok(match v {
                i64::MAX | i64::MIN => v,
                _ => v.saturating_add(PG_EPOCH_OFFSET_US),
            })
        })
    }
}

/// Frees a result and every string read from it. NULL is a no-op. In a forked child, a
/// result made before the fork is forgotten (`PGPOOL_OK`; its memory is not reclaimed there).
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already, or not a result).
#[no_mangle]
pub extern "C" fn pgpool_result_free(res: *mut pgpool_result) -> pgpool_code {
    // SAFETY: a NULL `out_err` is always valid.
    unsafe {
        boundary(std::ptr::null_mut(), || {
            if !res.is_null() {
                RESULTS.remove(res as usize)?;
            }
            Ok(())
        })
    }
}
