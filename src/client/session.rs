//! [`Session`]: the wire state of one PostgreSQL session — the socket it owns, reusable read
//! and write buffers, the exact transaction status from every ReadyForQuery, the server's
//! parameters, the cancel key, and deadlines.
//!
//! Everything above it (statements, queries, COPY, the pool's connection type) talks to the
//! server through `send` and `read_message`. Asynchronous messages (notices, notifications,
//! parameter changes) are absorbed here, wherever they arrive.
//!
//! Deadlines: a call may carry a deadline. Without one, reads simply block (one `read(2)` per
//! round trip for small results). With one, each blocking read is bounded by the socket's
//! receive timeout; when it passes, the session either sends a server-side cancel and keeps
//! reading for a bounded drain (query timeouts), or gives up and is marked broken (validation,
//! connect, drain).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use crate::client::cancel::CancelToken;
use crate::client::conninfo::TargetSessionAttrs;
use crate::client::db_error::DbError;
use crate::client::lag::LagWatch;
use crate::client::stream::{Severer, Stream};
use crate::error::Error;
use crate::sys::socket;

/// The transaction status the server reported in its last ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Not in a transaction block (`I`).
    Idle,
    /// In a transaction block (`T`).
    InTransaction,
    /// In a failed transaction block (`E`): queries are rejected until it ends.
    Failed,
}

/// A `NOTIFY` received on a session that ran `LISTEN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notifying backend's process id.
    pub process_id: i32,
    /// The channel name.
    pub channel: String,
    /// The payload (empty if none was given).
    pub payload: String,
}

/// Receives the server's notices (WARNING, NOTICE, INFO, …) on a session.
pub type NoticeHandler = Arc<dyn Fn(&DbError) + Send + Sync + 'static>;

/// What happens when a call's deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDeadline {
    /// Send a CancelRequest, then keep reading for at most `drain` (a query timeout).
    Cancel { drain: Duration },
    /// Stop: the session is broken (connect, validation, a drain that did not finish).
    Break,
}

/// How long reading may take after a cancel before the session is given up.
pub(crate) const DEFAULT_DRAIN: Duration = Duration::from_secs(5);

/// The first read buffer of a session: enough for small results, small for idle sessions
/// (a pool keeps many). A read that fills it doubles it, up to `MAX_READ_CHUNK`.
const READ_CHUNK: usize = 2 * 1024;
const MAX_READ_CHUNK: usize = 64 * 1024;

/// No backend message is larger: a row holds at most 1 GiB per value, and values beyond
/// that cannot be sent. A larger length means a corrupt stream, not a big row.
const MAX_MESSAGE: usize = (1 << 30) + (1 << 20);

pub(crate) struct Session {
    stream: Stream,
    rbuf: BytesMut,
    scratch: Box<[u8]>,
    /// Messages being built for the next `send`.
    pub(crate) wbuf: BytesMut,
    status: TransactionStatus,
    parameters: HashMap<String, String>,
    process_id: i32,
    secret_key: i32,
    cancel: Option<CancelToken>,
    notifications: VecDeque<Notification>,
    notice_handler: Option<NoticeHandler>,
    broken: bool,
    deadline: Option<(Instant, OnDeadline)>,
    /// True while the socket has read/write timeouts set (they are cleared lazily).
    timeouts_set: bool,
    /// A cancel was sent for the current call because its deadline passed.
    cancelled: bool,
    /// A CommandComplete said `DISCARD ALL` or `DEALLOCATE ALL`: prepared statements are gone.
    pub(crate) statements_dropped: bool,
    /// Inside a COPY (between Copy*Response and the ReadyForQuery that ends it): the session
    /// can neither run anything else nor go back to the pool as it is.
    pub(crate) in_copy: bool,
    /// Types the server told us about beyond the built-in ones, by OID.
    pub(crate) types: HashMap<u32, postgres::types::Type>,
    /// Set by the pool (through an interrupter) when it took the connection back from its
    /// holder: the I/O errors that follow say so.
    reclaimed: Option<Arc<AtomicBool>>,
    /// What the connect accepted this server as (`Any` when it checked nothing; a
    /// `prefer-standby` session opened on a primary is `Any`).
    role_target: TargetSessionAttrs,
    /// The server reported a new value of `in_hot_standby` or
    /// `default_transaction_read_only` since the last [`Session::keeps_its_role`].
    role_changed: bool,
    /// On a standby, with `max_replica_lag` set: its lag as last measured.
    pub(crate) replica_lag: Option<LagWatch>,
}

