//! [`Registry`]: named pools, opened together, looked up by name, closed together.
//!
//! A service that talks to more than one database (a primary and a replica, a reporting
//! database) declares its pools in one place, in code or in a TOML file, opens them all
//! before it takes work, hands them out by name, and closes them all at shutdown within one
//! deadline (see [`shutdown`](crate::shutdown) for doing that on SIGTERM / SIGINT).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), pgpool::Error> {
//! let registry = pgpool::Registry::from_toml_str(
//!     r#"
//!     [defaults]
//!     acquire_timeout = "5s"
//!
//!     [pools.primary]
//!     url = "postgres://app@db1/app"
//!     max_size = 20
//!     min_idle = 2
//!
//!     [pools.replica]
//!     url_env = "REPLICA_URL"
//!     "#,
//! )?;
//! registry.open_all(Some(Duration::from_secs(10)))?; // fail fast when a database is down
//! let primary = registry.get("primary")?;
//! primary.execute("UPDATE jobs SET done = true WHERE id = $1", &[&7_i64])?;
//! let report = registry.close_all(Duration::from_secs(5));
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! # The file
//!
//! | table / key | meaning |
//! |---|---|
//! | `[defaults]` | optional: pool options applied to every pool (a pool's own key wins) |
//! | `[pools.<name>]` | one pool; `<name>` is its [`Config::name`](crate::Config::name): 1 to 63 letters, digits, `_`, `-`, `.` |
//! | `url` | the connection string (URL or `key=value`), which may carry `pool_*` keys |
//! | `url_env` | instead of `url`: the environment variable holding the connection string |
//! | any option of [`Config`](crate::Config) | by its name (`max_size`, `acquire_timeout`, …), written as in the connection string: `20`, `"30s"`, `"off"`, `true` |
//!
//! Values may be TOML strings, integers or booleans; durations need a unit (`"500ms"`,
//! `"30s"`, `"1m"`: see [`options`](crate::options) for the syntax). An unknown table or
//! key, a value that does not parse, a missing `url`, a name given twice or an invalid name
//! is an error of kind [`Config`](crate::ErrorKind::Config) naming the pool and the key.
//!
//! # Precedence
//!
//! A key of the file (or an option set on a pool's [`Builder`] in code) acts as a setter: a
//! pool's own key > `[defaults]` > the URL's `pool_*` keys > the `PGPOOL_*` environment >
//! the default.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Builder;
use crate::error::{Error, ErrorKind};
use crate::event::CloseReason;
use crate::health::Health;
use crate::options::{apply_option, ApplyError};
use crate::pool::{HealthState, Pool};
use crate::stats::Stats;
use crate::sync::lock;

/// Named pools, opened together, looked up by name and closed together with one deadline.
/// Cheap to clone: clones share the pools. See the [module documentation](self).
///
/// Pools open when [`open_all`](Registry::open_all) runs, or one by one on the first
/// [`get`](Registry::get) of each; nothing connects before. After
/// [`close_all`](Registry::close_all) no pool opens any more.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// In the order declared (the file's: by name).
    entries: Vec<Entry>,
    /// `close_all` ran: no pool opens any more.
    closed: AtomicBool,
}

struct Entry {
    name: String,
    url: String,
    builder: Builder,
    /// Opened on demand; `None` until then. Held only while a pool is built (which returns
    /// at once: the connects run in the background).
    pool: Mutex<Option<Pool>>,
}

/// Builds a [`Registry`] in code: [`Registry::builder`].
///
/// ```
/// use std::time::Duration;
/// let registry = pgpool::Registry::builder()
///     .pool("primary", "postgres://app@db1/app", pgpool::Pool::builder().max_size(20))
///     .pool("replica", "postgres://app@db2/app", pgpool::Pool::builder())
///     .build()?;
/// assert_eq!(registry.names(), ["primary", "replica"]);
/// # Ok::<(), pgpool::Error>(())
/// ```
#[derive(Default)]
pub struct RegistryBuilder {
    pools: Vec<(String, String, Builder)>,
}

