//! End to end through the pool, against real clusters: every authentication method (trust,
//! cleartext, md5, SCRAM-SHA-256, SCRAM-SHA-256-PLUS with channel binding, client
//! certificates), passwords from password files, and the `sslmode` matrix.
//!
//! Four clusters, started on first use and shared by the tests of this file:
//! - [`main_cluster`]: TLS with the right certificate, one role per authentication method;
//! - [`wrong_name_cluster`] and [`expired_cluster`]: TLS with a bad server certificate;
//! - [`plain_cluster`]: TLS off.
//!
//! Failures must come out of `pool.get()` at once (a permanent connect error), not after the
//! acquire timeout: every failing case asserts that.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use pgpool::{Error, ErrorKind, Pool};
use pgpool_testkit::{ClusterOptions, ClusterTls, TempCluster};

use common::certs::{CertAndKey, TestCerts};

/// Far longer than any failure may take: a failure that waits for it is a bug.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// What "fails fast" means here.
const FAST: Duration = Duration::from_secs(2);

const CLEAR_USER: &str = "pw_clear";
const CLEAR_PASSWORD: &str = "clear-secret";
const MD5_USER: &str = "pw_md5";
const MD5_PASSWORD: &str = "md5-secret";
const SCRAM_USER: &str = "pw_scram";
const SCRAM_PASSWORD: &str = "scram-secret";
const TRUST_USER: &str = "trust_user";
const CERT_USER: &str = "cert_user";
/// May connect over TLS only (`hostssl`).
const SSL_ONLY_USER: &str = "ssl_only";

fn certs() -> &'static TestCerts {
    static CERTS: OnceLock<TestCerts> = OnceLock::new();
    CERTS.get_or_init(TestCerts::generate)
}

fn tls_options(server: &CertAndKey, hba: Option<String>) -> ClusterOptions {
    ClusterOptions {
        hba,
        tls: Some(ClusterTls {
            cert_pem: server.cert_pem.clone(),
            key_pem: server.key_pem.clone(),
            ca_pem: Some(certs().ca_pem.clone()),
        }),
        ..ClusterOptions::default()
    }
}

/// TLS with the right certificate; a role per authentication method.
fn main_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let mut hba = String::from("local all all trust\n");
        for net in ["127.0.0.1/32", "::1/128"] {
            for line in [
                format!("hostssl all {SSL_ONLY_USER} {net} trust"),
                format!("hostnossl all {SSL_ONLY_USER} {net} reject"),
                format!("hostssl all {CERT_USER} {net} cert"),
                format!("host all {CLEAR_USER} {net} password"),
                format!("host all {MD5_USER} {net} md5"),
                format!("host all {SCRAM_USER} {net} scram-sha-256"),
                format!("host all all {net} trust"),
            ] {
                hba.push_str(&line);
                hba.push('\n');
            }
        }
        let cluster = TempCluster::start_with(&tls_options(&certs().server, Some(hba)))
            .expect("TLS throwaway cluster");
        cluster
            .admin()
            .expect("admin session")
            .batch_execute(&format!(
                "CREATE ROLE {CLEAR_USER} LOGIN PASSWORD '{CLEAR_PASSWORD}';
                 SET password_encryption = 'md5';
                 CREATE ROLE {MD5_USER} LOGIN PASSWORD '{MD5_PASSWORD}';
                 RESET password_encryption;
                 CREATE ROLE {SCRAM_USER} LOGIN PASSWORD '{SCRAM_PASSWORD}';
                 CREATE ROLE {TRUST_USER} LOGIN;
                 CREATE ROLE {CERT_USER} LOGIN;
                 CREATE ROLE {SSL_ONLY_USER} LOGIN;"
            ))
            .expect("creating the test roles");
        cluster
    })
}

fn wrong_name_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        TempCluster::start_with(&tls_options(&certs().wrong_name, None))
            .expect("TLS throwaway cluster")
    })
}

fn expired_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        TempCluster::start_with(&tls_options(&certs().expired, None))
            .expect("TLS throwaway cluster")
    })
}

/// TLS off: the server answers `N` to an SSLRequest.
fn plain_cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| TempCluster::start().expect("throwaway cluster"))
}

/// Client-side files live in the main cluster's directory, removed with it.
fn files_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = main_cluster()
            .data_dir()
            .parent()
            .expect("cluster root")
            .join("client-files");
        fs::create_dir_all(&dir).expect("client files directory");
        dir
    })
}

