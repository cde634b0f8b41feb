//! Connection settings as libpq users write them: `postgresql://` URLs and `key=value`
//! strings with libpq's keys, libpq's environment variables, `~/.pgpass`, and libpq's
//! precedence (the string, then the environment, then the built-in default).
//!
//! Two stages: [`ConnConfig::parse_pairs`] reads the string alone, exactly as libpq's
//! `PQconninfoParse` does (both the URI and the `key=value` form, every libpq keyword);
//! [`ConnConfig::parse`] then adds the environment variables and the defaults and checks
//! every value, naming the key (and the environment variable, if that is where the value came
//! from) in each error. A password's value never appears in an error, in `Debug`, or in
//! [`ConnConfig::redacted`].
//!
//! ```
//! use pgpool::client::conninfo::{ConnConfig, Host, SslMode};
//! let env = |_: &str| None;
//! let c = ConnConfig::parse_with(
//!     "postgresql://app:s3cret@db1:5433,db2/shop?sslmode=require&connect_timeout=10",
//!     &env,
//!     None,
//! )?;
//! assert_eq!(c.hosts[0].host, Host::Tcp("db1".into()));
//! assert_eq!((c.hosts[0].port, c.hosts[1].port), (5433, 5432));
//! assert_eq!((c.user.as_str(), c.dbname.as_str()), ("app", "shop"));
//! assert_eq!(c.sslmode, SslMode::Require);
//! assert!(!c.redacted().contains("s3cret"));
//! # Ok::<(), pgpool::Error>(())
//! ```
//!
//! Differences from libpq, all on the side of refusing rather than silently ignoring:
//! an empty value is the same as no value (libpq rejects some empty values); settings that
//! need features pgpool lacks (`service`, `gssencmode=require`, `replication`, `sslcrl`,
//! `sslcrldir`, `requirepeer`, `require_auth`, `sslnegotiation=direct`,
//! `sslcertmode=require`, a `client_encoding` other than UTF8, TLS version bounds other than
//! 1.2 to 1.3) are errors; `sslsni` and `sslcompression` must be `0` or `1`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

mod parse;

pub(crate) use parse::{next_pair, percent_decode};
mod pgpass;
mod resolve;
#[cfg(test)]
mod tests;

/// The Unix-socket directory used when no host is given (libpq's `DEFAULT_PGSOCKET_DIR` as
/// Debian and most Linux distributions build it).
#[cfg(target_os = "linux")]
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// The Unix-socket directory used when no host is given (libpq's `DEFAULT_PGSOCKET_DIR`).
#[cfg(not(target_os = "linux"))]
pub const DEFAULT_SOCKET_DIR: &str = "/tmp";

/// The port used when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// Where one server is: a host name or address for TCP, or a Unix-socket directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or an IP address literal, connected over TCP.
    Tcp(String),
    /// A directory holding the server's `.s.PGSQL.<port>` socket.
    Unix(PathBuf),
}

/// One entry of a multi-host list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The host (for TLS server-name checks and `~/.pgpass` matching).
    pub host: Host,
    /// `hostaddr`: the address actually connected to, skipping name resolution. When set, the
    /// connection is TCP to this address whatever `host` is; `host` then only names the server
    /// (TLS checks, `~/.pgpass`).
    pub hostaddr: Option<IpAddr>,
    /// The port (also selects the Unix socket's file name).
    pub port: u16,
}

/// `sslmode`, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS only if the server insists.
    Allow,
    /// TLS if the server offers it, else plain. libpq's default.
    #[default]
    Prefer,
    /// TLS or fail; the certificate is verified only when a root certificate is available
    /// (then as `VerifyCa`).
    Require,
    /// TLS, certificate chain verified against `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the host name must match the certificate.
    VerifyFull,
}

impl SslMode {
    /// Every mode with its libpq spelling.
    pub(crate) const NAMES: [(&'static str, SslMode); 6] = [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ];

    /// libpq's spelling (`"verify-full"`, …).
    pub fn as_str(self) -> &'static str {
        name_of(&Self::NAMES, self)
    }
}

/// The spelling of `value` in a (spelling, value) table that lists every value.
fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("", |(name, _)| name)
}

