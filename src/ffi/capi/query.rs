//! Running statements for C callers: parameters in text form (like libpq's `PQexecParams`),
//! through the connection's statement cache.

use postgres::types::{Format, IsNull, ToSql, Type};

use crate::connection::PgConnection;

use super::error::FfiError;
use super::result::QueryResult;
use super::test_hooks;

/// One parameter in PostgreSQL's text input format (`None` is SQL NULL); the server parses it
/// as whatever type the statement expects.
#[derive(Debug)]
struct TextParam<'a>(Option<&'a str>);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql(ty, out)
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }
}

/// Prepares (or finds in the cache) `sql`, checks the parameter count, and runs it with
/// `run`.
fn with_params<T>(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Option<&str>],
    run: impl FnOnce(
        &mut PgConnection,
        &crate::client::Statement,
        &[&(dyn ToSql + Sync)],
    ) -> Result<T, FfiError>,
) -> Result<T, FfiError> {
    test_hooks::maybe_panic(sql);
    let statement = conn.prepare_cached(sql)?;
    let expected = statement.params().len();
    if expected != params.len() {
        return Err(FfiError::invalid(format!(
            "the statement has {expected} parameter(s) but {} were given",
            params.len()
        )));
    }
    let text: Vec<TextParam<'_>> = params.iter().map(|p| TextParam(*p)).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = text.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    run(conn, &statement, &refs)
}

/// Runs a statement and renders its rows.
pub(crate) fn query(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Option<&str>],
) -> Result<QueryResult, FfiError> {
    with_params(conn, sql, params, |conn, statement, refs| {
        let (rows, affected) = conn.query_prepared(statement, refs)?;
        Ok(QueryResult::build(statement, &rows, affected))
    })
}

/// Runs a statement and returns the rows it affected.
pub(crate) fn execute(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Option<&str>],
) -> Result<u64, FfiError> {
    with_params(conn, sql, params, |conn, statement, refs| {
        Ok(conn.execute_prepared(statement, refs)?)
    })
}
