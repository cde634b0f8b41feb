//! The resolving stage: the string's pairs, then the environment, then the defaults, into a
//! checked [`ConnConfig`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::parse::{is_c_space, KEYWORDS};
use super::{
    ChannelBinding, ConnConfig, Host, HostSpec, LoadBalanceHosts, Secret, SslMode,
    TargetSessionAttrs, DEFAULT_PORT, DEFAULT_SOCKET_DIR,
};
use crate::error::Error;

/// One setting and where it came from.
struct Val {
    text: String,
    /// The environment variable it was read from; `None` for the connection string.
    env: Option<&'static str>,
}

impl Val {
    fn origin(&self) -> String {
        match self.env {
            Some(var) => format!(" (from {var})"),
            None => String::new(),
        }
    }
}

/// The settings by key: the string's value, else the key's environment variable. Empty
/// values count as not set.
struct Settings(Vec<Option<Val>>);

impl Settings {
    fn gather(pairs: Vec<(String, String)>, env: &dyn Fn(&str) -> Option<String>) -> Settings {
        let mut slots: Vec<Option<Val>> = KEYWORDS.iter().map(|_| None).collect();
        for (key, text) in pairs {
            if let Some(i) = KEYWORDS.iter().position(|(k, _)| *k == key) {
                slots[i] = Some(Val { text, env: None });
            }
        }
        for (slot, (_, var)) in slots.iter_mut().zip(KEYWORDS) {
            if slot.is_none() {
                if let Some(var) = var {
                    *slot = env(var).map(|text| Val {
                        text,
                        env: Some(*var),
                    });
                }
            }
        }
        for slot in slots.iter_mut() {
            if slot.as_ref().is_some_and(|v| v.text.is_empty()) {
                *slot = None;
            }
        }
        Settings(slots)
    }

    fn get(&self, key: &'static str) -> Option<&Val> {
        let i = KEYWORDS.iter().position(|(k, _)| *k == key)?;
        self.0[i].as_ref()
    }

    fn text(&self, key: &'static str) -> Option<String> {
        self.get(key).map(|v| v.text.clone())
    }
}

/// An invalid value; names the key and the value (never call it for a secret).
fn invalid(key: &'static str, v: &Val, why: &str) -> Error {
    Error::config(key, format!("\"{}\"{}: {why}", v.text, v.origin()))
}

/// A valid libpq value that pgpool cannot honour.
fn unsupported(key: &'static str, v: &Val, why: &str) -> Error {
    Error::config(
        key,
        format!("\"{}\"{} is not supported: {why}", v.text, v.origin()),
    )
}

/// libpq's `pqParseIntParam`: an `int`, whitespace allowed around it.
fn parse_int(key: &'static str, v: &Val) -> Result<i32, Error> {
    let t = v
        .text
        .trim_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
    t.parse::<i32>()
        .map_err(|_| invalid(key, v, "not an integer"))
}

/// A positive count of seconds or milliseconds; zero or negative means the system default.
fn positive(key: &'static str, settings: &Settings) -> Result<Option<u64>, Error> {
    match settings.get(key) {
        None => Ok(None),
        Some(v) => {
            let n = parse_int(key, v)?;
            Ok(u64::try_from(n).ok().filter(|n| *n > 0))
        }
    }
}

fn one_of<T: Copy>(key: &'static str, v: &Val, table: &[(&str, T)]) -> Result<T, Error> {
    table
        .iter()
        .find(|(name, _)| *name == v.text)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            invalid(key, v, &format!("expected one of {}", names.join(", ")))
        })
}

fn enum_setting<T: Copy + Default>(
    key: &'static str,
    settings: &Settings,
    table: &[(&str, T)],
) -> Result<T, Error> {
    settings
        .get(key)
        .map_or(Ok(T::default()), |v| one_of(key, v, table))
}

fn flag(key: &'static str, v: &Val) -> Result<bool, Error> {
    one_of(key, v, &[("0", false), ("1", true)])
}

/// Keys pgpool accepts only with their default (or a harmless) meaning: `ok` lists values that
/// change nothing, `valid` lists further values libpq knows (those are "not supported"), and
/// an empty `valid` means any other value is unsupported.
fn restricted(
    settings: &Settings,
    key: &'static str,
    ok: &[&str],
    valid: &[&str],
    why: &str,
) -> Result<(), Error> {
    let Some(v) = settings.get(key) else {
        return Ok(());
    };
    let matches = |list: &[&str]| list.iter().any(|s| s.eq_ignore_ascii_case(&v.text));
    if matches(ok) {
        Ok(())
    } else if valid.is_empty() || matches(valid) {
        Err(unsupported(key, v, why))
    } else {
        let mut all: Vec<&str> = ok.to_vec();
        all.extend_from_slice(valid);
        Err(invalid(
            key,
            v,
            &format!("expected one of {}", all.join(", ")),
        ))
    }
}

fn is_unix_socket_path(host: &str) -> bool {
    host.starts_with('/') || host.starts_with('@')
}

