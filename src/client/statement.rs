//! [`Statement`] and [`Column`]: what the server said about a prepared statement.

use std::sync::Arc;

use postgres::types::Type;

/// A result column: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub(crate) name: String,
    pub(crate) type_: Type,
    pub(crate) table_oid: u32,
    pub(crate) column_id: i16,
}

impl Column {
    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's type.
    pub fn type_(&self) -> &Type {
        &self.type_
    }

    /// The OID of the table the column comes from, if it comes straight from one.
    pub fn table_oid(&self) -> Option<u32> {
        (self.table_oid != 0).then_some(self.table_oid)
    }

    /// The column's attribute number in that table.
    pub fn column_id(&self) -> Option<i16> {
        (self.column_id != 0).then_some(self.column_id)
    }
}

pub(crate) struct StatementInner {
    /// The server-side name; empty for the unnamed statement.
    pub(crate) name: String,
    pub(crate) sql: String,
    pub(crate) params: Vec<Type>,
    pub(crate) columns: Vec<Column>,
}

/// A statement prepared on one session: its parameter and column types. Cheap to clone.
/// Valid only on the session that prepared it (the pool's statement cache keeps one per
/// session and statement text).
#[derive(Clone)]
pub struct Statement(pub(crate) Arc<StatementInner>);

impl Statement {
    /// The types of the statement's parameters (`$1`, `$2`, …).
    pub fn params(&self) -> &[Type] {
        &self.0.params
    }

    /// The columns the statement returns (empty for commands without rows).
    pub fn columns(&self) -> &[Column] {
        &self.0.columns
    }

    /// The statement's text.
    pub fn sql(&self) -> &str {
        &self.0.sql
    }

    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }
}

impl std::fmt::Debug for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statement")
            .field("name", &self.0.name)
            .field("sql", &self.0.sql)
            .field("params", &self.0.params)
            .field("columns", &self.0.columns)
            .finish()
    }
}
