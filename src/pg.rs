//! [`PgManager`]: opens PostgreSQL sessions for the pool with the `postgres` crate.
//!
//! Every session gets socket bounds (TCP keepalives and `TCP_USER_TIMEOUT`, so a dead peer is
//! noticed in seconds), a connect timeout, `application_name` and `statement_timeout` as
//! startup parameters (no extra round trip), and a located socket descriptor for the
//! zero-cost probe.

use std::collections::HashSet;
use std::os::unix::io::RawFd;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use postgres::config::Host;
use postgres::{NoTls, SimpleQueryMessage};

use crate::config::Config;
use crate::connection::PgConnection;
use crate::error::Error;
use crate::ffi::os;
use crate::manager::{Manager, Probe};

/// The PostgreSQL [`Manager`]. Built by [`Builder::build`](crate::Builder::build).
pub struct PgManager {
    config: postgres::Config,
    cache_capacity: usize,
    /// Serialises this manager's connects whose socket must be located by elimination
    /// (Unix-domain sockets, and TCP through a proxy or PgBouncer, where the server's view of
    /// the client port is not ours): the one new socket that appears during a connect is then
    /// that connect's own. A connect waits for it at most `connect_timeout` (a stalled connect
    /// must not hold the others back), then goes ahead unlocked and, if the answer is
    /// ambiguous, without a probe. Direct TCP connects never take it.
    locate_lock: parking_lot::Mutex<()>,
    connect_timeout: Duration,
    /// How connects locate their socket: [`LOCATE_UNKNOWN`] until the first connect tells
    /// (connects serialise meanwhile), then [`LOCATE_DIRECT`] (TCP ports match what the
    /// server saw) or [`LOCATE_ELIMINATION`] (Unix sockets; TCP through a proxy).
    locate: AtomicU8,
    /// The server ports this manager connects to (5432 when none is configured).
    ports: Vec<u16>,
}

const LOCATE_UNKNOWN: u8 = 0;
const LOCATE_DIRECT: u8 = 1;
const LOCATE_ELIMINATION: u8 = 2;

impl std::fmt::Debug for PgManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgManager")
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("dbname", &self.config.get_dbname())
            .field("user", &self.config.get_user())
            .finish()
    }
}

impl PgManager {
    /// Parses `conninfo` (URL or `key=value`) and applies the pool's session settings.
    pub fn new(conninfo: &str, pool: &Config) -> Result<PgManager, Error> {
        let mut config = postgres::Config::from_str(conninfo).map_err(|e| {
            Error::config("conninfo", format!("cannot parse connection string: {e}"))
        })?;
        config.connect_timeout(pool.connect_timeout);
        config.keepalives(true);
        config.keepalives_idle(pool.tcp_keepalive_idle);
        config.keepalives_interval(pool.tcp_keepalive_idle.min(Duration::from_secs(2)));
        config.keepalives_retries(3);
        if let Some(t) = pool.tcp_user_timeout {
            config.tcp_user_timeout(t);
        }
        match &pool.application_name {
            Some(name) => {
                config.application_name(name);
            }
            None if config.get_application_name().is_none() => {
                config.application_name("pgpool");
            }
            None => {}
        }
        if let Some(t) = pool.statement_timeout {
            let setting = format!("-c statement_timeout={}", t.as_millis());
            let options = match config.get_options() {
                Some(existing) if !existing.is_empty() => format!("{existing} {setting}"),
                _ => setting,
            };
            config.options(&options);
        }
        config.notice_callback(|notice| {
            log::debug!(target: "pgpool", "server notice: {}: {}", notice.severity(), notice.message())
        });
        let any_unix_host = config
            .get_hosts()
            .iter()
            .any(|h| matches!(h, Host::Unix(_)));
        let mut ports = config.get_ports().to_vec();
        if ports.is_empty() {
            ports.push(5432);
        }
        Ok(PgManager {
            locate_lock: parking_lot::Mutex::new(()),
            connect_timeout: pool.connect_timeout,
            ports,
            config,
            cache_capacity: pool.statement_cache_capacity,
            locate: AtomicU8::new(if any_unix_host {
                LOCATE_ELIMINATION
            } else {
                LOCATE_UNKNOWN
            }),
        })
    }

