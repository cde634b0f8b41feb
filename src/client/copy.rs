//! COPY FROM STDIN ([`CopyIn`], a `Write`) and COPY TO STDOUT ([`CopyOut`], a `Read`), over
//! the simple protocol. Both leave the session at ReadyForQuery however they end: a `CopyIn`
//! dropped unfinished aborts the COPY; a `CopyOut` dropped early reads the rest away.

use std::io::{self, Read, Write};

use bytes::{Buf, Bytes};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use crate::client::query;
use crate::client::session::Session;
use crate::error::Error;

/// Data is sent in CopyData messages of about this size.
const CHUNK: usize = 64 * 1024;

fn unexpected(session: &mut Session, m: &Message) -> Error {
    query::unexpected(session, m, "COPY")
}

/// Starts `sql` and reads up to the CopyInResponse / CopyOutResponse.
fn start(session: &mut Session, sql: &str, want_in: bool) -> Result<(), Error> {
    frontend::query(sql, &mut session.wbuf).map_err(|e| Error::usage(e.to_string()))?;
    session.send()?;
    loop {
        match session.read_message()? {
            Message::CopyInResponse(_) if want_in => {
                session.in_copy = true;
                return Ok(());
            }
            Message::CopyOutResponse(_) if !want_in => {
                session.in_copy = true;
                return Ok(());
            }
            Message::CopyInResponse(_) => {
                frontend::copy_fail("expected COPY TO STDOUT", &mut session.wbuf)
                    .map_err(|e| Error::usage(e.to_string()))?;
                session.send()?;
                session.skip_to_ready()?;
                return Err(Error::usage("copy_out needs a COPY … TO STDOUT statement"));
            }
            Message::CopyOutResponse(_) => {
                session.skip_to_ready()?;
                return Err(Error::usage("copy_in needs a COPY … FROM STDIN statement"));
            }
            Message::ErrorResponse(body) => return Err(session.server_error(body)),
            Message::CommandComplete(_) | Message::RowDescription(_) | Message::DataRow(_) => {}
            Message::EmptyQueryResponse => {}
            Message::ReadyForQuery(_) => {
                return Err(Error::usage(if want_in {
                    "copy_in needs a COPY … FROM STDIN statement"
                } else {
                    "copy_out needs a COPY … TO STDOUT statement"
                }))
            }
            other => return Err(unexpected(session, &other)),
        }
    }
}

