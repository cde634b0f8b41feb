//! Pool options from the connection string and the environment.
//!
//! Every [`Config`] option can be given three more ways besides its [`Builder`] setter:
//!
//! * in the connection string as `pool_<option>`, in the URL form
//!   (`postgres://app@db/shop?sslmode=require&pool_max_size=20&pool_acquire_timeout=5s`, as
//!   pgx writes its pool settings) or the `key=value` form (`host=db pool_max_size=20`);
//! * in the environment as `PGPOOL_<OPTION>` (`PGPOOL_MAX_SIZE=20`), read by
//!   [`Builder::build`] unless [`Builder::env`]`(false)`;
//! * under another tool's name (an *alias*, with that tool's units and meaning of zero):
//!   Prisma's `connection_limit` and `pool_timeout` in the string, and, when
//!   [`Builder::env_aliases`]`(true)` asks for them, the variables of Go's `database/sql`
//!   configs and of node-postgres configs (table below).
//!
//! The pool keys are taken out of the string before the libpq-compatible parser reads the
//! rest, which it then sees byte for byte as written ([`split_conninfo`]).
//!
//! # Precedence
//!
//! A [`Builder`] setter > the connection string > the environment > the default. Within the
//! string and within the environment, pgpool's own name outranks an alias of the same option
//! (`pool_acquire_timeout` over `pool_timeout`, `PGPOOL_MAX_SIZE` over `DB_MAX_OPEN_CONNS`),
//! and two aliases of one option that disagree are an error. A repeated key: the last one
//! counts, as in libpq. Every value given is checked, even one a higher layer overrides.
//! `max_idle` follows the final `max_size` unless some layer sets it. For
//! `application_name`, the string's libpq `application_name` key also outranks the
//! environment's `PGPOOL_APPLICATION_NAME` / `PG_APP_NAME` (a `pool_application_name` or a
//! setter outranks both).
//!
//! An empty value counts as not given (as libpq treats `PGHOST=`).
//!
//! # Values
//!
//! | kind | written as |
//! |---|---|
//! | count | `20` (decimal digits) |
//! | optional count (`max_uses`, `max_waiters`, `breaker_threshold`) | a count, or `off` / `none` / `unlimited` / `never` |
//! | bool | `true` / `false`, `on` / `off`, `yes` / `no`, `1` / `0` (any case) |
//! | duration | Go's `time.ParseDuration` syntax (what pgx reads): `30s`, `500ms`, `250us`, `10m`, `1h30m`, `1.5s`; units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`. A bare number, even `0`, is refused: write the unit |
//! | optional duration | a duration, or `off` / `none` / `never` |
//! | text (`application_name`) | as is (URL form: percent-decoded) |
//!
//! # Aliases
//!
//! | alias | where | option | unit, and zero |
//! |---|---|---|---|
//! | `connection_limit` | string (Prisma) | `max_size` | count |
//! | `pool_timeout` | string (Prisma) | `acquire_timeout` | seconds; `0` (Prisma: wait forever) is refused |
//! | `DB_MAX_OPEN_CONNS` | env (Go `SetMaxOpenConns`) | `max_size` | count; `0` or less (Go: no limit) is refused |
//! | `DB_MAX_IDLE_CONNS` | env (Go `SetMaxIdleConns`) | `max_idle` | count; `0` or less keeps no idle connection |
//! | `DB_CONN_MAX_LIFETIME` | env (Go `SetConnMaxLifetime`) | `max_lifetime` | Go duration; `0` (bare allowed) or less is never |
//! | `DB_CONN_MAX_IDLE_TIME` | env (Go `SetConnMaxIdleTime`) | `idle_timeout` | Go duration; `0` or less is never |
//! | `PG_POOL_MAX` | env (node-postgres `max`) | `max_size` | count |
//! | `PG_POOL_MIN` | env (node-postgres `min`) | `min_idle` | count |
//! | `PG_IDLE_TIMEOUT` | env (`idleTimeoutMillis`) | `idle_timeout` | milliseconds; `0` is never |
//! | `PG_CONNECTION_TIMEOUT` | env (`connectionTimeoutMillis`) | `acquire_timeout` | milliseconds; `0` (wait forever) is refused |
//! | `PG_STATEMENT_TIMEOUT` | env (`statement_timeout`) | `statement_timeout` | milliseconds; `0` is the server's default |
//! | `PG_QUERY_TIMEOUT` | env (`query_timeout`) | `query_timeout` | milliseconds; `0` is unbounded |
//! | `PG_APP_NAME` | env (`application_name`) | `application_name` | text |
//!
//! # Errors
//!
//! An unknown `pool_*` key or `PGPOOL_*` variable, or a value that does not parse, is an
//! [`Error`] of kind [`Config`](crate::ErrorKind::Config): [`Error::option`] is the option
//! (`"conninfo"` or `"environment"` for a name that is no option) and the message names the
//! key or variable and the value (an unknown name's value is not shown: it may be a secret of
//! some other program). An invalid final value names where it came from.
//!
//! ```
//! use std::time::Duration;
//! let config = pgpool::Config::from_conninfo(
//!     "postgres://app@db/shop?sslmode=require&pool_max_size=20&pool_acquire_timeout=1500ms",
//! )?;
//! assert_eq!(config.max_size, 20);
//! assert_eq!(config.max_idle, 20);
//! assert_eq!(config.acquire_timeout, Duration::from_millis(1500));
//!
//! let (rest, pool) = pgpool::options::split_conninfo("host=db pool_max_size=20 dbname='a b'")?;
//! assert_eq!(rest, "host=db  dbname='a b'");
//! assert_eq!(pool, [("pool_max_size".to_string(), "20".to_string())]);
//!
//! let err = pgpool::Config::from_conninfo("host=db pool_acquire_timeout=5").unwrap_err();
//! assert_eq!(err.option(), Some("acquire_timeout"));
//! assert!(err.to_string().contains("unit"));
//! # Ok::<(), pgpool::Error>(())
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::client::conninfo::ConnConfig;
use crate::client::conninfo::{next_pair, percent_decode};
use crate::config::{Builder, Config};
use crate::error::Error;
use crate::event::EventHook;

/// The prefix of a pool key in the connection string.
const KEY_PREFIX: &str = "pool_";
/// The prefix of a pool option's environment variable.
const ENV_PREFIX: &str = "PGPOOL_";