fn split_list(v: Option<&Val>) -> Vec<&str> {
    v.map_or_else(Vec::new, |v| v.text.split(',').collect())
}

fn resolve_hosts(settings: &Settings) -> Result<Vec<HostSpec>, Error> {
    let host_v = settings.get("host");
    let addr_v = settings.get("hostaddr");
    let port_v = settings.get("port");
    let names = split_list(host_v);
    let addrs = split_list(addr_v);
    let ports = split_list(port_v);
    let n = if !addrs.is_empty() {
        addrs.len()
    } else {
        names.len().max(1)
    };
    if let (Some(hv), false) = (host_v, addrs.is_empty()) {
        if names.len() != n {
            return Err(Error::config(
                "host",
                format!(
                    "could not match {} host names to {n} hostaddr values{}",
                    names.len(),
                    hv.origin()
                ),
            ));
        }
    }
    if let Some(pv) = port_v {
        if ports.len() != 1 && ports.len() != n {
            return Err(Error::config(
                "port",
                format!(
                    "could not match {} port numbers to {n} hosts{}",
                    ports.len(),
                    pv.origin()
                ),
            ));
        }
    }
    let mut hosts = Vec::with_capacity(n);
    for i in 0..n {
        let addr_text = addrs.get(i).copied().unwrap_or("");
        let hostaddr = if addr_text.is_empty() {
            None
        } else {
            let v = addr_v.map_or(String::new(), |v| v.origin());
            Some(addr_text.parse::<IpAddr>().map_err(|_| {
                Error::config(
                    "hostaddr",
                    format!("\"{addr_text}\"{v}: not a numeric IP address"),
                )
            })?)
        };
        let name = names.get(i).copied().unwrap_or("");
        let host = if !name.is_empty() {
            if is_unix_socket_path(name) {
                Host::Unix(PathBuf::from(name))
            } else {
                Host::Tcp(name.to_owned())
            }
        } else if hostaddr.is_some() {
            Host::Tcp(addr_text.to_owned())
        } else {
            Host::Unix(PathBuf::from(DEFAULT_SOCKET_DIR))
        };
        let port_text = if ports.len() == 1 {
            ports[0]
        } else {
            ports.get(i).copied().unwrap_or("")
        };
        let port = if port_text.is_empty() {
            DEFAULT_PORT
        } else {
            let origin = port_v.map_or(String::new(), |v| v.origin());
            let bad = || {
                Error::config(
                    "port",
                    format!("\"{port_text}\"{origin}: not a port number (1-65535)"),
                )
            };
            let t = port_text.trim_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
            let n: i64 = t.parse().map_err(|_| bad())?;
            u16::try_from(n).ok().filter(|p| *p != 0).ok_or_else(bad)?
        };
        hosts.push(HostSpec {
            host,
            hostaddr,
            port,
        });
    }
    Ok(hosts)
}