impl RegistryBuilder {
    /// Adds the pool `name` for the connection string `url` with the options of `builder`
    /// (its name is set to `name`: a different name set on it is an error).
    pub fn pool(
        mut self,
        name: impl Into<String>,
        url: impl Into<String>,
        builder: Builder,
    ) -> RegistryBuilder {
        self.pools.push((name.into(), url.into(), builder));
        self
    }

    /// Checks every pool's name, options and connection string (nothing connects) and makes
    /// the registry. Errors (kind [`Config`](crate::ErrorKind::Config)): no pool, a name given
    /// twice or invalid, an invalid option or connection string, each naming the pool.
    pub fn build(self) -> Result<Registry, Error> {
        if self.pools.is_empty() {
            return Err(registry_error("a registry needs at least one pool"));
        }
        let mut seen = BTreeSet::new();
        let mut entries = Vec::with_capacity(self.pools.len());
        for (name, url, builder) in self.pools {
            if !seen.insert(name.clone()) {
                return Err(registry_error(format!(
                    "the pool name \"{name}\" is given twice: each pool needs a name of its own"
                )));
            }
            if let Some(other) = builder.config().name.as_deref().filter(|n| *n != name) {
                return Err(registry_error(format!(
                    "pool \"{name}\": its Builder is named \"{other}\"; in a registry a pool's \
                     name is its key (leave Builder::name unset)"
                )));
            }
            let builder = builder.name(name.clone());
            check_pool(&name, &url, &builder)?;
            entries.push(Entry {
                name,
                url,
                builder,
                pool: Mutex::new(None),
            });
        }
        Ok(Registry {
            inner: Arc::new(Inner {
                entries,
                closed: AtomicBool::new(false),
            }),
        })
    }
}

fn registry_error(message: impl fmt::Display) -> Error {
    Error::config("registry", message)
}

/// Validates a pool's name, options (with the URL's and the environment's) and the libpq
/// part of its connection string, as `build` would, without starting anything.
fn check_pool(name: &str, url: &str, builder: &Builder) -> Result<(), Error> {
    let in_pool = |e: Error| {
        let message = format!("pool \"{name}\": {}", e.message());
        e.with_message(message)
    };
    let (_, _, libpq) = builder.clone().resolve(Some(url)).map_err(|e| {
        if e.option() == Some("name") {
            registry_error(format!(
                "the pool name \"{name}\" is invalid: it must be 1 to 63 letters, digits, \
                 '_', '-' or '.'"
            ))
        } else {
            in_pool(e)
        }
    })?;
    crate::client::conninfo::ConnConfig::parse(&libpq).map_err(|e| {
        registry_error(format!(
            "pool \"{name}\": invalid connection string: {}",
            e.message()
        ))
    })?;
    Ok(())
}

// ---- the file -----------------------------------------------------------------------------

/// A TOML value as the option parser reads it.
fn value_text(value: &toml::Value) -> Result<String, &'static str> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Float(_) => {
            Err("a float (write a whole number, or a string such as \"1.5s\")")
        }
        toml::Value::Datetime(_) => Err("a date"),
        toml::Value::Array(_) => Err("an array"),
        toml::Value::Table(_) => Err("a table"),
    }
}

/// A value as the file wrote it (a string quoted).
fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        other => value_text(other).unwrap_or_default(),
    }
}