/// `PGPOOL_*` variables that are not pool options, and so are not refused as unknown: the C
/// library's log level, and what pgpool's own build and test tooling reads.
const NOT_OPTIONS: &[&str] = &[
    "PGPOOL_LOG",
    "PGPOOL_TEST_URL",
    "PGPOOL_TEST_PRIMARY",
    "PGPOOL_TEST_STANDBY",
    "PGPOOL_PG_BINDIR",
    "PGPOOL_REQUIRE_NETNS",
    "PGPOOL_REQUIRE_CHROMIUM",
    "PGPOOL_REQUIRE_PGBOUNCER",
    "PGPOOL_SOAK_SECS",
    "PGPOOL_SOAK_SEED",
    "PGPOOL_FUZZ_SEED",
    "PGPOOL_FUZZ_SECONDS",
    "PGPOOL_STRESS_SEED",
    "PGPOOL_UPDATE_HEADER",
    "PGPOOL_LIBS_PRIVATE",
];

/// Reads `text` into one field of a [`Config`]; the error is the reason, for a message that
/// the caller completes with the option, the key and the value.
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// One option of [`Config`], by name.
struct Opt {
    name: &'static str,
    set: Setter,
    copy: fn(&mut Config, &Config),
    same: fn(&Config, &Config) -> bool,
}

fn copy_field<T: Clone>(to: &mut T, from: &T) {
    to.clone_from(from);
}

macro_rules! options {
    ($($name:ident: $parse:expr,)*) => {
        /// Every option of [`Config`], with how its value is written.
        const OPTIONS: &[Opt] = &[$(
            Opt {
                name: stringify!($name),
                set: |config, text| {
                    config.$name = $parse(text)?;
                    Ok(())
                },
                copy: |to, from| copy_field(&mut to.$name, &from.$name),
                same: |a, b| a.$name == b.$name,
            },
        )*];

        /// Fails to compile when an option of [`Config`] is missing from [`OPTIONS`].
        #[allow(dead_code)]
        fn every_option_is_listed(config: Config) {
            let Config { $($name: _,)* } = config;
        }
    };
}

options! {
    max_size: count::<u32>,
    min_idle: count::<u32>,
    max_idle: count::<u32>,
    max_lifetime: optional_duration,
    idle_timeout: optional_duration,
    acquire_timeout: duration,
    connect_timeout: duration,
    max_uses: optional_count::<u64>,
    validate_on_acquire: flag,
    validation_skip_window: duration,
    validation_timeout: duration,
    keepalive_interval: optional_duration,
    reaper_interval: duration,
    max_waiters: optional_count::<usize>,
    close_timeout: duration,
    statement_timeout: optional_duration,
    application_name: text,
    statement_cache_capacity: count::<usize>,
    tcp_user_timeout: optional_duration,
    tcp_keepalive_idle: duration,
    query_timeout: optional_duration,
    full_reset: flag,
    transaction_pooling: flag,
    max_concurrent_connects: count::<u32>,
    breaker_threshold: optional_count::<u32>,
    reconnect_backoff_max: duration,
    leak_threshold: optional_duration,
    max_checkout: optional_duration,
    health_timeout: duration,
    name: text,
    histograms: flag,
    stats_log_interval: optional_duration,
    slow_query_threshold: optional_duration,
    degraded_waiters: optional_count::<usize>,
    max_replica_lag: optional_duration,
    init_sql: text,
    fallback_lifetime: optional_duration,
}

fn option(name: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.name == name)
}

/// The name of every option of [`Config`], in the order of its fields: the connection
/// string's key is `pool_` followed by it, the environment variable `PGPOOL_` followed by it
/// in upper case.
pub fn option_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|o| o.name)
}

/// Why [`apply_option`] did not apply a value.
#[derive(Debug)]
pub(crate) enum ApplyError {
    /// No option has that name; the text is a `" (did you mean max_size?)"` hint, or empty.
    Unknown(String),
    /// The value does not parse as that option's: the option, and why.
    Value(&'static str, String),
}

/// Applies one option, by name, with its value written as in the connection string and the
/// environment (`"20"`, `"30s"`, `"off"`, `"true"`), to `builder` as its setter would: it
/// then outranks the connection string and the environment. The one parser the `pool_*`
/// keys, the `PGPOOL_*` variables and registry files share. Returns the option's name.
pub(crate) fn apply_option(
    builder: &mut Builder,
    name: &str,
    value: &str,
) -> Result<&'static str, ApplyError> {
    let opt = option(name).ok_or_else(|| ApplyError::Unknown(suggestion(name, str::to_owned)))?;
    let mut scratch = builder.config.clone();
    (opt.set)(&mut scratch, value).map_err(|why| ApplyError::Value(opt.name, why))?;
    (opt.copy)(&mut builder.config, &scratch);
    // As `Builder::max_size` does: `max_idle` follows `max_size` unless it is set.
    if opt.name == "max_size" && !builder.explicit.contains("max_idle") {
        builder.config.max_idle = builder.config.max_size;
    }
    builder.explicit.insert(opt.name);
    Ok(opt.name)
}

// ---- values -------------------------------------------------------------------------------

/// Words for "none" in an optional option.
const NONE_WORDS: [&str; 4] = ["off", "none", "never", "unlimited"];

fn is_none_word(text: &str) -> bool {
    NONE_WORDS
        .iter()
        .any(|w| text.trim().eq_ignore_ascii_case(w))
}

fn count<T: FromStr>(text: &str) -> Result<T, String> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a whole number".to_owned());
    }
    t.parse().map_err(|_| "too large".to_owned())
}

fn optional_count<T: FromStr>(text: &str) -> Result<Option<T>, String> {
    if is_none_word(text) {
        return Ok(None);
    }
    count(text)
        .map(Some)
        .map_err(|why| format!("{why} (or off for none)"))
}

/// An integer that may be negative (Go's `int`).
fn integer(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a whole number".to_owned());
    }
    t.parse().map_err(|_| "too large".to_owned())
}

fn flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err("expected true or false (or on/off, yes/no, 1/0)".to_owned()),
    }
}

fn text(text: &str) -> Result<Option<String>, String> {
    Ok(Some(text.to_owned()))
}

const UNITS: &str = "ns, us, ms, s, m, h";

