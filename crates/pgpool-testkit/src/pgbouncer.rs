//! A throwaway PgBouncer in front of a [`TempCluster`]: a temporary directory with
//! `pgbouncer.ini` and an auth file, a free port on 127.0.0.1 (never 5432 or 6432, and no
//! Unix socket), `pool_mode = transaction` by default, trust authentication for the
//! cluster's `postgres` superuser (who is also the admin console's user: connect to the
//! database `pgbouncer` for `SHOW POOLS`, `SHOW SERVERS`). The process runs in the
//! foreground as a child of this one and is stopped, and the directory removed, when the
//! [`TempPgBouncer`] is dropped (or, if this process dies first, by a small watchdog).
//!
//! PgBouncer refuses to run as root; when this process is root it runs as the `postgres` user
//! (or `nobody`), via `runuser`, as the cluster does. A machine-wide PgBouncer (Debian's
//! service on port 6432) is neither used nor touched.
//!
//! [`TempPgBouncer::start`] fails with [`PgBouncerError::NotInstalled`] when no `pgbouncer`
//! binary is found; tests skip on that, unless `PGPOOL_REQUIRE_PGBOUNCER=1` (see
//! [`pgbouncer_required`]).
//!
//! ```no_run
//! use pgpool_testkit::{PgBouncerOptions, TempCluster, TempPgBouncer};
//! let cluster = TempCluster::start().unwrap();
//! let bouncer = TempPgBouncer::start(&cluster, &PgBouncerOptions::default()).unwrap();
//! let pool = pgpool::Pool::builder()
//!     .transaction_pooling(true)
//!     .build(&bouncer.url())
//!     .unwrap();
//! assert!(pool.health().ok);
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{free_port, run_as_user, scratch_dir, spawn_watchdog, user_ids};
use crate::TempCluster;

/// The environment variable that turns a missing PgBouncer from a skip into a failure.
pub const REQUIRE_PGBOUNCER_VAR: &str = "PGPOOL_REQUIRE_PGBOUNCER";

/// Whether `PGPOOL_REQUIRE_PGBOUNCER=1` is set: a missing PgBouncer must fail the test.
pub fn pgbouncer_required() -> bool {
    std::env::var(REQUIRE_PGBOUNCER_VAR).is_ok_and(|v| v == "1")
}

/// Why a [`TempPgBouncer`] did not start.
#[derive(Debug)]
pub enum PgBouncerError {
    /// No `pgbouncer` binary on `PATH`, in /usr/sbin or /usr/bin.
    NotInstalled,
    /// It is installed but did not start (the message has its log).
    Failed(io::Error),
}

impl std::fmt::Display for PgBouncerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgBouncerError::NotInstalled => write!(
                f,
                "pgbouncer is not installed (run scripts/setup.sh or `apt-get install pgbouncer`)"
            ),
            PgBouncerError::Failed(e) => write!(f, "pgbouncer did not start: {e}"),
        }
    }
}

impl std::error::Error for PgBouncerError {}

impl From<io::Error> for PgBouncerError {
    fn from(e: io::Error) -> Self {
        PgBouncerError::Failed(e)
    }
}

/// Options for [`TempPgBouncer::start`].
#[derive(Debug, Clone)]
pub struct PgBouncerOptions {
    /// `pool_mode`: `transaction` (the default), `session` or `statement`.
    pub pool_mode: String,
    /// `default_pool_size`: server connections per database and user. Defaults to 2.
    pub default_pool_size: u32,
    /// `max_client_conn`. Defaults to 100.
    pub max_client_conn: u32,
    /// `ignore_startup_parameters`. Defaults to `extra_float_digits` (what libpq-based
    /// tools send). Add `options` to let clients that send one in (its settings are then
    /// silently not applied).
    pub ignore_startup_parameters: Vec<String>,
    /// Extra `[pgbouncer]` lines.
    pub extra_conf: Vec<String>,
}

impl Default for PgBouncerOptions {
    fn default() -> Self {
        PgBouncerOptions {
            pool_mode: "transaction".into(),
            default_pool_size: 2,
            max_client_conn: 100,
            ignore_startup_parameters: vec!["extra_float_digits".into()],
            extra_conf: Vec::new(),
        }
    }
}

