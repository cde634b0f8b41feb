use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

/// Parsed with only `PGUSER=me` in the environment and no home directory.
fn parse(s: &str) -> Result<ConnConfig, Error> {
    ConnConfig::parse_with(s, &env_of(&[("PGUSER", "me")]), None)
}

fn ok(s: &str) -> ConnConfig {
    parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn tcp(name: &str, port: u16) -> HostSpec {
    HostSpec {
        host: Host::Tcp(name.to_owned()),
        hostaddr: None,
        port,
    }
}

fn unix(dir: &str, port: u16) -> HostSpec {
    HostSpec {
        host: Host::Unix(PathBuf::from(dir)),
        hostaddr: None,
        port,
    }
}

fn pairs(s: &str) -> Vec<(String, String)> {
    ConnConfig::parse_pairs(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A fresh directory under the system temp directory.
fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pgpool-conninfo-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(unix)]
fn write_mode(path: &Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---- the raw stage ----

#[test]
fn pairs_of_uris() {
    let table: &[(&str, &[(&str, &str)])] = &[
        ("postgresql://", &[]),
        ("postgres://h", &[("host", "h")]),
        (
            "postgresql://u:pw@h:5433/db?application_name=x",
            &[
                ("user", "u"),
                ("password", "pw"),
                ("dbname", "db"),
                ("host", "h"),
                ("port", "5433"),
                ("application_name", "x"),
            ],
        ),
        (
            "postgresql://a:1,b,c:3",
            &[("host", "a,b,c"), ("port", "1,,3")],
        ),
        (
            "postgresql://[::1]:5432,[fe80::1]/d",
            &[("dbname", "d"), ("host", "::1,fe80::1"), ("port", "5432,")],
        ),
        (
            "postgresql://%2Ftmp/d%20b",
            &[("dbname", "d b"), ("host", "/tmp")],
        ),
        (
            "postgresql://u%40x:p%3A@h",
            &[("user", "u@x"), ("password", "p:"), ("host", "h")],
        ),
        ("postgresql://:pw@h", &[("password", "pw"), ("host", "h")]),
        ("postgresql://u:@h/", &[("user", "u"), ("host", "h")]),
        (
            "postgresql:///db?host=%2Fvar%2Frun",
            &[("dbname", "db"), ("host", "/var/run")],
        ),
        (
            "postgresql://h/db?ssl=true",
            &[("dbname", "db"), ("host", "h"), ("sslmode", "require")],
        ),
        (
            "postgresql://h?requiressl=1",
            &[("host", "h"), ("sslmode", "require")],
        ),
        (
            "postgresql://h?application_name=",
            &[("host", "h"), ("application_name", "")],
        ),
        (
            "postgresql://h?port=1&port=2",
            &[("host", "h"), ("port", "2")],
        ),
        ("postgresql://h/db?", &[("dbname", "db"), ("host", "h")]),
        ("postgresql://,", &[("host", ","), ("port", ",")]),
    ];
    for (s, expected) in table {
        assert_eq!(pairs(s), p(expected), "{s}");
    }
}

#[test]
fn pairs_of_key_values() {
    let table: &[(&str, &[(&str, &str)])] = &[
        ("", &[]),
        ("  \t ", &[]),
        ("host=h port=1", &[("host", "h"), ("port", "1")]),
        ("host = h   port =\t1", &[("host", "h"), ("port", "1")]),
        ("password='a b\\'c\\\\d'", &[("password", "a b'c\\d")]),
        ("host=a\\ b", &[("host", "a b")]),
        ("application_name=''", &[("application_name", "")]),
        ("host=a host=b", &[("host", "b")]),
        ("host= port=5", &[("host", "port=5")]),
        ("requiressl=0", &[("sslmode", "prefer")]),
        ("dbname=x\0host=ignored", &[("dbname", "x")]),
        ("options='-c geqo=off'", &[("options", "-c geqo=off")]),
    ];
    for (s, expected) in table {
        assert_eq!(pairs(s), p(expected), "{s:?}");
    }
}

#[test]
fn every_libpq_16_keyword_is_accepted() {
    let keys = "host hostaddr port dbname user password passfile channel_binding \
                connect_timeout client_encoding options application_name \
                fallback_application_name keepalives keepalives_idle keepalives_interval \
                keepalives_count tcp_user_timeout replication gssencmode sslmode \
                sslnegotiation sslcompression sslcert sslkey sslpassword sslcertmode \
                sslrootcert sslcrl sslcrldir sslsni requirepeer require_auth \
                ssl_min_protocol_version ssl_max_protocol_version krbsrvname gsslib \
                gssdelegation target_session_attrs load_balance_hosts service";
    for key in keys.split_whitespace() {
        assert_eq!(pairs(&format!("{key}=v")), p(&[(key, "v")]), "{key}");
        assert_eq!(
            pairs(&format!("postgresql://?{key}=v")),
            p(&[(key, "v")]),
            "{key} in a URI"
        );
    }
}

#[test]
fn syntax_errors() {
    let table: &[(&str, &str)] = &[
        ("nosuchkey=1", "\"nosuchkey\""),
        ("postgresql://h?nosuchkey=1", "\"nosuchkey\""),
        ("postgresql://h?ssl=false", "\"ssl\""),
        ("host", "\"host\""),
        ("host localhost", "\"host\""),
        ("host='x", "unterminated"),
        ("postgresql://[::1", "\"]\""),
        ("postgresql://[]", "empty"),
        ("postgresql://[::1]x", "\"x\""),
        ("postgresql://h/%zz", "dbname"),
        ("postgresql://h/a%00", "%00"),
        ("postgresql://h/%ff", "UTF-8"),
        ("postgresql://h?application_name", "\"application_name\""),
        (
            "postgresql://h?application_name=a=b",
            "\"application_name\"",
        ),
    ];
    for (s, needle) in table {
        let err = ConnConfig::parse_pairs(s).expect_err(s);
        assert_eq!(err.kind(), crate::error::ErrorKind::Config, "{s}");
        assert!(err.to_string().contains(needle), "{s}: {err}");
    }
}

#[test]
fn syntax_errors_never_show_a_password() {
    for s in [
        "postgresql://u:se%zzcret@h",
        "postgresql://u:se%00cret@h",
        "postgresql://h?password=se%zzcret",
        "password=se cret",
        "password=se cret=x",
        "sslpassword=se cret",
    ] {
        let err = ConnConfig::parse_pairs(s).expect_err(s);
        let text = err.to_string();
        assert!(
            !text.contains("se") && !text.contains("cret"),
            "{s}: {text}"
        );
    }
}

// ---- resolution ----

#[test]
fn resolved_fields() {
    let c = ok("postgresql://u:pw@db1:5433,[::1],%2Frun%2Fpg:7/shop?sslmode=verify-full&connect_timeout=10&application_name=app&target_session_attrs=read-write&load_balance_hosts=random");
    assert_eq!(
        c.hosts,
        vec![tcp("db1", 5433), tcp("::1", 5432), unix("/run/pg", 7)]
    );
    assert_eq!(c.user, "u");
    assert_eq!(c.password.as_ref().map(Secret::expose), Some("pw"));
    assert_eq!(c.dbname, "shop");
    assert_eq!(c.sslmode, SslMode::VerifyFull);
    assert_eq!(c.connect_timeout, Some(Duration::from_secs(10)));
    assert_eq!(c.application_name.as_deref(), Some("app"));
    assert_eq!(c.target_session_attrs, TargetSessionAttrs::ReadWrite);
    assert_eq!(c.load_balance_hosts, LoadBalanceHosts::Random);

    let c = ok("host=a,b,c port=6000 dbname='my db' channel_binding=require keepalives=0 keepalives_idle=30 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=1500 sslsni=0 options='-c x=y' fallback_application_name=fb");
    assert_eq!(
        c.hosts,
        vec![tcp("a", 6000), tcp("b", 6000), tcp("c", 6000)]
    );
    assert_eq!(c.dbname, "my db");
    assert_eq!(c.user, "me");
    assert_eq!(c.channel_binding, ChannelBinding::Require);
    assert!(!c.keepalives);
    assert_eq!(c.keepalives_idle, Some(Duration::from_secs(30)));
    assert_eq!(c.keepalives_interval, Some(Duration::from_secs(5)));
    assert_eq!(c.keepalives_count, Some(3));
    assert_eq!(c.tcp_user_timeout, Some(Duration::from_millis(1500)));
    assert!(!c.sslsni);
    assert_eq!(c.options.as_deref(), Some("-c x=y"));
    assert_eq!(c.fallback_application_name.as_deref(), Some("fb"));
}

#[test]
fn defaults() {
    let c = ok("");
    assert_eq!(c.hosts, vec![unix(DEFAULT_SOCKET_DIR, 5432)]);
    assert_eq!((c.user.as_str(), c.dbname.as_str()), ("me", "me"));
    assert_eq!(c.password, None);
    assert_eq!(c.passfile, None, "no home directory");
    assert_eq!(c.sslmode, SslMode::Prefer);
    assert_eq!(c.channel_binding, ChannelBinding::Prefer);
    assert_eq!(c.target_session_attrs, TargetSessionAttrs::Any);
    assert_eq!(c.load_balance_hosts, LoadBalanceHosts::Disable);
    assert!(c.sslsni && c.keepalives);
    assert_eq!(c.connect_timeout, None);
    assert_eq!((c.keepalives_idle, c.tcp_user_timeout), (None, None));
    assert_eq!(
        (&c.sslrootcert, &c.sslcert, &c.sslkey),
        (&None, &None, &None)
    );

    // No PGUSER: the operating-system user, also the database.
    let c = ConnConfig::parse_with("", &env_of(&[]), None).unwrap();
    let os_user = crate::sys::user::os_user_name().expect("this test runs as a named user");
    assert_eq!(
        (c.user.as_str(), c.dbname.as_str()),
        (os_user.as_str(), os_user.as_str())
    );
}

#[test]
fn multi_host_rules() {
    assert_eq!(
        ok("host=a,,/s port=1,2,3").hosts,
        vec![tcp("a", 1), unix(DEFAULT_SOCKET_DIR, 2), unix("/s", 3)]
    );
    assert_eq!(
        ok("host=a,b port=,9").hosts,
        vec![tcp("a", 5432), tcp("b", 9)]
    );
    let c = ok("host=a,/s hostaddr=10.0.0.1,::1");
    assert_eq!(
        c.hosts[0].hostaddr,
        Some("10.0.0.1".parse::<IpAddr>().unwrap())
    );
    assert_eq!(c.hosts[1].host, Host::Unix("/s".into()));
    assert_eq!(c.hosts[1].hostaddr, Some("::1".parse::<IpAddr>().unwrap()));
    // hostaddr alone: the address names the host.
    let c = ok("hostaddr=127.0.0.1,");
    assert_eq!(c.hosts[0].host, Host::Tcp("127.0.0.1".into()));
    assert_eq!(c.hosts[1], unix(DEFAULT_SOCKET_DIR, 5432));
    // ' 5433 ' is a port: libpq allows whitespace around integers.
    assert_eq!(
        ok("port=' 5433 '").hosts,
        vec![unix(DEFAULT_SOCKET_DIR, 5433)]
    );
}

#[test]
fn connect_timeout_like_libpq() {
    let t = |s: &str| ok(&format!("connect_timeout={s}")).connect_timeout;
    assert_eq!(t("0"), None);
    assert_eq!(t("-3"), None);
    assert_eq!(t("1"), Some(Duration::from_secs(2)));
    assert_eq!(t("2"), Some(Duration::from_secs(2)));
    assert_eq!(t("' 7 '"), Some(Duration::from_secs(7)));
    assert_eq!(
        ok("keepalives_idle=0 keepalives_count=-1").keepalives_idle,
        None
    );
    assert!(ok("keepalives=5").keepalives);
}

#[test]
fn environment_precedence() {
    let env = env_of(&[
        ("PGHOST", "envhost"),
        ("PGPORT", "7777"),
        ("PGUSER", "envuser"),
        ("PGDATABASE", "envdb"),
        ("PGPASSWORD", "envpw"),
        ("PGSSLMODE", "require"),
        ("PGAPPNAME", "envapp"),
        ("PGCONNECT_TIMEOUT", "9"),
        ("PGTARGETSESSIONATTRS", "standby"),
        ("PGLOADBALANCEHOSTS", "random"),
        ("PGCHANNELBINDING", "disable"),
        ("PGOPTIONS", "-c a=b"),
        ("PGSSLSNI", "0"),
        ("PGPASSFILE", "/env/pgpass"),
        ("PGSSLROOTCERT", "/env/root.crt"),
        ("PGSSLCERT", "/env/c.crt"),
        ("PGSSLKEY", "/env/c.key"),
    ]);
    let c = ConnConfig::parse_with("", &env, None).unwrap();
    assert_eq!(c.hosts, vec![tcp("envhost", 7777)]);
    assert_eq!((c.user.as_str(), c.dbname.as_str()), ("envuser", "envdb"));
    assert_eq!(c.password.as_ref().map(Secret::expose), Some("envpw"));
    assert_eq!(c.sslmode, SslMode::Require);
    assert_eq!(c.application_name.as_deref(), Some("envapp"));
    assert_eq!(c.connect_timeout, Some(Duration::from_secs(9)));
    assert_eq!(c.target_session_attrs, TargetSessionAttrs::Standby);
    assert_eq!(c.load_balance_hosts, LoadBalanceHosts::Random);
    assert_eq!(c.channel_binding, ChannelBinding::Disable);
    assert_eq!(c.options.as_deref(), Some("-c a=b"));
    assert!(!c.sslsni);
    assert_eq!(c.passfile, Some(PathBuf::from("/env/pgpass")));
    assert_eq!(c.sslrootcert.as_deref(), Some("/env/root.crt"));
    assert_eq!(c.sslcert, Some(PathBuf::from("/env/c.crt")));
    assert_eq!(c.sslkey, Some(PathBuf::from("/env/c.key")));

    // The string wins over every variable.
    let c = ConnConfig::parse_with(
        "postgresql://u:pw@h:1/d?sslmode=disable&application_name=a&connect_timeout=3&target_session_attrs=any&sslsni=1",
        &env,
        None,
    )
    .unwrap();
    assert_eq!(c.hosts, vec![tcp("h", 1)]);
    assert_eq!((c.user.as_str(), c.dbname.as_str()), ("u", "d"));
    assert_eq!(c.password.as_ref().map(Secret::expose), Some("pw"));
    assert_eq!(c.sslmode, SslMode::Disable);
    assert_eq!(c.application_name.as_deref(), Some("a"));
    assert_eq!(c.connect_timeout, Some(Duration::from_secs(3)));
    assert_eq!(c.target_session_attrs, TargetSessionAttrs::Any);
    assert!(c.sslsni);

    // An empty URI dbname leaves PGDATABASE in force; PGREQUIRESSL is the old PGSSLMODE.
    let env = env_of(&[
        ("PGUSER", "u"),
        ("PGDATABASE", "envdb"),
        ("PGREQUIRESSL", "1"),
    ]);
    let c = ConnConfig::parse_with("postgresql://h/", &env, None).unwrap();
    assert_eq!(c.dbname, "envdb");
    assert_eq!(c.sslmode, SslMode::Require);
    let env = env_of(&[
        ("PGUSER", "u"),
        ("PGREQUIRESSL", "1"),
        ("PGSSLMODE", "allow"),
    ]);
    assert_eq!(
        ConnConfig::parse_with("", &env, None).unwrap().sslmode,
        SslMode::Allow
    );
}

#[test]
fn files_under_home() {
    let home = temp_dir();
    let env = env_of(&[("PGUSER", "u")]);
    let c = ConnConfig::parse_with("", &env, Some(&home)).unwrap();
    assert_eq!(
        c.passfile,
        Some(home.join(".pgpass")),
        "the default passfile"
    );
    assert_eq!(
        (&c.sslrootcert, &c.sslcert, &c.sslkey),
        (&None, &None, &None),
        "no files yet"
    );

    let dir = home.join(".postgresql");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["root.crt", "postgresql.crt", "postgresql.key"] {
        std::fs::write(dir.join(f), "x").unwrap();
    }
    let c = ConnConfig::parse_with("", &env, Some(&home)).unwrap();
    assert_eq!(
        c.sslrootcert,
        Some(dir.join("root.crt").to_string_lossy().into_owned())
    );
    assert_eq!(c.sslcert, Some(dir.join("postgresql.crt")));
    assert_eq!(c.sslkey, Some(dir.join("postgresql.key")));
    // Explicit values win; sslcertmode=disable drops the client certificate.
    let c = ConnConfig::parse_with("sslcert=/x.crt sslrootcert=/r", &env, Some(&home)).unwrap();
    assert_eq!(c.sslcert, Some(PathBuf::from("/x.crt")));
    assert_eq!(c.sslrootcert.as_deref(), Some("/r"));
    let c = ConnConfig::parse_with("sslcertmode=disable", &env, Some(&home)).unwrap();
    assert_eq!((c.sslcert, c.sslkey), (None, None));
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn sslrootcert_system() {
    assert_eq!(ok("sslrootcert=system").sslmode, SslMode::VerifyFull);
    assert_eq!(
        ok("sslrootcert=system sslmode=verify-full").sslmode,
        SslMode::VerifyFull
    );
    let err = parse("sslrootcert=system sslmode=require").unwrap_err();
    assert_eq!(err.option(), Some("sslmode"));
    assert!(
        err.to_string().contains("weak sslmode \"require\""),
        "{err}"
    );
}

#[test]
fn accepted_without_effect() {
    for s in [
        "gssencmode=disable",
        "gssencmode=prefer",
        "sslnegotiation=postgres",
        "replication=false",
        "replication=0",
        "client_encoding=UTF8",
        "client_encoding=utf-8",
        "sslcompression=0",
        "sslcompression=1",
        "krbsrvname=postgres gsslib=gssapi gssdelegation=0",
        "ssl_min_protocol_version=TLSv1.2 ssl_max_protocol_version=TLSv1.3",
        "sslcertmode=allow",
        "service=",
        "sslcrl=",
    ] {
        assert_eq!(ok(s).hosts.len(), 1, "{s}");
    }
}

#[test]
fn every_value_error_names_the_key_and_value() {
    let table: &[(&str, &str, &str)] = &[
        ("port=abc", "port", "abc"),
        ("port=0", "port", "0"),
        ("port=65536", "port", "65536"),
        ("host=a,b port=1,2,3", "port", "3 port numbers"),
        ("host=a,b,c hostaddr=1.2.3.4,::1", "host", "3 host names"),
        ("hostaddr=localhost", "hostaddr", "localhost"),
        ("sslmode=bogus", "sslmode", "bogus"),
        ("connect_timeout=x", "connect_timeout", "x"),
        (
            "connect_timeout=99999999999",
            "connect_timeout",
            "99999999999",
        ),
        ("keepalives=on", "keepalives", "on"),
        ("keepalives_idle=x", "keepalives_idle", "x"),
        ("keepalives_interval=x", "keepalives_interval", "x"),
        ("keepalives_count=x", "keepalives_count", "x"),
        ("tcp_user_timeout=1.5", "tcp_user_timeout", "1.5"),
        ("channel_binding=maybe", "channel_binding", "maybe"),
        (
            "target_session_attrs=writable",
            "target_session_attrs",
            "writable",
        ),
        ("load_balance_hosts=yes", "load_balance_hosts", "yes"),
        ("sslsni=yes", "sslsni", "yes"),
        ("sslcertmode=sometimes", "sslcertmode", "sometimes"),
        ("sslcertmode=require", "sslcertmode", "require"),
        ("gssencmode=require", "gssencmode", "require"),
        ("gssencmode=bogus", "gssencmode", "bogus"),
        ("sslnegotiation=direct", "sslnegotiation", "direct"),
        ("sslnegotiation=bogus", "sslnegotiation", "bogus"),
        ("replication=database", "replication", "database"),
        ("replication=true", "replication", "true"),
        ("service=mydb", "service", "pg_service.conf"),
        ("sslcrl=/crl.pem", "sslcrl", "/crl.pem"),
        ("sslcrldir=/crls", "sslcrldir", "/crls"),
        ("requirepeer=postgres", "requirepeer", "postgres"),
        (
            "require_auth=scram-sha-256",
            "require_auth",
            "scram-sha-256",
        ),
        (
            "ssl_min_protocol_version=TLSv1.3",
            "ssl_min_protocol_version",
            "TLSv1.3",
        ),
        (
            "ssl_max_protocol_version=TLSv1.2",
            "ssl_max_protocol_version",
            "TLSv1.2",
        ),
        (
            "ssl_max_protocol_version=SSLv3",
            "ssl_max_protocol_version",
            "SSLv3",
        ),
        ("sslcompression=yes", "sslcompression", "yes"),
        ("gssdelegation=yes", "gssdelegation", "yes"),
        ("client_encoding=LATIN1", "client_encoding", "LATIN1"),
    ];
    for (s, key, needle) in table {
        let err = parse(s).expect_err(s);
        assert_eq!(err.option(), Some(*key), "{s}: {err}");
        let text = err.to_string();
        assert!(text.contains(key) && text.contains(needle), "{s}: {text}");
    }
    // From the environment: the variable is named too.
    let env = env_of(&[("PGUSER", "u"), ("PGSSLMODE", "bogus")]);
    let err = ConnConfig::parse_with("", &env, None).unwrap_err();
    assert!(err.to_string().contains("PGSSLMODE"), "{err}");
    let env = env_of(&[("PGUSER", "u"), ("PGGSSENCMODE", "require")]);
    let err = ConnConfig::parse_with("", &env, None).unwrap_err();
    assert_eq!(err.option(), Some("gssencmode"));
    assert!(err.to_string().contains("PGGSSENCMODE"), "{err}");
    let env = env_of(&[("PGUSER", "u"), ("PGSERVICE", "x")]);
    let err = ConnConfig::parse_with("", &env, None).unwrap_err();
    assert_eq!(err.option(), Some("service"));
}

// ---- the password file ----

#[test]
fn pgpass_matching() {
    let file = b"# a comment: h:5432:db:u:commented\n\
                 other:5432:db:u:wrong-host\n\
                 h:5432:db:u:first\n\
                 h:5432:db:u:second\n\
                 *:*:*:wild:w\\:x\\\\y:ignored\n\
                 a\\:b:1:d\\\\e:u:escaped\r\n\
                 localhost:5432:*:sock:socket\n\
                 h:5432:db\n\
                 :5432:db:empty:e\n";
    let f = |h: &str, port: &str, db: &str, u: &str| pgpass::find(file, h, port, db, u);
    assert_eq!(f("h", "5432", "db", "u").as_deref(), Some("first"));
    assert_eq!(f("h", "5433", "db", "u"), None);
    assert_eq!(f("h", "5432", "db2", "u"), None);
    assert_eq!(f("any", "1", "x", "wild").as_deref(), Some("w:x\\y"));
    assert_eq!(f("a:b", "1", "d\\e", "u").as_deref(), Some("escaped"));
    assert_eq!(
        f("localhost", "5432", "x", "sock").as_deref(),
        Some("socket")
    );
    assert_eq!(f("", "5432", "db", "empty").as_deref(), Some("e"));
    assert_eq!(f("h", "5432", "db", "nobody"), None);
    // '*' is a wildcard only as the whole field.
    assert_eq!(pgpass::find(b"h*:1:d:u:p\n", "hx", "1", "d", "u"), None);
    assert_eq!(
        pgpass::find(b"h*:1:d:u:p\n", "h*", "1", "d", "u").as_deref(),
        Some("p")
    );
    // The last line needs no newline; an empty password is a password.
    assert_eq!(
        pgpass::find(b"h:1:d:u:", "h", "1", "d", "u").as_deref(),
        Some("")
    );
}

#[cfg(unix)]
#[test]
fn password_for_reads_the_file_under_libpqs_rules() {
    let dir = temp_dir();
    let passfile = dir.join("pgpass");
    write_mode(
        &passfile,
        "localhost:5432:me:me:sockpw\n/custom:5432:me:me:custompw\ndb1:6000:me:me:tcppw\n127.0.0.1:5432:me:me:addrpw\n",
        0o600,
    );
    let with = |s: &str| {
        ConnConfig::parse_with(
            &format!("{s} passfile='{}'", passfile.display()),
            &env_of(&[("PGUSER", "me")]),
            None,
        )
        .unwrap()
    };
    let c = with("host=,/custom,db1,/elsewhere port=5432,5432,6000,5432");
    let got: Vec<Option<String>> = c
        .hosts
        .iter()
        .map(|h| c.password_for(h).map(|s| s.expose().to_owned()))
        .collect();
    assert_eq!(
        got,
        vec![
            Some("sockpw".to_owned()),
            Some("custompw".to_owned()),
            Some("tcppw".to_owned()),
            None
        ]
    );
    let c = with("hostaddr=127.0.0.1");
    assert_eq!(c.password_for(&c.hosts[0]).unwrap().expose(), "addrpw");
    // An explicit password wins over the file.
    let c = with("host=db1 port=6000 password=explicit");
    assert_eq!(c.password_for(&c.hosts[0]).unwrap().expose(), "explicit");

    // Group or world access: ignored.
    let c = with("host=db1 port=6000");
    for mode in [0o640, 0o604, 0o660, 0o601, 0o610] {
        write_mode(&passfile, "db1:6000:me:me:tcppw\n", mode);
        assert_eq!(c.password_for(&c.hosts[0]), None, "mode {mode:o}");
    }
    write_mode(&passfile, "db1:6000:me:me:tcppw\n", 0o400);
    assert_eq!(c.password_for(&c.hosts[0]).unwrap().expose(), "tcppw");
    // Not a plain file: ignored.
    let not_a_file = dir.join("adir");
    std::fs::create_dir(&not_a_file).unwrap();
    let c = ConnConfig::parse_with(
        &format!("host=db1 port=6000 passfile='{}'", not_a_file.display()),
        &env_of(&[("PGUSER", "me")]),
        None,
    )
    .unwrap();
    assert_eq!(c.password_for(&c.hosts[0]), None);
    // Missing: no password, no error.
    let c = ConnConfig::parse_with(
        "host=db1 passfile=/nonexistent/pgpass",
        &env_of(&[("PGUSER", "me")]),
        None,
    )
    .unwrap();
    assert_eq!(c.password_for(&c.hosts[0]), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- display ----

#[test]
fn debug_and_redacted_hide_passwords() {
    let c = ok("postgresql://u:hunter2@h1:1,h2/db?sslpassword=keypass&application_name='a b'&hostaddr=10.0.0.1,&connect_timeout=5&tcp_user_timeout=250");
    for text in [format!("{c:?}"), c.redacted()] {
        assert!(
            !text.contains("hunter2") && !text.contains("keypass"),
            "{text}"
        );
    }
    let line = c.redacted();
    assert!(
        line.starts_with("host=h1,h2 hostaddr=10.0.0.1, port=1,5432 user=u dbname=db"),
        "{line}"
    );
    // The line reads back to the same settings, less the passwords.
    let mut back = ok(&line);
    assert_eq!(back.password, None);
    back.password = c.password.clone();
    back.sslpassword = c.sslpassword.clone();
    assert_eq!(back, c);
}

#[test]
fn redacted_quotes_like_libpq() {
    let c = ok("application_name='it\\'s' options='a\\\\b c' host='/my dir'");
    let line = c.redacted();
    assert!(line.contains("host='/my dir'"), "{line}");
    let back = ok(&line);
    assert_eq!(back.options.as_deref(), Some("a\\b c"));
    assert_eq!(back, c);
}

// ---- robustness ----

/// Strings that are valid, to mutate.
const SEEDS: &[&str] = &[
    "postgresql://u:pw@h1:5433,[::1]:5432,%2Ftmp/db?sslmode=require&application_name=x",
    "postgres://h/db?ssl=true&connect_timeout=10&target_session_attrs=read-write",
    "host=a,b port=1,2 user=me dbname='my db' password='p \\' w' sslmode=verify-full",
    "hostaddr=127.0.0.1,::1 host=x,y keepalives=1 keepalives_idle=5 tcp_user_timeout=100",
    "postgresql://[::1]/d?host=%2Fvar%2Frun&port=5",
];

fn mutated() -> impl Strategy<Value = String> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, op, c) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 => chars.insert(i, c),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = c,
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect()
        })
}

fn special() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "postgresql://",
            "postgres://",
            "=",
            "'",
            "\\",
            " ",
            ",",
            ":",
            "@",
            "/",
            "?",
            "&",
            "[",
            "]",
            "%",
            "%2F",
            "%00",
            "%zz",
            "host",
            "port",
            "password",
            "ssl",
            "true",
            "1",
            "\0",
            "é",
            "\t",
        ]),
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        let _ = ConnConfig::parse_pairs(&s);
        let _ = parse(&s);
    }

    #[test]
    fn never_panics_on_mutated_strings(s in mutated()) {
        let _ = ConnConfig::parse_pairs(&s);
        if let Ok(c) = parse(&s) {
            let _ = c.redacted();
        }
    }

    #[test]
    fn never_panics_on_syntax_soup(s in special()) {
        let _ = ConnConfig::parse_pairs(&s);
        let _ = parse(&s);
    }

    #[test]
    fn redacted_reads_back(s in mutated()) {
        if let Ok(c) = parse(&s) {
            let mut back = parse(&c.redacted()).expect("redacted() reads back");
            back.password = c.password.clone();
            back.sslpassword = c.sslpassword.clone();
            prop_assert_eq!(back, c);
        }
    }
}