/// Go's `time.ParseDuration`: a sequence of decimal numbers, each with an optional fraction
/// and a unit (`1h30m`, `1.5s`, `250us`), optionally signed. Returns whether it was negative
/// and its size. A bare `0` is accepted only when `bare_zero` (Go accepts it; the `pool_*`
/// keys do not, as `0` alone would leave open whether "never" was meant).
fn go_duration(text: &str, bare_zero: bool) -> Result<(bool, Duration), String> {
    let t = text.trim();
    let (negative, mut rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if rest == "0" && bare_zero {
        return Ok((negative, Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(format!(
            "not a duration (write for example 30s; units {UNITS})"
        ));
    }
    let mut nanos: u128 = 0;
    let too_large = || "too large".to_owned();
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole = &rest[..whole_len];
        rest = &rest[whole_len..];
        let mut fraction = "";
        if let Some(after) = rest.strip_prefix('.') {
            let len = after.bytes().take_while(u8::is_ascii_digit).count();
            fraction = &after[..len];
            rest = &after[len..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(format!(
                "not a duration (write for example 30s; units {UNITS})"
            ));
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "a duration needs a unit: write for example {whole}s or {whole}ms \
                     (units {UNITS})"
                ))
            }
            other => return Err(format!("unknown unit \"{other}\" (units {UNITS})")),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let mut part = whole.checked_mul(per).ok_or_else(too_large)?;
        // Digits past the nanosecond cannot matter (Go drops them too).
        let fraction = &fraction[..fraction.len().min(20)];
        if !fraction.is_empty() {
            let digits: u128 = fraction.parse().map_err(|_| too_large())?;
            let scale = 10u128.pow(fraction.len() as u32);
            part = part
                .checked_add(digits * per / scale)
                .ok_or_else(too_large)?;
        }
        nanos = nanos.checked_add(part).ok_or_else(too_large)?;
    }
    let nanos = u64::try_from(nanos).map_err(|_| too_large())?;
    Ok((negative, Duration::from_nanos(nanos)))
}

fn duration(text: &str) -> Result<Duration, String> {
    match go_duration(text, false)? {
        (false, d) => Ok(d),
        (true, _) => Err("must not be negative".to_owned()),
    }
}

fn optional_duration(text: &str) -> Result<Option<Duration>, String> {
    if is_none_word(text) {
        return Ok(None);
    }
    duration(text)
        .map(Some)
        .map_err(|why| format!("{why}; or off for never"))
}

// ---- aliases ------------------------------------------------------------------------------

/// Where an alias is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Conninfo,
    Env,
}

/// Another tool's name for an option, read with that tool's units and meaning of zero.
struct Alias {
    name: &'static str,
    place: Place,
    option: &'static str,
    set: Setter,
}

/// node-postgres's milliseconds: a whole number, no unit.
fn millis(text: &str) -> Result<u64, String> {
    count(text).map_err(|_| "not a whole number of milliseconds".to_owned())
}

/// Go's durations, where zero or less means "never" (`SetConnMaxLifetime`,
/// `SetConnMaxIdleTime`: "if d <= 0, connections are not closed due to …").
fn go_never(text: &str) -> Result<Option<Duration>, String> {
    let (negative, d) = go_duration(text, true)
        .map_err(|why| format!("{why}; as in Go, only 0 may be written without a unit"))?;
    Ok((!negative && !d.is_zero()).then_some(d))
}

const ALIASES: &[Alias] = &[
    // Prisma, in the connection string (seed 004, "Prisma Connection Pool":
    // `postgresql://user:pass@host:5432/db?connection_limit=20&pool_timeout=30`). Prisma
    // documents pool_timeout in seconds, 0 meaning no timeout.
    Alias {
        name: "connection_limit",
        place: Place::Conninfo,
        option: "max_size",
        set: |c, t| {
            c.max_size = count(t)?;
            Ok(())
        },
    },
    Alias {
        name: "pool_timeout",
        place: Place::Conninfo,
        option: "acquire_timeout",
        set: |c, t| {
            let secs: u64 =
                count(t).map_err(|_| "not a whole number of seconds (Prisma's unit)")?;
            if secs == 0 {
                return Err(
                    "Prisma's pool_timeout=0 means waiting forever; pgpool bounds \
                            every wait for a connection, so that a leak or an outage shows \
                            up as an error: give the longest acceptable wait in seconds \
                            (pool_timeout=3600 is an hour)"
                        .to_owned(),
                );
            }
            c.acquire_timeout = Duration::from_secs(secs);
            Ok(())
        },
    },
    // Go's database/sql settings as Go-Data names them (seed 001, "Parâmetros de
    // Configuração"): DB_MAX_OPEN_CONNS is SetMaxOpenConns (0 = no limit), DB_MAX_IDLE_CONNS
    // SetMaxIdleConns (0 = no idle connection kept), DB_CONN_MAX_LIFETIME
    // SetConnMaxLifetime (0 = never expires), DB_CONN_MAX_IDLE_TIME SetConnMaxIdleTime
    // (Go durations such as 3600s or 10m). For the last one the seed says 0 "uses the
    // operating system's default (usually 90s)"; Go's documentation says a connection is
    // then never closed for being idle, which is what this follows.
    Alias {
        name: "DB_MAX_OPEN_CONNS",
        place: Place::Env,
        option: "max_size",
        set: |c, t| {
            let n = integer(t)?;
            if n <= 0 {
                return Err(
                    "Go's database/sql reads 0 (or less) as no limit; pgpool needs a \
                            bound: set the most connections this process may open (at most \
                            10000), here or as PGPOOL_MAX_SIZE"
                        .to_owned(),
                );
            }
            c.max_size = u32::try_from(n).map_err(|_| "too large".to_owned())?;
            Ok(())
        },
    },
    Alias {
        name: "DB_MAX_IDLE_CONNS",
        place: Place::Env,
        option: "max_idle",
        set: |c, t| {
            let n = integer(t)?;
            c.max_idle = u32::try_from(n.max(0)).map_err(|_| "too large".to_owned())?;
            Ok(())
        },
    },
    Alias {
        name: "DB_CONN_MAX_LIFETIME",
        place: Place::Env,
        option: "max_lifetime",
        set: |c, t| {
            c.max_lifetime = go_never(t)?;
            Ok(())
        },
    },
    Alias {
        name: "DB_CONN_MAX_IDLE_TIME",
        place: Place::Env,
        option: "idle_timeout",
        set: |c, t| {
            c.idle_timeout = go_never(t)?;
            Ok(())
        },
    },
    // node-postgres settings as seed 002 ("Environment Variables") names them: PG_POOL_MAX /
    // PG_POOL_MIN are pg.Pool's max / min; PG_IDLE_TIMEOUT, PG_CONNECTION_TIMEOUT,
    // PG_STATEMENT_TIMEOUT and PG_QUERY_TIMEOUT are idleTimeoutMillis,
    // connectionTimeoutMillis, statement_timeout and query_timeout, all milliseconds;
    // PG_APP_NAME is application_name. In node-postgres 0 (or unset) means: idle clients are
    // never closed; pool.connect() waits forever; no statement_timeout is sent (the server's
    // default applies); no client-side query timeout. connectionTimeoutMillis bounds the
    // whole pool.connect(), the wait for a free client as well as a new connect (the seed's
    // "timeout acquiring client" → "increase PG_CONNECTION_TIMEOUT"), hence acquire_timeout.
    // pg.Pool's min only keeps clients from being closed when idle; pgpool's min_idle also
    // opens them ahead of use.
    Alias {
        name: "PG_POOL_MAX",
        place: Place::Env,
        option: "max_size",
        set: |c, t| {
            c.max_size = count(t)?;
            Ok(())
        },
    },
    Alias {
        name: "PG_POOL_MIN",
        place: Place::Env,
        option: "min_idle",
        set: |c, t| {
            c.min_idle = count(t)?;
            Ok(())
        },
    },
    Alias {
        name: "PG_IDLE_TIMEOUT",
        place: Place::Env,
        option: "idle_timeout",
        set: |c, t| {
            let ms = millis(t)?;
            c.idle_timeout = (ms > 0).then(|| Duration::from_millis(ms));
            Ok(())
        },
    },
    Alias {
        name: "PG_CONNECTION_TIMEOUT",
        place: Place::Env,
        option: "acquire_timeout",
        set: |c, t| {
            let ms = millis(t)?;
            if ms == 0 {
                return Err("node-postgres reads connectionTimeoutMillis 0 as waiting \
                            forever; pgpool bounds every wait for a connection: give the \
                            longest acceptable wait in milliseconds (30000 is 30 s)"
                    .to_owned());
            }
            c.acquire_timeout = Duration::from_millis(ms);
            Ok(())
        },
    },
    Alias {
        name: "PG_STATEMENT_TIMEOUT",
        place: Place::Env,
        option: "statement_timeout",
        set: |c, t| {
            let ms = millis(t)?;
            c.statement_timeout = (ms > 0).then(|| Duration::from_millis(ms));
            Ok(())
        },
    },
    Alias {
        name: "PG_QUERY_TIMEOUT",
        place: Place::Env,
        option: "query_timeout",
        set: |c, t| {
            let ms = millis(t)?;
            c.query_timeout = (ms > 0).then(|| Duration::from_millis(ms));
            Ok(())
        },
    },
    Alias {
        name: "PG_APP_NAME",
        place: Place::Env,
        option: "application_name",
        set: |c, t| {
            c.application_name = Some(t.to_owned());
            Ok(())
        },
    },
];

