//! [`Stream`]: the socket a session owns — TCP, TLS over TCP, or a Unix-domain socket.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::client::tls::TlsStream;

/// The session's transport. Reads and writes block, bounded by the socket timeouts the
/// session sets for deadlines.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Unix(UnixStream),
}

impl Stream {
    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.sock.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    pub(crate) fn is_tcp(&self) -> bool {
        !matches!(self, Stream::Unix(_))
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// True when TLS holds decrypted bytes not yet read, which `poll` on the socket cannot see.
    pub(crate) fn has_buffered_plaintext(&mut self) -> bool {
        match self {
            // Processes records already received (no I/O) and reports what they decrypted to.
            Stream::Tls(s) => s
                .conn
                .process_new_packets()
                .map(|state| state.plaintext_bytes_to_read() > 0)
                .unwrap_or(true),
            _ => false,
        }
    }

    /// Read and write timeouts on the socket (`None`: block).
    pub(crate) fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        // A zero duration is rejected by std; the caller's deadline has passed anyway.
        let t = t.map(|d| d.max(Duration::from_millis(1)));
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Stream::Tls(s) => {
                s.sock.set_read_timeout(t)?;
                s.sock.set_write_timeout(t)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }

    /// Best-effort goodbye without ever blocking: switch to non-blocking, write `bytes`
    /// (Terminate) and TLS close_notify if the send buffer has room, shut the socket down.
    /// Closing it afterwards (on drop) does not linger.
    pub(crate) fn close_nonblocking(&mut self, bytes: &[u8]) {
        match self {
            Stream::Tcp(s) => {
                let _ = s.set_nonblocking(true);
                let _ = s.write(bytes);
                let _ = s.shutdown(Shutdown::Both);
            }
            Stream::Tls(s) => {
                let _ = s.sock.set_nonblocking(true);
                let _ = s.conn.writer().write(bytes);
                s.conn.send_close_notify();
                while s.conn.wants_write() {
                    match s.conn.write_tls(&mut s.sock) {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
                let _ = s.sock.shutdown(Shutdown::Both);
            }
            Stream::Unix(s) => {
                let _ = s.set_nonblocking(true);
                let _ = s.write(bytes);
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// A second descriptor for a session's socket, with which another thread can shut the
/// socket down (the session's blocked read or write then returns at once). Owning its own
/// descriptor, it can never shut down an unrelated socket that reused a closed number.
#[derive(Debug)]
pub(crate) enum Severer {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Severer {
    /// Shuts the socket down in both directions; harmless if it already is.
    pub(crate) fn sever(&self) {
        let _ = match self {
            Severer::Tcp(s) => s.shutdown(Shutdown::Both),
            Severer::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Stream {
    /// A [`Severer`] for this socket (one `dup`).
    pub(crate) fn severer(&self) -> io::Result<Severer> {
        Ok(match self {
            Stream::Tcp(s) => Severer::Tcp(s.try_clone()?),
            Stream::Tls(s) => Severer::Tcp(s.sock.try_clone()?),
            Stream::Unix(s) => Severer::Unix(s.try_clone()?),
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}
