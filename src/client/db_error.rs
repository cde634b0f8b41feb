//! [`DbError`]: the fields of a server's ErrorResponse or NoticeResponse.

use std::fmt;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres_protocol::message::backend::ErrorFields;

/// An error or notice the server sent, with every field it filled in.
///
/// ```no_run
/// # fn main() -> Result<(), pgpool::Error> {
/// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
/// let err = pool.get()?.execute("INSERT INTO t (id) VALUES (1)", &[]).unwrap_err();
/// if let Some(db) = err.db_error() {
///     println!("{} {}: {} (constraint {:?})", db.severity(), db.code(), db.message(), db.constraint());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct DbError {
    severity: String,
    code: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    position: Option<u32>,
    where_: Option<String>,
    schema: Option<String>,
    table: Option<String>,
    column: Option<String>,
    datatype: Option<String>,
    constraint: Option<String>,
}

impl DbError {
    /// Reads the fields of an ErrorResponse / NoticeResponse body.
    pub(crate) fn parse(fields: &mut ErrorFields<'_>) -> std::io::Result<DbError> {
        let mut e = DbError::default();
        let mut localized = None;
        while let Some(f) = fields.next()? {
            let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
            match f.type_() {
                b'V' => e.severity = v,
                b'S' => localized = Some(v),
                b'C' => e.code = v,
                b'M' => e.message = v,
                b'D' => e.detail = Some(v),
                b'H' => e.hint = Some(v),
                b'P' => e.position = v.parse().ok(),
                b'W' => e.where_ = Some(v),
                b's' => e.schema = Some(v),
                b't' => e.table = Some(v),
                b'c' => e.column = Some(v),
                b'd' => e.datatype = Some(v),
                b'n' => e.constraint = Some(v),
                _ => {}
            }
        }
        if e.severity.is_empty() {
            e.severity = localized.unwrap_or_else(|| "ERROR".into());
        }
        Ok(e)
    }

    /// `ERROR`, `FATAL`, `PANIC`, or for notices `WARNING`, `NOTICE`, `INFO`, `DEBUG`, `LOG`.
    pub fn severity(&self) -> &str {
        &self.severity
    }
    /// The five-character SQLSTATE.
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The primary message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The optional detail message.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
    /// The optional hint.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// 1-based character position of the error in the statement text.
    pub fn position(&self) -> Option<u32> {
        self.position
    }
    /// The context (call stack of PL functions, …).
    pub fn where_(&self) -> Option<&str> {
        self.where_.as_deref()
    }
    /// Schema of the object the error is about.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }
    /// Table the error is about.
    pub fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }
    /// Column the error is about.
    pub fn column(&self) -> Option<&str> {
        self.column.as_deref()
    }
    /// Data type the error is about.
    pub fn datatype(&self) -> Option<&str> {
        self.datatype.as_deref()
    }
    /// Constraint the error is about.
    pub fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }
}

impl fmt::Display for DbError {
    /// `severity: message (SQLSTATE code); detail: …; hint: …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        )?;
        if let Some(d) = &self.detail {
            write!(f, "; detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DbError");
        d.field("severity", &self.severity)
            .field("code", &self.code)
            .field("message", &self.message);
        for (name, v) in [
            ("detail", &self.detail),
            ("hint", &self.hint),
            ("where", &self.where_),
            ("schema", &self.schema),
            ("table", &self.table),
            ("column", &self.column),
            ("datatype", &self.datatype),
            ("constraint", &self.constraint),
        ] {
            if let Some(v) = v {
                d.field(name, v);
            }
        }
        d.finish()
    }
}

impl std::error::Error for DbError {}
