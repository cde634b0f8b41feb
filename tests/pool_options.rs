//! Pool options from the connection string (`pool_*` keys, Prisma's names) and the
//! environment (`PGPOOL_*`, other tools' names): every option in every form, the precedence
//! between the layers, each alias with its units and refusals, the errors, and what reaches
//! the server.
//!
//! The environment is process-wide and `build` reads it, so every test here holds [`ENV`]
//! (also those that set nothing: a pool built while another test has `PGPOOL_MAX_SIZE` set
//! would see it).

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use pgpool::client::conninfo::ConnConfig;
use pgpool::{Builder, Config, Error, ErrorKind, Pool};

static ENV: Mutex<()> = Mutex::new(());

/// Every variable these tests set, removed on entry and on exit.
const VARS: &[&str] = &[
    "PGPOOL_MAX_SIZE",
    "PGPOOL_MIN_IDLE",
    "PGPOOL_MAX_IDLE",
    "PGPOOL_ACQUIRE_TIMEOUT",
    "PGPOOL_APPLICATION_NAME",
    "PGPOOL_STATEMENT_TIMEOUT",
    "PGPOOL_MAX_SIZ",
    "PGPOOL_QUERY_TIMEOUT",
    "DB_MAX_OPEN_CONNS",
    "DB_MAX_IDLE_CONNS",
    "DB_CONN_MAX_LIFETIME",
    "DB_CONN_MAX_IDLE_TIME",
    "PG_POOL_MAX",
    "PG_POOL_MIN",
    "PG_IDLE_TIMEOUT",
    "PG_CONNECTION_TIMEOUT",
    "PG_STATEMENT_TIMEOUT",
    "PG_QUERY_TIMEOUT",
    "PG_APP_NAME",
];

/// Holds the environment lock with `vars` set (every other variable of [`VARS`] unset);
/// unsets them again on drop, even when the test fails.
struct Env {
    set: Vec<String>,
    _lock: MutexGuard<'static, ()>,
}

impl Env {
    fn with(vars: &[(&str, &str)]) -> Env {
        let lock = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Every option variable, not only VARS: a leftover from a failed test must not leak.
        for name in VARS
            .iter()
            .map(|v| v.to_string())
            .chain(pgpool::options::option_names().map(env_name))
        {
            std::env::remove_var(name);
        }
        for (name, value) in vars {
            std::env::set_var(name, value);
        }
        Env {
            set: vars.iter().map(|(n, _)| n.to_string()).collect(),
            _lock: lock,
        }
    }

    fn clean() -> Env {
        Env::with(&[])
    }

