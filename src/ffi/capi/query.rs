//! Running statements for C callers: parameters in text form (like libpq's `PQexecParams`),
//! through the connection's statement cache.

use postgres::types::{Format, IsNull, ToSql, Type};

use crate::connection::PgConnection;

use super::error::FfiError;
use super::params::Param;
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

/// Checks the parameter count against the (cached) statement, then runs `sql` through the
/// cache, which prepares it again if the server dropped it.
fn run(
    conn: &mut PgConnection,
    sql: &str,
    types: &[u32],
    params: &[&(dyn ToSql + Sync)],
    sink: Option<&mut QueryResult>,
) -> Result<u64, FfiError> {
    test_hooks::maybe_panic(sql);
    let statement = conn.prepare_cached_typed(sql, types)?;
    let expected = statement.params().len();
    if expected != params.len() {
        return Err(FfiError::invalid(format!(
            "the statement has {expected} parameter(s) but {} were given",
            params.len()
        )));
    }
    let affected = match sink {
        Some(result) => {
            let affected = conn.run_sql_typed(sql, types, params, Some(&mut *result))?;
            result.set_affected(affected);
            affected
        }
        None => conn.run_sql_typed(sql, types, params, None)?,
    };
    Ok(affected)
}

/// Runs a statement with text parameters and returns its rows.
pub(crate) fn query(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Option<&str>],
) -> Result<QueryResult, FfiError> {
    let text: Vec<TextParam<'_>> = params.iter().map(|p| TextParam(*p)).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = text.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let mut result = QueryResult::default();
    run(conn, sql, &[], &refs, Some(&mut result))?;
    Ok(result)
}

/// Runs a statement with text parameters and returns the rows it affected.
pub(crate) fn execute(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Option<&str>],
) -> Result<u64, FfiError> {
    let text: Vec<TextParam<'_>> = params.iter().map(|p| TextParam(*p)).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = text.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    run(conn, sql, &[], &refs, None)
}

/// Runs a statement with typed parameters (declared `types`, may be empty), rows into
/// `sink` when given; the affected-row count.
pub(crate) fn exec_typed(
    conn: &mut PgConnection,
    sql: &str,
    types: &[u32],
    params: &[Param],
    sink: Option<&mut QueryResult>,
) -> Result<u64, FfiError> {
    // Up to 16 parameters the references live on the stack: no allocation per query.
    const ON_STACK: usize = 16;
    if params.len() <= ON_STACK {
        let mut refs: [&(dyn ToSql + Sync); ON_STACK] = [&Param::Null; ON_STACK];
        for (slot, p) in refs.iter_mut().zip(params) {
            *slot = p;
        }
        return run(conn, sql, types, &refs[..params.len()], sink);
    }
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    run(conn, sql, types, &refs, sink)
}
