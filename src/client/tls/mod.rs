//! TLS for the client (rustls): `sslmode` semantics, root and client certificates, SNI, and
//! the `tls-server-end-point` channel binding for SCRAM-SHA-256-PLUS.
//!
//! The cryptography is rustls with its `ring` provider, chosen explicitly for every
//! configuration (the process-wide default provider is never installed or consulted). ring
//! needs only a C compiler: no cmake, no nasm, no Go; it builds on Linux, macOS and the BSDs.
//!
//! # What each `sslmode` does
//!
//! The connect code sends the SSLRequest; when the server answers `S`, it calls
//! [`TlsConnector::handshake`]. What the handshake checks follows libpq:
//!
//! | `sslmode` | TLS | server certificate |
//! | --- | --- | --- |
//! | `disable` | never: [`TlsConnector::new`] returns `None` | — |
//! | `allow`, `prefer` | when the server offers it (the connect code decides) | not checked |
//! | `require` | always | not checked, unless a root certificate is available (`sslrootcert` names an existing file, or `~/.postgresql/root.crt` exists): then as `verify-ca` |
//! | `verify-ca` | always | chain verified against `sslrootcert`; the host name is not checked |
//! | `verify-full` | always | chain verified, and the certificate must be valid for the host name (an IP-address host must match an IP-address SAN) |
//!
//! "Not checked" still means the handshake signature is verified, so the server holds the
//! private key of whatever certificate it sent (channel binding relies on that).
//!
//! `verify-ca` and `verify-full` without a root certificate fail with an error naming
//! `sslrootcert`. `sslrootcert=system` uses the operating system's trust store (via
//! `rustls-native-certs`) and, as in libpq 16, is accepted only with `sslmode=verify-full`.
//!
//! # Client certificates
//!
//! `sslcert` (PEM, the certificate chain, leaf first) and `sslkey` (PEM: PKCS #8, PKCS #1 or
//! SEC1) are loaded once, in [`TlsConnector::new`]. Like libpq, the key file must not be
//! accessible by group or others (mode `0600` or less), except that a root-owned key may be
//! group-readable (`0640`), for system-wide keys shared through a group.
//!
//! # SNI
//!
//! With `sslsni=1` (the default) the host name is sent in the handshake, but never an IP
//! address literal, as in libpq.
//!
//! # Errors
//!
//! All errors have kind [`Connect`](crate::error::ErrorKind::Connect) and name their cause:
//! the option (`sslrootcert`, `sslcert`, `sslkey`, `sslmode`) for configuration problems,
//! `server certificate verification failed: unknown issuer (sslmode=verify-full,
//! sslrootcert=…)` and the like for rejected certificates, `TLS handshake timed out` when the
//! socket's timeout fires. The rustls or I/O error is kept as the error's source. Whatever
//! rustls rejects during the handshake (a certificate, an alert from the server) is a
//! permanent connect error ([`is_permanent_connect`](crate::Error::is_permanent_connect)), so
//! the pool fails the caller at once instead of retrying until the acquire timeout; I/O
//! failures (timeouts, resets, the server closing) are not.

// The connect code is the only caller; until it is wired in, only the tests use this module.
#![cfg_attr(not(test), allow(dead_code))]

mod end_point;
mod verifier;

#[cfg(test)]
mod tests;

use std::fs;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};

use crate::client::conninfo::{ConnConfig, SslMode};
use crate::error::Error;

/// A TLS session over TCP.
pub(crate) type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The ALPN protocol name PostgreSQL 17 defines (older servers ignore it).
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// How much of the server certificate the handshake checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    /// Nothing but the handshake signature (`allow`, `prefer`, `require` without a root
    /// certificate).
    None,
    /// The chain, against the root certificates (`verify-ca`, `require` with a root
    /// certificate).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// TLS settings built once per manager from the connection settings.
#[derive(Debug)]
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
    verification: Verification,
    /// `(sslmode=…, sslrootcert=…)`, appended to certificate-verification errors.
    context: String,
}

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An I/O error as an error source.
fn io_source(err: io::Error) -> Option<Source> {
    Some(Arc::new(err))
}