/// Applies one `key = value` of `place` (`"pools.primary"`, `"defaults"`) to `builder`.
fn apply(builder: &mut Builder, place: &str, key: &str, value: &toml::Value) -> Result<(), Error> {
    let text = value_text(value).map_err(|what| {
        registry_error(format!(
            "{place}.{key} is {what}: values are strings, integers or booleans"
        ))
    })?;
    if text.is_empty() {
        return Err(registry_error(format!(
            "{place}.{key} is empty (remove the key for the default)"
        )));
    }
    match apply_option(builder, key, &text) {
        Ok(_) => Ok(()),
        Err(ApplyError::Unknown(hint)) => {
            let known = if place == "defaults" {
                "the keys of [defaults] are the pool options (max_size, acquire_timeout, …)"
            } else {
                "a pool's keys are url, url_env and the pool options (max_size, \
                 acquire_timeout, …)"
            };
            Err(registry_error(format!(
                "unknown key \"{key}\" in [{place}]{hint}: {known}"
            )))
        }
        Err(ApplyError::Value(option, why)) => Err(Error::config(
            option,
            format!("{place}.{option} = {}: {why}", shown(value)),
        )),
    }
}

impl Registry {
    /// A [`RegistryBuilder`], to declare the pools in code.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// A registry from the text of a TOML file (see the [module documentation](self) for
    /// its tables and keys). Nothing connects.
    ///
    /// ```
    /// let registry = pgpool::Registry::from_toml_str(
    ///     "[pools.main]\nurl = \"host=db1 user=app\"\nmax_size = 4\nidle_timeout = \"5m\"\n",
    /// )?;
    /// assert_eq!(registry.names(), ["main"]);
    ///
    /// let err = pgpool::Registry::from_toml_str("[pools.main]\nurl = \"host=db\"\nmax_sise = 4\n")
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("unknown key \"max_sise\" in [pools.main] (did you mean max_size?)"));
    /// # Ok::<(), pgpool::Error>(())
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Registry, Error> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| registry_error(format!("not valid TOML: {e}")))?;
        let mut defaults: Vec<(String, toml::Value)> = Vec::new();
        let mut pools: Option<toml::Table> = None;
        for (key, value) in table {
            match (key.as_str(), value) {
                ("defaults", toml::Value::Table(t)) => defaults = t.into_iter().collect(),
                ("pools", toml::Value::Table(t)) => pools = Some(t),
                ("defaults" | "pools", _) => {
                    return Err(registry_error(format!(
                        "\"{key}\" must be a table ([{key}])"
                    )))
                }
                _ => {
                    return Err(registry_error(format!(
                        "unknown top-level key \"{key}\": a registry file has [defaults] and \
                         [pools.<name>] tables"
                    )))
                }
            }
        }
        let pools = pools.filter(|p| !p.is_empty()).ok_or_else(|| {
            registry_error("no pool: declare each as a [pools.<name>] table with a url")
        })?;
        for key in ["url", "url_env"] {
            if defaults.iter().any(|(k, _)| k == key) {
                return Err(registry_error(format!(
                    "\"{key}\" in [defaults]: each pool gives its own connection string"
                )));
            }
        }
        let mut builder = Registry::builder();
        for (name, value) in pools {
            let place = format!("pools.{name}");
            let toml::Value::Table(keys) = value else {
                return Err(registry_error(format!(
                    "{place} must be a table ([{place}]) with a url"
                )));
            };
            let mut pool = Builder::new();
            for (key, value) in &defaults {
                apply(&mut pool, "defaults", key, value)?;
            }
            let (mut url, mut url_env) = (None, None);
            for (key, value) in keys {
                match key.as_str() {
                    "url" | "url_env" => {
                        let toml::Value::String(s) = value else {
                            return Err(registry_error(format!("{place}.{key} must be a string")));
                        };
                        if key == "url" {
                            url = Some(s);
                        } else {
                            url_env = Some(s);
                        }
                    }
                    "name" => {
                        return Err(registry_error(format!(
                            "{place}.name: a pool's name is its key in [pools] (here \
                             \"{name}\"); remove the key"
                        )))
                    }
                    _ => apply(&mut pool, &place, &key, &value)?,
                }
            }
            let url = match (url, url_env) {
                (Some(url), None) => url,
                (None, Some(var)) => match std::env::var(&var) {
                    Ok(url) if !url.is_empty() => url,
                    Ok(_) => {
                        return Err(registry_error(format!(
                            "{place}.url_env: the environment variable {var} is empty"
                        )))
                    }
                    Err(std::env::VarError::NotPresent) => {
                        return Err(registry_error(format!(
                            "{place}.url_env: the environment variable {var} is not set"
                        )))
                    }
                    Err(std::env::VarError::NotUnicode(_)) => {
                        return Err(registry_error(format!(
                            "{place}.url_env: the environment variable {var} is not valid UTF-8"
                        )))
                    }
                },
                (Some(_), Some(_)) => {
                    return Err(registry_error(format!(
                        "{place} has both url and url_env: give one"
                    )))
                }
                (None, None) => {
                    return Err(registry_error(format!(
                        "{place} has no url (or url_env naming an environment variable that \
                         holds it)"
                    )))
                }
            };
            builder = builder.pool(name, url, pool);
        }
        builder.build()
    }

    /// A registry from a TOML file (see [`from_toml_str`](Registry::from_toml_str)); errors
    /// name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Registry, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| registry_error(format!("cannot read {}: {e}", path.display())))?;
        Registry::from_toml_str(&text).map_err(|e| {
            let message = format!("{}: {}", path.display(), e.message());
            e.with_message(message)
        })
    }

    /// The pools' names, in order (a file's: sorted by name).
    pub fn names(&self) -> Vec<&str> {
        self.inner.entries.iter().map(|e| e.name.as_str()).collect()
    }

    fn entry(&self, name: &str) -> Result<&Entry, Error> {
        self.inner
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| {
                Error::usage(format!(
                    "no pool named \"{name}\" in the registry (its pools: {})",
                    self.names().join(", ")
                ))
            })
    }

    /// The entry's pool, opening it if it is not open yet (and the registry is not closed).
    fn open(&self, entry: &Entry) -> Result<Pool, Error> {
        let mut slot = lock(&entry.pool);
        if let Some(pool) = slot.as_ref() {
            return Ok(pool.clone());
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorKind::Closed,
                format!("pool \"{}\": the registry is closed", entry.name),
            ));
        }
        let pool = entry.builder.clone().build(&entry.url).map_err(|e| {
            let message = format!("pool \"{}\": {}", entry.name, e.message());
            e.with_message(message)
        })?;
        *slot = Some(pool.clone());
        Ok(pool)
    }

    /// The pool `name` (a clone sharing the registry's pool), opened now if it was not.
    ///
    /// Errors: [`Usage`](crate::ErrorKind::Usage) for a name the registry does not have (the
    /// message lists its pools); [`Closed`](crate::ErrorKind::Closed) for a pool that never
    /// opened once [`close_all`](Registry::close_all) ran (a pool that did is returned,
    /// closed: its acquires fail with `Closed`).
    pub fn get(&self, name: &str) -> Result<Pool, Error> {
        let entry = self.entry(name)?;
        self.open(entry)
    }

    /// Opens every pool not open yet: each starts warming its `min_idle` connections in the
    /// background. With `Some(wait)`, then waits until every pool is ready (its `min_idle`
    /// connections open; for a pool with `min_idle` 0, one connection made and checked), all
    /// pools at once within that one deadline.
    ///
    /// Errors: for a pool that was not ready in time (or failed with a permanent connect
    /// error such as a bad password), an error naming every such pool with its last connect
    /// error, of kind [`Connect`](crate::ErrorKind::Connect) when every one of them failed
    /// for good and [`Timeout`](crate::ErrorKind::Timeout) otherwise. The pools stay open
    /// either way (they keep trying in the background); [`close_all`](Registry::close_all)
    /// closes them.
    ///
    /// ```no_run
    /// # let registry = pgpool::Registry::from_file("pools.toml")?;
    /// if let Err(e) = registry.open_all(Some(std::time::Duration::from_secs(10))) {
    ///     eprintln!("not every database is reachable: {e}");
    ///     std::process::exit(1);
    /// }
    /// # Ok::<(), pgpool::Error>(())
    /// ```
    pub fn open_all(&self, wait: Option<Duration>) -> Result<(), Error> {
        let start = Instant::now();
        let mut pools = Vec::with_capacity(self.inner.entries.len());
        for entry in &self.inner.entries {
            pools.push((entry.name.as_str(), self.open(entry)?));
        }
        let Some(wait) = wait else {
            return Ok(());
        };
        let deadline = start + wait;
        let failures: Vec<(&str, Error)> = std::thread::scope(|scope| {
            let waits: Vec<_> = pools
                .iter()
                .map(|(name, pool)| {
                    let pool = pool.clone();
                    let thread = std::thread::Builder::new()
                        .name(format!("pgpool-open-{name}"))
                        .spawn_scoped(scope, move || ready(&pool, deadline));
                    (*name, thread)
                })
                .collect();
            waits
                .into_iter()
                .filter_map(|(name, thread)| {
                    let outcome = match thread {
                        Ok(thread) => thread.join().unwrap_or_else(|payload| {
                            Err(Error::panic("waiting for a pool", &*payload))
                        }),
                        Err(e) => Err(Error::usage(format!("cannot start a thread: {e}"))),
                    };
                    outcome.err().map(|e| (name, e))
                })
                .collect()
        });
        if failures.is_empty() {
            return Ok(());
        }
        let all_permanent = failures.iter().all(|(_, e)| e.is_permanent_connect());
        let detail: Vec<String> = failures
            .iter()
            .map(|(name, e)| format!("{name}: {e}"))
            .collect();
        let kind = if all_permanent {
            ErrorKind::Connect
        } else {
            ErrorKind::Timeout
        };
        Err(Error::new(
            kind,
            format!(
                "{} of {} pools not ready within {:?}: {}",
                failures.len(),
                pools.len(),
                wait,
                detail.join("; ")
            ),
        ))
    }

    /// Closes every pool at once, all within one `deadline`: new acquires fail at once with
    /// [`Closed`](crate::ErrorKind::Closed) (work stops being accepted), idle connections
    /// close, and connections in use get until the deadline to come back; those still held
    /// then are reclaimed (see [`Pool::close_timeout`]). Pools that never opened stay
    /// unopened, for good. Returns a report per opened pool; idempotent (a second call finds
    /// what is still held).
    ///
    /// Each pool's close keeps the end of the time for the cancel requests of what it
    /// reclaims (see [`Pool::close_timeout`]), so a program that exits right after leaves
    /// nothing running on a reachable server.
    ///
    /// ```no_run
    /// # let registry = pgpool::Registry::from_file("pools.toml")?;
    /// let report = registry.close_all(std::time::Duration::from_secs(10));
    /// for pool in &report.pools {
    ///     println!("{}: reclaimed {}", pool.name, pool.reclaimed);
    /// }
    /// std::process::exit(if report.clean() { 0 } else { 1 });
    /// # Ok::<(), pgpool::Error>(())
    /// ```
    pub fn close_all(&self, deadline: Duration) -> CloseReport {
        let start = Instant::now();
        let until = start + deadline;
        self.inner.closed.store(true, Ordering::Release);
        let opened: Vec<(&str, Pool)> = self
            .inner
            .entries
            .iter()
            .filter_map(|e| lock(&e.pool).clone().map(|p| (e.name.as_str(), p)))
            .collect();
        let pools = std::thread::scope(|scope| {
            let closes: Vec<_> = opened
                .iter()
                .map(|(name, pool)| {
                    let in_use = pool.stats().in_use;
                    let run = move || close_one(name, pool, in_use, until);
                    let thread = std::thread::Builder::new()
                        .name(format!("pgpool-close-{name}"))
                        .spawn_scoped(scope, run);
                    (*name, pool, in_use, thread)
                })
                .collect();
            closes
                .into_iter()
                .map(
                    |(name, pool, in_use, thread)| match thread.map(|t| t.join()) {
                        Ok(Ok(report)) => report,
                        // A thread could not start (or panicked): close here, inline.
                        _ => close_one(name, pool, in_use, until),
                    },
                )
                .collect()
        });
        CloseReport {
            pools,
            elapsed: start.elapsed(),
        }
    }

    /// Every opened pool's name and [`Stats`], in order (for metrics).
    pub fn stats(&self) -> Vec<(String, Stats)> {
        self.inner
            .entries
            .iter()
            .filter_map(|e| {
                let pool = lock(&e.pool).clone()?;
                Some((e.name.clone(), pool.stats()))
            })
            .collect()
    }

    /// The Prometheus text of every opened pool: one block per metric family, a `pool` label
    /// per pool (see [`prometheus`](crate::prometheus)). Serve it at `/metrics`.
    pub fn prometheus(&self) -> String {
        let stats = self.stats();
        let pools: Vec<(&str, &Stats)> = stats.iter().map(|(n, s)| (n.as_str(), s)).collect();
        crate::prometheus::render(&pools)
    }

    /// A health check of every opened pool, run in parallel (so bounded by the longest
    /// `health_timeout`, not their sum), in order.
    pub fn health(&self) -> Vec<Health> {
        let pools: Vec<Pool> = self
            .inner
            .entries
            .iter()
            .filter_map(|e| lock(&e.pool).clone())
            .collect();
        std::thread::scope(|scope| {
            let checks: Vec<_> = pools.iter().map(|p| scope.spawn(|| p.health())).collect();
            checks
                .into_iter()
                .zip(&pools)
                .map(|(check, pool)| {
                    check.join().unwrap_or_else(|_| {
                        Health::failed(pool.name(), Error::usage("the health check panicked"))
                    })
                })
                .collect()
        })
    }

    /// [`health`](Registry::health) as one JSON object for a service's health endpoint:
    /// `ok` (every pool's check succeeded), `state` (the worst pool's: healthy, degraded,
    /// down) and `pools`, an array of each pool's [`Health::to_json`] object.
    ///
    /// ```
    /// let registry = pgpool::Registry::builder()
    ///     .pool("primary", "host=127.0.0.1 port=1 user=app", pgpool::Pool::builder())
    ///     .build()?;
    /// // No pool was opened yet: nothing to check.
    /// assert_eq!(registry.health_json(), r#"{"ok":true,"state":"healthy","pools":[]}"#);
    /// # Ok::<(), pgpool::Error>(())
    /// ```
    pub fn health_json(&self) -> String {
        let checks = self.health();
        let ok = checks.iter().all(|h| h.ok);
        let worst = checks
            .iter()
            .map(|h| h.state)
            .max_by_key(|s| match s {
                HealthState::Down => 2,
                HealthState::Degraded => 1,
                _ => 0,
            })
            .unwrap_or(HealthState::Healthy);
        let pools: Vec<String> = checks.iter().map(Health::to_json).collect();
        format!(
            "{{\"ok\":{ok},\"state\":\"{}\",\"pools\":[{}]}}",
            crate::health::state_name(worst),
            pools.join(",")
        )
    }

    /// The longest `close_timeout` of the pools (what the C ABI's negative deadline means).
    pub(crate) fn default_close_timeout(&self) -> Duration {
        self.inner
            .entries
            .iter()
            .map(|e| match lock(&e.pool).as_ref() {
                Some(pool) => pool.config().close_timeout,
                None => e.builder.config().close_timeout,
            })
            .max()
            .unwrap_or(Duration::from_secs(5))
    }

    /// True once [`close_all`](Registry::close_all) ran.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