/// `channel_binding`, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBinding {
    /// Never use SCRAM-SHA-256-PLUS.
    Disable,
    /// Use it when TLS and the server offer it. libpq's default.
    #[default]
    Prefer,
    /// Fail unless the server authenticates with SCRAM-SHA-256-PLUS.
    Require,
}

/// `target_session_attrs`, as libpq 16 defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetSessionAttrs {
    /// Any server. The default.
    #[default]
    Any,
    /// A server that accepts writes (`default_transaction_read_only` off, not in recovery).
    ReadWrite,
    /// A server that does not accept writes by default.
    ReadOnly,
    /// A server not in hot standby.
    Primary,
    /// A server in hot standby.
    Standby,
    /// A standby if any host is one, else any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    /// Every value with its libpq spelling.
    pub(crate) const NAMES: [(&'static str, TargetSessionAttrs); 6] = [
        ("any", TargetSessionAttrs::Any),
        ("read-write", TargetSessionAttrs::ReadWrite),
        ("read-only", TargetSessionAttrs::ReadOnly),
        ("primary", TargetSessionAttrs::Primary),
        ("standby", TargetSessionAttrs::Standby),
        ("prefer-standby", TargetSessionAttrs::PreferStandby),
    ];

    /// libpq's spelling (`"read-write"`, …).
    pub fn as_str(self) -> &'static str {
        name_of(&Self::NAMES, self)
    }

    /// Whether the answer depends on `default_transaction_read_only` (not only on whether
    /// the server is in hot standby).
    pub(crate) fn needs_read_only(self) -> bool {
        matches!(
            self,
            TargetSessionAttrs::ReadWrite | TargetSessionAttrs::ReadOnly
        )
    }

    /// Why a server in hot standby or not (`standby`) whose sessions are read-only by
    /// default or not (`read_only`, always true on a standby) is not what this asks for;
    /// `None` when it is. `PreferStandby` asks for a standby here (its fallback is `Any`).
    pub(crate) fn refuses(self, standby: bool, read_only: bool) -> Option<&'static str> {
        use TargetSessionAttrs::*;
        match self {
            Any => None,
            Primary | ReadWrite if standby => Some("the server is in hot standby"),
            ReadWrite if read_only => {
                Some("the session is read-only (default_transaction_read_only is on)")
            }
            ReadOnly if !read_only => Some("the session is not read-only"),
            Standby | PreferStandby if !standby => Some("the server is not in hot standby"),
            _ => None,
        }
    }
}

/// `load_balance_hosts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadBalanceHosts {
    /// Hosts in the order given. The default.
    #[default]
    Disable,
    /// Hosts (and each host's addresses) in random order.
    Random,
}