impl TlsConnector {
    /// `None` when `sslmode=disable`; an error naming the option for unreadable or invalid
    /// certificate files, a missing root certificate under `verify-ca`/`verify-full`, or
    /// `sslrootcert=system` with an sslmode weaker than `verify-full`.
    pub(crate) fn new(config: &ConnConfig) -> Result<Option<TlsConnector>, Error> {
        let mode = config.sslmode;
        let rootcert = config.sslrootcert.as_deref();
        if rootcert == Some("system") && mode != SslMode::VerifyFull {
            return Err(Error::tls(
                format!(
                    "weak sslmode \"{}\" may not be used with sslrootcert=system \
                     (use sslmode=verify-full)",
                    mode.as_str()
                ),
                None,
            ));
        }
        if mode == SslMode::Disable {
            return Ok(None);
        }
        let verify_mode = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull);
        let roots = match rootcert {
            Some("system") => Some(system_roots()?),
            Some(path) if verify_mode || mode == SslMode::Require => {
                if fs::metadata(path).is_ok() {
                    Some(load_roots(Path::new(path))?)
                } else if verify_mode {
                    return Err(Error::tls(
                        format!(
                            "root certificate file \"{path}\" (sslrootcert) does not exist; \
                             either provide the file, use the system's trusted roots with \
                             sslrootcert=system, or change sslmode to disable server \
                             certificate verification (sslmode={})",
                            mode.as_str()
                        ),
                        None,
                    ));
                } else {
                    None
                }
            }
            Some(_) => None,
            None if verify_mode => {
                return Err(Error::tls(
                    format!(
                        "sslmode={} needs a root certificate, but sslrootcert is not set and \
                         ~/.postgresql/root.crt does not exist; either provide the file, use \
                         the system's trusted roots with sslrootcert=system, or change sslmode \
                         to disable server certificate verification",
                        mode.as_str()
                    ),
                    None,
                ));
            }
            None => None,
        };
        let verification = match (mode, &roots) {
            (SslMode::VerifyFull, _) => Verification::Full,
            (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Verification::Chain,
            _ => Verification::None,
        };

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (verification, roots) {
            (Verification::None, _) => Arc::new(verifier::AcceptAnyCert::new(
                provider.signature_verification_algorithms,
            )),
            (Verification::Chain, Some(roots)) => Arc::new(verifier::ChainOnly::new(
                web_pki_verifier(roots, &provider)?,
            )),
            (Verification::Full, Some(roots)) => web_pki_verifier(roots, &provider)?,
            // Unreachable by construction; fail closed rather than skip verification.
            (_, None) => {
                return Err(Error::tls(
                    "no root certificates to verify the server with (sslrootcert)",
                    None,
                ))
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::tls(format!("TLS configuration failed: {e}"), Some(Arc::new(e))))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut tls_config = match client_identity(config)? {
            Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|e| {
                Error::tls(
                    format!(
                        "client certificate (sslcert) and private key (sslkey) are not \
                         usable together: {e}"
                    ),
                    Some(Arc::new(e)),
                )
            })?,
            None => builder.with_no_client_auth(),
        };
        tls_config.enable_sni = config.sslsni;
        tls_config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];