/// Waits until `pool` is ready by `deadline`: `min_idle` open, or with `min_idle` 0 one
/// connection made and checked (it stays idle in the pool).
fn ready(pool: &Pool, deadline: Instant) -> Result<(), Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if pool.config().min_idle > 0 {
        pool.wait_ready(left)
    } else {
        pool.get_timeout(left).map(drop)
    }
}

/// Closes `pool` by `until`; `in_use` is what it had in use when the close began.
pub(crate) fn close_one(name: &str, pool: &Pool, in_use: u32, until: Instant) -> PoolClose {
    let start = Instant::now();
    let before = pool.stats().closed(CloseReason::Reclaimed);
    let clean = pool.close_timeout(until.saturating_duration_since(start));
    let reclaimed = pool.stats().closed(CloseReason::Reclaimed) - before;
    let reclaimed = u32::try_from(reclaimed).unwrap_or(u32::MAX);
    PoolClose::new(name, clean, in_use, reclaimed, start.elapsed())
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("pools", &self.names())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// What [`Registry::close_all`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CloseReport {
    /// One report per pool that was open, in the registry's order.
    pub pools: Vec<PoolClose>,
    /// The time the whole close took.
    pub elapsed: Duration,
}

impl CloseReport {
    /// True when every connection came back (and closed) before the deadline.
    pub fn clean(&self) -> bool {
        self.pools.iter().all(|p| p.clean)
    }