fn alias(place: Place, name: &str) -> Option<&'static Alias> {
    ALIASES.iter().find(|a| a.place == place && a.name == name)
}

/// Other pools' names for pgpool's keys, for the "did you mean" of an unknown key (pgx,
/// SQLAlchemy). Not accepted: their meanings differ in details.
const OTHER_NAMES: &[(&str, &str)] = &[
    ("pool_max_conns", "pool_max_size"),
    ("pool_min_conns", "pool_min_idle"),
    ("pool_min_idle_conns", "pool_min_idle"),
    ("pool_max_conn_lifetime", "pool_max_lifetime"),
    ("pool_max_conn_idle_time", "pool_idle_timeout"),
    ("pool_health_check_period", "pool_reaper_interval"),
    ("pool_size", "pool_max_size"),
    ("pool_recycle", "pool_max_lifetime"),
    ("pool_pre_ping", "pool_validate_on_acquire"),
];

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `" (did you mean pool_max_size?)"` for a near miss of an option's name, else `""`.
fn suggestion(option_name: &str, spell: impl Fn(&str) -> String) -> String {
    let known = OPTIONS
        .iter()
        .map(|o| o.name)
        .min_by_key(|name| edit_distance(option_name, name))
        .filter(|name| edit_distance(option_name, name) <= 2);
    match known {
        Some(name) => format!(" (did you mean {}?)", spell(name)),
        None => String::new(),
    }
}

// ---- splitting the connection string ------------------------------------------------------

/// Whether a key of the connection string is pgpool's rather than libpq's.
fn is_pool_key(key: &str) -> bool {
    key.starts_with(KEY_PREFIX) || alias(Place::Conninfo, key).is_some()
}

fn conninfo_error(message: String) -> Error {
    Error::config("conninfo", message)
}

/// Splits a connection string into what libpq's parser reads and pgpool's pool keys (every
/// `pool_*` key and the aliases `connection_limit` and `pool_timeout`), with their values
/// (percent-decoded in the URL form, unquoted in the `key=value` form), in order.
///
/// The rest is the string with those keys cut out and nothing else changed: in the URL form
/// the other query parameters keep their bytes and order (the `?` goes when none is left);
/// in the `key=value` form each pool pair is cut from its key to the end of its value, the
/// whitespace around it stays. The string is scanned as libpq scans it, so a syntax error
/// is left for the libpq parser to report, at the same place.
///
/// Errors: a pool key without a value or with a malformed one (a bad `%` escape, a second
/// `=` in the URL form).
pub fn split_conninfo(conninfo: &str) -> Result<(String, Vec<(String, String)>), Error> {
    // A C string ends at its first NUL: libpq never sees what follows, nor does this.
    let end = conninfo.find('\0').unwrap_or(conninfo.len());
    let (head, tail) = conninfo.split_at(end);
    let prefix = ["postgresql://", "postgres://"]
        .iter()
        .find(|p| head.starts_with(*p))
        .map_or(0, |p| p.len());
    let (mut rest, pairs) = if prefix != 0 {
        split_uri(head, prefix)?
    } else {
        split_key_values(head)
    };
    rest.push_str(tail);
    Ok((rest, pairs))
}

