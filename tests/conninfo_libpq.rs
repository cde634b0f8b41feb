//! pgpool's connection-string reading against libpq's own: a small C program
//! (`tests/c/conninfo.c`, built here against `-lpq`) prints what `PQconninfoParse` and
//! `PQconndefaults` make of the same strings and environments.
//!
//! Needs a C compiler and libpq's headers and library (`libpq-dev`; `scripts/setup.sh`
//! installs it). Without them the tests fail, saying so: they are not skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use pgpool::client::conninfo::{ConnConfig, Host, SslMode, TargetSessionAttrs, DEFAULT_SOCKET_DIR};

fn pg_config(arg: &str) -> String {
    let out = Command::new("pg_config")
        .arg(arg)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run pg_config ({e}): libpq's development files are needed for this test; \
             install libpq-dev (bash scripts/setup.sh does)"
            )
        });
    assert!(
        out.status.success(),
        "pg_config {arg} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The C helper, compiled once per test binary.
fn helper() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/conninfo.c");
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conninfo-libpq");
        let include = pg_config("--includedir");
        let libdir = pg_config("--libdir");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
        let out = Command::new(&cc)
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .arg(format!("-I{include}"))
            .arg(format!("-L{libdir}"))
            .arg(format!("-Wl,-rpath,{libdir}"))
            .arg("-lpq")
            .output()
            .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
        assert!(
            out.status.success(),
            "compiling {} against libpq failed (install libpq-dev: bash scripts/setup.sh):\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn key_values(lines: &[&str]) -> BTreeMap<String, String> {
    lines
        .iter()
        .map(|line| {
            let (k, v) = line.split_once('=').expect("key=value line");
            (k.to_owned(), unescape(v))
        })
        .collect()
}

/// libpq's `PQconninfoParse` of each string: `Err(message)` or the keys it set.
fn libpq_parse(strings: &[&str]) -> Vec<Result<BTreeMap<String, String>, String>> {
    let out = Command::new(helper())
        .arg("parse")
        .args(strings)
        .output()
        .expect("run the libpq helper");
    assert!(out.status.success(), "helper failed: {out:?}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let mut results = Vec::new();
    let mut lines = stdout.lines();
    while let Some(begin) = lines.next() {
        assert_eq!(begin, "BEGIN");
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "END").collect();
        match block.first() {
            Some(first) if first.starts_with("ERROR ") => {
                results.push(Err(unescape(&first["ERROR ".len()..])))
            }
            _ => results.push(Ok(key_values(&block))),
        }
    }
    assert_eq!(results.len(), strings.len(), "one answer per string");
    results
}

fn libpq_defaults(env: &[(&str, &str)]) -> BTreeMap<String, String> {
    let out = Command::new(helper())
        .arg("defaults")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run the libpq helper");
    assert!(out.status.success(), "helper failed: {out:?}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    key_values(&stdout.lines().collect::<Vec<_>>())
}

/// Strings whose reading must agree with libpq's, keyword for keyword (only keywords that
/// libpq 15 and later know, so that any installed libpq can judge).
const CASES: &[&str] = &[
    // URIs
    "postgresql://",
    "postgres://",
    "postgresql://localhost",
    "postgresql://localhost:5433",
    "postgresql://localhost/mydb",
    "postgresql://user@localhost",
    "postgresql://user:secret@localhost",
    "postgresql://user:@localhost",
    "postgresql://:secret@localhost",
    "postgresql://@localhost",
    "postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp",
    "postgresql://host1:123,host2:456/somedb?target_session_attrs=any&application_name=myapp",
    "postgresql://host1,host2:5433,host3/db",
    "postgresql://host1:1,host2:2,host3:3",
    "postgresql://,/db",
    "postgresql://a:,b:/",
    "postgresql://[::1]:5432/db",
    "postgresql://[::1]/db",
    "postgresql://[2001:db8::1234]:6543,[::1],10.0.0.1:5/x",
    "postgresql://[::1",
    "postgresql://[]/db",
    "postgresql://[::1]x/db",
    "postgresql://%2Fvar%2Flib%2Fpostgresql/dbname",
    "postgresql:///dbname?host=/var/lib/postgresql",
    "postgresql://us%40er:p%3Ass@h%2Cx/d%20b",
    "postgresql://localhost/db?ssl=true",
    "postgresql://localhost/db?ssl=false",
    "postgresql://localhost/db?sslmode=verify-full&sslrootcert=%2Fetc%2Froot.crt",
    "postgresql://localhost/db?requiressl=1",
    "postgresql://localhost/db?bogus=1",
    "postgresql://localhost/db?application_name=a=b",
    "postgresql://localhost/db?application_name",
    "postgresql://localhost/db?application_name=",
    "postgresql://localhost/db?a%3D=1",
    "postgresql://localhost/db?host=h1&host=h2",
    "postgresql://localhost/db?options=-c%20search_path%3Dx",
    "postgresql://localhost/%zz",
    "postgresql://localhost/a%00b",
    "postgresql://localhost:5432?dbname=x",
    "postgresql://localhost/db?",
    "postgresql://localhost/db?&",
    "postgresql://u@/db",
    "postgresql://h/db/with/slashes",
    "postgresql://h?port=1&port=2",
    // key=value
    "",
    "   ",
    "host=localhost port=5432 dbname=mydb connect_timeout=10",
    "host = localhost   port= 5433",
    "host=a,b,c port=1,2,3",
    "host=/tmp,localhost hostaddr=,127.0.0.1",
    "password='a b\\'c\\\\d' user=u",
    "application_name='' dbname=x",
    "options='-c geqo=off' host=h",
    "host=a\\ b",
    "host='unterminated",
    "host",
    "host localhost",
    "=x",
    "nosuchkey=1",
    "host=a host=b",
    "requiressl=1",
    "requiressl=0 sslmode=verify-ca",
    "host=h\tport=1\ndbname=d",
    "host= port=5",
    "sslmode=require sslcert=/c sslkey=/k sslrootcert=system sslcrl=/x sslcrldir=/y sslsni=0",
    "keepalives=0 keepalives_idle=1 keepalives_interval=2 keepalives_count=3 tcp_user_timeout=4",
    "gssencmode=disable krbsrvname=postgres gsslib=gssapi replication=database",
    "service=foo passfile=/p channel_binding=require client_encoding=UTF8",
    "ssl_min_protocol_version=TLSv1.2 ssl_max_protocol_version=TLSv1.3 requirepeer=postgres",
    "target_session_attrs=read-write fallback_application_name=f sslpassword=s",
    "port=abc connect_timeout=x sslmode=bogus",
];

fn ours(s: &str) -> Result<BTreeMap<String, String>, String> {
    ConnConfig::parse_pairs(s)
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|e| e.to_string())
}

#[test]
fn parse_pairs_agrees_with_pqconninfoparse() {
    assert!(CASES.len() >= 30);
    let libpq = libpq_parse(CASES);
    let mut disagreements = Vec::new();
    for (s, theirs) in CASES.iter().zip(libpq) {
        let mine = ours(s);
        let agree = match (&mine, &theirs) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !agree {
            disagreements.push(format!("{s:?}\n  pgpool: {mine:?}\n  libpq:  {theirs:?}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} strings read differently:\n{}",
        disagreements.len(),
        CASES.len(),
        disagreements.join("\n")
    );
}

#[test]
fn every_libpq_keyword_is_accepted() {
    let out = Command::new(helper())
        .arg("keywords")
        .output()
        .expect("run the libpq helper");
    assert!(out.status.success());
    let keywords = String::from_utf8(out.stdout).unwrap();
    let keywords: Vec<&str> = keywords.lines().collect();
    assert!(
        keywords.contains(&"host") && keywords.len() > 30,
        "{keywords:?}"
    );
    for kw in keywords {
        let pairs = ConnConfig::parse_pairs(&format!("{kw}=x"))
            .unwrap_or_else(|e| panic!("libpq knows {kw:?}, pgpool refuses it: {e}"));
        assert_eq!(pairs, vec![(kw.to_owned(), "x".to_owned())]);
    }
}

/// Our resolved settings in libpq's spelling, for the keys the environment tests set.
fn rendered(c: &ConnConfig) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let hosts: Vec<String> = c
        .hosts
        .iter()
        .map(|h| match &h.host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(dir) => dir.display().to_string(),
        })
        .collect();
    m.insert("host", hosts.join(","));
    let ports: Vec<String> = c.hosts.iter().map(|h| h.port.to_string()).collect();
    let port = if ports.iter().all(|p| *p == ports[0]) {
        ports[0].clone()
    } else {
        ports.join(",")
    };
    m.insert("port", port);
    m.insert("user", c.user.clone());
    m.insert("dbname", c.dbname.clone());
    let sslmode = match c.sslmode {
        SslMode::Disable => "disable",
        SslMode::Allow => "allow",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    };
    m.insert("sslmode", sslmode.to_owned());
    if let Some(app) = &c.application_name {
        m.insert("application_name", app.clone());
    }
    if let Some(t) = c.connect_timeout {
        m.insert("connect_timeout", t.as_secs().to_string());
    }
    let tsa = match c.target_session_attrs {
        TargetSessionAttrs::Any => "any",
        TargetSessionAttrs::ReadWrite => "read-write",
        TargetSessionAttrs::ReadOnly => "read-only",
        TargetSessionAttrs::Primary => "primary",
        TargetSessionAttrs::Standby => "standby",
        TargetSessionAttrs::PreferStandby => "prefer-standby",
    };
    m.insert("target_session_attrs", tsa.to_owned());
    m
}

#[test]
fn environment_agrees_with_pqconndefaults() {
    let environments: &[&[(&str, &str)]] = &[
        &[],
        &[("PGHOST", "db.example.com"), ("PGPORT", "6432")],
        &[("PGUSER", "alice"), ("PGDATABASE", "shop")],
        &[("PGUSER", "bob")],
        &[("PGSSLMODE", "verify-full"), ("PGAPPNAME", "reporting")],
        &[
            ("PGCONNECT_TIMEOUT", "10"),
            ("PGTARGETSESSIONATTRS", "read-write"),
        ],
        &[
            ("PGHOST", "/var/run/postgresql,h2"),
            ("PGPORT", "5433,5434"),
        ],
        &[
            ("PGHOST", "a,b"),
            ("PGPORT", "7000"),
            ("PGUSER", "carol"),
            ("PGDATABASE", "x"),
            ("PGSSLMODE", "disable"),
            ("PGAPPNAME", "app name"),
            ("PGCONNECT_TIMEOUT", "30"),
            ("PGTARGETSESSIONATTRS", "prefer-standby"),
        ],
    ];
    for env in environments {
        let theirs = libpq_defaults(env);
        let lookup = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let config =
            ConnConfig::parse_with("", &lookup, None).unwrap_or_else(|e| panic!("{env:?}: {e}"));
        let mine = rendered(&config);
        for (key, value) in &mine {
            let expected = match (*key, theirs.get(*key)) {
                (_, Some(v)) => v.clone(),
                // libpq leaves these unset in PQconndefaults and fills them in at connect
                // time: the host with the socket directory, dbname with the user.
                ("host", None) => DEFAULT_SOCKET_DIR.to_owned(),
                ("dbname", None) => theirs["user"].clone(),
                (k, None) => panic!("{env:?}: libpq has no default for {k}, pgpool has {value:?}"),
            };
            assert_eq!(value, &expected, "{env:?}: {key}");
        }
        for key in ["application_name", "connect_timeout"] {
            assert_eq!(
                mine.get(key),
                theirs.get(key),
                "{env:?}: {key} set by one side only"
            );
        }
    }
}

/// Records every log line, to see the password-file warnings.
struct Capture(std::sync::Mutex<Vec<(String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((record.target().to_owned(), record.args().to_string()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(std::sync::Mutex::new(Vec::new()));

#[cfg(unix)]
#[test]
fn insecure_password_file_is_ignored_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    log::set_logger(&CAPTURE).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Warn);

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pgpass-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pgpass");
    std::fs::write(&file, "db:5432:app:app:filepw\n").unwrap();
    let env = |k: &str| (k == "PGUSER").then(|| "app".to_owned());
    let config = |path: &Path| {
        ConnConfig::parse_with(
            &format!("host=db passfile='{}'", path.display()),
            &env,
            None,
        )
        .unwrap()
    };
    let warnings = || {
        CAPTURE
            .0
            .lock()
            .unwrap()
            .drain(..)
            .filter(|(target, _)| target == "pgpool")
            .map(|(_, message)| message)
            .collect::<Vec<_>>()
    };

    let c = config(&file);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(c.password_for(&c.hosts[0]).unwrap().expose(), "filepw");
    assert!(warnings().is_empty());

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(c.password_for(&c.hosts[0]), None);
    let w = warnings();
    assert!(
        w.len() == 1 && w[0].contains("group or world access") && !w[0].contains("filepw"),
        "{w:?}"
    );

    let c = config(&dir);
    assert_eq!(c.password_for(&c.hosts[0]), None);
    let w = warnings();
    assert!(w.len() == 1 && w[0].contains("not a plain file"), "{w:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