/// Reads the end of a COPY: CommandComplete (the row count), then ReadyForQuery.
fn finish_command(session: &mut Session) -> Result<u64, Error> {
    let mut rows = 0;
    let mut error = None;
    loop {
        match session.read_message()? {
            Message::CommandComplete(body) => rows = query::affected(session, &body)?,
            Message::ErrorResponse(body) => {
                error = Some(session.server_error(body));
                break;
            }
            Message::ReadyForQuery(_) => break,
            Message::CopyData(_) | Message::CopyDone => {}
            other => return Err(unexpected(session, &other)),
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

/// Starts a COPY … FROM STDIN (`want_in`) or TO STDOUT on `session`, for callers that keep
/// the COPY's state themselves (the C ABI).
pub(crate) fn begin(session: &mut Session, sql: &str, want_in: bool) -> Result<(), Error> {
    start(session, sql, want_in)
}

/// Sends one piece of COPY FROM STDIN data.
pub(crate) fn send_data(session: &mut Session, data: &[u8]) -> Result<(), Error> {
    let message = frontend::CopyData::new(data).map_err(|e| Error::usage(e.to_string()))?;
    message.write(&mut session.wbuf);
    session.send()
}

/// Ends COPY FROM STDIN; the number of rows copied.
pub(crate) fn end_in(session: &mut Session) -> Result<u64, Error> {
    frontend::copy_done(&mut session.wbuf);
    session.send()?;
    finish_command(session)
}

/// Aborts COPY FROM STDIN with `reason`. The server ends the COPY with an error: its answer
/// to the abort (57014), or the error that data sent before had already caused (a malformed
/// row). Either way nothing was copied and the session is ready again, so a server error is
/// success here; only a broken session is an error.
pub(crate) fn abort_in(session: &mut Session, reason: &str) -> Result<(), Error> {
    frontend::copy_fail(reason, &mut session.wbuf).map_err(|e| Error::usage(e.to_string()))?;
    session.send()?;
    match finish_command(session) {
        Err(e) if e.kind() == crate::error::ErrorKind::Server => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Ok(()),
    }
}

/// The next piece of COPY TO STDOUT data, or the row count once the COPY has ended.
pub(crate) enum OutPiece {
    Data(Bytes),
    End(u64),
}

/// Reads the next piece of COPY TO STDOUT.
pub(crate) fn next_out(session: &mut Session) -> Result<OutPiece, Error> {
    loop {
        match session.read_message()? {
            Message::CopyData(body) => {
                let data = body.into_bytes();
                if !data.is_empty() {
                    return Ok(OutPiece::Data(data));
                }
            }
            Message::CopyDone => return Ok(OutPiece::End(finish_command(session)?)),
            Message::ErrorResponse(body) => return Err(session.server_error(body)),
            other => return Err(unexpected(session, &other)),
        }
    }
}

/// A running `COPY … FROM STDIN`. Write the data (in the COPY's format), then call
/// [`finish`](Self::finish). Dropping it unfinished aborts the COPY (nothing is written).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
/// use std::io::Write;
/// let mut conn = pool.get()?;
/// let mut copy = conn.copy_in("COPY items (id, name) FROM STDIN")?;
/// for i in 0..1000 {
///     writeln!(copy, "{i}\titem {i}")?;
/// }
/// assert_eq!(copy.finish()?, 1000);
/// # Ok(()) }
/// ```
pub struct CopyIn<'a> {
    session: &'a mut Session,
    buf: Vec<u8>,
    done: bool,
}

impl<'a> CopyIn<'a> {
    pub(crate) fn start(session: &'a mut Session, sql: &str) -> Result<CopyIn<'a>, Error> {
        start(session, sql, true)?;
        Ok(CopyIn {
            session,
            buf: Vec::with_capacity(CHUNK),
            done: false,
        })
    }

    fn send_buffered(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let sent = send_data(self.session, &self.buf);
        self.buf.clear();
        sent
    }

    /// Ends the COPY; returns the number of rows the server copied.
    pub fn finish(mut self) -> Result<u64, Error> {
        self.done = true;
        self.send_buffered()?;
        end_in(self.session)
    }

    /// Aborts the COPY with `reason` (the server rolls it back). Succeeds too when data sent
    /// before had already failed on the server (nothing is copied either way).
    pub fn abort(mut self, reason: &str) -> Result<(), Error> {
        self.done = true;
        self.fail(reason)
    }

    fn fail(&mut self, reason: &str) -> Result<(), Error> {
        abort_in(self.session, reason)
    }
}

impl Write for CopyIn<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buffered().map_err(io::Error::other)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered().map_err(io::Error::other)
    }
}

impl Drop for CopyIn<'_> {
    fn drop(&mut self) {
        if !self.done && !self.session.is_broken() {
            if let Err(e) = self.fail("COPY abandoned by the client") {
                log::debug!(target: "pgpool", "aborting an unfinished COPY: {e}");
                self.session.mark_broken();
            }
        }
    }
}

/// A running `COPY … TO STDOUT`: read the data (in the COPY's format) with `Read` or
/// [`next_chunk`](Self::next_chunk), then [`finish`](Self::finish) for the row count.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
/// use std::io::Read;
/// let mut conn = pool.get()?;
/// let mut copy = conn.copy_out("COPY items TO STDOUT")?;
/// let mut text = String::new();
/// copy.read_to_string(&mut text)?;
/// println!("{} rows", copy.finish()?);
/// # Ok(()) }
/// ```
pub struct CopyOut<'a> {
    session: &'a mut Session,
    current: Bytes,
    ended: bool,
    rows: Option<u64>,
}

impl<'a> CopyOut<'a> {
    pub(crate) fn start(session: &'a mut Session, sql: &str) -> Result<CopyOut<'a>, Error> {
        start(session, sql, false)?;
        Ok(CopyOut {
            session,
            current: Bytes::new(),
            ended: false,
            rows: None,
        })
    }

    /// The next piece of data as the server sent it; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        if !self.current.is_empty() {
            return Ok(Some(std::mem::take(&mut self.current)));
        }
        if self.ended {
            return Ok(None);
        }
        match next_out(self.session) {
            Ok(OutPiece::Data(data)) => Ok(Some(data)),
            Ok(OutPiece::End(rows)) => {
                self.ended = true;
                self.rows = Some(rows);
                Ok(None)
            }
            Err(e) => {
                self.ended = true;
                Err(e)
            }
        }
    }

    /// Reads whatever is left and returns the number of rows copied.
    pub fn finish(mut self) -> Result<u64, Error> {
        while self.next_chunk()?.is_some() {}
        Ok(self.rows.unwrap_or(0))
    }
}

impl Read for CopyOut<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.current.is_empty() {
            match self.next_chunk().map_err(io::Error::other)? {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

impl Drop for CopyOut<'_> {
    fn drop(&mut self) {
        if !self.ended && !self.session.is_broken() {
            self.current = Bytes::new();
            loop {
                match self.next_chunk() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break,
                }
            }
        }
    }
}