impl Session {
    pub(crate) fn new(stream: Stream) -> Session {
        Session {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            wbuf: BytesMut::with_capacity(1024),
            status: TransactionStatus::Idle,
            parameters: HashMap::new(),
            process_id: 0,
            secret_key: 0,
            cancel: None,
            notifications: VecDeque::new(),
            notice_handler: None,
            broken: false,
            deadline: None,
            timeouts_set: false,
            cancelled: false,
            statements_dropped: false,
            in_copy: false,
            types: HashMap::new(),
            reclaimed: None,
            role_target: TargetSessionAttrs::Any,
            role_changed: false,
            replica_lag: None,
        }
    }

    /// What lets another thread stop this session: its cancel key and a second descriptor
    /// for its socket, with the flag that makes the errors after a reclaim say so.
    pub(crate) fn interrupt_parts(
        &mut self,
    ) -> io::Result<(Severer, Option<CancelToken>, Arc<AtomicBool>)> {
        let severer = self.stream.severer()?;
        let flag = Arc::clone(
            self.reclaimed
                .get_or_insert_with(|| Arc::new(AtomicBool::new(false))),
        );
        Ok((severer, self.cancel.clone(), flag))
    }

    /// The error for a connection that broke: "reclaimed" if the pool took it back.
    fn broken_error(&self, what: Error) -> Error {
        match &self.reclaimed {
            Some(flag) if flag.load(Ordering::Relaxed) => Error::broken(
                "the pool reclaimed this connection (held longer than max_checkout, or the \
                 pool was closed); release it and acquire another",
            ),
            _ => what,
        }
    }

    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    pub(crate) fn status(&self) -> TransactionStatus {
        self.status
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }

    pub(crate) fn process_id(&self) -> i32 {
        self.process_id
    }

    pub(crate) fn set_backend_key(&mut self, process_id: i32, secret_key: i32) {
        self.process_id = process_id;
        self.secret_key = secret_key;
    }

    pub(crate) fn secret_key(&self) -> i32 {
        self.secret_key
    }

    pub(crate) fn set_cancel_token(&mut self, token: CancelToken) {
        self.cancel = Some(token);
    }

    pub(crate) fn cancel_token(&self) -> Option<&CancelToken> {
        self.cancel.as_ref()
    }

    pub(crate) fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// Records what the connect accepted this server as, for [`Session::keeps_its_role`].
    pub(crate) fn set_role_target(&mut self, target: TargetSessionAttrs) {
        self.role_target = target;
    }

    /// What the connect accepted this server as.
    pub(crate) fn role_target(&self) -> TargetSessionAttrs {
        self.role_target
    }

    /// False when the server reported a role change (a standby promoted, a primary turned
    /// read-only) that makes it no longer what the connect accepted it as. A bool test
    /// unless the server reported one of the two role parameters since the last call.
    pub(crate) fn keeps_its_role(&mut self) -> bool {
        if !std::mem::take(&mut self.role_changed) {
            return true;
        }
        let on = |name| self.parameter(name) == Some("on");
        let standby = on("in_hot_standby");
        let read_only = standby || on("default_transaction_read_only");
        self.role_target.refuses(standby, read_only).is_none()
    }

    pub(crate) fn set_notice_handler(&mut self, handler: Option<NoticeHandler>) {
        self.notice_handler = handler;
    }

    pub(crate) fn take_notification(&mut self) -> Option<Notification> {
        self.notifications.pop_front()
    }

