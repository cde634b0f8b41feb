//! `pgpool_result`: the rows of one query, every value already rendered as text.
//!
//! A result is immutable once built, so it may be read from several threads at once; strings
//! it hands out stay valid until `pgpool_result_free`.

use std::ffi::{c_char, CString};
use std::sync::Arc;

use crate::client::{Row, Statement};
use postgres::types::Type;

use super::args;
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::Registry;
use super::panic::boundary;
use super::render::{render, RenderError};

/// Opaque query result. Freed with `pgpool_result_free`; read-only, so it may be shared
/// across threads.
#[allow(non_camel_case_types)]
pub struct pgpool_result {
    _private: (),
}

struct Column {
    name: CString,
    type_name: CString,
    ty: Type,
}

enum Cell {
    Null,
    /// The text with a trailing NUL.
    Text(Box<[u8]>),
    Error(pgpool_code, String),
}

/// The data behind a `pgpool_result *`.
pub(crate) struct QueryResult {
    columns: Vec<Column>,
    rows: usize,
    cells: Vec<Cell>,
    affected: u64,
}

pub(crate) static RESULTS: Registry<QueryResult> = Registry::new(0x5E, "pgpool_result");

fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

impl QueryResult {
    /// Renders `rows` of `statement`; `affected` is the row count the command reported.
    pub(crate) fn build(statement: &Statement, rows: &[Row], affected: u64) -> QueryResult {
        let columns: Vec<Column> = statement
            .columns()
            .iter()
            .map(|c| Column {
                name: c_string(c.name()),
                type_name: c_string(c.type_().name()),
                ty: c.type_().clone(),
            })
            .collect();
        let mut cells = Vec::with_capacity(rows.len() * columns.len());
        for row in rows {
            for (i, column) in columns.iter().enumerate() {
                let cell = match row.raw(i) {
                    None => Cell::Null,
                    Some(raw) => match render(&column.ty, raw) {
                        Ok(text) => {
                            let mut bytes = text.replace('\0', "\\0").into_bytes();
                            bytes.push(0);
                            Cell::Text(bytes.into_boxed_slice())
                        }
                        Err(RenderError::Unsupported(m)) => {
                            Cell::Error(pgpool_code::PGPOOL_ERR_UNSUPPORTED_TYPE, m)
                        }
                        Err(RenderError::Malformed(m)) => {
                            Cell::Error(pgpool_code::PGPOOL_ERR_USAGE, m)
                        }
                    },
                };
                cells.push(cell);
            }
        }
        QueryResult {
            columns,
            rows: rows.len(),
            cells,
            affected,
        }
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

    fn cell(&self, row: u64, col: u32) -> Result<(&Column, &Cell), FfiError> {
        let column = self.column(col)?;
        let r = usize::try_from(row)
            .ok()
            .filter(|r| *r < self.rows)
            .ok_or_else(|| {
                FfiError::new(
                    pgpool_code::PGPOOL_ERR_OUT_OF_RANGE,
                    format!("row {row} out of range: the result has {} rows", self.rows),
                )
            })?;
        Ok((column, &self.cells[r * self.columns.len() + col as usize]))
    }

    /// The text of a non-NULL value checked against the types a typed getter accepts.
    fn typed(&self, row: u64, col: u32, want: &str, accepts: &[Type]) -> Result<&str, FfiError> {
        let (column, cell) = self.cell(row, col)?;
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
        match cell {
            Cell::Null => Err(FfiError::new(
                pgpool_code::PGPOOL_ERR_NULL_VALUE,
                format!("row {row}, column {col} is NULL"),
            )),
            Cell::Text(bytes) => Ok(std::str::from_utf8(&bytes[..bytes.len() - 1]).unwrap_or("")),
            Cell::Error(code, message) => Err(FfiError::new(*code, message.clone())),
        }
    }
}

/// Registers a result and returns its handle.
pub(crate) fn publish(result: QueryResult) -> Result<*mut pgpool_result, FfiError> {
    Ok(RESULTS.insert(result)? as *mut pgpool_result)
}

/// Looks `res` up, runs `f`, writes its value through `out`.
///
/// # Safety
/// `out` must be NULL or valid for writing one `T`; `out_err` NULL or valid for one pointer.
unsafe fn read<T>(
    res: *const pgpool_result,
    out: *mut T,
    out_err: *mut *mut pgpool_error,
    f: impl FnOnce(&Arc<QueryResult>) -> Result<T, FfiError>,
) -> pgpool_code {
    // SAFETY: pointers are used under the caller's guarantees after NULL checks.
    unsafe {
        boundary(out_err, || {
            let result = RESULTS.get(args::handle(res, "res")?)?;
            args::out(out, "out")?;
            let value = f(&result)?;
            args::write(out, value);
            Ok(())
        })
    }
}

// Exported readers. All are thread-safe and non-blocking. Common errors:
// PGPOOL_ERR_NULL_ARGUMENT (NULL `res` or output pointer), PGPOOL_ERR_INVALID_HANDLE (freed or
// unknown `res`), PGPOOL_ERR_OUT_OF_RANGE (row or column index).

/// Stores the number of rows in `*out`.
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle.
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
    unsafe { read(res, out, out_err, |r| Ok(r.rows as u64)) }
}