    /// Connections reclaimed at the deadline, over every pool.
    pub fn reclaimed(&self) -> u32 {
        self.pools.iter().map(|p| p.reclaimed).sum()
    }
}

impl fmt::Display for CloseReport {
    /// `closed 2 pools in 12ms: primary (0 in use), replica (1 in use, 1 reclaimed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "closed {} pools in {:?}", self.pools.len(), self.elapsed)?;
        for (i, p) in self.pools.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            write!(f, "{} ({} in use", p.name, p.in_use)?;
            if p.reclaimed > 0 {
                write!(f, ", {} reclaimed", p.reclaimed)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// How one pool closed ([`CloseReport::pools`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolClose {
    /// The pool's name.
    pub name: String,
    /// Every connection came back and closed before the deadline.
    pub clean: bool,
    /// Connections in use when the close began.
    pub in_use: u32,
    /// Connections still in use at the deadline, reclaimed (their sockets shut down, their
    /// statements cancelled; the holders' calls fail with a "reclaimed" error).
    pub reclaimed: u32,
    /// The time this pool's close took.
    pub elapsed: Duration,
}

impl PoolClose {
    pub(crate) fn new(
        name: &str,
        clean: bool,
        in_use: u32,
        reclaimed: u32,
        elapsed: Duration,
    ) -> PoolClose {
        PoolClose {
            name: name.to_owned(),
            clean,
            in_use,
            reclaimed,
            elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Registry::from_toml_str(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Config, "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn a_file_sets_every_kind_of_value_and_defaults_apply_below_a_pools_own_keys() {
        let r = Registry::from_toml_str(
            r#"
            [defaults]
            acquire_timeout = "5s"
            max_size = 3
            [pools.b]
            url = "postgres://app@db2/app?pool_min_idle=1"
            [pools.a]
            url = "host=db1 user=app"
            max_size = 20
            min_idle = 2
            validate_on_acquire = false
            max_uses = "off"
            "#,
        )
        .unwrap();
        assert_eq!(r.names(), ["a", "b"]);
        let a = r.inner.entries[0].builder.config_for("host=x").unwrap();
        assert_eq!((a.max_size, a.max_idle, a.min_idle), (20, 20, 2));
        assert_eq!(a.acquire_timeout, Duration::from_secs(5));
        assert!(!a.validate_on_acquire);
        assert_eq!(a.name.as_deref(), Some("a"));
        let b = &r.inner.entries[1];
        let b = b.builder.config_for(&b.url).unwrap();
        assert_eq!((b.max_size, b.min_idle), (3, 1));
    }

    #[test]
    fn mistakes_in_a_file_name_the_pool_and_the_key() {
        let e = err("[pools.p]\nurl = \"host=h\"\nmax_sise = 3\n");
        assert!(e.contains("unknown key \"max_sise\" in [pools.p]"), "{e}");
        assert!(e.contains("did you mean max_size?"), "{e}");
        let e = err("[pools.p]\nurl = \"host=h\"\nacquire_timeout = 5\n");
        assert!(e.contains("pools.p.acquire_timeout = 5"), "{e}");
        assert!(e.contains("unit"), "{e}");
        let e = err("[pools.p]\nurl = \"host=h\"\nmax_size = \"many\"\n");
        assert!(
            e.contains("pools.p.max_size") && e.contains("whole number"),
            "{e}"
        );
        let e = err("[pools.p]\nurl = \"host=h\"\nmax_size = 1.5\n");
        assert!(e.contains("pools.p.max_size is a float"), "{e}");
        let e = err("[pools.p]\nmax_size = 2\n");
        assert!(e.contains("pools.p has no url"), "{e}");
        let e = err("[pools.p]\nurl = \"host=h\"\n[pools.p]\nurl = \"host=i\"\n");
        assert!(
            e.contains("not valid TOML") && e.contains("duplicate"),
            "{e}"
        );
        let e = err("[pools.\"a b\"]\nurl = \"host=h\"\n");
        assert!(e.contains("pool name \"a b\" is invalid"), "{e}");
        let e = err("[defaults]\nmax_sise = 3\n[pools.p]\nurl = \"host=h\"\n");
        assert!(e.contains("in [defaults]"), "{e}");
        let e = err("[pool.p]\nurl = \"host=h\"\n");
        assert!(e.contains("unknown top-level key \"pool\""), "{e}");
        let e = err("[defaults]\n");
        assert!(e.contains("no pool"), "{e}");
        let e = err("[pools.p]\nurl = \"host=h\"\nmin_idle = 5\nmax_size = 2\n");
        assert!(e.contains("pool \"p\"") && e.contains("min_idle"), "{e}");
        let e = err("[pools.p]\nurl_env = \"PGPOOL_REGISTRY_TEST_UNSET_VAR\"\n");
        assert!(
            e.contains("PGPOOL_REGISTRY_TEST_UNSET_VAR is not set"),
            "{e}"
        );
        let e = err("[pools.p]\nurl = \"host='unterminated\"\n");
        assert!(e.contains("pool \"p\": invalid connection string"), "{e}");
        let e = err("[pools.p]\nurl = \"host=h\"\nname = \"q\"\n");
        assert!(e.contains("pools.p.name"), "{e}");
    }

    #[test]
    fn names_are_unique_and_lookups_list_the_known_ones() {
        let dup = Registry::builder()
            .pool("a", "host=h", Builder::new())
            .pool("a", "host=i", Builder::new())
            .build()
            .unwrap_err();
        assert!(dup.to_string().contains("given twice"), "{dup}");
        let named = Registry::builder()
            .pool("a", "host=h", Builder::new().name("b"))
            .build()
            .unwrap_err();
        assert!(named.to_string().contains("named \"b\""), "{named}");
        let r = Registry::builder()
            .pool("x", "host=127.0.0.1 port=1", Builder::new().env(false))
            .pool("y", "host=127.0.0.1 port=1", Builder::new().env(false))
            .build()
            .unwrap();
        let e = r.get("z").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.to_string().contains("its pools: x, y"), "{e}");
        let report = r.close_all(Duration::from_millis(100));
        assert!(report.pools.is_empty() && report.clean());
        assert_eq!(r.get("x").unwrap_err().kind(), ErrorKind::Closed);
    }
}