/// A password: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Parsed connection settings. Build one with [`ConnConfig::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnConfig {
    /// Hosts to try, in order (at least one).
    pub hosts: Vec<HostSpec>,
    /// `user`; defaults to `PGUSER`, else the operating-system user name.
    pub user: String,
    /// `password` (or `PGPASSWORD`); `None` means look in the password file.
    pub password: Option<Secret>,
    /// `passfile` (or `PGPASSFILE`); defaults to `~/.pgpass`.
    pub passfile: Option<PathBuf>,
    /// `dbname`; defaults to `PGDATABASE`, else the user name.
    pub dbname: String,
    /// `application_name` (or `PGAPPNAME`).
    pub application_name: Option<String>,
    /// `fallback_application_name`: used when `application_name` is not set.
    pub fallback_application_name: Option<String>,
    /// `options` (or `PGOPTIONS`): command-line options sent to the server.
    pub options: Option<String>,
    /// `connect_timeout` (or `PGCONNECT_TIMEOUT`), whole seconds as libpq reads them: 0 or
    /// less is no timeout (`None`), and 1 is taken as 2. As in libpq it bounds each attempt
    /// (each address of each host); the pool's own `connect_timeout` bounds the whole
    /// connect. Without it, each attempt gets a fair share of what is left (at least
    /// 500 ms), so one host that swallows packets cannot use up the others' time.
    pub connect_timeout: Option<Duration>,
    /// `sslmode` (or `PGSSLMODE`).
    pub sslmode: SslMode,
    /// `sslrootcert` (or `PGSSLROOTCERT`): a file, or `system`. Defaults to
    /// `~/.postgresql/root.crt` when that file exists.
    pub sslrootcert: Option<String>,
    /// `sslcert` (or `PGSSLCERT`); defaults to `~/.postgresql/postgresql.crt` if it exists.
    pub sslcert: Option<PathBuf>,
    /// `sslkey` (or `PGSSLKEY`); defaults to `~/.postgresql/postgresql.key` if it exists.
    pub sslkey: Option<PathBuf>,
    /// `sslpassword`: the passphrase of an encrypted `sslkey`.
    pub sslpassword: Option<Secret>,
    /// `sslsni` (or `PGSSLSNI`): send the host name in the TLS handshake. Defaults to true.
    pub sslsni: bool,
    /// `channel_binding` (or `PGCHANNELBINDING`).
    pub channel_binding: ChannelBinding,
    /// `target_session_attrs` (or `PGTARGETSESSIONATTRS`).
    pub target_session_attrs: TargetSessionAttrs,
    /// `load_balance_hosts` (or `PGLOADBALANCEHOSTS`).
    pub load_balance_hosts: LoadBalanceHosts,
    /// `keepalives`: TCP keepalives on (the default) or off.
    pub keepalives: bool,
    /// `keepalives_idle` (seconds in the string; 0 or less means the system default).
    pub keepalives_idle: Option<Duration>,
    /// `keepalives_interval` (seconds in the string; 0 or less means the system default).
    pub keepalives_interval: Option<Duration>,
    /// `keepalives_count` (0 or less means the system default).
    pub keepalives_count: Option<u32>,
    /// `tcp_user_timeout` (milliseconds in the string; 0 or less means the system default).
    pub tcp_user_timeout: Option<Duration>,
}

impl ConnConfig {
    /// Parses a `postgresql://` URI or a libpq `key=value` string, filling what it does not
    /// set from libpq's environment variables (`PGHOST`, `PGPORT`, `PGUSER`, ...) and then
    /// libpq's defaults; `~` is the `HOME` directory (else the user's home in the password
    /// database).
    pub fn parse(conninfo: &str) -> Result<ConnConfig, Error> {
        let env = |key: &str| std::env::var(key).ok();
        #[allow(deprecated)] // fixed and undeprecated since Rust 1.86; fine on Unix before
        let home = std::env::home_dir().filter(|h| !h.as_os_str().is_empty());
        ConnConfig::parse_with(conninfo, &env, home.as_deref())
    }

    /// [`ConnConfig::parse`] with the environment and the home directory given: `env` maps a
    /// variable's name to its value, `home` is where `.pgpass` and `.postgresql/` are looked
    /// for (`None`: nowhere).
    pub fn parse_with(
        conninfo: &str,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<ConnConfig, Error> {
        let pairs = ConnConfig::parse_pairs(conninfo)?;
        resolve::resolve(pairs, env, home)
    }

    /// The keys the string sets and their values, as libpq's `PQconninfoParse` returns them:
    /// in libpq's keyword order, the last value of a repeated key, URI components
    /// percent-decoded, no environment, no defaults, values unchecked. Errors: syntax errors
    /// and unknown keys (the message names the key).
    pub fn parse_pairs(conninfo: &str) -> Result<Vec<(String, String)>, Error> {
        parse::parse_pairs(conninfo)
    }

    /// The password for `host`: the `password` setting if there is one, else the first
    /// matching line of the password file (`passfile`, by default `~/.pgpass`). As in libpq,
    /// the default socket directory matches `localhost` in the file, another socket directory
    /// matches its path, and a file that is not a plain file or that the group or others can
    /// access is ignored with a warning (log target `pgpool`).
    pub fn password_for(&self, host: &HostSpec) -> Option<Secret> {
        if let Some(password) = &self.password {
            return Some(password.clone());
        }
        let passfile = self.passfile.as_deref()?;
        let hostname = match &host.host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(dir) if dir == Path::new(DEFAULT_SOCKET_DIR) => "localhost".to_owned(),
            Host::Unix(dir) => dir.to_string_lossy().into_owned(),
        };
        pgpass::lookup(
            passfile,
            &hostname,
            &host.port.to_string(),
            &self.dbname,
            &self.user,
        )
        .map(Secret)
    }