/// Writes `content` to a fresh file with `mode`; returns its path.
fn write_file(name: &str, content: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let path = files_dir().join(format!("{n}-{name}"));
    fs::write(&path, content).expect("write test file");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod test file");
    path
}

fn ca_file() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| write_file("ca.pem", &certs().ca_pem, 0o644))
}

fn other_ca_file() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| write_file("other-ca.pem", &certs().other_ca_pem, 0o644))
}

/// A conninfo quoting rule good enough for the paths used here.
fn q(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// `key=value` settings for `cluster` over TCP to `host`, plus `extra`. No password file
/// (so only the settings' password counts) unless `extra` names one.
fn conninfo(cluster: &TempCluster, host: &str, user: &str, extra: &str) -> String {
    let passfile = if extra.contains("passfile=") {
        String::new()
    } else {
        " passfile=/nonexistent/pgpass".to_string()
    };
    format!(
        "host={host} port={} dbname=postgres user={user}{passfile} {extra}",
        cluster.port()
    )
}

/// Connection settings read the environment (`PGPASSWORD`, `PGPASSFILE`, ...) when they
/// are parsed, i.e. when a pool or manager is built: that happens under a read lock, and
/// the one test that sets variables holds the write lock while it does.
static ENV: RwLock<()> = RwLock::new(());

fn env_read() -> RwLockReadGuard<'static, ()> {
    ENV.read().unwrap_or_else(|e| e.into_inner())
}

fn pool(conninfo: &str) -> Pool {
    let _env = env_read();
    Pool::builder()
        .max_size(2)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .application_name("tls-auth-test")
        .build(conninfo)
        .unwrap_or_else(|e| panic!("building a pool for {conninfo:?}: {e}"))
}

/// Connects through a pool, runs a query; returns whether the session is over TLS.
fn connects(conninfo: &str) -> bool {
    let pool = pool(conninfo);
    let mut conn = pool
        .get()
        .unwrap_or_else(|e| panic!("connecting with {conninfo:?}: {e}"));
    let n: i32 = conn.query_one("SELECT 41 + 1", &[]).unwrap().get(0);
    assert_eq!(n, 42);
    let tls = conn.is_tls();
    let server_ssl: bool = conn
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tls, server_ssl, "the client and the server disagree on TLS");
    tls
}

/// `pool.get()` must fail, at once, with a permanent connect error.
fn fails_fast(conninfo: &str) -> Error {
    let pool = pool(conninfo);
    let start = Instant::now();
    let err = match pool.get() {
        Ok(_) => panic!("connecting with {conninfo:?} succeeded"),
        Err(e) => e,
    };
    let took = start.elapsed();
    assert!(
        took < FAST,
        "the failure took {took:?} (acquire timeout {ACQUIRE_TIMEOUT:?}): {err}"
    );
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    assert!(err.is_permanent_connect(), "not permanent: {err:?}");
    err
}

fn assert_mentions(err: &Error, words: &[&str]) {
    let text = err.to_string();
    for word in words {
        assert!(text.contains(word), "{word:?} missing from: {text}");
    }
}

fn wrong_password(err: &Error) {
    assert_eq!(err.sqlstate(), Some("28P01"), "{err:?}");
    assert_mentions(err, &["password authentication failed"]);
}

fn missing_password(err: &Error, method: &str) {
    assert_eq!(err.sqlstate(), None, "{err:?}");
    assert_mentions(err, &["no password was supplied", method]);
}

// ---- Authentication methods ----------------------------------------------------------------

#[test]
fn trust_connects_with_any_password_or_none() {
    let c = main_cluster();
    for extra in ["sslmode=disable", "sslmode=disable password=whatever"] {
        assert!(!connects(&conninfo(c, "127.0.0.1", TRUST_USER, extra)));
    }
    // Trust asks for nothing, so there is nothing to get wrong; an unknown role still fails
    // fast (28000 from the server).
    let err = fails_fast(&conninfo(c, "127.0.0.1", "no_such_role", "sslmode=disable"));
    assert_eq!(err.sqlstate(), Some("28000"), "{err:?}");
    assert_mentions(&err, &["no_such_role"]);
}