/// Where libpq's URI parser starts reading query parameters (just past the `?`), if it
/// does: the same walk over credentials, hosts, ports and database name.
fn uri_query_start(uri: &str, prefix: usize) -> Option<usize> {
    let b = uri.as_bytes();
    let len = b.len();
    let mut p = prefix;
    while p < len && b[p] != b'@' && b[p] != b'/' {
        p += 1;
    }
    p = if p < len && b[p] == b'@' {
        p + 1
    } else {
        prefix
    };
    let is_host_end = |c: u8| matches!(c, b':' | b'/' | b'?' | b',');
    let mut prevchar;
    loop {
        if p < len && b[p] == b'[' {
            while p < len && b[p] != b']' {
                p += 1;
            }
            if p >= len {
                return None;
            }
            p += 1;
            if p < len && !is_host_end(b[p]) {
                return None;
            }
        } else {
            while p < len && !is_host_end(b[p]) {
                p += 1;
            }
        }
        prevchar = b.get(p).copied();
        if prevchar == Some(b':') {
            p += 1;
            while p < len && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            prevchar = b.get(p).copied();
        }
        if prevchar != Some(b',') {
            break;
        }
        p += 1;
    }
    if prevchar == Some(b'/') {
        p += 1;
        while p < len && b[p] != b'?' {
            p += 1;
        }
        prevchar = b.get(p).copied();
    }
    (prevchar == Some(b'?')).then_some(p + 1)
}

fn split_uri(uri: &str, prefix: usize) -> Result<(String, Vec<(String, String)>), Error> {
    let Some(start) = uri_query_start(uri, prefix) else {
        return Ok((uri.to_owned(), Vec::new()));
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut pairs = Vec::new();
    for piece in uri[start..].split('&') {
        let (raw_key, raw_value) = match piece.find('=') {
            Some(eq) => (&piece[..eq], Some(&piece[eq + 1..])),
            None => (piece, None),
        };
        let key = match percent_decode(raw_key) {
            Ok(key) if is_pool_key(&key) => key,
            _ => {
                kept.push(piece);
                continue;
            }
        };
        let Some(raw_value) = raw_value else {
            return Err(conninfo_error(format!(
                "the URI query parameter \"{key}\" has no value (write {key}=…)"
            )));
        };
        if raw_value.contains('=') {
            return Err(conninfo_error(format!(
                "extra \"=\" in the value of the URI query parameter \"{key}\" (write it as \
                 %3D)"
            )));
        }
        let value = percent_decode(raw_value).map_err(|problem| {
            conninfo_error(format!(
                "{problem} in the value of the URI query parameter \"{key}\": \"{raw_value}\""
            ))
        })?;
        pairs.push((key, value));
    }
    if pairs.is_empty() {
        return Ok((uri.to_owned(), pairs));
    }
    let mut rest = uri[..start].to_owned();
    if kept.is_empty() {
        rest.pop(); // the '?'
    } else {
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, pairs))
}

/// libpq's `key = value` scan (the libpq parser's own scanner, `next_pair`), keeping where
/// each pool pair starts and ends. Stops at a syntax error, leaving the rest as it is for the
/// libpq parser to report.
fn split_key_values(s: &str) -> (String, Vec<(String, String)>) {
    let mut i = 0;
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut pairs = Vec::new();
    while let Ok(Some(pair)) = next_pair(s, &mut i) {
        if is_pool_key(pair.key) {
            cuts.push((pair.key_start, pair.value_end));
            // Only ASCII bytes are dropped from valid UTF-8, so this is always valid.
            pairs.push((
                pair.key.to_owned(),
                String::from_utf8_lossy(&pair.value).into_owned(),
            ));
        }
    }
    let mut rest = String::with_capacity(s.len());
    let mut from = 0;
    for (start, end) in cuts {
        rest.push_str(&s[from..start]);
        from = end;
    }
    rest.push_str(&s[from..]);
    (rest, pairs)
}

// ---- layers -------------------------------------------------------------------------------

/// Where an option's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    Conninfo(String),
    Env(String),
    Builder,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Conninfo(key) => write!(f, "from {key} in the connection string"),
            Origin::Env(var) => write!(f, "from {var}"),
            Origin::Builder => f.write_str("set on the Builder"),
        }
    }
}

/// One source's settings: a config holding their values, and which options it sets.
struct Layer {
    config: Config,
    set: BTreeMap<&'static str, Origin>,
}

impl Layer {
    fn new() -> Layer {
        Layer {
            config: Config::default(),
            set: BTreeMap::new(),
        }
    }

    /// Reads `value` for `option` (from `origin`) into this layer; empty means not given.
    fn read(
        &mut self,
        name: &'static str,
        set: Setter,
        origin: Origin,
        value: &str,
    ) -> Result<(), Error> {
        if value.is_empty() {
            return Ok(());
        }
        let Some(opt) = option(name) else {
            unreachable!("every alias names an option");
        };
        let mut scratch = self.config.clone();
        set(&mut scratch, value)
            .map_err(|why| Error::config(opt.name, format!("{value:?} ({origin}): {why}")))?;
        if let Some(earlier) = self.set.get(name) {
            // Two aliases of one option: they must agree. (A repeated key of the string,
            // the same name twice, is libpq's "the last one counts".)
            let same_name = earlier == &origin;
            if !same_name && !(opt.same)(&scratch, &self.config) {
                return Err(Error::config(
                    opt.name,
                    format!(
                        "{value:?} ({origin}) disagrees with the value {earlier}: set one of \
                         them"
                    ),
                ));
            }
        }
        self.config = scratch;
        self.set.insert(opt.name, origin);
        Ok(())
    }
}

/// The connection string's pool keys as two layers: aliases, then pgpool's own names.
fn conninfo_layers(pairs: &[(String, String)]) -> Result<[Layer; 2], Error> {
    let (mut aliases, mut own) = (Layer::new(), Layer::new());
    for (key, value) in pairs {
        let origin = Origin::Conninfo(key.clone());
        if let Some(opt) = key.strip_prefix(KEY_PREFIX).and_then(option) {
            own.read(opt.name, opt.set, origin, value)?;
        } else if let Some(a) = alias(Place::Conninfo, key) {
            aliases.read(a.option, a.set, origin, value)?;
        } else {
            let hint = OTHER_NAMES
                .iter()
                .find(|(other, _)| other == key)
                .map(|(_, ours)| format!(" (did you mean {ours}?)"))
                .unwrap_or_else(|| {
                    let name = key.strip_prefix(KEY_PREFIX).unwrap_or(key);
                    suggestion(name, |n| format!("{KEY_PREFIX}{n}"))
                });
            return Err(conninfo_error(format!(
                "unknown pool option \"{key}\" in the connection string{hint}: the pool keys \
                 are pool_<option> for each option of pgpool::Config (pool_max_size, \
                 pool_acquire_timeout, …) and Prisma's connection_limit and pool_timeout"
            )));
        }
    }
    Ok([aliases, own])
}