    pub(crate) fn pending_notifications(&self) -> usize {
        self.notifications.len()
    }

    /// Bounds what follows by `deadline` (`None`: unbounded). Cleared by `clear_deadline`.
    pub(crate) fn set_deadline(&mut self, deadline: Option<(Instant, OnDeadline)>) {
        self.deadline = deadline;
        self.cancelled = false;
    }

    pub(crate) fn clear_deadline(&mut self) {
        self.deadline = None;
    }

    /// Writes everything in `wbuf`. A failure breaks the session.
    pub(crate) fn send(&mut self) -> Result<(), Error> {
        if self.broken {
            self.wbuf.clear();
            return Err(self.broken_error(Error::broken("the connection is broken")));
        }
        if let Some(token) = &self.cancel {
            // One atomic load unless another thread is cancelling this session right now.
            token.wait_settled(Duration::from_secs(5));
        }
        if let Err(e) = self.apply_timeouts() {
            self.wbuf.clear();
            return Err(e);
        }
        let result = self
            .stream
            .write_all(&self.wbuf)
            .and_then(|()| self.stream.flush());
        self.wbuf.clear();
        result.map_err(|e| {
            self.broken = true;
            self.broken_error(Error::io("sending to the server", e))
        })
    }

    fn apply_timeouts(&mut self) -> Result<(), Error> {
        match self.deadline {
            Some((at, _)) => {
                let left = at.saturating_duration_since(Instant::now());
                self.stream.set_timeouts(Some(left)).map_err(|e| {
                    self.broken = true;
                    Error::io("setting socket timeouts", e)
                })?;
                self.timeouts_set = true;
            }
            None if self.timeouts_set => {
                self.stream.set_timeouts(None).map_err(|e| {
                    self.broken = true;
                    Error::io("clearing socket timeouts", e)
                })?;
                self.timeouts_set = false;
            }
            None => {}
        }
        Ok(())
    }

