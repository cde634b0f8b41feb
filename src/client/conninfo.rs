//! Connection settings as libpq users write them: `postgresql://` URLs and `key=value`
//! strings with libpq's keys, libpq's environment variables, `~/.pgpass`, and libpq's
//! precedence (the string, then the environment, then the built-in default).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// `hostaddr`: the address actually connected to, skipping name resolution.
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
    /// `connect_timeout` (or `PGCONNECT_TIMEOUT`), whole seconds as libpq reads them.
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
    /// `keepalives_idle`.
    pub keepalives_idle: Option<Duration>,
    /// `keepalives_interval`.
    pub keepalives_interval: Option<Duration>,
    /// `keepalives_count`.
    pub keepalives_count: Option<u32>,
    /// `tcp_user_timeout` (milliseconds in the string).
    pub tcp_user_timeout: Option<Duration>,
}
