//! Opening a session: every host in order (or shuffled), every address of a host, TCP or
//! Unix socket, TLS per `sslmode`, startup and authentication, and the
//! `target_session_attrs` check — all under one deadline for the whole connect, of which each
//! attempt (one address of one host) gets its share: the connection string's
//! `connect_timeout` as libpq applies it (per address), or else a fair split of what is left
//! among the attempts still to come, so a host that swallows packets cannot use up the time
//! of the hosts after it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use crate::client::auth::{self, Credentials};
use crate::client::cancel::{CancelTarget, CancelToken};
use crate::client::conninfo::{
    ConnConfig, Host, HostSpec, LoadBalanceHosts, SslMode, TargetSessionAttrs,
};
use crate::client::lag::{self, LagWatch};
use crate::client::resolve::{self, Failure as Unresolved};
use crate::client::row::SimpleQueryMessage;
use crate::client::session::{OnDeadline, Session};
use crate::client::stream::Stream;
use crate::client::tls::TlsConnector;
use crate::error::{Error, ErrorKind};

/// TCP settings applied to every socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketSettings {
    pub(crate) keepalives: bool,
    pub(crate) keepalive_idle: Duration,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_count: u32,
    /// Applied where the platform has `TCP_USER_TIMEOUT` (Linux, Android).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) tcp_user_timeout: Option<Duration>,
}

/// Everything needed to open sessions, built once per manager.
pub(crate) struct Connector {
    pub(crate) config: ConnConfig,
    pub(crate) tls: Option<Arc<TlsConnector>>,
    pub(crate) timeout: Duration,
    pub(crate) socket: SocketSettings,
    /// StartupMessage parameters besides user and database.
    pub(crate) startup: Vec<(String, String)>,
    /// The pool's `max_replica_lag`: a standby further behind is refused.
    pub(crate) max_replica_lag: Option<Duration>,
}

/// Where an attempt failed: the sslmode fallbacks depend on it.
enum Failure {
    /// In the SSLRequest or the TLS handshake.
    Tls(Error),
    /// Anywhere else (socket, startup, authentication, target check).
    Session(Error),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::Tls(e) | Failure::Session(e) => e,
        }
    }
}

enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) => write!(f, "{a}"),
            Target::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

fn left(deadline: Instant) -> Option<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    (!d.is_zero()).then_some(d)
}

fn timed_out(timeout: Duration, during: &str) -> Error {
    Error::new(
        ErrorKind::Connect,
        format!(
            "connect timed out after {} ms {during}",
            timeout.as_millis()
        ),
    )
}

/// The shortest share of the connect's time an attempt gets when there is that much left.
const MIN_SHARE: Duration = Duration::from_millis(500);

/// The time one attempt may take: until `deadline`, `length` in all (for messages).
#[derive(Debug, Clone, Copy)]
struct Budget {
    deadline: Instant,
    length: Duration,
    /// The whole connect's timeout (the pool's `connect_timeout`) when `length` is a fair
    /// share of it (no `connect_timeout` in the connection string, and more time left).
    share_of: Option<Duration>,
}

impl Budget {
    fn timed_out(&self, during: &str) -> Error {
        match self.share_of {
            Some(whole) => timed_out(
                self.length,
                &format!(
                    "{during} (this attempt's share of the {} ms connect timeout; the hosts \
                     after it get theirs)",
                    whole.as_millis()
                ),
            ),
            None => timed_out(self.length, during),
        }
    }
}