#[test]
fn cleartext_password() {
    let c = main_cluster();
    let ok = format!("sslmode=disable password={CLEAR_PASSWORD}");
    assert!(!connects(&conninfo(c, "127.0.0.1", CLEAR_USER, &ok)));
    wrong_password(&fails_fast(&conninfo(
        c,
        "127.0.0.1",
        CLEAR_USER,
        "sslmode=disable password=wrong",
    )));
    missing_password(
        &fails_fast(&conninfo(c, "127.0.0.1", CLEAR_USER, "sslmode=disable")),
        "password",
    );
}

#[test]
fn md5_password() {
    let c = main_cluster();
    let ok = format!("sslmode=disable password={MD5_PASSWORD}");
    assert!(!connects(&conninfo(c, "127.0.0.1", MD5_USER, &ok)));
    wrong_password(&fails_fast(&conninfo(
        c,
        "127.0.0.1",
        MD5_USER,
        "sslmode=disable password=wrong",
    )));
    missing_password(
        &fails_fast(&conninfo(c, "127.0.0.1", MD5_USER, "sslmode=disable")),
        "md5",
    );
}

#[test]
fn scram_sha_256_over_plain_tcp() {
    let c = main_cluster();
    let ok = format!("sslmode=disable password={SCRAM_PASSWORD}");
    assert!(!connects(&conninfo(c, "127.0.0.1", SCRAM_USER, &ok)));
    wrong_password(&fails_fast(&conninfo(
        c,
        "127.0.0.1",
        SCRAM_USER,
        "sslmode=disable password=wrong",
    )));
    missing_password(
        &fails_fast(&conninfo(c, "127.0.0.1", SCRAM_USER, "sslmode=disable")),
        "SCRAM-SHA-256",
    );
}

#[test]
fn scram_sha_256_plus_binds_the_channel_over_tls() {
    let c = main_cluster();
    // channel_binding=require only succeeds when SCRAM-SHA-256-PLUS was used.
    let ok = format!(
        "sslmode=verify-full sslrootcert={} channel_binding=require password={SCRAM_PASSWORD}",
        q(ca_file())
    );
    assert!(connects(&conninfo(c, "localhost", SCRAM_USER, &ok)));
    // Also without verifying the certificate: the binding is to whatever the server sent.
    let ok = format!("sslmode=require channel_binding=require password={SCRAM_PASSWORD}");
    assert!(connects(&conninfo(c, "127.0.0.1", SCRAM_USER, &ok)));
    // The default (prefer) binds too, and a wrong password is still refused.
    let wrong = "sslmode=require password=wrong";
    wrong_password(&fails_fast(&conninfo(c, "127.0.0.1", SCRAM_USER, wrong)));
    let wrong = "sslmode=require channel_binding=require password=wrong";
    wrong_password(&fails_fast(&conninfo(c, "127.0.0.1", SCRAM_USER, wrong)));
    missing_password(
        &fails_fast(&conninfo(
            c,
            "127.0.0.1",
            SCRAM_USER,
            "sslmode=require channel_binding=require",
        )),
        "SCRAM-SHA-256",
    );
}

#[test]
fn channel_binding_require_fails_without_tls_or_without_scram() {
    let c = main_cluster();
    let cases = [
        // SCRAM over plain TCP: no PLUS on offer.
        (
            SCRAM_USER,
            format!("sslmode=disable channel_binding=require password={SCRAM_PASSWORD}"),
        ),
        // TLS, but md5, cleartext or trust authentication: nothing to bind.
        (
            MD5_USER,
            format!("sslmode=require channel_binding=require password={MD5_PASSWORD}"),
        ),
        (
            CLEAR_USER,
            format!("sslmode=require channel_binding=require password={CLEAR_PASSWORD}"),
        ),
        (
            TRUST_USER,
            "sslmode=require channel_binding=require".to_string(),
        ),
    ];
    for (user, extra) in cases {
        let err = fails_fast(&conninfo(c, "127.0.0.1", user, &extra));
        assert_mentions(&err, &["channel_binding=require"]);
        assert!(
            err.to_string().contains("channel binding") || err.to_string().contains("PLUS"),
            "{err}"
        );
    }
}