/// Stores the number of columns in `*out` (also known when there are no rows).
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle.
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

/// Stores the number of rows the command affected in `*out`, as the server reported it: for
/// `SELECT` the rows returned, for `UPDATE`/`INSERT`/`DELETE` (with or without `RETURNING`)
/// the rows changed.
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle.
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

/// Stores column `col`'s name (NUL-terminated UTF-8) in `*out`. The string belongs to the
/// result and is valid until `pgpool_result_free(res)`.
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle, out of range.
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
    // heap buffer, which lives as long as the result.
    unsafe { read(res, out, out_err, |r| Ok(r.column(col)?.name.as_ptr())) }
}

/// Stores column `col`'s type OID (`pg_type.oid`: 23 int4, 25 text, 1700 numeric, ...).
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle, out of range.
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

/// Stores column `col`'s type name (`"int4"`, `"text"`, ...), valid until the result is
/// freed.
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle, out of range.
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

/// Stores whether the value at (`row`, `col`) is SQL NULL.
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle, out of range.
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
    unsafe {
        read(res, out, out_err, |r| {
            Ok(matches!(r.cell(row, col)?.1, Cell::Null))
        })
    }
}

/// The value at (`row`, `col`) as text, in PostgreSQL's text output format (`timestamptz`
/// and `timetz` in UTC). On success `*out_text` points to NUL-terminated UTF-8 of
/// `*out_len` bytes, valid until `pgpool_result_free(res)`; for SQL NULL `*out_text` is NULL,
/// `*out_len` 0 and `*out_is_null` true.
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle, out of range,
/// `PGPOOL_ERR_UNSUPPORTED_TYPE` naming a type the library cannot render (cast it to text in
/// SQL).
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
            let result = RESULTS.get(args::handle(res, "res")?)?;
            args::out(out_text, "out_text")?;
            args::out(out_len, "out_len")?;
            args::out(out_is_null, "out_is_null")?;
            let (text, len, null) = match result.cell(row, col)?.1 {
                Cell::Null => (std::ptr::null(), 0, true),
                Cell::Text(bytes) => (bytes.as_ptr() as *const c_char, bytes.len() - 1, false),
                Cell::Error(code, message) => return Err(FfiError::new(*code, message.clone())),
            };
            args::write(out_text, text);
            args::write(out_len, len);
            args::write(out_is_null, null);
            Ok(())
        })
    }
}

/// The value at (`row`, `col`) as a 64-bit integer; the column must be int2, int4, int8 or
/// oid.
///
/// Thread-safe, non-blocking. Errors: NULL argument, invalid handle, out of range,
/// `PGPOOL_ERR_TYPE_MISMATCH` for another type, `PGPOOL_ERR_NULL_VALUE` for SQL NULL.
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
            let text = r.typed(row, col, "int64", &INTS)?;
            text.parse()
                .map_err(|e| FfiError::usage(format!("cannot parse {text:?} as int64: {e}")))
        })
    }
}

/// The value at (`row`, `col`) as a double; the column must be float4, float8, numeric (which
/// may lose precision), int2, int4 or int8.
///
/// Thread-safe, non-blocking. Errors: as `pgpool_result_get_int64`.
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
            let text = r.typed(row, col, "double", &NUMBERS)?;
            text.parse()
                .map_err(|e| FfiError::usage(format!("cannot parse {text:?} as double: {e}")))
        })
    }
}

/// The value at (`row`, `col`) as a bool; the column must be bool.
///
/// Thread-safe, non-blocking. Errors: as `pgpool_result_get_int64`.
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
            Ok(r.typed(row, col, "bool", &[Type::BOOL])? == "t")
        })
    }
}

/// Frees a result. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
/// `PGPOOL_ERR_INVALID_HANDLE`. Strings obtained from the result become invalid.
/// Thread-safe, non-blocking.
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