impl Connector {
    /// Opens a session, or says why every host failed.
    pub(crate) fn connect(&self) -> Result<Session, Error> {
        let deadline = Instant::now() + self.timeout;
        let mut hosts: Vec<&HostSpec> = self.config.hosts.iter().collect();
        if self.config.load_balance_hosts == LoadBalanceHosts::Random {
            fastrand::shuffle(&mut hosts);
        }
        let attrs = self.config.target_session_attrs;
        let passes: &[TargetSessionAttrs] = match attrs {
            TargetSessionAttrs::PreferStandby => {
                &[TargetSessionAttrs::Standby, TargetSessionAttrs::Any]
            }
            _ => std::slice::from_ref(&self.config.target_session_attrs),
        };
        let mut errors: Vec<Error> = Vec::new();
        // Attempts still to come, counting one address for each host not yet resolved.
        let mut hosts_after = hosts.len() * passes.len();
        for &want in passes {
            for spec in &hosts {
                hosts_after -= 1;
                let Some(lookup) = self.share(deadline, hosts_after + 1) else {
                    errors.push(timed_out(self.timeout, "before trying the next host"));
                    return Err(combine(errors));
                };
                let targets = match self.targets(spec, &lookup) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                let count = targets.len();
                for (i, target) in targets.into_iter().enumerate() {
                    let Some(budget) = self.share(deadline, hosts_after + count - i) else {
                        errors.push(timed_out(self.timeout, &format!("before trying {target}")));
                        return Err(combine(errors));
                    };
                    match self.connect_one(spec, &target, budget, want) {
                        Ok(session) => return Ok(session),
                        Err(e) => {
                            let e = e.context(&format!("connection to {target} failed"));
                            log::debug!(target: "pgpool", "{e}");
                            errors.push(e);
                        }
                    }
                }
            }
        }
        Err(combine(errors))
    }

    /// The budget of the next attempt, with `attempts` (this one included) still to come
    /// before `deadline`; `None` when the deadline has passed.
    fn share(&self, deadline: Instant, attempts: usize) -> Option<Budget> {
        let left = left(deadline)?;
        let length = match self.config.connect_timeout {
            Some(per_attempt) => per_attempt,
            None => (left / attempts.max(1) as u32).max(MIN_SHARE),
        };
        Some(if length < left {
            Budget {
                deadline: Instant::now() + length,
                length,
                share_of: self
                    .config
                    .connect_timeout
                    .is_none()
                    .then_some(self.timeout),
            }
        } else {
            // All that is left: a timeout is the whole connect's.
            Budget {
                deadline,
                length: self.timeout,
                share_of: None,
            }
        })
    }

    fn targets(&self, spec: &HostSpec, budget: &Budget) -> Result<Vec<Target>, Error> {
        match (&spec.host, spec.hostaddr) {
            (_, Some(ip)) => Ok(vec![Target::Tcp(SocketAddr::new(ip, spec.port))]),
            (Host::Unix(dir), None) => Ok(vec![Target::Unix(
                dir.join(format!(".s.PGSQL.{}", spec.port)),
            )]),
            (Host::Tcp(name), None) => {
                let untranslated = |why: String| {
                    format!("could not translate host name \"{name}\" to an address: {why}")
                };
                let mut addrs: Vec<Target> =
                    match resolve::resolve(name, spec.port, budget.deadline) {
                        Ok(addrs) => addrs.into_iter().map(Target::Tcp).collect(),
                        Err(Unresolved::NotFound(e)) => {
                            return Err(Error::connect_permanent(untranslated(e.to_string())))
                        }
                        Err(Unresolved::TimedOut(waited)) => {
                            return Err(budget.timed_out(&format!(
                                "resolving host name \"{name}\" (no answer from the resolver \
                             in {} ms)",
                                waited.as_millis()
                            )))
                        }
                        Err(Unresolved::Busy) => {
                            return Err(Error::new(
                                ErrorKind::Connect,
                                untranslated(format!(
                                    "{} earlier lookups are still waiting for the resolver",
                                    resolve::MAX_LOOKUPS
                                )),
                            ))
                        }
                    };
                if self.config.load_balance_hosts == LoadBalanceHosts::Random {
                    fastrand::shuffle(&mut addrs);
                }
                Ok(addrs)
            }
        }
    }