/// A server that asks for a cleartext password, and records whether it got one.
fn password_asking_server(code: u8) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got_password = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&got_password);
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
        if s.read_exact(&mut startup).is_err() {
            return;
        }
        // AuthenticationCleartextPassword (3) or AuthenticationMD5Password (5, with a salt).
        let mut request = vec![b'R'];
        if code == 5 {
            request.extend_from_slice(&12u32.to_be_bytes());
            request.extend_from_slice(&5u32.to_be_bytes());
            request.extend_from_slice(b"salt");
        } else {
            request.extend_from_slice(&8u32.to_be_bytes());
            request.extend_from_slice(&u32::from(code).to_be_bytes());
        }
        s.write_all(&request).unwrap();
        let mut tag = [0u8; 1];
        if s.read_exact(&mut tag).is_ok() && tag[0] == b'p' {
            seen.store(true, Ordering::SeqCst);
        }
    });
    (port, got_password)
}

#[test]
fn channel_binding_require_never_sends_a_password_to_an_unbound_method() {
    // libpq refuses a cleartext or md5 request under channel_binding=require before it
    // answers it: the server on the other end may be anybody.
    for (code, method) in [(3u8, "password"), (5, "md5")] {
        let (port, got_password) = password_asking_server(code);
        let info = format!(
            "host=127.0.0.1 port={port} user=u dbname=d sslmode=disable \
             channel_binding=require password=secret"
        );
        let manager = {
            let _env = env_read();
            pgpool::PgManager::new(&info, Pool::builder().config()).unwrap()
        };
        let err = manager.open().map(|_| ()).unwrap_err();
        assert!(err.is_permanent_connect(), "{err:?}");
        assert_mentions(&err, &["channel_binding=require", method]);
        // Give a password that was sent time to arrive.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !got_password.load(Ordering::SeqCst),
            "the {method} password was sent under channel_binding=require"
        );
    }
}

/// The certificate and key for `user`, as files with mode 0600.
fn client_files(user: &str) -> (PathBuf, PathBuf) {
    let pair = certs().client(user);
    (
        write_file(&format!("{user}.crt"), &pair.cert_pem, 0o600),
        write_file(&format!("{user}.key"), &pair.key_pem, 0o600),
    )
}