/// The environment as two layers: aliases (only when `aliases`), then `PGPOOL_*`.
fn env_layers(
    vars: impl Iterator<Item = (OsString, OsString)>,
    aliases: bool,
) -> Result<[Layer; 2], Error> {
    let (mut alias_layer, mut own) = (Layer::new(), Layer::new());
    // Sorted, so that which of two problems is reported does not depend on the order the
    // platform lists the variables in.
    let mut wanted: Vec<(String, OsString)> = vars
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            let ours = name.starts_with(ENV_PREFIX) && !NOT_OPTIONS.contains(&name.as_str());
            let is_alias = aliases && alias(Place::Env, &name).is_some();
            (ours || is_alias).then_some((name, value))
        })
        .collect();
    wanted.sort();
    for (name, value) in wanted {
        let value = value
            .into_string()
            .map_err(|_| Error::config("environment", format!("{name} is not valid UTF-8")))?;
        let origin = Origin::Env(name.clone());
        if let Some(suffix) = name.strip_prefix(ENV_PREFIX) {
            let lower = suffix.to_ascii_lowercase();
            match option(&lower).filter(|_| suffix == lower.to_ascii_uppercase()) {
                Some(opt) => own.read(opt.name, opt.set, origin, &value)?,
                None => {
                    let hint = suggestion(&lower, |n| {
                        format!("{ENV_PREFIX}{}", n.to_ascii_uppercase())
                    });
                    return Err(Error::config(
                        "environment",
                        format!(
                            "{name} names no pool option{hint}: pgpool reads PGPOOL_<OPTION> \
                             for each option of pgpool::Config (PGPOOL_MAX_SIZE, …); unset \
                             it, or switch the environment off with Builder::env(false)"
                        ),
                    ));
                }
            }
        } else if let Some(a) = alias(Place::Env, &name) {
            alias_layer.read(a.option, a.set, origin, &value)?;
        }
    }
    Ok([alias_layer, own])
}

