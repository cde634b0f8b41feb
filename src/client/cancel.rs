//! [`CancelToken`]: asks the server to cancel whatever a session is running, from any thread,
//! over a connection of its own (the protocol's CancelRequest).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use crate::error::Error;

/// Where the session's server listens: the cancel goes to the same address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CancelTarget {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Cancels the statement a session is running. `Send + Sync + Clone`: hand it to a watchdog
/// thread. Get one from [`PgConnection::cancel_token`](crate::PgConnection::cancel_token).
///
/// A cancel that arrives while the session is idle is ignored by the server, and `cancel`
/// returns only after the server has taken the request (it closes the cancel connection), so
/// a late cancel can never hit a later statement.
///
/// ```no_run
/// # fn main() -> Result<(), pgpool::Error> {
/// # let pool = pgpool::Pool::builder().build("postgres://app@localhost/app")?;
/// let mut conn = pool.get()?;
/// let token = conn.cancel_token().expect("the server sent a cancel key");
/// let watchdog = std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_millis(100));
///     token.cancel()
/// });
/// let err = conn.execute("SELECT pg_sleep(10)", &[]).unwrap_err();
/// assert_eq!(err.sqlstate(), Some("57014"));
/// watchdog.join().unwrap()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CancelToken {
    target: CancelTarget,
    process_id: i32,
    secret_key: i32,
    /// Cancel requests of this session under way, shared by every clone and the session:
    /// the session sends nothing new while one is (see [`CancelToken::wait_settled`]).
    in_flight: Arc<AtomicUsize>,
}

/// Counts a cancel request under way for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret key stays secret.
        f.debug_struct("CancelToken")
            .field("target", &self.target)
            .field("process_id", &self.process_id)
            .finish()
    }
}

/// Writes the request and waits until the server closes the connection, which it does once
/// it has signalled the backend.
fn deliver(mut socket: impl Read + Write, request: &[u8]) -> std::io::Result<()> {
    socket.write_all(request)?;
    let mut sink = [0u8; 16];
    while socket.read(&mut sink)? > 0 {}
    Ok(())
}

/// How long a cancel may take unless the caller says otherwise.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

impl CancelToken {
    pub(crate) fn new(target: CancelTarget, process_id: i32, secret_key: i32) -> CancelToken {
        CancelToken {
            target,
            process_id,
            secret_key,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits (at most `bound`) until no cancel request of this session is under way. The
    /// session calls it before sending a new statement: a cancel the server is still taking
    /// (PostgreSQL signals the backend more than once for one request) must land while the
    /// session is idle, where the server ignores it, never on the next statement.
    pub(crate) fn wait_settled(&self, bound: Duration) {
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            return;
        }
        let deadline = Instant::now() + bound;
        while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The backend process this token cancels.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// Sends the cancel request and waits (at most 5 s) until the server has taken it.
    /// Cancelling is best effort: the statement may finish first.
    pub fn cancel(&self) -> Result<(), Error> {
        self.cancel_bounded(CANCEL_TIMEOUT)
    }

    /// As [`cancel`](Self::cancel), bounded by `timeout` in total.
    pub fn cancel_bounded(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _in_flight = InFlight(&self.in_flight);
        let mut request = BytesMut::with_capacity(16);
        frontend::cancel_request(self.process_id, self.secret_key, &mut request);
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        let fail = |e: std::io::Error| Error::io("sending a cancel request", e);
        match &self.target {
            CancelTarget::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, left()).map_err(fail)?;
                s.set_write_timeout(Some(left())).map_err(fail)?;
                s.set_read_timeout(Some(left())).map_err(fail)?;
                deliver(s, &request).map_err(fail)?;
            }
            CancelTarget::Unix(path) => {
                let s = UnixStream::connect(path).map_err(fail)?;
                s.set_write_timeout(Some(left())).map_err(fail)?;
                s.set_read_timeout(Some(left())).map_err(fail)?;
                deliver(s, &request).map_err(fail)?;
            }
        }
        Ok(())
    }
}