#[test]
fn client_certificate_authentication() {
    let c = main_cluster();
    let (cert, key) = client_files(CERT_USER);
    let with = |cert: &Path, key: &Path| {
        format!(
            "sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            q(ca_file()),
            q(cert),
            q(key)
        )
    };
    let info = conninfo(c, "localhost", CERT_USER, &with(&cert, &key));
    assert!(connects(&info));
    let pool = pool(&info);
    let dn: String = pool
        .get()
        .unwrap()
        .query_one(
            "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(dn, format!("/CN={CERT_USER}"));

    // A certificate for somebody else: the server refuses it (28000), at once.
    let (other_cert, other_key) = client_files("somebody_else");
    let err = fails_fast(&conninfo(
        c,
        "localhost",
        CERT_USER,
        &with(&other_cert, &other_key),
    ));
    assert_eq!(err.sqlstate(), Some("28000"), "{err:?}");
    assert_mentions(&err, &["certificate authentication failed", CERT_USER]);

    // No certificate at all.
    let err = fails_fast(&conninfo(
        c,
        "localhost",
        CERT_USER,
        &format!("sslmode=verify-full sslrootcert={}", q(ca_file())),
    ));
    assert_eq!(err.sqlstate(), Some("28000"), "{err:?}");
    assert_mentions(&err, &["certificate"]);

    // A key file others can read is refused when the pool is built, naming sslkey.
    let loose_key = write_file("loose.key", &certs().client(CERT_USER).key_pem, 0o644);
    let _env = env_read();
    let err = Pool::builder()
        .build(&conninfo(
            c,
            "localhost",
            CERT_USER,
            &with(&cert, &loose_key),
        ))
        .map(|_| ())
        .unwrap_err();
    assert_mentions(&err, &["sslkey"]);
}

// ---- Password files ------------------------------------------------------------------------

#[test]
fn passwords_come_from_a_private_passfile_only() {
    let c = main_cluster();
    let line = format!(
        "127.0.0.1:{}:postgres:{SCRAM_USER}:{SCRAM_PASSWORD}\n",
        c.port()
    );
    let private = write_file("pgpass", &line, 0o600);
    let info = conninfo(
        c,
        "127.0.0.1",
        SCRAM_USER,
        &format!("sslmode=disable passfile={}", q(&private)),
    );
    assert!(!connects(&info));

    // Wildcards, and a wrong password in the file fails like any wrong password.
    let wildcard = write_file("pgpass", &format!("*:*:*:{MD5_USER}:wrong\n"), 0o600);
    let info = conninfo(
        c,
        "127.0.0.1",
        MD5_USER,
        &format!("sslmode=disable passfile={}", q(&wildcard)),
    );
    wrong_password(&fails_fast(&info));

    // The settings' password wins over the file.
    let info = conninfo(
        c,
        "127.0.0.1",
        MD5_USER,
        &format!(
            "sslmode=disable passfile={} password={MD5_PASSWORD}",
            q(&wildcard)
        ),
    );
    assert!(!connects(&info));

    // A file the group or others can read is ignored, as libpq does.
    let public = write_file("pgpass", &line, 0o644);
    let info = conninfo(
        c,
        "127.0.0.1",
        SCRAM_USER,
        &format!("sslmode=disable passfile={}", q(&public)),
    );
    missing_password(&fails_fast(&info), "SCRAM-SHA-256");

    // A file with no matching line: no password.
    let other_port = write_file(
        "pgpass",
        &format!("127.0.0.1:1:postgres:{SCRAM_USER}:{SCRAM_PASSWORD}\n"),
        0o600,
    );
    let info = conninfo(
        c,
        "127.0.0.1",
        SCRAM_USER,
        &format!("sslmode=disable passfile={}", q(&other_port)),
    );
    missing_password(&fails_fast(&info), "SCRAM-SHA-256");
}

/// Builds a pool for `conninfo` with the environment variables `vars` set (and removed
/// again before anything else may parse settings).
fn pool_with_env(conninfo: &str, vars: &[(&str, &str)]) -> Pool {
    let _env = ENV.write().unwrap_or_else(|e| e.into_inner());
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    let pool = Pool::builder()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .build(conninfo);
    for (k, _) in vars {
        std::env::remove_var(k);
    }
    pool.unwrap()
}

#[test]
fn passwords_and_password_files_from_the_environment() {
    let c = main_cluster();
    let base = format!(
        "host=127.0.0.1 port={} dbname=postgres user={SCRAM_USER} sslmode=disable",
        c.port()
    );
    let connect = |pool: Pool| {
        let n: i32 = pool
            .get()
            .unwrap()
            .query_one("SELECT 1", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
    };
    connect(pool_with_env(&base, &[("PGPASSWORD", SCRAM_PASSWORD)]));
    let line = format!("*:*:*:{SCRAM_USER}:{SCRAM_PASSWORD}\n");
    let passfile = write_file("pgpass", &line, 0o600);
    let passfile = passfile.to_str().unwrap();
    connect(pool_with_env(&base, &[("PGPASSFILE", passfile)]));
    // The settings win over the environment.
    let pool = pool_with_env(
        &format!("{base} password=wrong"),
        &[("PGPASSWORD", SCRAM_PASSWORD)],
    );
    let start = Instant::now();
    let err = pool.get().map(|_| ()).unwrap_err();
    assert!(start.elapsed() < FAST);
    wrong_password(&err);
}

// ---- sslmode -------------------------------------------------------------------------------

fn no_default_root_cert() -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let present = home.is_some_and(|h| h.join(".postgresql/root.crt").exists());
    if present {
        eprintln!("skipped: ~/.postgresql/root.crt exists and changes what sslmode=require does");
    }
    !present
}

#[test]
fn verify_full_with_the_right_ca_and_host_name() {
    let c = main_cluster();
    let extra = format!("sslmode=verify-full sslrootcert={}", q(ca_file()));
    assert!(connects(&conninfo(c, "localhost", "postgres", &extra)));
    // An address literal matches the certificate's IP-address SAN.
    assert!(connects(&conninfo(c, "127.0.0.1", "postgres", &extra)));
}

#[test]
fn verify_full_with_the_wrong_ca_fails_naming_the_unknown_issuer() {
    let c = main_cluster();
    for mode in ["verify-full", "verify-ca", "require"] {
        let extra = format!("sslmode={mode} sslrootcert={}", q(other_ca_file()));
        let err = fails_fast(&conninfo(c, "localhost", "postgres", &extra));
        assert_mentions(&err, &["unknown issuer", mode]);
    }
}

#[test]
fn verify_full_with_the_wrong_host_name_fails_naming_the_host() {
    let c = wrong_name_cluster();
    let extra = format!("sslmode=verify-full sslrootcert={}", q(ca_file()));
    let err = fails_fast(&conninfo(c, "localhost", "postgres", &extra));
    assert_mentions(&err, &["localhost"]);
    let err = fails_fast(&conninfo(c, "127.0.0.1", "postgres", &extra));
    assert_mentions(&err, &["127.0.0.1"]);
}

#[test]
fn verify_ca_accepts_the_wrong_host_name() {
    let c = wrong_name_cluster();
    let extra = format!("sslmode=verify-ca sslrootcert={}", q(ca_file()));
    assert!(connects(&conninfo(c, "localhost", "postgres", &extra)));
}

#[test]
fn an_expired_certificate_fails_naming_expiry() {
    let c = expired_cluster();
    for mode in ["verify-full", "verify-ca"] {
        let extra = format!("sslmode={mode} sslrootcert={}", q(ca_file()));
        let err = fails_fast(&conninfo(c, "localhost", "postgres", &extra));
        assert_mentions(&err, &["expired"]);
    }
}

#[test]
fn require_against_a_server_without_tls_fails() {
    let c = plain_cluster();
    for mode in ["require", "verify-ca", "verify-full"] {
        let extra = format!("sslmode={mode} sslrootcert={}", q(ca_file()));
        let err = fails_fast(&conninfo(c, "127.0.0.1", "postgres", &extra));
        assert_mentions(&err, &["TLS", &format!("sslmode={mode}")]);
    }
}

#[test]
fn prefer_and_allow_against_a_server_without_tls_connect_in_plain() {
    let c = plain_cluster();
    for extra in ["sslmode=prefer", "sslmode=allow", "sslmode=disable", ""] {
        assert!(!connects(&conninfo(c, "127.0.0.1", "postgres", extra)));
    }
}

#[test]
fn prefer_uses_tls_when_the_server_offers_it() {
    let c = main_cluster();
    // prefer is the default.
    for extra in ["sslmode=prefer", ""] {
        assert!(connects(&conninfo(c, "127.0.0.1", "postgres", extra)));
    }
}

#[test]
fn disable_never_uses_tls() {
    let c = main_cluster();
    let extra = format!("sslmode=disable sslrootcert={}", q(ca_file()));
    assert!(!connects(&conninfo(c, "localhost", "postgres", &extra)));
    // ... so a role that may only connect over TLS is refused, at once.
    let err = fails_fast(&conninfo(c, "127.0.0.1", SSL_ONLY_USER, "sslmode=disable"));
    assert_eq!(err.sqlstate(), Some("28000"), "{err:?}");
    assert_mentions(&err, &["pg_hba.conf rejects", SSL_ONLY_USER]);
}

#[test]
fn allow_tries_plain_first_then_tls() {
    let c = main_cluster();
    assert!(!connects(&conninfo(
        c,
        "127.0.0.1",
        "postgres",
        "sslmode=allow"
    )));
    // A role the server accepts only over TLS (hostssl): refused in plain, then TLS.
    assert!(connects(&conninfo(
        c,
        "127.0.0.1",
        SSL_ONLY_USER,
        "sslmode=allow"
    )));
}

#[test]
fn require_without_a_root_certificate_accepts_an_unknown_ca() {
    if !no_default_root_cert() {
        return;
    }
    // Neither cluster's certificate can be verified without the CA: require does not try.
    assert!(connects(&conninfo(
        main_cluster(),
        "localhost",
        "postgres",
        "sslmode=require"
    )));
    assert!(connects(&conninfo(
        wrong_name_cluster(),
        "127.0.0.1",
        "postgres",
        "sslmode=require"
    )));
    // With the root certificate, require verifies the chain but not the name (verify-ca).
    let extra = format!("sslmode=require sslrootcert={}", q(ca_file()));
    assert!(connects(&conninfo(
        wrong_name_cluster(),
        "localhost",
        "postgres",
        &extra
    )));
}

#[test]
fn unix_sockets_never_use_tls() {
    // libpq's rule: sslmode applies to TCP only, so even require connects in plain.
    for c in [main_cluster(), plain_cluster()] {
        for mode in ["require", "prefer", "allow"] {
            let info = format!(
                "host={} port={} user=postgres dbname=postgres sslmode={mode}",
                c.socket_dir().display(),
                c.port()
            );
            assert!(!connects(&info), "sslmode={mode}");
        }
    }
}