    /// Reads more bytes from the socket into `rbuf`, honouring the deadline.
    fn fill(&mut self) -> Result<(), Error> {
        loop {
            if let Some((at, mode)) = self.deadline {
                if Instant::now() >= at {
                    self.deadline_passed(mode)?;
                    continue;
                }
            }
            self.apply_timeouts()?;
            match self.stream.read(&mut self.scratch) {
                Ok(0) => {
                    self.broken = true;
                    return Err(self
                        .broken_error(Error::broken("server closed the connection unexpectedly")));
                }
                Ok(n) => {
                    self.rbuf.extend_from_slice(&self.scratch[..n]);
                    if n == self.scratch.len() && n < MAX_READ_CHUNK {
                        // Big results come in big reads: fewer system calls next time.
                        self.scratch = vec![0; n * 2].into_boxed_slice();
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The receive timeout fired (EAGAIN): the loop checks the deadline. ETIMEDOUT
                // (`TimedOut`) is not ours: the kernel gave up on the peer (TCP_USER_TIMEOUT,
                // keepalive), and the session is broken.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.deadline.is_some() => {}
                Err(e) => {
                    self.broken = true;
                    return Err(self.broken_error(Error::io("reading from the server", e)));
                }
            }
        }
    }

    fn deadline_passed(&mut self, mode: OnDeadline) -> Result<(), Error> {
        match mode {
            OnDeadline::Cancel { drain } if !self.cancelled => {
                self.cancelled = true;
                // One window for the cancel request and the server's answer to it: a server
                // that stopped answering costs the call `drain` past its deadline, not twice.
                let until = Instant::now() + drain;
                match &self.cancel {
                    Some(token) => {
                        if let Err(e) = token.cancel_bounded(drain) {
                            log::debug!(target: "pgpool", "cancel request failed: {e}");
                        }
                    }
                    None => {
                        log::debug!(target: "pgpool", "no cancel key: the session will be closed")
                    }
                }
                self.deadline = Some((until, OnDeadline::Break));
                Ok(())
            }
            _ => {
                self.broken = true;
                self.deadline = None;
                Err(Error::timeout_io(if self.cancelled {
                    "query timed out, and the server did not answer the cancel request; connection closed"
                } else {
                    "timed out waiting for the server; connection closed"
                }))
            }
        }
    }

    /// The next message the caller must handle. Notices, notifications and parameter
    /// changes are absorbed; ReadyForQuery updates the transaction status before it is
    /// returned.
    pub(crate) fn read_message(&mut self) -> Result<Message, Error> {
        loop {
            if self.rbuf.len() >= 5 {
                let len =
                    u32::from_be_bytes([self.rbuf[1], self.rbuf[2], self.rbuf[3], self.rbuf[4]]);
                if len as usize > MAX_MESSAGE {
                    self.broken = true;
                    return Err(Error::protocol(format!(
                        "the server announced a {len}-byte message, more than any PostgreSQL                          message can be; connection closed"
                    )));
                }
            }
            let parsed = Message::parse(&mut self.rbuf);
            match parsed {
                Ok(Some(message)) => {
                    if let Some(message) = self.absorb(message)? {
                        return Ok(message);
                    }
                }
                Ok(None) => self.fill()?,
                Err(e) => {
                    self.broken = true;
                    return Err(Error::protocol(format!(
                        "malformed message from the server: {e}"
                    )));
                }
            }
        }
    }

    /// True when a complete message (or part of one) is already buffered.
    pub(crate) fn has_buffered_input(&mut self) -> bool {
        !self.rbuf.is_empty() || self.stream.has_buffered_plaintext()
    }

    fn absorb(&mut self, message: Message) -> Result<Option<Message>, Error> {
        match message {
            Message::NoticeResponse(body) => {
                match DbError::parse(&mut body.fields()) {
                    Ok(notice) => self.deliver_notice(&notice),
                    Err(e) => log::debug!(target: "pgpool", "malformed notice: {e}"),
                }
                Ok(None)
            }
            Message::NotificationResponse(body) => {
                let channel = body.channel().map_err(Error::protocol_io)?.to_string();
                let payload = body.message().map_err(Error::protocol_io)?.to_string();
                self.notifications.push_back(Notification {
                    process_id: body.process_id(),
                    channel,
                    payload,
                });
                Ok(None)
            }
            Message::ParameterStatus(body) => {
                let name = body.name().map_err(Error::protocol_io)?.to_string();
                let value = body.value().map_err(Error::protocol_io)?.to_string();
                let role = matches!(
                    name.as_str(),
                    "in_hot_standby" | "default_transaction_read_only"
                );
                // The values reported at login are not changes.
                if self.parameters.insert(name, value).is_some() {
                    self.role_changed |= role;
                }
                Ok(None)
            }
            Message::ReadyForQuery(body) => {
                self.in_copy = false;
                self.status = match body.status() {
                    b'I' => TransactionStatus::Idle,
                    b'T' => TransactionStatus::InTransaction,
                    b'E' => TransactionStatus::Failed,
                    other => {
                        self.broken = true;
                        return Err(Error::protocol(format!(
                            "unknown transaction status {other:#04x} in ReadyForQuery"
                        )));
                    }
                };
                Ok(Some(Message::ReadyForQuery(body)))
            }
            other => Ok(Some(other)),
        }
    }

    fn deliver_notice(&self, notice: &DbError) {
        log::debug!(target: "pgpool", "server notice from backend {}: {notice}", self.process_id);
        if let Some(handler) = &self.notice_handler {
            let handler = handler.clone();
            let notice = notice.clone();
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&notice))).is_err()
            {
                log::warn!(target: "pgpool", "notice handler panicked");
            }
        }
    }

    /// Reads and discards messages up to and including the next ReadyForQuery.
    pub(crate) fn skip_to_ready(&mut self) -> Result<(), Error> {
        loop {
            if let Message::ReadyForQuery(_) = self.read_message()? {
                return Ok(());
            }
        }
    }

    /// The error in an ErrorResponse, having read on to ReadyForQuery so the session is ready
    /// for the next command. A query timeout's cancel turns into a timeout error; a FATAL
    /// error or a connection-class SQLSTATE breaks the session (then nothing more is read).
    pub(crate) fn server_error(
        &mut self,
        body: postgres_protocol::message::backend::ErrorResponseBody,
    ) -> Error {
        let db = match DbError::parse(&mut body.fields()) {
            Ok(db) => db,
            Err(e) => {
                self.broken = true;
                return Error::protocol(format!("malformed error from the server: {e}"));
            }
        };
        let fatal = matches!(db.severity(), "FATAL" | "PANIC");
        let err = Error::from_db(db, self.cancelled);
        if fatal || err.is_broken() {
            self.broken = true;
            return err;
        }
        match self.skip_to_ready() {
            Ok(()) => err,
            Err(e) => e,
        }
    }

    /// The zero-cost probe: nothing buffered and nothing readable on an idle socket.
    pub(crate) fn looks_idle(&mut self) -> bool {
        !self.broken && !self.has_buffered_input() && !socket::readable_or_hung_up(self.stream.fd())
    }

    /// Waits up to `timeout` for input on an idle session (for notifications); true when
    /// something can be read.
    pub(crate) fn wait_input(&mut self, timeout: Duration) -> bool {
        if self.has_buffered_input() {
            return true;
        }
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        socket::wait_readable(self.stream.fd(), ms)
    }

    /// Reads whatever asynchronous messages are available without blocking for more than
    /// `timeout` (the server sends notifications between commands).
    pub(crate) fn poll_async(&mut self, timeout: Duration) -> Result<(), Error> {
        if !self.wait_input(timeout) {
            return Ok(());
        }
        self.set_deadline(Some((
            Instant::now() + timeout.max(Duration::from_millis(50)),
            OnDeadline::Break,
        )));
        let result = (|| {
            if self.rbuf.is_empty() {
                self.fill()?;
            }
            loop {
                match Message::parse(&mut self.rbuf) {
                    Ok(Some(m)) => {
                        if let Some(m) = self.absorb(m)? {
                            self.broken = true;
                            return Err(Error::protocol(format!(
                                "unexpected message {} from the server on an idle session",
                                message_name(&m)
                            )));
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        self.broken = true;
                        return Err(Error::protocol(format!("malformed message: {e}")));
                    }
                }
            }
        })();
        self.clear_deadline();
        result
    }

    /// Queues a Terminate; used by `Drop`.
    fn terminate_bytes() -> BytesMut {
        let mut buf = BytesMut::with_capacity(5);
        frontend::terminate(&mut buf);
        buf
    }
}