    /// Replaces the variables set (the lock stays held).
    fn set(&mut self, vars: &[(&str, &str)]) {
        for name in self.set.drain(..) {
            std::env::remove_var(name);
        }
        for (name, value) in vars {
            std::env::set_var(name, value);
            self.set.push(name.to_string());
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in &self.set {
            std::env::remove_var(name);
        }
    }
}

fn env_name(option: &str) -> String {
    format!("PGPOOL_{}", option.to_ascii_uppercase())
}

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// The shared server in `key=value` form.
fn key_values() -> String {
    ConnConfig::parse(&common::url()).unwrap().redacted()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn show(pool: &Pool, setting: &str) -> String {
    let mut conn = pool.get().unwrap();
    conn.query_one(&format!("SHOW {setting}"), &[])
        .unwrap()
        .get(0)
}

fn config_err(result: Result<Config, Error>) -> Error {
    let err = result.expect_err("expected a configuration error");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    err
}

/// One value for every option, written as the string and the environment take it, and the
/// configuration it gives (every other option at its default).
/// An option's name, a value for it, and what that value does to the default config.
type Case = (&'static str, &'static str, fn(&mut Config));

fn every_option() -> Vec<Case> {
    vec![
        ("max_size", "7", |c| {
            c.max_size = 7;
            c.max_idle = 7;
        }),
        ("min_idle", "3", |c| c.min_idle = 3),
        ("max_idle", "4", |c| c.max_idle = 4),
        ("max_lifetime", "90s", |c| {
            c.max_lifetime = Some(Duration::from_secs(90))
        }),
        ("idle_timeout", "off", |c| c.idle_timeout = None),
        ("acquire_timeout", "1500ms", |c| {
            c.acquire_timeout = Duration::from_millis(1500)
        }),
        ("connect_timeout", "3s", |c| {
            c.connect_timeout = Duration::from_secs(3)
        }),
        ("max_uses", "100", |c| c.max_uses = Some(100)),
        ("validate_on_acquire", "false", |c| {
            c.validate_on_acquire = false
        }),
        ("validation_skip_window", "0s", |c| {
            c.validation_skip_window = Duration::ZERO
        }),
        ("validation_timeout", "2s", |c| {
            c.validation_timeout = Duration::from_secs(2)
        }),
        ("keepalive_interval", "never", |c| {
            c.keepalive_interval = None
        }),
        ("reaper_interval", "250ms", |c| {
            c.reaper_interval = Duration::from_millis(250)
        }),
        ("max_waiters", "50", |c| c.max_waiters = Some(50)),
        ("close_timeout", "1m", |c| {
            c.close_timeout = Duration::from_secs(60)
        }),
        ("statement_timeout", "45s", |c| {
            c.statement_timeout = Some(Duration::from_secs(45))
        }),
        ("application_name", "a b", |c| {
            c.application_name = Some("a b".into())
        }),
        ("statement_cache_capacity", "0", |c| {
            c.statement_cache_capacity = 0
        }),
        ("tcp_user_timeout", "none", |c| c.tcp_user_timeout = None),
        ("tcp_keepalive_idle", "7s", |c| {
            c.tcp_keepalive_idle = Duration::from_secs(7)
        }),
        ("query_timeout", "2500us", |c| {
            c.query_timeout = Some(Duration::from_micros(2500))
        }),
        ("full_reset", "on", |c| c.full_reset = true),
        ("transaction_pooling", "yes", |c| {
            c.transaction_pooling = true
        }),
        ("max_concurrent_connects", "4", |c| {
            c.max_concurrent_connects = 4
        }),
        ("breaker_threshold", "off", |c| c.breaker_threshold = None),
        ("reconnect_backoff_max", "1.5s", |c| {
            c.reconnect_backoff_max = Duration::from_millis(1500)
        }),
        ("leak_threshold", "30s", |c| {
            c.leak_threshold = Some(Duration::from_secs(30))
        }),
        ("max_checkout", "1h", |c| {
            c.max_checkout = Some(Duration::from_secs(3600))
        }),
        ("health_timeout", "250ms", |c| {
            c.health_timeout = Duration::from_millis(250)
        }),
        ("name", "reports-1", |c| c.name = Some("reports-1".into())),
        ("histograms", "off", |c| c.histograms = false),
        ("stats_log_interval", "1m", |c| {
            c.stats_log_interval = Some(Duration::from_secs(60))
        }),
        ("slow_query_threshold", "200ms", |c| {
            c.slow_query_threshold = Some(Duration::from_millis(200))
        }),
        ("degraded_waiters", "none", |c| c.degraded_waiters = None),
        ("max_replica_lag", "5s", |c| {
            c.max_replica_lag = Some(Duration::from_secs(5))
        }),
        ("init_sql", "SET x.y = 1", |c| {
            c.init_sql = Some("SET x.y = 1".into())
        }),
        ("fallback_lifetime", "1m", |c| {
            c.fallback_lifetime = Some(Duration::from_secs(60))
        }),
    ]
}

fn expected(change: fn(&mut Config)) -> Config {
    let mut config = Config::default();
    change(&mut config);
    config
}

#[test]
fn every_option_is_read_from_the_url_the_key_value_form_and_the_environment() {
    let mut env = Env::clean();
    let table = every_option();
    let names: Vec<&str> = table.iter().map(|(n, _, _)| *n).collect();
    let all: Vec<&str> = pgpool::options::option_names().collect();
    assert_eq!(names, all, "the table covers every option");
    for (name, value, change) in table {
        let want = expected(change);
        let url = format!(
            "postgres://app@db:5433/shop?sslmode=disable&pool_{name}={}",
            percent_encode(value)
        );
        assert_eq!(Config::from_conninfo(&url).unwrap(), want, "{url}");
        let kv = format!("host=db pool_{name}='{value}' dbname=shop");
        assert_eq!(Config::from_conninfo(&kv).unwrap(), want, "{kv}");
        env.set(&[(&env_name(name), value)]);
        let got = Builder::new().config_for("host=db").unwrap();
        assert_eq!(got, want, "{}={value}", env_name(name));
        // The environment is not read when switched off, nor by Config::from_conninfo.
        let off = Builder::new().env(false).config_for("host=db").unwrap();
        assert_eq!(off, Config::default(), "env(false) with {}", env_name(name));
        assert_eq!(Config::from_conninfo("host=db").unwrap(), Config::default());
        env.set(&[]);
    }
}

#[test]
fn a_pool_built_from_a_url_has_the_options_and_its_sessions_see_them() {
    let _env = Env::clean();
    let app = common::app_name("url-options");
    let url = with_params(
        &common::url(),
        &format!(
            "pool_max_size=3&pool_min_idle=1&pool_application_name={}&\
             pool_statement_timeout=1234ms&pool_acquire_timeout=5s&pool_query_timeout=off",
            percent_encode(&app)
        ),
    );
    let pool = Pool::builder().build(&url).unwrap();
    let c = pool.config();
    assert_eq!((c.max_size, c.min_idle, c.max_idle), (3, 1, 3));
    assert_eq!(c.acquire_timeout, Duration::from_secs(5));
    // min_idle=1: one session opened ahead of use, under the application name.
    pool.wait_ready(Duration::from_secs(10)).unwrap();
    let mut admin = common::admin();
    assert_eq!(common::backends(&mut admin, &app), 1);
    assert_eq!(show(&pool, "statement_timeout"), "1234ms");
    assert_eq!(show(&pool, "application_name"), app);
    pool.close();
}

#[test]
fn a_pool_built_from_key_values_has_the_options_and_its_sessions_see_them() {
    let _env = Env::clean();
    let app = common::app_name("kv options");
    let conninfo = format!(
        "{} pool_max_size=2 pool_application_name='{app}' pool_statement_timeout = 2s",
        key_values()
    );
    let pool = Pool::builder().build(&conninfo).unwrap();
    assert_eq!(pool.config().max_size, 2);
    assert_eq!(show(&pool, "statement_timeout"), "2s");
    assert_eq!(show(&pool, "application_name"), app);
    pool.close();
}

#[test]
fn the_libpq_keys_around_the_pool_keys_reach_the_parser_unchanged() {
    let _env = Env::clean();
    let app = common::app_name("libpq keys");
    // URL form: percent-encoded libpq values on both sides of the pool keys.
    let url = with_params(
        &common::url(),
        &format!(
            "application_name={}&pool_max_size=2&options=-c%20work_mem%3D3MB&\
             pool_statement_timeout=3s&sslmode=disable",
            percent_encode(&app)
        ),
    );
    let pool = Pool::builder().build(&url).unwrap();
    assert_eq!(show(&pool, "application_name"), app);
    assert_eq!(show(&pool, "work_mem"), "3MB");
    assert_eq!(show(&pool, "statement_timeout"), "3s");
    let ssl: bool = pool
        .get()
        .unwrap()
        .query_one(
            "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!ssl, "sslmode=disable reached the parser");
    pool.close();

    // key=value form: quoted values with spaces and escapes around a pool key.
    let conninfo = format!(
        "{} options='-c work_mem=5MB -c search_path=a\\'b' pool_max_size=2 \
         application_name='{app}'",
        key_values()
    );
    let pool = Pool::builder().build(&conninfo).unwrap();
    assert_eq!(show(&pool, "work_mem"), "5MB");
    assert_eq!(show(&pool, "search_path"), "a'b");
    assert_eq!(show(&pool, "application_name"), app);
    pool.close();

    let (rest, pool_keys) = pgpool::options::split_conninfo(&url).unwrap();
    assert!(!rest.contains("pool_"), "{rest}");
    assert!(
        rest.contains("options=-c%20work_mem%3D3MB&sslmode=disable"),
        "{rest}"
    );
    assert_eq!(pool_keys.len(), 2);
}

#[test]
fn a_setter_beats_the_string_which_beats_the_environment_which_beats_the_default() {
    let _env = Env::with(&[
        ("PGPOOL_MAX_SIZE", "5"),
        ("PGPOOL_MIN_IDLE", "1"),
        ("PGPOOL_ACQUIRE_TIMEOUT", "7s"),
        ("PGPOOL_STATEMENT_TIMEOUT", "4s"),
    ]);
    let conninfo = "host=db pool_max_size=6 pool_acquire_timeout=8s";
    let c = Builder::new().max_size(7).config_for(conninfo).unwrap();
    assert_eq!(c.max_size, 7, "setter");
    assert_eq!(c.max_idle, 7, "max_idle follows the final max_size");
    assert_eq!(c.acquire_timeout, Duration::from_secs(8), "string");
    assert_eq!(c.min_idle, 1, "environment");
    assert_eq!(
        c.statement_timeout,
        Some(Duration::from_secs(4)),
        "environment"
    );
    assert_eq!(c.connect_timeout, Duration::from_secs(10), "default");

    let c = Builder::new().config_for(conninfo).unwrap();
    assert_eq!((c.max_size, c.max_idle), (6, 6), "string over environment");
    let c = Builder::new().config_for("host=db").unwrap();
    assert_eq!((c.max_size, c.max_idle), (5, 5), "environment over default");
    let c = Builder::new().env(false).config_for("host=db").unwrap();
    assert_eq!(c, Config::default(), "env(false)");

    // A setter to the default value still counts as set.
    let c = Builder::new()
        .statement_timeout(None)
        .config_for("host=db")
        .unwrap();
    assert_eq!(c.statement_timeout, None);
    // max_idle set in one layer is kept whatever max_size the others give.
    let c = Builder::new()
        .max_idle(2)
        .config_for("host=db pool_max_size=9")
        .unwrap();
    assert_eq!((c.max_size, c.max_idle), (9, 2));

    // The pool that build() makes uses the same resolution, also build_with_manager.
    let pool = Builder::new()
        .max_size(7)
        .build(&with_params(&common::url(), "pool_acquire_timeout=8s"))
        .unwrap();
    assert_eq!(pool.config().max_size, 7);
    assert_eq!(pool.config().acquire_timeout, Duration::from_secs(8));
    assert_eq!(pool.config().min_idle, 1);
    assert_eq!(show(&pool, "statement_timeout"), "4s");
    pool.close();
    let manager = pgpool::PgManager::new(&common::url(), &Config::default()).unwrap();
    let pool = Builder::new().build_with_manager(manager).unwrap();
    assert_eq!(pool.config().max_size, 5);
    pool.close();
}

#[test]
fn a_validation_error_names_where_the_values_came_from() {
    let _env = Env::with(&[("PGPOOL_MAX_SIZE", "2")]);
    let err = config_err(Builder::new().config_for("host=db pool_min_idle=3"));
    assert_eq!(err.option(), Some("min_idle"));
    let msg = err.to_string();
    assert!(
        msg.contains("min_idle from pool_min_idle in the connection string"),
        "{msg}"
    );
    assert!(msg.contains("max_size from PGPOOL_MAX_SIZE"), "{msg}");
    let err = config_err(Builder::new().min_idle(3).config_for("host=db"));
    assert!(
        err.to_string().contains("max_size from PGPOOL_MAX_SIZE"),
        "{err}"
    );
    // The same error from build(): nothing is connected.
    let err = Builder::new()
        .build("host=db pool_min_idle=3")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.option(), Some("min_idle"), "{err}");
}

#[test]
fn the_strings_application_name_beats_the_environments_and_pool_application_name_beats_both() {
    let app = common::app_name("env app");
    let other = common::app_name("string app");
    let _env = Env::with(&[("PGPOOL_APPLICATION_NAME", &app)]);
    let pool = Pool::builder().build(&common::url()).unwrap();
    assert_eq!(show(&pool, "application_name"), app);
    pool.close();
    let url = with_params(
        &common::url(),
        &format!("application_name={}", percent_encode(&other)),
    );
    let pool = Pool::builder().build(&url).unwrap();
    assert_eq!(show(&pool, "application_name"), other);
    pool.close();
    let third = common::app_name("pool key app");
    let url = with_params(
        &url,
        &format!("pool_application_name={}", percent_encode(&third)),
    );
    let pool = Pool::builder().build(&url).unwrap();
    assert_eq!(show(&pool, "application_name"), third);
    pool.close();
}

#[test]
fn prisma_connection_limit_and_pool_timeout_in_seconds() {
    let _env = Env::clean();
    let c = Config::from_conninfo(
        "postgresql://user:pass@host:5432/db?connection_limit=20&pool_timeout=30",
    )
    .unwrap();
    assert_eq!((c.max_size, c.max_idle), (20, 20));
    assert_eq!(c.acquire_timeout, Duration::from_secs(30));
    // pgpool's own names outrank them, wherever they stand.
    let c = Config::from_conninfo(
        "host=h pool_max_size=4 connection_limit=20 pool_acquire_timeout=2s pool_timeout=30",
    )
    .unwrap();
    assert_eq!((c.max_size, c.acquire_timeout), (4, Duration::from_secs(2)));

    let err = config_err(Config::from_conninfo("postgres://h/db?pool_timeout=0"));
    assert_eq!(err.option(), Some("acquire_timeout"));
    let msg = err.to_string();
    assert!(
        msg.contains("\"0\"") && msg.contains("pool_timeout"),
        "{msg}"
    );
    assert!(msg.contains("waiting forever"), "{msg}");
    let err = config_err(Config::from_conninfo("postgres://h/db?pool_timeout=30s"));
    assert!(err.to_string().contains("seconds"), "{err}");
    let err = config_err(Config::from_conninfo("host=h connection_limit=0"));
    assert_eq!(err.option(), Some("max_size"));
    assert!(err.to_string().contains("connection_limit"), "{err}");

    // They reach a real pool too, and are not passed to the libpq parser.
    let url = with_params(&common::url(), "connection_limit=3&pool_timeout=4");
    let pool = Pool::builder().build(&url).unwrap();
    assert_eq!(pool.config().max_size, 3);
    assert_eq!(pool.config().acquire_timeout, Duration::from_secs(4));
    pool.get().unwrap();
    pool.close();
}

#[test]
fn go_database_sql_variables_with_go_durations() {
    let mut env = Env::with(&[
        ("DB_MAX_OPEN_CONNS", "25"),
        ("DB_MAX_IDLE_CONNS", "5"),
        ("DB_CONN_MAX_LIFETIME", "3600s"),
        ("DB_CONN_MAX_IDLE_TIME", "10m"),
    ]);
    let aliases = || Builder::new().env_aliases(true);
    let c = aliases().config_for("host=db").unwrap();
    assert_eq!((c.max_size, c.max_idle), (25, 5));
    assert_eq!(c.max_lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(c.idle_timeout, Some(Duration::from_secs(600)));
    // Not read unless asked for.
    assert_eq!(
        Builder::new().config_for("host=db").unwrap(),
        Config::default()
    );

    // Go's zeros: no idle connection kept; never expire.
    env.set(&[
        ("DB_MAX_OPEN_CONNS", "10"),
        ("DB_MAX_IDLE_CONNS", "0"),
        ("DB_CONN_MAX_LIFETIME", "0"),
        ("DB_CONN_MAX_IDLE_TIME", "0"),
    ]);
    let c = aliases().config_for("host=db").unwrap();
    assert_eq!((c.max_size, c.max_idle), (10, 0));
    assert_eq!((c.max_lifetime, c.idle_timeout), (None, None));

    // DB_MAX_OPEN_CONNS=0 is Go's "no limit": refused, saying what to set.
    env.set(&[("DB_MAX_OPEN_CONNS", "0")]);
    let err = config_err(aliases().config_for("host=db"));
    assert_eq!(err.option(), Some("max_size"));
    let msg = err.to_string();
    assert!(
        msg.contains("DB_MAX_OPEN_CONNS") && msg.contains("\"0\""),
        "{msg}"
    );
    assert!(
        msg.contains("no limit") && msg.contains("PGPOOL_MAX_SIZE"),
        "{msg}"
    );

    // A Go duration needs its unit, except 0.
    env.set(&[("DB_CONN_MAX_LIFETIME", "3600")]);
    let err = config_err(aliases().config_for("host=db"));
    assert_eq!(err.option(), Some("max_lifetime"));
    let msg = err.to_string();
    assert!(
        msg.contains("DB_CONN_MAX_LIFETIME") && msg.contains("unit"),
        "{msg}"
    );

    // PGPOOL_* outranks the alias; two aliases that disagree are an error.
    env.set(&[("DB_MAX_OPEN_CONNS", "25"), ("PGPOOL_MAX_SIZE", "8")]);
    assert_eq!(aliases().config_for("host=db").unwrap().max_size, 8);
    env.set(&[("DB_MAX_OPEN_CONNS", "25"), ("PG_POOL_MAX", "20")]);
    let err = config_err(aliases().config_for("host=db"));
    let msg = err.to_string();
    assert!(
        msg.contains("DB_MAX_OPEN_CONNS") && msg.contains("PG_POOL_MAX"),
        "{msg}"
    );
    env.set(&[("DB_MAX_OPEN_CONNS", "20"), ("PG_POOL_MAX", "20")]);
    assert_eq!(aliases().config_for("host=db").unwrap().max_size, 20);
}

#[test]
fn node_postgres_variables_in_milliseconds_reach_the_sessions() {
    let app = common::app_name("node app");
    let mut env = Env::with(&[
        ("PG_POOL_MAX", "4"),
        ("PG_POOL_MIN", "1"),
        ("PG_IDLE_TIMEOUT", "30000"),
        ("PG_CONNECTION_TIMEOUT", "2000"),
        ("PG_STATEMENT_TIMEOUT", "1500"),
        ("PG_QUERY_TIMEOUT", "60000"),
        ("PG_APP_NAME", &app),
    ]);
    let pool = Builder::new()
        .env_aliases(true)
        .build(&common::url())
        .unwrap();
    let c = pool.config();
    assert_eq!((c.max_size, c.min_idle), (4, 1));
    assert_eq!(c.idle_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.acquire_timeout, Duration::from_secs(2));
    assert_eq!(c.query_timeout, Some(Duration::from_secs(60)));
    assert_eq!(show(&pool, "statement_timeout"), "1500ms");
    assert_eq!(show(&pool, "application_name"), app);
    pool.close();

    // node-postgres's zeros: idle clients kept, no statement_timeout sent, no query timeout.
    env.set(&[
        ("PG_IDLE_TIMEOUT", "0"),
        ("PG_STATEMENT_TIMEOUT", "0"),
        ("PG_QUERY_TIMEOUT", "0"),
    ]);
    let c = Builder::new()
        .env_aliases(true)
        .config_for("host=db")
        .unwrap();
    assert_eq!(
        (c.idle_timeout, c.statement_timeout, c.query_timeout),
        (None, None, None)
    );

    // connectionTimeoutMillis 0 (wait forever) is refused; units are milliseconds, bare.
    env.set(&[("PG_CONNECTION_TIMEOUT", "0")]);
    let err = config_err(Builder::new().env_aliases(true).config_for("host=db"));
    assert_eq!(err.option(), Some("acquire_timeout"));
    let msg = err.to_string();
    assert!(
        msg.contains("PG_CONNECTION_TIMEOUT") && msg.contains("forever"),
        "{msg}"
    );
    env.set(&[("PG_IDLE_TIMEOUT", "30s")]);
    let err = config_err(Builder::new().env_aliases(true).config_for("host=db"));
    assert!(err.to_string().contains("milliseconds"), "{err}");

    // PGPOOL_* outranks the alias.
    env.set(&[
        ("PG_QUERY_TIMEOUT", "60000"),
        ("PGPOOL_QUERY_TIMEOUT", "5s"),
    ]);
    let c = Builder::new()
        .env_aliases(true)
        .config_for("host=db")
        .unwrap();
    assert_eq!(c.query_timeout, Some(Duration::from_secs(5)));
}

#[test]
fn unknown_keys_and_malformed_values_are_config_errors_naming_them() {
    let mut env = Env::clean();
    for conninfo in ["postgres://h/db?pool_max_sise=3", "host=h pool_max_sise=3"] {
        let err = config_err(Config::from_conninfo(conninfo));
        assert_eq!(err.option(), Some("conninfo"));
        let msg = err.to_string();
        assert!(msg.contains("\"pool_max_sise\""), "{msg}");
        assert!(msg.contains("did you mean pool_max_size?"), "{msg}");
    }
    let err = config_err(Config::from_conninfo("postgres://h?pool_max_conns=3"));
    assert!(
        err.to_string().contains("pool_max_size"),
        "pgx's name: {err}"
    );

    let malformed = [
        ("pool_max_size=ten", "max_size", "not a whole number"),
        ("pool_max_size=-1", "max_size", "not a whole number"),
        ("pool_acquire_timeout=5", "acquire_timeout", "unit"),
        ("pool_acquire_timeout=0", "acquire_timeout", "unit"),
        ("pool_idle_timeout=5d", "idle_timeout", "unknown unit"),
        ("pool_acquire_timeout=-1s", "acquire_timeout", "negative"),
        ("pool_full_reset=maybe", "full_reset", "true or false"),
        ("pool_max_uses=lots", "max_uses", "whole number"),
        ("pool_acquire_timeout=off", "acquire_timeout", "duration"),
        ("pool_max_size=0", "max_size", "at least 1"),
        (
            "pool_statement_timeout=1us",
            "statement_timeout",
            "1..=2147483647",
        ),
    ];
    for (pair, option, why) in malformed {
        let (key, value) = pair.split_once('=').unwrap();
        for conninfo in [
            format!("postgres://h/db?{pair}"),
            format!("host=h {key}='{value}'"),
        ] {
            let err = config_err(Config::from_conninfo(&conninfo));
            assert_eq!(err.option(), Some(option), "{conninfo}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(why), "{conninfo}: {msg}");
            assert!(msg.contains(key), "names the key: {msg}");
        }
        // The same value from the environment names the variable and the value.
        let var = env_name(&key["pool_".len()..]);
        env.set(&[(&var, value)]);
        let err = config_err(Builder::new().config_for("host=h"));
        assert_eq!(err.option(), Some(option), "{var}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(&var) && msg.contains(why), "{msg}");
        env.set(&[]);
    }
    let err = config_err(Config::from_conninfo("host=h pool_max_size=ten"));
    assert!(
        err.to_string().contains("\"ten\""),
        "names the value: {err}"
    );

    // A pool key without a value, or with a second '=', in the URL form.
    for url in [
        "postgres://h?pool_max_size",
        "postgres://h?pool_application_name=a=b",
    ] {
        let err = config_err(Config::from_conninfo(url));
        assert!(err.to_string().contains("pool_"), "{err}");
    }

    // An unknown PGPOOL_* variable: named, its value not shown.
    env.set(&[("PGPOOL_MAX_SIZ", "hunter2")]);
    let err = config_err(Builder::new().config_for("host=h"));
    assert_eq!(err.option(), Some("environment"));
    let msg = err.to_string();
    assert!(
        msg.contains("PGPOOL_MAX_SIZ ") && msg.contains("PGPOOL_MAX_SIZE?"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(Builder::new().env(false).config_for("host=h").is_ok());
    let err = Pool::builder()
        .build(&common::url())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    env.set(&[]);

    // An unknown libpq key is still the libpq parser's error.
    let err = Pool::builder()
        .build("host=h pool_max_size=2 nonsense=1")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.option(), Some("conninfo"));
    assert!(err.to_string().contains("nonsense"), "{err}");
}

/// docs/operations/coming-from.md names pgpool's side of every mapping in its tables' second
/// column: each snake_case name there must be an option (written bare or as its `pool_` key),
/// or one of the few builder and connection-string names the guide uses besides.
#[test]
fn the_coming_from_guide_names_only_real_options() {
    let _env = Env::clean();
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations/coming-from.md"),
    )
    .unwrap();
    let options: Vec<&str> = pgpool::options::option_names().collect();
    let besides = ["event_hook", "target_session_attrs"];
    let mut checked = 0;
    for line in doc
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
    {
        let Some(ours) = line.split(" | ").nth(1) else {
            continue;
        };
        for name in ours.split('`').skip(1).step_by(2) {
            if !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                continue; // `Pool::close`, `Pool.Stats()`, values
            }
            let bare = name.strip_prefix("pool_").unwrap_or(name);
            assert!(
                options.contains(&bare) || besides.contains(&name),
                "{name} in {line:?} is no pgpool option"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 80,
        "only {checked} names checked: the tables changed shape?"
    );
}
