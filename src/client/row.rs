//! [`Row`]: one row of a result, decoded on demand with `postgres::types::FromSql`, and the
//! text rows of the simple protocol.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, Type};
use postgres_protocol::message::backend::DataRowBody;

use crate::client::statement::{Column, Statement};
use crate::error::Error;

/// A column index: a position (`usize`) or a column name (`&str`).
pub trait RowIndex: fmt::Display + private::Sealed {
    #[doc(hidden)]
    fn find(&self, columns: &[Column]) -> Option<usize>;
}

mod private {
    pub trait Sealed {}
}

impl private::Sealed for usize {}
impl RowIndex for usize {
    fn find(&self, columns: &[Column]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl private::Sealed for str {}
impl RowIndex for str {
    fn find(&self, columns: &[Column]) -> Option<usize> {
        columns.iter().position(|c| c.name == self).or_else(|| {
            columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(self))
        })
    }
}

impl<T: RowIndex + ?Sized> private::Sealed for &T {}
impl<T: RowIndex + ?Sized> RowIndex for &T {
    fn find(&self, columns: &[Column]) -> Option<usize> {
        T::find(*self, columns)
    }
}

/// One row of a query result. Values are decoded when read, with any type that implements
/// `postgres::types::FromSql` (what rust-postgres users already use).
///
/// ```no_run
/// # fn main() -> Result<(), pgpool::Error> {
/// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
/// let row = pool.get()?.query_one("SELECT 1::int4 AS one, 'a'::text AS letter", &[])?;
/// let one: i32 = row.get(0);
/// let letter: &str = row.get("letter");
/// let missing: Result<i64, _> = row.try_get(0); // int4 is not i64: an error, not a panic
/// assert!(missing.is_err());
/// # Ok(()) }
/// ```
pub struct Row {
    statement: Statement,
    body: DataRowBody,
    ranges: Offsets,
}

/// How many values' offsets a row keeps inline (no allocation for narrower rows).
const INLINE: usize = 8;

/// Where each value of a row lies in its DataRow body; `None` for NULL.
enum Offsets {
    Inline(usize, [Option<Range<u32>>; INLINE]),
    Heap(Vec<Option<Range<u32>>>),
}

impl Offsets {
    fn len(&self) -> usize {
        match self {
            Offsets::Inline(n, _) => *n,
            Offsets::Heap(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<&Option<Range<u32>>> {
        match self {
            Offsets::Inline(n, items) => items[..*n].get(i),
            Offsets::Heap(v) => v.get(i),
        }
    }

    fn read(body: &DataRowBody, columns: usize) -> Result<Offsets, Error> {
        let narrow = |r: Range<usize>| r.start as u32..r.end as u32;
        let mut it = body.ranges();
        if columns <= INLINE {
            let mut items = [const { None }; INLINE];
            let mut n = 0;
            while let Some(range) = it.next().map_err(Error::protocol_io)? {
                if n == INLINE {
                    n += 1;
                    break;
                }
                items[n] = range.map(narrow);
                n += 1;
            }
            Ok(Offsets::Inline(n.min(INLINE + 1), items))
        } else {
            let mut v = Vec::with_capacity(columns);
            while let Some(range) = it.next().map_err(Error::protocol_io)? {
                v.push(range.map(narrow));
            }
            Ok(Offsets::Heap(v))
        }
    }
}

impl Row {
    pub(crate) fn new(statement: Statement, body: DataRowBody) -> Result<Row, Error> {
        let ranges = Offsets::read(&body, statement.columns().len())?;
        if ranges.len() != statement.columns().len() {
            return Err(Error::protocol(format!(
                "a row has {} values but the statement has {} columns",
                ranges.len(),
                statement.columns().len()
            )));
        }
        Ok(Row {
            statement,
            body,
            ranges,
        })
    }

    /// The row's columns.
    pub fn columns(&self) -> &[Column] {
        self.statement.columns()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True for a row without columns.
    pub fn is_empty(&self) -> bool {
        self.ranges.len() == 0
    }

    /// The raw (binary format) bytes of a value; `None` for NULL.
    pub fn raw(&self, idx: usize) -> Option<&[u8]> {
        let range = self.ranges.get(idx)?.clone()?;
        Some(&self.body.buffer()[range.start as usize..range.end as usize])
    }

    /// The value of column `idx` as `T`.
    ///
    /// # Panics
    /// When the column does not exist or its type cannot be read as `T` (use
    /// [`try_get`](Self::try_get) to get an error instead).
    #[track_caller]
    pub fn get<'a, I, T>(&'a self, idx: I) -> T
    where
        I: RowIndex,
        T: FromSql<'a>,
    {
        match self.try_get(idx) {
            Ok(v) => v,
            Err(e) => panic!("error retrieving column: {e}"),
        }
    }

    /// The value of column `idx` as `T`, or an error naming the column and the types.
    pub fn try_get<'a, I, T>(&'a self, idx: I) -> Result<T, Error>
    where
        I: RowIndex,
        T: FromSql<'a>,
    {
        let i = idx.find(self.columns()).ok_or_else(|| {
            Error::usage(format!(
                "no column {idx} (the row has {} columns)",
                self.len()
            ))
        })?;
        let column = &self.columns()[i];
        decode(column.type_(), column.name(), self.raw(i))
    }
}

/// Decodes one binary value with `FromSql`, checking the type first.
pub(crate) fn decode<'a, T: FromSql<'a>>(
    ty: &Type,
    name: &str,
    raw: Option<&'a [u8]>,
) -> Result<T, Error> {
    if !T::accepts(ty) {
        return Err(Error::usage(format!(
            "column \"{name}\" has type {ty}, which cannot be read as {}",
            std::any::type_name::<T>()
        )));
    }
    T::from_sql_nullable(ty, raw).map_err(|e| {
        Error::usage(format!(
            "column \"{name}\" ({ty}) cannot be read as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Row")
            .field("columns", &self.columns())
            .finish()
    }
}

/// One row of a simple-protocol query: every value as text.
#[derive(Debug, Clone)]
pub struct SimpleRow {
    pub(crate) columns: Arc<[String]>,
    pub(crate) values: Vec<Option<String>>,
}

impl SimpleRow {
    /// Column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The text of value `idx`; `None` for NULL or a missing column.
    pub fn get(&self, idx: usize) -> Option<&str> {
        self.values.get(idx)?.as_deref()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a row without columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// What a simple-protocol query returns, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SimpleQueryMessage {
    /// A row.
    Row(SimpleRow),
    /// A statement finished; the number of rows it affected or returned.
    CommandComplete(u64),
}
