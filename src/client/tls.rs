//! TLS for the client (rustls): `sslmode` semantics, root and client certificates, SNI, and
//! the `tls-server-end-point` channel binding for SCRAM-SHA-256-PLUS.

use std::net::TcpStream;

use crate::client::conninfo::ConnConfig;
use crate::error::Error;

/// A TLS session over TCP.
pub(crate) type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// TLS settings built once per manager from the connection settings.
#[derive(Debug)]
pub(crate) struct TlsConnector {
    _private: (),
}

impl TlsConnector {
    /// `None` when `sslmode=disable`; an error naming the option for unreadable or invalid
    /// certificate files.
    pub(crate) fn new(config: &ConnConfig) -> Result<Option<TlsConnector>, Error> {
        let _ = config;
        Ok(None)
    }

    /// The TLS handshake on a socket whose SSLRequest the server accepted with `S`; `host`
    /// is the host name connected to (SNI, verify-full). Bounded by the socket's timeouts.
    pub(crate) fn handshake(&self, tcp: TcpStream, host: &str) -> Result<TlsStream, Error> {
        let _ = (tcp, host);
        Err(Error::usage("TLS is not available"))
    }
}

/// RFC 5929 `tls-server-end-point` data: the hash of the server's certificate.
pub(crate) fn server_end_point(stream: &TlsStream) -> Option<Vec<u8>> {
    let _ = stream;
    None
}