/// Adds where each option named in a validation error came from (string or environment).
fn annotate(err: Error, origins: &BTreeMap<&'static str, Origin>) -> Error {
    let message = err.message();
    let named = |name: &str| {
        message.match_indices(name).any(|(at, _)| {
            let before = message[..at].chars().next_back();
            let after = message[at + name.len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !word(before) && !word(after)
        })
    };
    let notes: Vec<String> = origins
        .iter()
        .filter(|(name, origin)| **origin != Origin::Builder && named(name))
        .map(|(name, origin)| format!("{name} {origin}"))
        .collect();
    if notes.is_empty() {
        return err;
    }
    let message = format!("{message} ({})", notes.join("; "));
    err.with_message(message)
}

impl Builder {
    /// Whether [`build`](Builder::build) reads the `PGPOOL_*` environment variables (one per
    /// option: `PGPOOL_MAX_SIZE`, `PGPOOL_ACQUIRE_TIMEOUT`, …). On by default.
    ///
    /// On by default because that is how libpq, and so pgx, psycopg and every libpq program,
    /// treat the connection's variables (`PGHOST`, `PGAPPNAME`, …): a deployment can size a
    /// pool without a code change, and a value given in code (a setter) or in the
    /// connection string still wins. The `PGPOOL_` prefix names pgpool, so a variable there
    /// is meant for it; one that names no option is an error (a typo is not silently
    /// ignored), except those pgpool reads for other purposes (`PGPOOL_LOG`, and its test
    /// suite's `PGPOOL_TEST_URL` and the like). Switch this off for a pool whose settings
    /// must not depend on the environment (a library's internal pool, a test).
    ///
    /// ```
    /// let config = pgpool::Pool::builder().env(false).config_for("host=db")?;
    /// assert_eq!(config.max_size, 10);
    /// # Ok::<(), pgpool::Error>(())
    /// ```
    pub fn env(mut self, read: bool) -> Builder {
        self.env_off = !read;
        self
    }

    /// Whether [`build`](Builder::build) also reads other tools' variable names for pool
    /// options (`DB_MAX_OPEN_CONNS`, `PG_POOL_MAX`, `PG_IDLE_TIMEOUT`, … with their units:
    /// see the [`options`](crate::options) table), below `PGPOOL_*`. Off by default: these
    /// names belong to application conventions that other code in the same process may read
    /// with its own meaning (Go's `database/sql`, a Node service's settings), so pgpool reads
    /// them only when asked. Has no effect with [`env`](Builder::env)`(false)`.
    pub fn env_aliases(mut self, read: bool) -> Builder {
        self.env_aliases = read;
        self
    }

    /// The validated configuration [`build`](Builder::build)`(conninfo)` would use: the
    /// setters, the string's pool keys, the environment and the defaults, in that order of
    /// precedence. Nothing is connected. Errors: as `build`'s, for the options and for the
    /// pool keys (the libpq part of the string is read only at `build`).
    pub fn config_for(&self, conninfo: &str) -> Result<Config, Error> {
        let (config, _, _) = self.clone().resolve(Some(conninfo))?;
        Ok(config)
    }

    /// Splits `conninfo` (when given) and resolves every layer: the validated config, the
    /// hook, and the string that the libpq parser is to read.
    pub(crate) fn resolve(
        self,
        conninfo: Option<&str>,
    ) -> Result<(Config, Option<EventHook>, String), Error> {
        let (rest, pairs) = match conninfo {
            Some(conninfo) => split_conninfo(conninfo)?,
            None => (String::new(), Vec::new()),
        };
        let (config, hook) = self.resolve_pairs(&pairs, conninfo.map(|_| rest.as_str()))?;
        Ok((config, hook, rest))
    }

    fn resolve_pairs(
        self,
        pairs: &[(String, String)],
        libpq_part: Option<&str>,
    ) -> Result<(Config, Option<EventHook>), Error> {
        let mut layers: Vec<Layer> = Vec::with_capacity(5);
        if !self.env_off {
            layers.extend(env_layers(std::env::vars_os(), self.env_aliases)?);
        }
        layers.extend(conninfo_layers(pairs)?);
        let mut explicit = Layer::new();
        explicit.config = self.config.clone();
        for name in &self.explicit {
            explicit.set.insert(*name, Origin::Builder);
        }
        layers.push(explicit);

        let mut config = Config::default();
        let mut origins: BTreeMap<&'static str, Origin> = BTreeMap::new();
        for layer in layers {
            for (name, origin) in layer.set {
                if let Some(opt) = option(name) {
                    (opt.copy)(&mut config, &layer.config);
                    origins.insert(opt.name, origin);
                }
            }
        }
        if !origins.contains_key("max_idle") {
            config.max_idle = config.max_size;
        }
        // The string's libpq `application_name` outranks the environment's pool one.
        if matches!(origins.get("application_name"), Some(Origin::Env(_))) {
            let in_string = libpq_part
                .and_then(|s| ConnConfig::parse_pairs(s).ok())
                .is_some_and(|pairs| {
                    pairs
                        .iter()
                        .any(|(k, v)| k == "application_name" && !v.is_empty())
                });
            if in_string {
                config.application_name = None;
                origins.remove("application_name");
            }
        }
        let mut resolved = self;
        resolved.config = config;
        resolved
            .into_validated()
            .map_err(|err| annotate(err, &origins))
    }
}

impl Config {
    /// The pool options of a connection string alone (its `pool_*` keys and the aliases
    /// `connection_limit` and `pool_timeout`) over the defaults, validated; the environment
    /// is not read and the libpq keys are not checked.
    pub fn from_conninfo(conninfo: &str) -> Result<Config, Error> {
        Builder::new().env(false).config_for(conninfo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env_of(vars: &[(&str, &str)], aliases: bool) -> Result<Config, Error> {
        let vars: Vec<(OsString, OsString)> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let mut layers: Vec<Layer> = env_layers(vars.into_iter(), aliases)?.into();
        let mut config = Config::default();
        let mut set = false;
        for layer in layers.drain(..) {
            for name in layer.set.keys() {
                (option(name).unwrap().copy)(&mut config, &layer.config);
                set |= *name == "max_idle";
            }
        }
        if !set {
            config.max_idle = config.max_size;
        }
        Ok(config)
    }

    #[test]
    fn go_durations() {
        let d = |s| go_duration(s, false).map(|(_, d)| d);
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(d("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(d("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(d("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(d("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(d("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(d(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(d(" 2s "), Ok(Duration::from_secs(2)));
        assert_eq!(
            go_duration("-3s", false),
            Ok((true, Duration::from_secs(3)))
        );
        assert_eq!(go_duration("0", true), Ok((false, Duration::ZERO)));
        for bad in ["", "5", "0", "1.5", "s", "5d", "5 s", "1h5", "--1s", "."] {
            assert!(d(bad).is_err(), "{bad:?}");
        }
        assert!(d("5").unwrap_err().contains("5s"));
        assert!(d("99999999999999h").unwrap_err().contains("too large"));
        assert!(d("1.00000000000000000000000000000000001s").is_ok());
    }

    #[test]
    fn values() {
        assert_eq!(flag("ON"), Ok(true));
        assert_eq!(flag("0"), Ok(false));
        assert!(flag("2").is_err());
        assert_eq!(optional_count::<u64>("unlimited"), Ok(None));
        assert_eq!(optional_count::<u64>("7"), Ok(Some(7)));
        assert!(count::<u32>("-1").is_err());
        assert!(count::<u32>("4294967296")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(optional_duration("never"), Ok(None));
        assert!(duration("-1s").is_err());
        assert_eq!(integer("-3"), Ok(-3));
    }

    #[test]
    fn every_option_has_a_key_and_a_variable() {
        assert_eq!(OPTIONS.len(), 37);
        for opt in OPTIONS {
            let c = Config::from_conninfo(&format!("host=x pool_{}=", opt.name)).unwrap();
            assert_eq!(c, Config::default());
        }
    }

    #[test]
    fn uri_split_keeps_the_rest() {
        let s = "postgres://u:p%40ss@h1:5432,h2/db?sslmode=require&pool_max_size=3&a%3Db=c";
        let (rest, pairs) = split_conninfo(s).unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%40ss@h1:5432,h2/db?sslmode=require&a%3Db=c"
        );
        assert_eq!(pairs, [("pool_max_size".to_owned(), "3".to_owned())]);
        let (rest, _) = split_conninfo("postgresql://h/db?pool_max_size=3").unwrap();
        assert_eq!(rest, "postgresql://h/db");
        let (rest, pairs) =
            split_conninfo("postgres://h?pool%5Fapplication_name=a%20b&&x").unwrap();
        assert_eq!(rest, "postgres://h?&x");
        assert_eq!(pairs[0], ("pool_application_name".into(), "a b".into()));
        // '?' inside the credentials is not the query (libpq reads up to '@' first).
        let (rest, pairs) = split_conninfo("postgres://u:a?pool_x=1@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), pairs.len()),
            ("postgres://u:a?pool_x=1@h/db", 0)
        );
        assert!(split_conninfo("postgres://h?pool_max_size").is_err());
        assert!(split_conninfo("postgres://h?pool_max_size=1=2").is_err());
        assert!(split_conninfo("postgres://h?pool_application_name=%zz").is_err());
    }

    #[test]
    fn key_value_split_keeps_the_rest() {
        let s = "host=h pool_max_size = 3 password='a b\\'c' pool_application_name='x y'port=1";
        let (rest, pairs) = split_conninfo(s).unwrap();
        assert_eq!(rest, "host=h  password='a b\\'c' port=1");
        assert_eq!(
            pairs,
            [
                ("pool_max_size".to_owned(), "3".to_owned()),
                ("pool_application_name".to_owned(), "x y".to_owned())
            ]
        );
        // A syntax error stops the scan; the libpq parser reports it.
        let (rest, pairs) = split_conninfo("pool_max_size=2 host='unterminated").unwrap();
        assert_eq!((rest.as_str(), pairs.len()), (" host='unterminated", 1));
        let (rest, _) = split_conninfo("host=a\\ pool_max_size=1").unwrap();
        assert_eq!(rest, "host=a\\ pool_max_size=1");
        // What follows a NUL is not read (libpq stops there too) and is kept as it is.
        let (rest, pairs) = split_conninfo("host=h pool_max_size=3\0pool_x=1").unwrap();
        assert_eq!((rest.as_str(), pairs.len()), ("host=h \0pool_x=1", 1));
    }

    #[test]
    fn conninfo_precedence_and_aliases() {
        let c = Config::from_conninfo(
            "host=h pool_acquire_timeout=2s pool_timeout=9 connection_limit=4",
        )
        .unwrap();
        assert_eq!(c.acquire_timeout, Duration::from_secs(2));
        assert_eq!((c.max_size, c.max_idle), (4, 4));
        let c = Config::from_conninfo("host=h pool_max_size=3 pool_max_size=5").unwrap();
        assert_eq!(c.max_size, 5);
        let e = Config::from_conninfo("host=h pool_timeout=0").unwrap_err();
        assert_eq!(e.option(), Some("acquire_timeout"));
        assert!(e.to_string().contains("forever"), "{e}");
        let e = Config::from_conninfo("postgres://h?pool_max_conns=3").unwrap_err();
        assert_eq!(e.option(), Some("conninfo"));
        assert!(e.to_string().contains("pool_max_size?"), "{e}");
        let e = Config::from_conninfo("host=h pool_max_sise=3").unwrap_err();
        assert!(e.to_string().contains("did you mean pool_max_size?"), "{e}");
        let e = Config::from_conninfo("host=h pool_min_idle=4 pool_max_size=2").unwrap_err();
        assert_eq!(e.option(), Some("min_idle"));
        let msg = e.to_string();
        assert!(
            msg.contains("min_idle from pool_min_idle in the connection string"),
            "{msg}"
        );
        assert!(msg.contains("max_size from pool_max_size"), "{msg}");
    }

    #[test]
    fn environment_layers() {
        let c = env_of(&[("PGPOOL_MAX_SIZE", "7"), ("PGPOOL_LOG", "debug")], false).unwrap();
        assert_eq!((c.max_size, c.max_idle), (7, 7));
        let c = env_of(&[("DB_MAX_OPEN_CONNS", "7")], false).unwrap();
        assert_eq!(c.max_size, 10, "aliases are read only when asked for");
        let c = env_of(
            &[
                ("DB_MAX_OPEN_CONNS", "7"),
                ("PG_POOL_MAX", "7"),
                ("PGPOOL_MAX_SIZE", "9"),
                ("DB_CONN_MAX_LIFETIME", "0"),
                ("DB_CONN_MAX_IDLE_TIME", "90s"),
                ("DB_MAX_IDLE_CONNS", "-1"),
            ],
            true,
        )
        .unwrap();
        assert_eq!((c.max_size, c.max_idle), (9, 0));
        assert_eq!(c.max_lifetime, None);
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(90)));
        let e = env_of(&[("DB_MAX_OPEN_CONNS", "7"), ("PG_POOL_MAX", "8")], true).unwrap_err();
        assert_eq!(e.option(), Some("max_size"));
        assert!(e.to_string().contains("disagrees"), "{e}");
        let e = env_of(&[("PGPOOL_MAX_SIZ", "secret")], false).unwrap_err();
        assert_eq!(e.option(), Some("environment"));
        let msg = e.to_string();
        assert!(
            msg.contains("PGPOOL_MAX_SIZ ") && msg.contains("PGPOOL_MAX_SIZE?"),
            "{msg}"
        );
        assert!(!msg.contains("secret"), "{msg}");
        let e = env_of(&[("PGPOOL_max_size", "3")], false).unwrap_err();
        assert_eq!(e.option(), Some("environment"));
    }

    fn render_kv(pairs: &[(String, String)]) -> Vec<String> {
        pairs
            .iter()
            .map(|(k, v)| {
                let mut out = format!("{k}='");
                for c in v.chars() {
                    if c == '\\' || c == '\'' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('\'');
                out
            })
            .collect()
    }

    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'_' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("host".to_owned()),
            Just("application_name".to_owned()),
            Just("sslmode".to_owned()),
            Just("options".to_owned()),
            Just("password".to_owned()),
            Just("pool_max_size".to_owned()),
            Just("pool_application_name".to_owned()),
            Just("connection_limit".to_owned()),
            Just("pool_timeout".to_owned()),
            "pool_[a-z_]{0,8}",
        ]
    }

    proptest! {
        #[test]
        fn splitting_never_panics(s in "\\PC*", uri in any::<bool>()) {
            let s = if uri { format!("postgres://{s}") } else { s };
            let _ = split_conninfo(&s);
        }

        #[test]
        fn splitting_key_values_leaves_other_pairs_byte_identical(
            pairs in proptest::collection::vec((key(), "[^\\x00]{0,12}"), 0..8),
            seps in proptest::collection::vec(" |\t|  |\n", 8),
        ) {
            let rendered = render_kv(&pairs);
            let mut input = String::new();
            let mut expected = String::new();
            for (i, (piece, (k, _))) in rendered.iter().zip(&pairs).enumerate() {
                input.push_str(&seps[i]);
                expected.push_str(&seps[i]);
                input.push_str(piece);
                if !is_pool_key(k) {
                    expected.push_str(piece);
                }
            }
            let (rest, got) = split_conninfo(&input).unwrap();
            prop_assert_eq!(rest, expected);
            let want: Vec<(String, String)> =
                pairs.iter().filter(|(k, _)| is_pool_key(k)).cloned().collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn splitting_uri_leaves_other_params_byte_identical(
            pairs in proptest::collection::vec((key(), "[^\\x00]{0,12}"), 0..8),
        ) {
            let pieces: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            let input = format!("postgres://u@h:5432/db?{}", pieces.join("&"));
            let kept: Vec<&str> = pieces
                .iter()
                .zip(&pairs)
                .filter(|(_, (k, _))| !is_pool_key(k))
                .map(|(p, _)| p.as_str())
                .collect();
            let expected = if kept.is_empty() && pairs.iter().any(|(k, _)| is_pool_key(k)) {
                "postgres://u@h:5432/db".to_owned()
            } else {
                format!("postgres://u@h:5432/db?{}", kept.join("&"))
            };
            let (rest, got) = split_conninfo(&input).unwrap();
            prop_assert_eq!(rest, expected);
            let want: Vec<(String, String)> =
                pairs.iter().filter(|(k, _)| is_pool_key(k)).cloned().collect();
            prop_assert_eq!(got, want);
        }
    }
}