        let context = match rootcert {
            Some(root) if verification != Verification::None => {
                format!("(sslmode={}, sslrootcert={root})", mode.as_str())
            }
            _ => format!("(sslmode={})", mode.as_str()),
        };
        Ok(Some(TlsConnector {
            config: Arc::new(tls_config),
            verification,
            context,
        }))
    }

    /// Whether the server's certificate chain is verified (`verify-ca`, `verify-full`, and
    /// `require` with a root certificate).
    pub(crate) fn verifies(&self) -> bool {
        self.verification != Verification::None
    }

    /// Whether the certificate must also be valid for the host name (`verify-full`).
    pub(crate) fn verifies_host(&self) -> bool {
        self.verification == Verification::Full
    }

    /// The TLS handshake on a socket whose SSLRequest the server accepted with `S`; `host`
    /// is the host name connected to (SNI, verify-full). Bounded by the socket's timeouts.
    /// Returns once the handshake is complete, with nothing left unsent.
    pub(crate) fn handshake(&self, mut tcp: TcpStream, host: &str) -> Result<TlsStream, Error> {
        let name = self.server_name(host)?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| self.rustls_failure(e, host))?;
        while conn.is_handshaking() {
            match conn.complete_io(&mut tcp) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(Error::tls(
                        "TLS handshake failed: no progress (server closed the connection?)",
                        None,
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(self.io_failure(e, host)),
            }
        }
        while conn.wants_write() {
            conn.write_tls(&mut tcp)
                .map_err(|e| self.io_failure(e, host))?;
        }
        tcp.flush().map_err(|e| self.io_failure(e, host))?;
        Ok(rustls::StreamOwned::new(conn, tcp))
    }

    /// The name the handshake uses: an IP address for address literals (no SNI), else a DNS
    /// name (SNI when `sslsni` is on). A host that is no valid DNS name is an error only
    /// under `verify-full`; otherwise the handshake goes on without SNI.
    fn server_name(&self, host: &str) -> Result<ServerName<'static>, Error> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(ServerName::IpAddress(ip.into()));
        }
        match DnsName::try_from(bare.to_string()) {
            Ok(name) => Ok(ServerName::DnsName(name)),
            Err(_) if self.verification != Verification::Full => Ok(ServerName::IpAddress(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED).into(),
            )),
            Err(e) => Err(Error::tls_permanent(
                format!(
                    "host \"{host}\" is not a valid DNS name, so its certificate cannot be \
                     checked {}",
                    self.context
                ),
                Some(Arc::new(e)),
            )),
        }
    }

    /// An I/O error from the handshake; rustls wraps its own errors in `InvalidData`.
    fn io_failure(&self, err: io::Error, host: &str) -> Error {
        if err
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            if let Some(inner) = err.into_inner() {
                if let Ok(tls_err) = inner.downcast::<rustls::Error>() {
                    return self.rustls_failure(*tls_err, host);
                }
            }
            return Error::tls("TLS handshake failed", None);
        }
        let message = match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                "TLS handshake timed out".to_string()
            }
            io::ErrorKind::UnexpectedEof => {
                "TLS handshake failed: the server closed the connection".to_string()
            }
            _ => format!("TLS handshake failed: {err}"),
        };
        Error::tls(message, io_source(err))
    }

    /// A rustls error from the handshake, with the cause spelled out.
    fn rustls_failure(&self, err: rustls::Error, host: &str) -> Error {
        let message = match &err {
            rustls::Error::InvalidCertificate(problem) => format!(
                "server certificate verification failed: {} {}",
                certificate_problem(problem, host),
                self.context
            ),
            rustls::Error::AlertReceived(alert) => {
                format!("TLS handshake failed: the server sent the alert {alert:?}")
            }
            rustls::Error::NoCertificatesPresented => {
                "TLS handshake failed: the server presented no certificate".to_string()
            }
            other => format!("TLS handshake failed: {other}"),
        };
        // What rustls rejects (the certificate, the server's alert, no common protocol)
        // fails the same way on every attempt; only I/O failures are worth retrying.
        Error::tls_permanent(message, Some(Arc::new(err)))
    }
}

/// What is wrong with the server's certificate, in words.
fn certificate_problem(problem: &CertificateError, host: &str) -> String {
    match problem {
        CertificateError::UnknownIssuer => "unknown issuer".into(),
        CertificateError::BadSignature => "bad signature".into(),
        CertificateError::BadEncoding => "malformed certificate".into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not yet valid".into()
        }
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::UnknownRevocationStatus => "revocation status unknown".into(),
        CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => {
            "certificate revocation list expired".into()
        }
        CertificateError::UnhandledCriticalExtension => {
            "certificate has an unhandled critical extension".into()
        }
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "unsupported signature algorithm".into()
        }
        CertificateError::NotValidForName => {
            format!("certificate is not valid for host \"{host}\"")
        }
        CertificateError::NotValidForNameContext { presented, .. } => {
            if presented.is_empty() {
                format!("certificate is not valid for host \"{host}\"")
            } else {
                let names: Vec<&str> = presented.iter().map(|n| presented_name(n)).collect();
                format!(
                    "certificate is not valid for host \"{host}\" (it is for {})",
                    names.join(", ")
                )
            }
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not valid for TLS server authentication".into()
        }
        CertificateError::InvalidOcspResponse => "invalid OCSP response".into(),
        CertificateError::ApplicationVerificationFailure => "rejected by the verifier".into(),
        CertificateError::Other(other) => other.to_string(),
        other => format!("{other:?}"),
    }
}

/// A name from a certificate as webpki reports it (`DnsName("db.example.com")`,
/// `IpAddress(127.0.0.1)`), without the wrapping.
fn presented_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(name)
}

