//! The message exchanges of running statements: prepare (Parse / Describe / Sync), execute
//! (Bind / Execute / Sync in one write), the simple protocol, and closing statements.
//!
//! Every exchange ends at ReadyForQuery, whatever happened, unless the session broke: a
//! session is never left half-read.

use std::collections::HashMap;
use std::sync::Arc;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{Format, ToSql, Type};
use postgres_protocol::message::backend::{CommandCompleteBody, DataRowBody, Message};
use postgres_protocol::message::frontend;

use crate::client::row::{Row, SimpleQueryMessage, SimpleRow};
use crate::client::session::{message_name, Session};
use crate::client::statement::{Column, Statement, StatementInner};
use crate::client::types;
use crate::error::Error;

/// Query parameters, as rust-postgres takes them.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Where the rows of a result go as they arrive.
pub(crate) trait RowSink {
    /// One DataRow of `statement`'s result.
    fn push(&mut self, statement: &Statement, body: DataRowBody) -> Result<(), Error>;
    /// True when no row was delivered yet (a failed statement may then be retried).
    fn is_empty(&self) -> bool;
    /// Called once before the rows of `statement` arrive (also when none do).
    fn begin(&mut self, statement: &Statement) {
        let _ = statement;
    }
}

impl RowSink for Vec<Row> {
    fn push(&mut self, statement: &Statement, body: DataRowBody) -> Result<(), Error> {
        Vec::push(self, Row::new(statement.clone(), body)?);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

pub(crate) fn unexpected(session: &mut Session, m: &Message, during: &str) -> Error {
    session.mark_broken();
    Error::protocol(format!(
        "unexpected {} from the server during {during}; connection closed",
        message_name(m)
    ))
}

fn encode_err(e: std::io::Error) -> Error {
    Error::usage(format!("cannot encode the message: {e}"))
}

/// The row count in a CommandComplete tag (`INSERT 0 5`, `SELECT 3`, `UPDATE 2`, …).
pub(crate) fn affected(session: &mut Session, body: &CommandCompleteBody) -> Result<u64, Error> {
    let tag = body.tag().map_err(Error::protocol_io)?;
    if tag == "DISCARD ALL" || tag == "DEALLOCATE ALL" {
        session.statements_dropped = true;
    }
    // The word after the last space (the whole tag when there is none); a byte search is
    // much cheaper than `rsplit` on this per-query path.
    let count = match tag.as_bytes().iter().rposition(|&b| b == b' ') {
        Some(space) => &tag[space + 1..],
        None => tag,
    };
    Ok(count.parse().unwrap_or(0))
}

impl Session {
    /// Prepares `sql` as statement `name` (empty: the unnamed statement) and learns its
    /// parameter and column types. One round trip, plus one per type the client has not
    /// seen before (user-defined types).
    pub(crate) fn prepare(&mut self, name: &str, sql: &str) -> Result<Statement, Error> {
        self.prepare_typed(name, sql, &[])
    }

    /// As [`prepare`](Self::prepare), declaring the first `types.len()` parameter types
    /// (0 = let the server infer).
    pub(crate) fn prepare_typed(
        &mut self,
        name: &str,
        sql: &str,
        types: &[u32],
    ) -> Result<Statement, Error> {
        frontend::parse(name, sql, types.iter().copied(), &mut self.wbuf).map_err(encode_err)?;
        frontend::describe(b'S', name, &mut self.wbuf).map_err(encode_err)?;
        frontend::sync(&mut self.wbuf);
        self.send()?;
        let mut param_oids = Vec::new();
        let mut fields = Vec::new();
        loop {
            match self.read_message()? {
                Message::ParseComplete | Message::CloseComplete | Message::NoData => {}
                Message::ParameterDescription(body) => {
                    param_oids = body.parameters().collect().map_err(Error::protocol_io)?;
                }
                Message::RowDescription(body) => {
                    let mut it = body.fields();
                    while let Some(f) = it.next().map_err(Error::protocol_io)? {
                        fields.push((
                            f.name().to_string(),
                            f.type_oid(),
                            f.table_oid(),
                            f.column_id(),
                        ));
                    }
                }
                Message::ErrorResponse(body) => return Err(self.server_error(body)),
                Message::ReadyForQuery(_) => break,
                other => return Err(unexpected(self, &other, "prepare")),
            }
        }
        let mut params = Vec::with_capacity(param_oids.len());
        // Types that are not built in are looked up once per statement, however many of its
        // (up to 65535) parameters share one: the session keeps only the types it found.
        let mut looked_up: HashMap<u32, Type> = HashMap::new();
        for oid in param_oids {
            if let Some(ty) = Type::from_oid(oid) {
                params.push(ty);
                continue;
            }
            if let Some(ty) = looked_up.get(&oid) {
                params.push(ty.clone());
                continue;
            }
            let ty = types::resolve(self, oid)?;
            looked_up.insert(oid, ty.clone());
            params.push(ty);
        }
        let mut columns = Vec::with_capacity(fields.len());
        for (name, oid, table_oid, column_id) in fields {
            columns.push(Column {
                name,
                type_: types::resolve(self, oid)?,
                table_oid,
                column_id,
            });
        }
        Ok(Statement(Arc::new(StatementInner {
            name: name.to_string(),
            sql: sql.to_string(),
            params,
            columns,
        })))
    }

    /// Appends Bind (all results in binary) and Execute for `statement` to the write
    /// buffer. On a conversion error nothing is left in the buffer.
    fn bind(&mut self, statement: &Statement, params: Params<'_>) -> Result<(), Error> {
        let types = statement.params();
        if types.len() != params.len() {
            return Err(Error::usage(format!(
                "the statement has {} parameter(s) but {} were given",
                types.len(),
                params.len()
            )));
        }
        let start = self.wbuf.len();
        let mut failed_at = 0usize;
        let formats = params
            .iter()
            .zip(types)
            .map(|(p, ty)| match p.encode_format(ty) {
                Format::Text => 0,
                Format::Binary => 1,
            });
        let values = params.iter().zip(types).enumerate();
        let result = frontend::bind(
            "",
            statement.name(),
            formats,
            values,
            |(i, (p, ty)), buf| {
                failed_at = i;
                match p.to_sql_checked(ty, buf)? {
                    postgres::types::IsNull::No => Ok(postgres_protocol::IsNull::No),
                    postgres::types::IsNull::Yes => Ok(postgres_protocol::IsNull::Yes),
                }
            },
            Some(1),
            &mut self.wbuf,
        );
        if let Err(e) = result {
            self.wbuf.truncate(start);
            return Err(match e {
                frontend::BindError::Conversion(e) => Error::usage(format!(
                    "parameter ${} cannot be sent as {}: {e}",
                    failed_at + 1,
                    types[failed_at]
                )),
                frontend::BindError::Serialization(e) => encode_err(e),
            });
        }
        frontend::execute("", 0, &mut self.wbuf).map_err(encode_err)?;
        Ok(())
    }

    /// Runs a prepared statement: one write, rows appended to `rows` (when given), the
    /// affected-row count returned.
    pub(crate) fn execute(
        &mut self,
        statement: &Statement,
        params: Params<'_>,
        rows: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<u64, Error> {
        self.bind(statement, params)?;
        frontend::sync(&mut self.wbuf);
        self.send()?;
        self.read_results(statement, rows)
    }

    /// Parses `sql` as the unnamed statement again and runs it, in one write: the form a
    /// transaction-pooling proxy can carry (nothing named survives between Syncs there).
    pub(crate) fn execute_unnamed(
        &mut self,
        statement: &Statement,
        params: Params<'_>,
        rows: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<u64, Error> {
        let oids: Vec<u32> = statement.params().iter().map(Type::oid).collect();
        let start = self.wbuf.len();
        frontend::parse("", statement.sql(), oids, &mut self.wbuf).map_err(encode_err)?;
        if let Err(e) = self.bind(statement, params) {
            self.wbuf.truncate(start);
            return Err(e);
        }
        frontend::sync(&mut self.wbuf);
        self.send()?;
        self.read_results(statement, rows)
    }

    fn read_results(
        &mut self,
        statement: &Statement,
        mut rows: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<u64, Error> {
        let mut count = 0;
        if let Some(rows) = rows.as_deref_mut() {
            rows.begin(statement);
        }
        loop {
            match self.read_message()? {
                Message::ParseComplete | Message::BindComplete | Message::CloseComplete => {}
                Message::DataRow(body) => {
                    if let Some(rows) = rows.as_deref_mut() {
                        rows.push(statement, body)?;
                    }
                }
                Message::CommandComplete(body) => count = affected(self, &body)?,
                Message::EmptyQueryResponse | Message::PortalSuspended => {}
                Message::ErrorResponse(body) => return Err(self.server_error(body)),
                Message::ReadyForQuery(_) => return Ok(count),
                Message::CopyInResponse(_) => return Err(self.refuse_copy_in("copy_in", true)),
                Message::CopyOutResponse(_) => return Err(self.refuse_copy_out("copy_out")),
                other => return Err(unexpected(self, &other, "a query")),
            }
        }
    }

    /// The server entered COPY FROM STDIN where the caller did not expect it: abort the
    /// COPY, read to ReadyForQuery, and say what to use instead. `extended`: the COPY came
    /// from the extended protocol, whose Sync (sent before the COPY began) the server ignored
    /// in copy-in mode, so another one must follow the CopyFail.
    pub(crate) fn refuse_copy_in(&mut self, instead: &str, extended: bool) -> Error {
        let _ = frontend::copy_fail(
            &format!("COPY FROM STDIN is not supported here; use {instead}"),
            &mut self.wbuf,
        );
        if extended {
            frontend::sync(&mut self.wbuf);
        }
        if let Err(e) = self.send() {
            return e;
        }
        match self.skip_to_ready() {
            Ok(()) => Error::usage(format!(
                "COPY FROM STDIN cannot run through this call; use {instead}"
            )),
            Err(e) => e,
        }
    }

    /// The server entered COPY TO STDOUT where the caller did not expect it: read the data
    /// away to ReadyForQuery and say what to use instead.
    pub(crate) fn refuse_copy_out(&mut self, instead: &str) -> Error {
        match self.skip_to_ready() {
            Ok(()) => Error::usage(format!(
                "COPY TO STDOUT cannot run through this call; use {instead}"
            )),
            Err(e) => e,
        }
    }

    /// Runs `sql` (one or more `;`-separated statements) with the simple protocol; every
    /// value comes back as text.
    pub(crate) fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        frontend::query(sql, &mut self.wbuf).map_err(encode_err)?;
        self.send()?;
        let mut out = Vec::new();
        let mut columns: Arc<[String]> = Arc::from(Vec::new());
        let mut error = None;
        loop {
            match self.read_message()? {
                Message::RowDescription(body) => {
                    let mut names = Vec::new();
                    let mut it = body.fields();
                    while let Some(f) = it.next().map_err(Error::protocol_io)? {
                        names.push(f.name().to_string());
                    }
                    columns = Arc::from(names);
                }
                Message::DataRow(body) => {
                    let buf = body.buffer();
                    let mut values = Vec::with_capacity(columns.len());
                    let mut it = body.ranges();
                    while let Some(r) = it.next().map_err(Error::protocol_io)? {
                        values.push(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned()));
                    }
                    out.push(SimpleQueryMessage::Row(SimpleRow {
                        columns: columns.clone(),
                        values,
                    }));
                }
                Message::CommandComplete(body) => {
                    out.push(SimpleQueryMessage::CommandComplete(affected(self, &body)?));
                }
                Message::EmptyQueryResponse | Message::NoData => {}
                Message::ErrorResponse(body) => {
                    // The simple protocol stops at the first error and then sends
                    // ReadyForQuery; `server_error` reads up to it.
                    error = Some(self.server_error(body));
                    break;
                }
                Message::CopyInResponse(_) => return Err(self.refuse_copy_in("copy_in", false)),
                Message::CopyOutResponse(_) => return Err(self.refuse_copy_out("copy_out")),
                Message::ReadyForQuery(_) => break,
                other => return Err(unexpected(self, &other, "a simple query")),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Queues a Close of statement `name`; it travels with the next exchange (the server
    /// answers CloseComplete, which every exchange skips).
    pub(crate) fn queue_close(&mut self, name: &str) {
        let start = self.wbuf.len();
        if frontend::close(b'S', name, &mut self.wbuf).is_err() {
            self.wbuf.truncate(start);
        }
    }
}