    /// The settings as one libpq `key=value` line, for logs: every password left out.
    /// [`ConnConfig::parse`] reads it back to the same settings (less the passwords).
    pub fn redacted(&self) -> String {
        fn quote(value: &str) -> String {
            let plain = !value.is_empty()
                && !value
                    .bytes()
                    .any(|b| b == b'\\' || b == b'\'' || parse::is_c_space(b));
            if plain {
                return value.to_owned();
            }
            let mut out = String::with_capacity(value.len() + 2);
            out.push('\'');
            for c in value.chars() {
                if c == '\\' || c == '\'' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('\'');
            out
        }
        fn secs(d: Duration) -> String {
            d.as_secs().to_string()
        }
        let mut parts: Vec<(&str, String)> = Vec::new();
        let names: Vec<String> = self
            .hosts
            .iter()
            .map(|h| match &h.host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => dir.to_string_lossy().into_owned(),
            })
            .collect();
        parts.push(("host", names.join(",")));
        if self.hosts.iter().any(|h| h.hostaddr.is_some()) {
            let addrs: Vec<String> = self
                .hosts
                .iter()
                .map(|h| h.hostaddr.map_or(String::new(), |a| a.to_string()))
                .collect();
            parts.push(("hostaddr", addrs.join(",")));
        }
        let ports: Vec<String> = self.hosts.iter().map(|h| h.port.to_string()).collect();
        parts.push(("port", ports.join(",")));
        parts.push(("user", self.user.clone()));
        parts.push(("dbname", self.dbname.clone()));
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
        let optional: [(&str, Option<String>); 8] = [
            ("passfile", path(&self.passfile)),
            ("application_name", self.application_name.clone()),
            (
                "fallback_application_name",
                self.fallback_application_name.clone(),
            ),
            ("options", self.options.clone()),
            ("connect_timeout", self.connect_timeout.map(secs)),
            ("sslrootcert", self.sslrootcert.clone()),
            ("sslcert", path(&self.sslcert)),
            ("sslkey", path(&self.sslkey)),
        ];
        parts.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        let sslmode = match self.sslmode {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        };
        parts.push(("sslmode", sslmode.to_owned()));
        parts.push(("sslsni", if self.sslsni { "1" } else { "0" }.to_owned()));
        let channel_binding = match self.channel_binding {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        };
        parts.push(("channel_binding", channel_binding.to_owned()));
        let tsa = match self.target_session_attrs {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        };
        parts.push(("target_session_attrs", tsa.to_owned()));
        let lb = match self.load_balance_hosts {
            LoadBalanceHosts::Disable => "disable",
            LoadBalanceHosts::Random => "random",
        };
        parts.push(("load_balance_hosts", lb.to_owned()));
        parts.push((
            "keepalives",
            if self.keepalives { "1" } else { "0" }.to_owned(),
        ));
        let tail: [(&str, Option<String>); 4] = [
            ("keepalives_idle", self.keepalives_idle.map(secs)),
            ("keepalives_interval", self.keepalives_interval.map(secs)),
            (
                "keepalives_count",
                self.keepalives_count.map(|n| n.to_string()),
            ),
            (
                "tcp_user_timeout",
                self.tcp_user_timeout.map(|d| d.as_millis().to_string()),
            ),
        ];
        parts.extend(tail.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        parts
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