/// The resolving stage of [`ConnConfig::parse_with`].
pub(super) fn resolve(
    pairs: Vec<(String, String)>,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<ConnConfig, Error> {
    let s = Settings::gather(pairs, env);

    // Settings pgpool cannot honour beyond their default meaning.
    if let Some(v) = s.get("service") {
        return Err(unsupported(
            "service",
            v,
            "connection service files (pg_service.conf) are not read; give the settings directly",
        ));
    }
    restricted(
        &s,
        "gssencmode",
        &["disable", "prefer"],
        &["require"],
        "GSSAPI encryption is not available",
    )?;
    restricted(
        &s,
        "sslnegotiation",
        &["postgres"],
        &["direct"],
        "only the PostgreSQL SSLRequest negotiation is implemented",
    )?;
    restricted(
        &s,
        "replication",
        &["0", "false", "off", "no"],
        &[],
        "replication connections are not available",
    )?;
    restricted(
        &s,
        "sslcrl",
        &[],
        &[],
        "certificate revocation lists are not checked",
    )?;
    restricted(
        &s,
        "sslcrldir",
        &[],
        &[],
        "certificate revocation lists are not checked",
    )?;
    restricted(
        &s,
        "requirepeer",
        &[],
        &[],
        "the Unix-socket peer is not checked",
    )?;
    restricted(
        &s,
        "require_auth",
        &[],
        &[],
        "authentication methods cannot be restricted",
    )?;
    restricted(
        &s,
        "ssl_min_protocol_version",
        &["TLSv1", "TLSv1.1", "TLSv1.2"],
        &["TLSv1.3"],
        "TLS 1.2 is always the minimum",
    )?;
    restricted(
        &s,
        "ssl_max_protocol_version",
        &["TLSv1.3"],
        &["TLSv1", "TLSv1.1", "TLSv1.2"],
        "TLS 1.3 is always the maximum",
    )?;
    restricted(&s, "sslcompression", &["0", "1"], &[], "expected 0 or 1")?;
    restricted(&s, "gssdelegation", &["0", "1"], &[], "expected 0 or 1")?;
    if let Some(v) = s.get("client_encoding") {
        let norm: String = v
            .text
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        if norm != "utf8" && norm != "unicode" {
            return Err(unsupported(
                "client_encoding",
                v,
                "the client always uses UTF8",
            ));
        }
    }
    // krbsrvname and gsslib only matter for GSSAPI authentication, which a server can only
    // ask for and then fail: accepted and ignored.

    let hosts = resolve_hosts(&s)?;

    let user = match s.text("user") {
        Some(u) => u,
        None => crate::sys::user::os_user_name().ok_or_else(|| {
            Error::config(
                "user",
                "not set (PGUSER) and the operating-system user name could not be found",
            )
        })?,
    };
    let dbname = s.text("dbname").unwrap_or_else(|| user.clone());
    let password = s.text("password").map(Secret);
    let passfile = s
        .text("passfile")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".pgpass")));

    let connect_timeout = match s.get("connect_timeout") {
        None => None,
        Some(v) => match parse_int("connect_timeout", v)? {
            t if t <= 0 => None,
            1 => Some(Duration::from_secs(2)),
            t => Some(Duration::from_secs(u64::from(t.unsigned_abs()))),
        },
    };

    let file_default = |name: &str| {
        home.map(|h| h.join(".postgresql").join(name))
            .filter(|p| p.exists())
    };
    let sslrootcert = s
        .text("sslrootcert")
        .or_else(|| file_default("root.crt").map(|p| p.to_string_lossy().into_owned()));
    let mut sslcert = s
        .text("sslcert")
        .map(PathBuf::from)
        .or_else(|| file_default("postgresql.crt"));
    let mut sslkey = s
        .text("sslkey")
        .map(PathBuf::from)
        .or_else(|| file_default("postgresql.key"));
    if let Some(v) = s.get("sslcertmode") {
        match v.text.as_str() {
            "allow" => {}
            "disable" => {
                sslcert = None;
                sslkey = None;
            }
            "require" => {
                return Err(unsupported(
                    "sslcertmode",
                    v,
                    "a server that does not ask for a client certificate cannot be detected",
                ))
            }
            _ => {
                return Err(invalid(
                    "sslcertmode",
                    v,
                    "expected one of disable, allow, require",
                ))
            }
        }
    }

    let system_root = sslrootcert.as_deref() == Some("system");
    let sslmode = match s.get("sslmode") {
        Some(v) => {
            let mode = one_of("sslmode", v, &SslMode::NAMES)?;
            if system_root && mode != SslMode::VerifyFull {
                return Err(Error::config(
                    "sslmode",
                    format!(
                        "weak sslmode \"{}\"{} may not be used with sslrootcert=system (use \
                         \"verify-full\")",
                        v.text,
                        v.origin()
                    ),
                ));
            }
            mode
        }
        // The deprecated PGREQUIRESSL=1, which PGSSLMODE overrides.
        None if env("PGREQUIRESSL").is_some_and(|r| r.starts_with('1')) => {
            if system_root {
                return Err(Error::config(
                    "sslmode",
                    "weak sslmode \"require\" (from PGREQUIRESSL) may not be used with \
                     sslrootcert=system (use \"verify-full\")",
                ));
            }
            SslMode::Require
        }
        None if system_root => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };

    let sslsni = match s.get("sslsni") {
        Some(v) => flag("sslsni", v)?,
        None => true,
    };
    let channel_binding = enum_setting(
        "channel_binding",
        &s,
        &[
            ("disable", ChannelBinding::Disable),
            ("prefer", ChannelBinding::Prefer),
            ("require", ChannelBinding::Require),
        ],
    )?;
    let target_session_attrs =
        enum_setting("target_session_attrs", &s, &TargetSessionAttrs::NAMES)?;
    let load_balance_hosts = enum_setting(
        "load_balance_hosts",
        &s,
        &[
            ("disable", LoadBalanceHosts::Disable),
            ("random", LoadBalanceHosts::Random),
        ],
    )?;

    let keepalives = match s.get("keepalives") {
        Some(v) => parse_int("keepalives", v)? != 0,
        None => true,
    };
    let keepalives_idle = positive("keepalives_idle", &s)?.map(Duration::from_secs);
    let keepalives_interval = positive("keepalives_interval", &s)?.map(Duration::from_secs);
    let keepalives_count = positive("keepalives_count", &s)?.map(|n| n as u32);
    let tcp_user_timeout = positive("tcp_user_timeout", &s)?.map(Duration::from_millis);

    Ok(ConnConfig {
        hosts,
        user,
        password,
        passfile,
        dbname,
        application_name: s.text("application_name"),
        fallback_application_name: s.text("fallback_application_name"),
        options: s.text("options"),
        connect_timeout,
        sslmode,
        sslrootcert,
        sslcert,
        sslkey,
        sslpassword: s.text("sslpassword").map(Secret),
        sslsni,
        channel_binding,
        target_session_attrs,
        load_balance_hosts,
        keepalives,
        keepalives_idle,
        keepalives_interval,
        keepalives_count,
        tcp_user_timeout,
    })
}