    fn open_socket(&self, target: &Target, budget: &Budget) -> Result<Stream, Error> {
        let time = left(budget.deadline).ok_or_else(|| budget.timed_out("before connecting"))?;
        let io = |e: std::io::Error| Error::new(ErrorKind::Connect, e.to_string());
        match target {
            Target::Tcp(addr) => {
                let tcp = TcpStream::connect_timeout(addr, time).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::TimedOut {
                        budget.timed_out("in the TCP connect")
                    } else {
                        io(e)
                    }
                })?;
                tcp.set_nodelay(true).map_err(io)?;
                self.apply_socket_settings(&tcp).map_err(io)?;
                Ok(Stream::Tcp(tcp))
            }
            Target::Unix(path) => UnixStream::connect(path).map(Stream::Unix).map_err(io),
        }
    }

    fn apply_socket_settings(&self, tcp: &TcpStream) -> std::io::Result<()> {
        let sock = socket2::SockRef::from(tcp);
        let s = &self.socket;
        if s.keepalives {
            let ka = socket2::TcpKeepalive::new().with_time(s.keepalive_idle);
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "netbsd"
            ))]
            let ka = ka
                .with_interval(s.keepalive_interval)
                .with_retries(s.keepalive_count);
            sock.set_tcp_keepalive(&ka)?;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(t) = s.tcp_user_timeout {
            sock.set_tcp_user_timeout(Some(t))?;
        }
        Ok(())
    }

    /// One attempt at one address: socket, TLS, startup, target check.
    fn connect_one(
        &self,
        spec: &HostSpec,
        target: &Target,
        budget: Budget,
        want: TargetSessionAttrs,
    ) -> Result<Session, Error> {
        let mode = self.config.sslmode;
        let is_unix = matches!(target, Target::Unix(_));
        // libpq never negotiates TLS over a Unix-domain socket, whatever sslmode says.
        let first_tls = !is_unix && self.tls.is_some() && mode != SslMode::Allow;
        // The fallbacks of libpq's sslmode rules, with the same deadline:
        match self.attempt(spec, target, budget, want, first_tls) {
            Ok(session) => Ok(session),
            // prefer: a failed TLS negotiation is retried once without TLS (not when the
            // deadline is gone: then the TLS step's timeout is the answer).
            Err(Failure::Tls(e)) if mode == SslMode::Prefer && left(budget.deadline).is_some() => {
                log::debug!(target: "pgpool", "TLS failed under sslmode=prefer, retrying without TLS: {e}");
                self.attempt(spec, target, budget, want, false)
                    .map_err(Failure::into_error)
            }
            // allow: plain first, TLS if the server refused the plain session.
            Err(Failure::Session(e))
                if mode == SslMode::Allow
                    && !is_unix
                    && self.tls.is_some()
                    && e.db_error().is_some() =>
            {
                self.attempt(spec, target, budget, want, true)
                    .map_err(Failure::into_error)
            }
            Err(f) => Err(f.into_error()),
        }
    }

    fn attempt(
        &self,
        spec: &HostSpec,
        target: &Target,
        budget: Budget,
        want: TargetSessionAttrs,
        use_tls: bool,
    ) -> Result<Session, Failure> {
        let stream = self
            .open_socket(target, &budget)
            .and_then(|stream| {
                let time = left(budget.deadline)
                    .ok_or_else(|| budget.timed_out("after the TCP connect"))?;
                stream
                    .set_timeouts(Some(time))
                    .map_err(|e| Error::new(ErrorKind::Connect, e.to_string()))?;
                Ok(stream)
            })
            .map_err(Failure::Session)?;
        let stream = if use_tls {
            self.negotiate_tls(stream, spec, &budget)
                .map_err(Failure::Tls)?
        } else {
            stream
        };
        self.start_session(stream, spec, target, budget, want)
            .map_err(Failure::Session)
    }

    /// Startup, authentication and the `target_session_attrs` check on an open stream.
    fn start_session(
        &self,
        stream: Stream,
        spec: &HostSpec,
        target: &Target,
        budget: Budget,
        want: TargetSessionAttrs,
    ) -> Result<Session, Error> {
        let mut session = Session::new(stream);
        session.set_deadline(Some((budget.deadline, OnDeadline::Break)));
        let user = self.config.user.as_str();
        let db = self.config.dbname.as_str();
        let mut params: Vec<(&str, &str)> = vec![("user", user), ("database", db)];
        params.extend(self.startup.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let creds = Credentials {
            user,
            password: self.config.password_for(spec),
            channel_binding: self.config.channel_binding,
        };
        auth::startup(&mut session, &params, &creds).map_err(|e| self.explain(e, &budget))?;
        if let Some(why) = self.refusal(&mut session, want)? {
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "server does not satisfy target_session_attrs={}: {why}",
                    want.as_str()
                ),
            ));
        }
        if let Some(max) = self.max_replica_lag {
            self.watch_lag(&mut session, max, &budget)?;
        }
        session.set_role_target(want);
        session.clear_deadline();
        let cancel_target = match target {
            Target::Tcp(a) => CancelTarget::Tcp(*a),
            Target::Unix(p) => CancelTarget::Unix(p.clone()),
        };
        let token = CancelToken::new(cancel_target, session.process_id(), session.secret_key());
        session.set_cancel_token(token);
        Ok(session)
    }

    /// With `max_replica_lag`: refuses a standby further behind than `max`, and gives a
    /// standby in step its [`LagWatch`]. A primary that says so at login (PostgreSQL 14+)
    /// costs no round trip.
    fn watch_lag(
        &self,
        session: &mut Session,
        max: Duration,
        budget: &Budget,
    ) -> Result<(), Error> {
        if session.parameter("in_hot_standby") == Some("off") {
            return Ok(());
        }
        let Some(behind) = lag::measure(session).map_err(|e| self.explain(e, budget))? else {
            return Ok(()); // not in recovery
        };
        if behind > max {
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "the standby is {} behind its primary (max_replica_lag {} ms)",
                    lag::describe(behind),
                    max.as_millis()
                ),
            ));
        }
        session.replica_lag = Some(LagWatch::new(max, behind));
        Ok(())
    }

    /// A timeout inside startup reads as the connect timeout it is.
    fn explain(&self, e: Error, budget: &Budget) -> Error {
        if e.kind() == ErrorKind::Timeout
            || (left(budget.deadline).is_none() && e.db_error().is_none())
        {
            budget.timed_out("waiting for the server during startup")
        } else {
            e.into_connect()
        }
    }

    fn negotiate_tls(
        &self,
        stream: Stream,
        spec: &HostSpec,
        budget: &Budget,
    ) -> Result<Stream, Error> {
        let Stream::Tcp(mut tcp) = stream else {
            return Ok(stream);
        };
        let Some(tls) = &self.tls else {
            return Ok(Stream::Tcp(tcp));
        };
        let mut request = BytesMut::with_capacity(8);
        frontend::ssl_request(&mut request);
        let io = |e: std::io::Error| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                budget.timed_out("waiting for the server's TLS answer")
            } else {
                Error::new(ErrorKind::Connect, format!("TLS negotiation: {e}"))
            }
        };
        tcp.write_all(&request).map_err(io)?;
        // Exactly one byte: anything after it must come through TLS.
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).map_err(io)?;
        match answer[0] {
            b'S' => {
                let name = match &spec.host {
                    Host::Tcp(name) => name.clone(),
                    Host::Unix(_) => "localhost".to_string(),
                };
                Ok(Stream::Tls(Box::new(tls.handshake(tcp, &name)?)))
            }
            b'N' if matches!(self.config.sslmode, SslMode::Allow | SslMode::Prefer) => {
                Ok(Stream::Tcp(tcp))
            }
            b'N' => Err(Error::connect_permanent(format!(
                "the server does not support TLS, but sslmode={} requires it",
                self.config.sslmode.as_str()
            ))),
            other => Err(Error::connect_permanent(format!(
                "unexpected answer {other:#04x} to the TLS request"
            ))),
        }
    }

    /// Why the server is not what `target_session_attrs` asks for (`None`: it is). Uses the
    /// parameters the server reports (PostgreSQL 14+) and asks only when they are missing.
    fn refusal(
        &self,
        session: &mut Session,
        want: TargetSessionAttrs,
    ) -> Result<Option<&'static str>, Error> {
        if want == TargetSessionAttrs::Any {
            return Ok(None);
        }
        let standby = match session.parameter("in_hot_standby") {
            Some(v) => v == "on",
            None => ask(session, "SELECT pg_catalog.pg_is_in_recovery()")? == "t",
        };
        let read_only = standby
            || want.needs_read_only()
                && match session.parameter("default_transaction_read_only") {
                    Some(v) => v == "on",
                    None => ask(session, "SHOW transaction_read_only")? == "on",
                };
        Ok(want.refuses(standby, read_only))
    }
}

fn ask(session: &mut Session, sql: &str) -> Result<String, Error> {
    let messages = session.simple_query(sql).map_err(Error::into_connect)?;
    Ok(messages
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default())
}

/// One error for all attempts: the last one's kind and SQLSTATE, every message.
fn combine(mut errors: Vec<Error>) -> Error {
    match errors.len() {
        0 => Error::connect_permanent("no host to connect to"),
        1 => errors.pop().expect("one error"),
        _ => {
            let text = errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            let last = errors.pop().expect("errors");
            last.with_message(text)
        }
    }
}
