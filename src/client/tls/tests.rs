//! Handshakes against private TLS clusters, one per server-certificate variant, shared by the
//! tests of this module: SSLRequest, `S`, [`TlsConnector::handshake`], then a StartupMessage
//! answered up to ReadyForQuery, which proves a working session.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use postgres::fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::*;
use crate::client::conninfo::{
    ChannelBinding, ConnConfig, Host, HostSpec, LoadBalanceHosts, SslMode, TargetSessionAttrs,
};
use pgpool_testkit::{ClusterOptions, ClusterTls, TempCluster};

#[path = "../../../tests/common/certs.rs"]
mod certs;

use certs::{CertAndKey, TestCerts};

fn test_certs() -> &'static TestCerts {
    static CERTS: OnceLock<TestCerts> = OnceLock::new();
    CERTS.get_or_init(TestCerts::generate)
}

/// Client-side files (root and client certificates) in a directory of this process.
/// Clusters live in statics and are never dropped; their watchdogs remove them when the
/// process exits. This directory goes the same way: it lives inside the first cluster's.
fn files_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = good_cluster()
            .data_dir()
            .parent()
            .expect("cluster root")
            .join("client-files");
        fs::create_dir_all(&dir).expect("client files directory");
        dir
    })
}

/// Writes `content` to a fresh file named after `name`; returns its path.
fn write_file(name: &str, content: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = files_dir().join(format!("{n}-{name}"));
    fs::write(&path, content).expect("write test file");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod test file");
    path
}

fn ca_file() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| write_file("ca.pem", &test_certs().ca_pem, 0o644))
}

fn other_ca_file() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| write_file("other-ca.pem", &test_certs().other_ca_pem, 0o644))
}

fn tls_cluster(server: &CertAndKey, hba: Option<&str>) -> TempCluster {
    TempCluster::start_with(&ClusterOptions {
        hba: hba.map(str::to_string),
        tls: Some(ClusterTls {
            cert_pem: server.cert_pem.clone(),
            key_pem: server.key_pem.clone(),
            ca_pem: Some(test_certs().ca_pem.clone()),
        }),
        ..ClusterOptions::default()
    })
    .expect("TLS throwaway cluster")
}

/// The database that requires a client certificate on [`good_cluster`].
const CERT_DB: &str = "template1";

/// The right certificate; `cert` authentication for [`CERT_DB`], trust elsewhere.
fn good_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let hba = format!(
            "local all all trust\n\
             hostssl {CERT_DB} all 127.0.0.1/32 cert\n\
             host all all 127.0.0.1/32 trust\n"
        );
        tls_cluster(&test_certs().server, Some(&hba))
    })
}

fn wrong_name_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| tls_cluster(&test_certs().wrong_name, None))
}

fn expired_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| tls_cluster(&test_certs().expired, None))
}

fn conn_config(mode: SslMode, rootcert: Option<&Path>) -> ConnConfig {
    ConnConfig {
        hosts: vec![HostSpec {
            host: Host::Tcp("localhost".into()),
            hostaddr: None,
            port: 5432,
        }],
        user: "postgres".into(),
        password: None,
        passfile: None,
        dbname: "postgres".into(),
        application_name: None,
        fallback_application_name: None,
        options: None,
        connect_timeout: None,
        sslmode: mode,
        sslrootcert: rootcert.map(|p| p.display().to_string()),
        sslcert: None,
        sslkey: None,
        sslpassword: None,
        sslsni: true,
        channel_binding: ChannelBinding::Prefer,
        target_session_attrs: TargetSessionAttrs::Any,
        load_balance_hosts: LoadBalanceHosts::Disable,
        keepalives: true,
        keepalives_idle: None,
        keepalives_interval: None,
        keepalives_count: None,
        tcp_user_timeout: None,
    }
}