    /// The `postgres` configuration sessions are opened with.
    pub fn postgres_config(&self) -> &postgres::Config {
        &self.config
    }
}

/// `pg_backend_pid()`, `inet_client_port()` and `inet_server_port()` in one simple-protocol
/// round trip (no statement to prepare and close).
fn identify(client: &mut postgres::Client) -> Result<(i32, Option<u16>, Option<u16>), Error> {
    let messages = client
        .simple_query("SELECT pg_backend_pid(), inet_client_port(), inet_server_port()")
        .map_err(Error::from_connect)?;
    let row = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .ok_or_else(|| Error::broken("session identification returned no row"))?;
    let pid = row.get(0).and_then(|s| s.parse().ok()).unwrap_or(0);
    let port = |i| row.get(i).and_then(|s: &str| s.parse::<u16>().ok());
    Ok((pid, port(1), port(2)))
}

fn locate_tcp_socket(local: u16, peer: u16) -> Option<RawFd> {
    let mut found = os::open_fds()
        .into_iter()
        .filter(|&fd| os::tcp_ports(fd) == Some((local, peer)));
    let fd = found.next()?;
    found.next().is_none().then_some(fd)
}

/// A socket that can carry a session to this target: TCP to one of the configured ports, or a
/// Unix socket named `.s.PGSQL.*`.
fn is_session_socket(fd: RawFd, ports: &[u16]) -> bool {
    os::tcp_ports(fd).is_some_and(|(_, peer)| ports.contains(&peer))
        || os::unix_peer_path(fd).is_some_and(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".s.PGSQL."))
        })
}

impl Manager for PgManager {
    type Connection = PgConnection;

    fn connect(&self) -> Result<PgConnection, Error> {
        // Sockets that exist before the connect cannot be its own. Without the lock a
        // concurrent connect may make the answer ambiguous, and then there is no probe for
        // this session; never a wrong one.
        let lock = if self.locate.load(Ordering::Acquire) == LOCATE_DIRECT {
            None
        } else {
            self.locate_lock.try_lock_for(self.connect_timeout)
        };
        let before: HashSet<RawFd> = os::open_fds().into_iter().collect();
        let mut client = self.config.connect(NoTls).map_err(Error::from_connect)?;
        let new_sockets: Vec<RawFd> = os::open_fds()
            .into_iter()
            .filter(|fd| !before.contains(fd) && is_session_socket(*fd, &self.ports))
            .collect();
        let (pid, client_port, server_port) = identify(&mut client)?;
        let direct = match (client_port, server_port) {
            (Some(local), Some(peer)) => locate_tcp_socket(local, peer),
            _ => None,
        };
        // The first session tells how this target's sockets are found from now on; until
        // then connects stay serialised, so the first burst is located too.
        let verdict = if direct.is_some() {
            LOCATE_DIRECT
        } else {
            LOCATE_ELIMINATION
        };
        let _ = self.locate.compare_exchange(
            LOCATE_UNKNOWN,
            verdict,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        drop(lock);
        let fd = direct.or_else(|| (new_sockets.len() == 1).then(|| new_sockets[0]));
        if fd.is_none() {
            log::debug!(target: "pgpool", "socket of backend {pid} not located: probe disabled for it");
        }
        Ok(PgConnection::new(client, self.cache_capacity, fd, pid))
    }

    fn validate(&self, conn: &mut PgConnection, timeout: Duration) -> Result<(), Error> {
        conn.validate(timeout)
    }

    fn probe(&self, conn: &mut PgConnection) -> Probe {
        conn.probe()
    }

    fn reset(&self, conn: &mut PgConnection) -> bool {
        if conn.is_broken() {
            return false;
        }
        !conn.may_be_in_transaction() || conn.reset_transaction()
    }
}
