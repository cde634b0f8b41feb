//! Interim parsing through `postgres::Config` until the libpq-compatible parser lands.

use std::path::PathBuf;
use std::str::FromStr;

use crate::client::conninfo::*;
use crate::error::Error;

impl ConnConfig {
    /// Parses a connection string.
    pub fn parse(conninfo: &str) -> Result<ConnConfig, Error> {
        let c = postgres::Config::from_str(conninfo).map_err(|e| {
            Error::config("conninfo", format!("cannot parse connection string: {e}"))
        })?;
        let ports = c.get_ports();
        let hosts = c
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| HostSpec {
                host: match h {
                    postgres::config::Host::Tcp(s) => Host::Tcp(s.clone()),
                    postgres::config::Host::Unix(p) => Host::Unix(p.clone()),
                },
                hostaddr: None,
                port: ports.get(i).or(ports.first()).copied().unwrap_or(5432),
            })
            .collect::<Vec<_>>();
        let hosts = if hosts.is_empty() {
            vec![HostSpec {
                host: Host::Unix(PathBuf::from("/var/run/postgresql")),
                hostaddr: None,
                port: 5432,
            }]
        } else {
            hosts
        };
        let user = c.get_user().unwrap_or("postgres").to_string();
        Ok(ConnConfig {
            hosts,
            dbname: c.get_dbname().unwrap_or(&user).to_string(),
            user,
            password: c
                .get_password()
                .map(|p| Secret(String::from_utf8_lossy(p).into_owned())),
            passfile: None,
            application_name: c.get_application_name().map(str::to_string),
            fallback_application_name: None,
            options: c.get_options().map(str::to_string),
            connect_timeout: c.get_connect_timeout().copied(),
            sslmode: SslMode::Disable,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            sslsni: true,
            channel_binding: ChannelBinding::Prefer,
            target_session_attrs: TargetSessionAttrs::Any,
            load_balance_hosts: LoadBalanceHosts::Disable,
            keepalives: true,
            keepalives_idle: None,
            keepalives_interval: None,
            keepalives_count: None,
            tcp_user_timeout: None,
        })
    }

    /// The password for `host`.
    pub fn password_for(&self, _host: &HostSpec) -> Option<Secret> {
        self.password.clone()
    }
}