/// The verifier for the chain and the host name.
fn web_pki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, Error> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| {
            Error::tls(
                format!("cannot verify server certificates (sslrootcert): {e}"),
                Some(Arc::new(e)),
            )
        })
}

/// The certificates of a PEM file named by `sslrootcert`.
fn load_roots(path: &Path) -> Result<RootCertStore, Error> {
    let shown = path.display();
    let pem = fs::read(path).map_err(|e| {
        Error::tls(
            format!("could not read root certificate file \"{shown}\" (sslrootcert): {e}"),
            io_source(e),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            Error::tls(
                format!("could not load root certificate file \"{shown}\" (sslrootcert): {e}"),
                Some(Arc::new(e)),
            )
        })?;
        roots.add(cert).map_err(|e| {
            Error::tls(
                format!(
                    "invalid certificate in root certificate file \"{shown}\" (sslrootcert): {e}"
                ),
                Some(Arc::new(e)),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(Error::tls(
            format!("root certificate file \"{shown}\" (sslrootcert) holds no certificate"),
            None,
        ));
    }
    Ok(roots)
}

/// `sslrootcert=system`: the operating system's trusted roots.
fn system_roots() -> Result<RootCertStore, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(Error::tls(
            format!(
                "sslrootcert=system: no trusted root certificates found in the system's store{why}"
            ),
            None,
        ));
    }
    Ok(roots)
}

/// The client certificate chain and key, when `sslcert` is set.
fn client_identity(
    config: &ConnConfig,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, Error> {
    let Some(cert_path) = &config.sslcert else {
        return Ok(None);
    };
    let cert_shown = cert_path.display();
    let Some(key_path) = &config.sslkey else {
        return Err(Error::tls(
            format!(
                "certificate file \"{cert_shown}\" (sslcert) is given but no private key \
                 file (sslkey)"
            ),
            None,
        ));
    };
    let key_shown = key_path.display();
    let pem = fs::read(cert_path).map_err(|e| {
        Error::tls(
            format!("could not read certificate file \"{cert_shown}\" (sslcert): {e}"),
            io_source(e),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::tls(
                format!("could not load certificate file \"{cert_shown}\" (sslcert): {e}"),
                Some(Arc::new(e)),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::tls(
            format!("certificate file \"{cert_shown}\" (sslcert) holds no certificate"),
            None,
        ));
    }
    check_key_file(key_path)?;
    let key_pem = fs::read(key_path).map_err(|e| {
        Error::tls(
            format!("could not read private key file \"{key_shown}\" (sslkey): {e}"),
            io_source(e),
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        Error::tls(
            format!("could not load private key file \"{key_shown}\" (sslkey): {e}"),
            Some(Arc::new(e)),
        )
    })?;
    Ok(Some((certs, key)))
}

/// libpq's rule for private key files: a regular file, with no group or world access; a
/// root-owned file may be group-readable (0640), for keys shared through a group.
fn check_key_file(path: &Path) -> Result<(), Error> {
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| {
        Error::tls(
            format!("could not access private key file \"{shown}\" (sslkey): {e}"),
            io_source(e),
        )
    })?;
    if !meta.is_file() {
        return Err(Error::tls(
            format!("private key file \"{shown}\" (sslkey) is not a regular file"),
            None,
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mode = meta.mode() & 0o777;
        let forbidden = if meta.uid() == 0 { 0o037 } else { 0o077 };
        if mode & forbidden != 0 {
            return Err(Error::tls(
                format!(
                    "private key file \"{shown}\" (sslkey) has group or world access \
                     (mode {mode:04o}); it must be u=rw (0600) or less if owned by the \
                     current user, or u=rw,g=r (0640) or less if owned by root"
                ),
                None,
            ));
        }
    }
    Ok(())
}

/// RFC 5929 `tls-server-end-point` data: the hash of the server's certificate, with the hash
/// function its signature algorithm calls for (SHA-256 for MD5, SHA-1 and SHA-256
/// signatures; SHA-384 and SHA-512 for those). `None` before the handshake, without a
/// server certificate, or for signature algorithms without a usable hash (Ed25519).
pub(crate) fn server_end_point(stream: &TlsStream) -> Option<Vec<u8>> {
    let cert = stream.conn.peer_certificates()?.first()?;
    end_point::certificate_hash(cert.as_ref())
}