/// The `pgbouncer` binary: on `PATH`, else /usr/sbin/pgbouncer (Debian), else
/// /usr/bin/pgbouncer.
pub fn pgbouncer_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("pgbouncer"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// A running throwaway PgBouncer. See the [module documentation](self).
#[derive(Debug)]
pub struct TempPgBouncer {
    root: PathBuf,
    port: u16,
    child: Option<Child>,
    watchdog: Option<Child>,
    default_pool_size: u32,
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

impl TempPgBouncer {
    /// Starts PgBouncer in front of `cluster` (database `postgres`, user `postgres`) and
    /// waits (at most 15 s) until it accepts connections.
    pub fn start(
        cluster: &TempCluster,
        options: &PgBouncerOptions,
    ) -> Result<TempPgBouncer, PgBouncerError> {
        let binary = pgbouncer_binary().ok_or(PgBouncerError::NotInstalled)?;
        let run_as = run_as_user()?;
        let root = scratch_dir("pgpool-bouncer")?;
        let mut bouncer = TempPgBouncer {
            root,
            port: 0,
            child: None,
            watchdog: None,
            default_pool_size: options.default_pool_size,
        };
        let owner = match &run_as {
            Some(user) => Some(user_ids(user).ok_or_else(|| other("cannot resolve run-as user"))?),
            None => None,
        };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&bouncer.root, Some(uid), Some(gid))?;
        }
        bouncer.spawn_watchdog();
        let mut last_err = None;
        for _ in 0..5 {
            let port = loop {
                let p = free_port(&[IpAddr::V4(Ipv4Addr::LOCALHOST)])?;
                if p != 5432 && p != 6432 {
                    break p;
                }
            };
            bouncer.port = port;
            bouncer.write_config(cluster, options, owner)?;
            match bouncer.spawn(&binary, run_as.as_deref()) {
                Ok(()) => return Ok(bouncer),
                Err(e) => {
                    bouncer.stop();
                    last_err = Some(e);
                }
            }
        }
        Err(PgBouncerError::Failed(
            last_err.unwrap_or_else(|| other("no attempt")),
        ))
    }

    /// For tests: [`start`](Self::start), or `None` after printing
    /// "skipped: pgbouncer is not installed" when it is missing and
    /// [`pgbouncer_required`] is false. Panics on any other failure, and on a missing
    /// PgBouncer when it is required.
    pub fn start_or_skip(cluster: &TempCluster, options: &PgBouncerOptions) -> Option<Self> {
        match TempPgBouncer::start(cluster, options) {
            Ok(bouncer) => Some(bouncer),
            Err(PgBouncerError::NotInstalled) if !pgbouncer_required() => {
                eprintln!("skipped: {}", PgBouncerError::NotInstalled);
                None
            }
            Err(e @ PgBouncerError::NotInstalled) => {
                panic!("{e}, and {REQUIRE_PGBOUNCER_VAR}=1 requires it")
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn write_config(
        &self,
        cluster: &TempCluster,
        options: &PgBouncerOptions,
        owner: Option<(u32, u32)>,
    ) -> io::Result<()> {
        let auth_file = self.root.join("userlist.txt");
        let mut ini = String::from("; pgpool throwaway PgBouncer\n[databases]\n");
        let _ = writeln!(
            ini,
            "postgres = host=127.0.0.1 port={} dbname=postgres user=postgres",
            cluster.port()
        );
        let _ = writeln!(ini, "\n[pgbouncer]");
        for line in [
            "listen_addr = 127.0.0.1".to_string(),
            format!("listen_port = {}", self.port),
            // No Unix socket: nothing to collide with the machine's own PgBouncer.
            "unix_socket_dir =".into(),
            "auth_type = trust".into(),
            format!("auth_file = {}", auth_file.display()),
            "admin_users = postgres".into(),
            "stats_users = postgres".into(),
            format!("pool_mode = {}", options.pool_mode),
            format!("default_pool_size = {}", options.default_pool_size),
            "min_pool_size = 0".into(),
            "reserve_pool_size = 0".into(),
            format!("max_client_conn = {}", options.max_client_conn),
            format!(
                "ignore_startup_parameters = {}",
                options.ignore_startup_parameters.join(",")
            ),
            format!("logfile = {}", self.log_path().display()),
            format!("pidfile = {}", self.pid_path().display()),
            "server_login_retry = 1".into(),
            "log_connections = 0".into(),
            "log_disconnections = 0".into(),
        ]
        .iter()
        .chain(&options.extra_conf)
        {
            let _ = writeln!(ini, "{line}");
        }
        let ini_path = self.ini_path();
        fs::write(&ini_path, ini)?;
        fs::write(&auth_file, "\"postgres\" \"\"\n")?;
        let _ = fs::remove_file(self.pid_path());
        if let Some((uid, gid)) = owner {
            for path in [&ini_path, &auth_file] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }

    fn spawn(&mut self, binary: &Path, run_as: Option<&str>) -> io::Result<()> {
        let mut cmd = match run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let stderr = fs::File::create(self.root.join("stderr.log"))?;
        cmd.arg(self.ini_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .current_dir(&self.root);
        self.child = Some(cmd.spawn()?);
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(other(format!(
                        "pgbouncer exited at start ({status}): {}",
                        self.logs()
                    )));
                }
            }
            // Listening and our own (the pid file is written once the socket is bound).
            if self.pid_path().exists()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(other(format!(
                    "pgbouncer did not accept connections on 127.0.0.1:{} within 15 s: {}",
                    self.port,
                    self.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> String {
        let read = |p: PathBuf| fs::read_to_string(p).unwrap_or_default();
        format!(
            "{}{}",
            read(self.root.join("stderr.log")),
            read(self.log_path())
        )
    }

    /// Stops PgBouncer (SIGTERM to the process from the pid file and to the child), bounded.
    fn stop(&mut self) {
        if let Some(pid) = self.pgbouncer_pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        let _ = fs::remove_file(self.pid_path());
    }

    fn pgbouncer_pid(&self) -> Option<u32> {
        fs::read_to_string(self.pid_path())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops PgBouncer if this process dies without dropping it.
    fn spawn_watchdog(&mut self) {
        self.watchdog = spawn_watchdog(&format!(
            "p=$(cat '{pidfile}' 2>/dev/null) && kill -TERM \"$p\" 2>/dev/null; rm -rf '{root}'",
            pidfile = self.pid_path().display(),
            root = self.root.display(),
        ));
    }

    fn ini_path(&self) -> PathBuf {
        self.root.join("pgbouncer.ini")
    }

    fn pid_path(&self) -> PathBuf {
        self.root.join("pgbouncer.pid")
    }

    /// The temporary directory (configuration, auth file, log, pid file), removed on drop.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// PgBouncer's log file.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("pgbouncer.log")
    }

    /// The port PgBouncer listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The configured `default_pool_size`: the most server connections PgBouncer opens.
    pub fn default_pool_size(&self) -> u32 {
        self.default_pool_size
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the cluster, through PgBouncer.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The admin console (`postgres://postgres@127.0.0.1:PORT/pgbouncer`); it speaks only
    /// the simple query protocol.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/pgbouncer", self.port)
    }

    /// A session on the admin console (simple queries only: `SHOW POOLS`, `SHOW SERVERS`).
    pub fn admin(&self) -> io::Result<postgres::Client> {
        let mut config: postgres::Config = self
            .admin_url()
            .parse()
            .map_err(|e| other(format!("{e}")))?;
        config.connect_timeout(Duration::from_secs(10));
        config
            .connect(postgres::NoTls)
            .map_err(|e| other(format!("connecting to the pgbouncer admin console: {e}")))
    }

    /// `SHOW SERVERS` on the admin console: how many server connections PgBouncer holds to
    /// the database `postgres` (active, idle, used, tested, or logging in).
    pub fn server_connections(&self) -> io::Result<usize> {
        let mut admin = self.admin()?;
        let messages = admin
            .simple_query("SHOW SERVERS")
            .map_err(|e| other(format!("SHOW SERVERS: {e}")))?;
        Ok(messages
            .iter()
            .filter(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => row.get("database") == Some("postgres"),
                _ => false,
            })
            .count())
    }
}

impl Drop for TempPgBouncer {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}