impl Drop for Session {
    /// Says goodbye without ever blocking: a non-blocking Terminate, no linger.
    fn drop(&mut self) {
        let bytes = Session::terminate_bytes();
        self.stream
            .close_nonblocking(if self.broken { &[] } else { &bytes });
    }
}

/// A short name for a backend message, for errors that say what was unexpected.
pub(crate) fn message_name(m: &Message) -> &'static str {
    match m {
        Message::AuthenticationOk => "AuthenticationOk",
        Message::BackendKeyData(_) => "BackendKeyData",
        Message::BindComplete => "BindComplete",
        Message::CloseComplete => "CloseComplete",
        Message::CommandComplete(_) => "CommandComplete",
        Message::CopyData(_) => "CopyData",
        Message::CopyDone => "CopyDone",
        Message::CopyInResponse(_) => "CopyInResponse",
        Message::CopyOutResponse(_) => "CopyOutResponse",
        Message::DataRow(_) => "DataRow",
        Message::EmptyQueryResponse => "EmptyQueryResponse",
        Message::ErrorResponse(_) => "ErrorResponse",
        Message::NoData => "NoData",
        Message::NoticeResponse(_) => "NoticeResponse",
        Message::NotificationResponse(_) => "NotificationResponse",
        Message::ParameterDescription(_) => "ParameterDescription",
        Message::ParameterStatus(_) => "ParameterStatus",
        Message::ParseComplete => "ParseComplete",
        Message::PortalSuspended => "PortalSuspended",
        Message::ReadyForQuery(_) => "ReadyForQuery",
        Message::RowDescription(_) => "RowDescription",
        _ => "an authentication request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::net::UnixStream;

    /// Feeds `bytes` as the server's whole answer and runs `exchange` on the client side.
    fn answer_with(
        bytes: &[u8],
        exchange: impl FnOnce(&mut Session) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let (client, mut server) = UnixStream::pair().unwrap();
        let data = bytes.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = server.write_all(&data);
            // Keep the socket open briefly, then hang up: the reader must end either way.
            std::thread::sleep(Duration::from_millis(5));
        });
        let mut session = Session::new(Stream::Unix(client));
        session.set_deadline(Some((
            Instant::now() + Duration::from_secs(2),
            OnDeadline::Break,
        )));
        let started = Instant::now();
        let result = exchange(&mut session);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the reader hung"
        );
        writer.join().unwrap();
        result
    }

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// A valid answer to a simple query returning one row `1`.
    fn valid_answer() -> Vec<u8> {
        let mut v = Vec::new();
        // RowDescription: 1 field "a", table 0, col 0, type int4 (23), size 4, mod -1, text.
        let mut rd = vec![0, 1];
        rd.extend_from_slice(b"a\0");
        rd.extend_from_slice(&0u32.to_be_bytes());
        rd.extend_from_slice(&0i16.to_be_bytes());
        rd.extend_from_slice(&23u32.to_be_bytes());
        rd.extend_from_slice(&4i16.to_be_bytes());
        rd.extend_from_slice(&(-1i32).to_be_bytes());
        rd.extend_from_slice(&0i16.to_be_bytes());
        v.extend(msg(b'T', &rd));
        let mut dr = vec![0, 1];
        dr.extend_from_slice(&1i32.to_be_bytes());
        dr.push(b'1');
        v.extend(msg(b'D', &dr));
        v.extend(msg(b'N', b"SNOTICE\0C00000\0Mhi\0\0"));
        v.extend(msg(b'C', b"SELECT 1\0"));
        v.extend(msg(b'Z', b"I"));
        v
    }

    #[test]
    fn a_valid_answer_is_read() {
        let mut rows = 0;
        answer_with(&valid_answer(), |s| {
            rows = s.simple_query("SELECT 1")?.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(rows, 2); // the row and its CommandComplete
    }

    #[test]
    fn an_absurd_length_is_an_error_not_an_allocation() {
        let mut bytes = vec![b'D'];
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = answer_with(&bytes, |s| s.read_message().map(drop)).unwrap_err();
        assert!(err.is_broken(), "{err}");
        assert!(err.to_string().contains("byte message"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_end_in_an_error_never_a_panic_or_hang(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            // `answer_with` fails the case on a hang; a panic fails it by itself.
            let _ = answer_with(&bytes, |s| s.simple_query("SELECT 1").map(drop));
        }

        #[test]
        fn truncated_and_corrupted_answers_end_cleanly(cut in 0usize..200, flip in 0usize..200, value in any::<u8>()) {
            let mut bytes = valid_answer();
            if flip < bytes.len() {
                bytes[flip] = value;
            }
            bytes.truncate(cut.min(bytes.len()));
            let result = answer_with(&bytes, |s| s.simple_query("SELECT 1").map(drop));
            if cut < valid_answer().len() {
                // Cut short: the server hung up mid-answer.
                prop_assert!(result.is_err());
            }
        }

        #[test]
        fn random_bytes_during_prepare_and_execute_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = answer_with(&bytes, |s| {
                let st = s.prepare("s1", "SELECT $1::int4")?;
                s.execute(&st, &[&1i32], Some(&mut Vec::new())).map(drop)
            });
        }
    }
}