/// Connects to 127.0.0.1:`port`, sends the SSLRequest and returns the socket and the
/// server's one-byte answer.
fn ssl_request(port: u16) -> (TcpStream, u8) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    tcp.write_all(&buf).expect("send SSLRequest");
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).expect("SSLRequest answer");
    (tcp, answer[0])
}

/// SSLRequest, `S`, and the handshake under `config` with `host` as the host name.
fn tls_connect(cluster: &TempCluster, config: &ConnConfig, host: &str) -> Result<TlsStream, Error> {
    let connector = TlsConnector::new(config)?.expect("a connector for a TLS sslmode");
    let (tcp, answer) = ssl_request(cluster.port());
    assert_eq!(answer, b'S', "the server must accept the SSLRequest");
    connector.handshake(tcp, host)
}

/// StartupMessage for `user`/`database`, then backend messages until ReadyForQuery
/// (`Ok`) or an ErrorResponse (`Err` with its message).
fn startup(stream: &mut TlsStream, user: &str, database: &str) -> Result<(), String> {
    let mut buf = BytesMut::new();
    frontend::startup_message([("user", user), ("database", database)], &mut buf).unwrap();
    stream.write_all(&buf).map_err(|e| format!("send: {e}"))?;
    stream.flush().map_err(|e| format!("flush: {e}"))?;
    let mut incoming = BytesMut::new();
    loop {
        while let Some(message) =
            Message::parse(&mut incoming).map_err(|e| format!("parse: {e}"))?
        {
            match message {
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ErrorResponse(body) => {
                    let mut fields = body.fields();
                    let mut text = String::from("ErrorResponse");
                    while let Ok(Some(field)) = fields.next() {
                        if field.type_() == b'M' {
                            text = String::from_utf8_lossy(field.value_bytes()).into_owned();
                        }
                    }
                    return Err(text);
                }
                _ => {}
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        incoming.extend_from_slice(&chunk[..n]);
    }
}

/// A full session: handshake and startup as `postgres` on `postgres`.
fn session(cluster: &TempCluster, config: &ConnConfig, host: &str) -> Result<TlsStream, Error> {
    let mut stream = tls_connect(cluster, config, host)?;
    startup(&mut stream, "postgres", "postgres").expect("startup over TLS");
    Ok(stream)
}

fn expect_err(result: Result<TlsStream, Error>) -> Error {
    match result {
        Ok(_) => panic!("the handshake should have failed"),
        Err(e) => {
            assert_eq!(e.kind(), crate::error::ErrorKind::Connect, "{e}");
            e
        }
    }
}

#[test]
fn verify_full_with_the_right_ca_and_host_name_succeeds() {
    let config = conn_config(SslMode::VerifyFull, Some(ca_file()));
    let connector = TlsConnector::new(&config).unwrap().unwrap();
    assert!(connector.verifies() && connector.verifies_host());
    session(good_cluster(), &config, "localhost").unwrap();
}

#[test]
fn verify_full_to_an_ip_literal_matches_the_ip_san() {
    let config = conn_config(SslMode::VerifyFull, Some(ca_file()));
    session(good_cluster(), &config, "127.0.0.1").unwrap();
}

#[test]
fn verify_full_with_the_wrong_ca_fails_with_unknown_issuer() {
    let config = conn_config(SslMode::VerifyFull, Some(other_ca_file()));
    let err = expect_err(tls_connect(good_cluster(), &config, "localhost"));
    let text = err.to_string();
    assert!(
        text.contains("server certificate verification failed: unknown issuer"),
        "{text}"
    );
    assert!(text.contains("sslmode=verify-full"), "{text}");
    assert!(
        text.contains(&format!("sslrootcert={}", other_ca_file().display())),
        "{text}"
    );
    let source = std::error::Error::source(&err).expect("the rustls error as source");
    assert!(source.is::<rustls::Error>(), "{source:?}");
}

#[test]
fn verify_full_with_the_wrong_host_name_fails_naming_the_host() {
    let config = conn_config(SslMode::VerifyFull, Some(ca_file()));
    let err = expect_err(tls_connect(wrong_name_cluster(), &config, "localhost"));
    let text = err.to_string();
    assert!(
        text.contains("certificate is not valid for host \"localhost\""),
        "{text}"
    );
    assert!(
        text.contains(&format!("(it is for {})", certs::WRONG_NAME)),
        "{text}"
    );
    // The same certificate from the good server, under another name.
    let err = expect_err(tls_connect(good_cluster(), &config, "127.0.0.2"));
    let text = err.to_string();
    assert!(
        text.contains("not valid for host \"127.0.0.2\" (it is for localhost, 127.0.0.1)"),
        "{text}"
    );
}

#[test]
fn an_expired_certificate_fails() {
    let config = conn_config(SslMode::VerifyFull, Some(ca_file()));
    let err = expect_err(tls_connect(expired_cluster(), &config, "localhost"));
    assert!(err.to_string().contains("certificate expired"), "{err}");
    // verify-ca checks the validity period too.
    let config = conn_config(SslMode::VerifyCa, Some(ca_file()));
    let err = expect_err(tls_connect(expired_cluster(), &config, "localhost"));
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn require_without_a_root_certificate_accepts_an_unknown_ca() {
    let config = conn_config(SslMode::Require, None);
    let connector = TlsConnector::new(&config).unwrap().unwrap();
    assert!(!connector.verifies());
    // Neither the issuer nor the name is checked.
    session(good_cluster(), &config, "localhost").unwrap();
    session(wrong_name_cluster(), &config, "localhost").unwrap();
    // A root certificate file that does not exist leaves require unverified, as in libpq.
    let missing = files_dir().join("no-such-root.crt");
    let config = conn_config(SslMode::Require, Some(&missing));
    assert!(!TlsConnector::new(&config).unwrap().unwrap().verifies());
}

#[test]
fn require_with_a_root_certificate_verifies_like_verify_ca() {
    let config = conn_config(SslMode::Require, Some(other_ca_file()));
    let connector = TlsConnector::new(&config).unwrap().unwrap();
    assert!(connector.verifies() && !connector.verifies_host());
    let err = expect_err(tls_connect(good_cluster(), &config, "localhost"));
    let text = err.to_string();
    assert!(text.contains("unknown issuer"), "{text}");
    assert!(text.contains("sslmode=require"), "{text}");
    // The right CA: verified, and the host name is not checked.
    let config = conn_config(SslMode::Require, Some(ca_file()));
    session(wrong_name_cluster(), &config, "localhost").unwrap();
}

#[test]
fn verify_ca_accepts_a_wrong_host_name_but_checks_the_chain() {
    let config = conn_config(SslMode::VerifyCa, Some(ca_file()));
    let connector = TlsConnector::new(&config).unwrap().unwrap();
    assert!(connector.verifies() && !connector.verifies_host());
    session(wrong_name_cluster(), &config, "localhost").unwrap();
    let config = conn_config(SslMode::VerifyCa, Some(other_ca_file()));
    let err = expect_err(tls_connect(wrong_name_cluster(), &config, "localhost"));
    assert!(err.to_string().contains("unknown issuer"), "{err}");
}

#[test]
fn a_server_with_ssl_off_answers_n() {
    let cluster = TempCluster::start().expect("throwaway cluster");
    let (_tcp, answer) = ssl_request(cluster.port());
    assert_eq!(answer, b'N');
}

#[test]
fn server_end_point_is_the_sha256_of_the_certificate() {
    let config = conn_config(SslMode::VerifyFull, Some(ca_file()));
    let stream = session(good_cluster(), &config, "localhost").unwrap();
    let end_point = server_end_point(&stream).expect("channel-binding data");
    assert_eq!(end_point.len(), 32);
    let der = CertificateDer::from_pem_slice(test_certs().server.cert_pem.as_bytes()).unwrap();
    let expected = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    assert_eq!(end_point, expected.as_ref());
}

fn client_files(user: &str) -> (PathBuf, PathBuf) {
    let client = test_certs().client(user);
    (
        write_file(&format!("{user}.crt"), &client.cert_pem, 0o644),
        write_file(&format!("{user}.key"), &client.key_pem, 0o600),
    )
}

#[test]
fn cert_authentication_accepts_the_client_certificate() {
    let (cert, key) = client_files("postgres");
    let mut with_cert = conn_config(SslMode::VerifyFull, Some(ca_file()));
    with_cert.sslcert = Some(cert);
    with_cert.sslkey = Some(key);
    let mut stream = tls_connect(good_cluster(), &with_cert, "localhost").unwrap();
    startup(&mut stream, "postgres", CERT_DB).expect("cert authentication");

    // Without a client certificate the server refuses.
    let without = conn_config(SslMode::VerifyFull, Some(ca_file()));
    let mut stream = tls_connect(good_cluster(), &without, "localhost").unwrap();
    let refused = startup(&mut stream, "postgres", CERT_DB).unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");

    // A certificate for another user does not authenticate postgres.
    let (cert, key) = client_files("someone_else");
    let mut other = conn_config(SslMode::VerifyFull, Some(ca_file()));
    other.sslcert = Some(cert);
    other.sslkey = Some(key);
    let mut stream = tls_connect(good_cluster(), &other, "localhost").unwrap();
    let refused = startup(&mut stream, "postgres", CERT_DB).unwrap_err();
    assert!(refused.contains("certificate"), "{refused}");
}

fn key_config(cert: &Path, key: &Path) -> ConnConfig {
    let mut config = conn_config(SslMode::Require, None);
    config.sslcert = Some(cert.to_path_buf());
    config.sslkey = Some(key.to_path_buf());
    config
}

fn running_as_root(probe: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata(probe).unwrap().uid() == 0
}

#[test]
fn the_key_file_must_not_be_group_or_world_accessible() {
    use std::os::unix::fs::PermissionsExt as _;
    let client = test_certs().client("postgres");
    let cert = write_file("perm.crt", &client.cert_pem, 0o644);
    let key = write_file("perm.key", &client.key_pem, 0o600);
    let chmod = |mode| fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
    assert!(TlsConnector::new(&key_config(&cert, &key)).is_ok());
    chmod(0o400);
    assert!(TlsConnector::new(&key_config(&cert, &key)).is_ok());
    for mode in [0o644, 0o604, 0o660, 0o666] {
        chmod(mode);
        let err = TlsConnector::new(&key_config(&cert, &key)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sslkey"), "{text}");
        assert!(text.contains("group or world access"), "{text}");
    }
    chmod(0o640);
    let result = TlsConnector::new(&key_config(&cert, &key));
    if running_as_root(&key) {
        // Root-owned keys may be group-readable; anyone else's may not.
        assert!(result.is_ok(), "{:?}", result.err());
        std::os::unix::fs::chown(&key, Some(65534), None).unwrap();
        let err = TlsConnector::new(&key_config(&cert, &key)).unwrap_err();
        assert!(err.to_string().contains("sslkey"), "{err}");
        chmod(0o600);
        assert!(TlsConnector::new(&key_config(&cert, &key)).is_ok());
    } else {
        let err = result.unwrap_err();
        assert!(err.to_string().contains("sslkey"), "{err}");
    }
}

#[test]
fn certificate_file_problems_name_the_option() {
    let client = test_certs().client("postgres");
    let cert = write_file("files.crt", &client.cert_pem, 0o644);
    let key = write_file("files.key", &client.key_pem, 0o600);
    let missing = files_dir().join("does-not-exist.pem");
    let garbage = write_file("garbage.pem", "not PEM at all\n", 0o600);
    let message = |config: &ConnConfig| TlsConnector::new(config).unwrap_err().to_string();

    assert!(message(&key_config(&missing, &key)).contains("sslcert"));
    assert!(message(&key_config(&garbage, &key)).contains("sslcert"));
    assert!(message(&key_config(&cert, &missing)).contains("sslkey"));
    assert!(message(&key_config(&cert, &garbage)).contains("sslkey"));
    let mut no_key = key_config(&cert, &key);
    no_key.sslkey = None;
    let text = message(&no_key);
    assert!(
        text.contains("sslcert") && text.contains("sslkey"),
        "{text}"
    );
    // A key that does not belong to the certificate.
    let other = test_certs().client("other");
    let other_key = write_file("other.key", &other.key_pem, 0o600);
    let text = message(&key_config(&cert, &other_key));
    assert!(text.contains("sslkey"), "{text}");

    for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
        let text = message(&conn_config(mode, None));
        assert!(text.contains("sslrootcert"), "{text}");
        let text = message(&conn_config(mode, Some(&missing)));
        assert!(
            text.contains("sslrootcert") && text.contains("does not exist"),
            "{text}"
        );
        let text = message(&conn_config(mode, Some(&garbage)));
        assert!(text.contains("sslrootcert"), "{text}");
    }
}

#[test]
fn disable_needs_no_connector() {
    assert!(TlsConnector::new(&conn_config(SslMode::Disable, None))
        .unwrap()
        .is_none());
    for mode in [SslMode::Allow, SslMode::Prefer] {
        let connector = TlsConnector::new(&conn_config(mode, Some(ca_file()))).unwrap();
        assert!(!connector.unwrap().verifies());
    }
}

#[test]
fn sslrootcert_system_needs_verify_full() {
    let system = Path::new("system");
    for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::Prefer] {
        let err = TlsConnector::new(&conn_config(mode, Some(system))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("sslmode") && text.contains("verify-full"),
            "{text}"
        );
    }
    // With verify-full, the system's roots do not know the test CA.
    match TlsConnector::new(&conn_config(SslMode::VerifyFull, Some(system))) {
        Ok(connector) => {
            let connector = connector.unwrap();
            let (tcp, answer) = ssl_request(good_cluster().port());
            assert_eq!(answer, b'S');
            let err = expect_err(connector.handshake(tcp, "localhost"));
            assert!(err.to_string().contains("unknown issuer"), "{err}");
        }
        // A machine without a trust store.
        Err(e) => assert!(e.to_string().contains("sslrootcert=system"), "{e}"),
    }
}

#[test]
fn a_silent_server_times_the_handshake_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_server_side, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let connector = TlsConnector::new(&conn_config(SslMode::Require, None))
        .unwrap()
        .unwrap();
    let err = expect_err(connector.handshake(tcp, "localhost"));
    assert_eq!(err.to_string(), "TLS handshake timed out");
}

/// An in-process rustls server with the test server certificate; returns the SNI name the
/// client sent (if any).
fn sni_seen(config: &ConnConfig, host: &str) -> Option<String> {
    let certs = test_certs();
    let chain = vec![CertificateDer::from_pem_slice(certs.server.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(certs.server.key_pem.as_bytes()).unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut conn = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).unwrap();
        }
        conn.server_name().map(str::to_string)
    });
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let connector = TlsConnector::new(config).unwrap().unwrap();
    let _stream = connector.handshake(tcp, host).unwrap();
    server.join().unwrap()
}

#[test]
fn sni_is_sent_for_host_names_only_and_only_with_sslsni() {
    let mut config = conn_config(SslMode::VerifyFull, Some(ca_file()));
    assert_eq!(sni_seen(&config, "localhost").as_deref(), Some("localhost"));
    assert_eq!(sni_seen(&config, "127.0.0.1"), None);
    config.sslsni = false;
    assert_eq!(sni_seen(&config, "localhost"), None);
}
