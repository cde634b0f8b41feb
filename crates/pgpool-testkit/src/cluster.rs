//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, a free port on
//! 127.0.0.1 plus a private Unix-socket directory, started with `pg_ctl`, and stopped and
//! removed when the [`TempCluster`] is dropped (or, if this process dies first, by a small
//! watchdog process). The demo, the tests and the benchmarks run on it when no database URL
//! is given. Never touches the machine's port 5432.
//!
//! PostgreSQL refuses to run as root; when this process is root the server runs as the
//! `postgres` user (or `nobody`), via `runuser`.
//!
//! The cluster has a superuser `postgres` (trust authentication) and a password user
//! [`SCRAM_USER`] that must authenticate with SCRAM-SHA-256 over TCP.
//!
//! [`ClusterOptions::hba`] replaces `pg_hba.conf`, and [`ClusterOptions::tls`] turns on TLS
//! with a given server certificate (see [`ClusterTls`]); a TLS cluster also listens on every
//! loopback address that `localhost` resolves to, so `host=localhost` reaches it.
//!
//! ```no_run
//! let cluster = pgpool_testkit::TempCluster::start().expect("PostgreSQL server binaries");
//! let pool = pgpool::Pool::builder().build(&cluster.url()).unwrap();
//! assert!(pool.health().ok);
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The password-authenticated role every cluster has.
pub const SCRAM_USER: &str = "pgpool_scram";
/// Its password.
pub const SCRAM_PASSWORD: &str = "pgpool-secret";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// How to stop the server (`pg_ctl stop -m …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Wait for sessions to end; refuse new connections meanwhile (57P03).
    Smart,
    /// Terminate sessions (57P01) and shut down cleanly.
    Fast,
    /// Abort like a crash: sessions get no goodbye.
    Immediate,
}

impl StopMode {
    fn as_str(self) -> &'static str {
        match self {
            StopMode::Smart => "smart",
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// Options for [`TempCluster::start_with`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `max_connections`. Defaults to 200.
    pub max_connections: u32,
    /// Extra `postgresql.conf` lines.
    pub extra_conf: Vec<String>,
    /// The whole content of `pg_hba.conf`, replacing the default rules (`local` and
    /// loopback `host` trust, SCRAM for [`SCRAM_USER`]). Keep a `local all postgres trust`
    /// line: the cluster's own setup and [`TempCluster::admin`] connect over the Unix socket
    /// when this is set. Defaults to `None` (the default rules).
    pub hba: Option<String>,
    /// TLS for the server (`ssl = on`). Defaults to `None` (TLS off: the server answers `N`
    /// to an SSLRequest).
    pub tls: Option<ClusterTls>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            max_connections: 200,
            extra_conf: Vec::new(),
            hba: None,
            tls: None,
        }
    }
}

/// The server's TLS material, as PEM. Written into the data directory (owned by the user
/// the server runs as; the key with mode 0600) and named by `ssl_cert_file`,
/// `ssl_key_file` and, with a CA, `ssl_ca_file`.
#[derive(Clone)]
pub struct ClusterTls {
    /// The server certificate (chain, leaf first).
    pub cert_pem: String,
    /// The server certificate's private key.
    pub key_pem: String,
    /// CA certificates the server trusts for client certificates (`ssl_ca_file`), needed
    /// for `cert` authentication and `clientcert=` in `pg_hba.conf`.
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &format_args!("***"))
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .finish()
    }
}

/// A running throwaway cluster. See the [module documentation](self).
#[derive(Debug)]
pub struct TempCluster {
    root: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    bindir: PathBuf,
    port: u16,
    run_as: Option<String>,
    watchdog: Option<Child>,
    /// Addresses the server listens on (127.0.0.1 first).
    listen: Vec<IpAddr>,
    /// Setup and [`TempCluster::admin`] go over the Unix socket (a custom `pg_hba.conf`).
    admin_over_socket: bool,
    /// The network namespace the server runs in (see [`TempCluster::start_in_netns`]).
    netns: Option<String>,
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `$PGPOOL_PG_BINDIR`, else
/// `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn server_bindir() -> io::Result<PathBuf> {
    let has_initdb = |p: &Path| p.join("initdb").is_file() && p.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PGPOOL_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if has_initdb(&dir) {
            return Ok(dir);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&dir) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, p)| has_initdb(p))
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, p)| p).ok_or_else(|| {
        other(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup.sh \
             (or `apt-get install postgresql`), or set PGPOOL_PG_BINDIR",
        )
    })
}

/// The user servers run as: `None` when not root; as root (PostgreSQL and PgBouncer refuse
/// to run as root), `postgres` or else `nobody`.
pub(crate) fn run_as_user() -> io::Result<Option<String>> {
    if effective_uid() != Some(0) {
        return Ok(None);
    }
    ["postgres", "nobody"]
        .into_iter()
        .find(|u| user_ids(u).is_some())
        .map(|u| Some(u.to_string()))
        .ok_or_else(|| other("running as root and no 'postgres' or 'nobody' user"))
}

/// A new directory `<tmp>/<prefix>-<pid>-<seq>-<random>`.
pub(crate) fn scratch_dir(prefix: &str) -> io::Result<PathBuf> {
    let root = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{:04x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        fastrand::u16(..)
    ));
    fs::create_dir_all(&root)?;
    Ok(root)
}

/// A cluster's scratch directory and its socket directory inside, both owned by the user
/// the server runs as.
fn cluster_dirs(prefix: &str, run_as: Option<&str>) -> io::Result<(PathBuf, PathBuf)> {
    let root = scratch_dir(prefix)?;
    let socket_dir = root.join("s");
    fs::create_dir_all(&socket_dir)?;
    if let Some(user) = run_as {
        let (uid, gid) = user_ids(user).ok_or_else(|| other("cannot resolve run-as user"))?;
        std::os::unix::fs::chown(&root, Some(uid), Some(gid))?;
        std::os::unix::fs::chown(&socket_dir, Some(uid), Some(gid))?;
    }
    Ok((root, socket_dir))
}

/// Runs `cleanup` (a shell command) once this process has exited, from a watchdog process
/// in a session of its own (setsid), so that a signal to this process's group (Ctrl-C, a
/// test runner's timeout) does not take the watchdog down with it. `None` if it cannot start.
pub(crate) fn spawn_watchdog(cleanup: &str) -> Option<Child> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {cleanup}",
        pid = std::process::id()
    );
    let mut cmd = if Path::new("/usr/bin/setsid").exists() {
        let mut c = Command::new("/usr/bin/setsid");
        c.arg("sh");
        c
    } else {
        Command::new("sh")
    };
    cmd.args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

pub(crate) fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

pub(crate) fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// A port free on 127.0.0.1 and on every other address in `listen`.
pub(crate) fn free_port(listen: &[IpAddr]) -> io::Result<u16> {
    let mut last_err = None;
    for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.1:0")?;
        let port = first.local_addr()?.port();
        let others: io::Result<Vec<TcpListener>> = listen
            .iter()
            .filter(|ip| **ip != IpAddr::V4(Ipv4Addr::LOCALHOST))
            .map(|ip| TcpListener::bind((*ip, port)))
            .collect();
        match others {
            Ok(_) => return Ok(port),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| other("no free port")))
}

/// 127.0.0.1, plus the other loopback addresses `localhost` resolves to when `localhost`
/// should reach the server too.
fn listen_addresses(with_localhost: bool) -> Vec<IpAddr> {
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if with_localhost {
        for addr in ("localhost", 0).to_socket_addrs().into_iter().flatten() {
            let ip = addr.ip();
            if ip.is_loopback() && !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    ips
}

impl TempCluster {
    /// Starts a cluster with default options.
    pub fn start() -> io::Result<TempCluster> {
        TempCluster::start_with(&ClusterOptions::default())
    }

    /// Starts a cluster: `initdb`, configuration, `pg_ctl start`, the SCRAM role.
    pub fn start_with(options: &ClusterOptions) -> io::Result<TempCluster> {
        TempCluster::start_inner(options, None)
    }

    /// Starts a cluster whose server runs inside the network namespace `netns` (started with
    /// `ip netns exec`) and listens only on `addr`, an address of that namespace. Setup and
    /// [`admin`](TempCluster::admin) go over the Unix socket, which does not depend on the
    /// network; without [`ClusterOptions::hba`], TCP clients from any address are trusted
    /// (and [`SCRAM_USER`] must use SCRAM). [`url`](TempCluster::url) names `addr`. Needs root.
    pub fn start_in_netns(
        options: &ClusterOptions,
        netns: &str,
        addr: IpAddr,
    ) -> io::Result<TempCluster> {
        TempCluster::start_inner(options, Some((netns, addr)))
    }

    fn start_inner(
        options: &ClusterOptions,
        netns: Option<(&str, IpAddr)>,
    ) -> io::Result<TempCluster> {
        let bindir = server_bindir()?;
        let run_as = run_as_user()?;
        let (root, socket_dir) = cluster_dirs("pgpool", run_as.as_deref())?;
        let mut cluster = TempCluster {
            data: root.join("data"),
            root,
            socket_dir,
            bindir,
            port: 0,
            run_as,
            watchdog: None,
            listen: match netns {
                Some((_, addr)) => vec![addr],
                None => listen_addresses(options.tls.is_some()),
            },
            admin_over_socket: options.hba.is_some() || netns.is_some(),
            netns: netns.map(|(ns, _)| ns.to_string()),
        };
        // Inside a fresh namespace every port is free; the listen address does not exist
        // here, so only 127.0.0.1 is tried.
        let port_check = if cluster.netns.is_some() {
            Vec::new()
        } else {
            cluster.listen.clone()
        };
        cluster.spawn_watchdog();
        cluster.initdb(options)?;
        cluster.start_on_a_free_port(&port_check)?;
        let mut admin = cluster.admin()?;
        admin
            .batch_execute(&format!(
                "CREATE ROLE {SCRAM_USER} LOGIN PASSWORD '{SCRAM_PASSWORD}'"
            ))
            .map_err(|e| other(format!("creating the SCRAM role: {e}")))?;
        Ok(cluster)
    }

    /// Picks a free port and starts the server on it, trying again when another process took
    /// the port in between.
    fn start_on_a_free_port(&mut self, port_check: &[IpAddr]) -> io::Result<()> {
        let mut last_err = None;
        for _ in 0..5 {
            self.port = free_port(port_check)?;
            self.write_port()?;
            match self.start_server() {
                Ok(()) => return Ok(()),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| other("no free port")))
    }

    /// Starts a hot standby of this (running) cluster, fed by streaming replication:
    /// `pg_basebackup -R` over the Unix socket into a directory of its own, with a port and a
    /// socket directory of its own and the same authentication rules. It follows this server
    /// until [`promote`](TempCluster::promote)d. Clusters with [`ClusterOptions::hba`] need a
    /// `local replication all trust` line. The standby of a cluster in a network namespace
    /// runs in this process's namespace, on 127.0.0.1, and streams over the Unix socket, so
    /// it keeps up while the namespace's link is cut.
    ///
    /// ```no_run
    /// let primary = pgpool_testkit::TempCluster::start().unwrap();
    /// let standby = primary.start_standby().unwrap();
    /// primary.wait_replayed(&standby, std::time::Duration::from_secs(10)).unwrap();
    /// ```
    pub fn start_standby(&self) -> io::Result<TempCluster> {
        let (root, socket_dir) = cluster_dirs("pgpool-standby", self.run_as.as_deref())?;
        let mut standby = TempCluster {
            data: root.join("data"),
            root,
            socket_dir,
            bindir: self.bindir.clone(),
            port: 0,
            run_as: self.run_as.clone(),
            watchdog: None,
            listen: match self.netns {
                Some(_) => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                None => self.listen.clone(),
            },
            admin_over_socket: self.admin_over_socket,
            netns: None,
        };
        standby.spawn_watchdog();
        let mut cmd = standby.command("pg_basebackup");
        cmd.arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-D"])
            .arg(&standby.data)
            .args(["-R", "-X", "stream", "--checkpoint=fast", "--no-sync"]);
        standby.run(cmd, "pg_basebackup")?;
        // The copied postgresql.conf names the primary's socket directory; port.conf is
        // included after it, so the standby's own settings go there.
        let port_check = standby.listen.clone();
        standby.start_on_a_free_port(&port_check)?;
        Ok(standby)
    }

    /// Ends recovery on a standby (`pg_ctl promote`) and waits until it accepts writes.
    pub fn promote(&self) -> io::Result<()> {
        let mut cmd = self.command("pg_ctl");
        cmd.args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("promote");
        self.run(cmd, "pg_ctl promote")
    }

    /// Waits until `standby` has replayed everything this server has committed so far: a
    /// marker row written here (in the table `pgpool_testkit_replay`, created on first use)
    /// becomes visible there. (A WAL position would not do: with `synchronous_commit = off`
    /// the last commits may not be written yet, and the insert position may lie past a page
    /// header no record has reached.)
    pub fn wait_replayed(&self, standby: &TempCluster, timeout: Duration) -> io::Result<()> {
        let sql_err = |e: postgres::Error| other(format!("checking replication: {e}"));
        let token = format!(
            "{}-{}-{:08x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let mut admin = self.admin()?;
        admin
            .batch_execute("CREATE TABLE IF NOT EXISTS pgpool_testkit_replay (token text)")
            .map_err(sql_err)?;
        admin
            .execute("INSERT INTO pgpool_testkit_replay VALUES ($1)", &[&token])
            .map_err(sql_err)?;
        let mut replica = standby.admin()?;
        let start = std::time::Instant::now();
        loop {
            // Before the CREATE TABLE is replayed, the table does not exist there yet.
            let seen = replica
                .query_opt(
                    "SELECT 1 FROM pgpool_testkit_replay WHERE token = $1",
                    &[&token],
                )
                .map(|row| row.is_some())
                .unwrap_or(false);
            if seen {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(other(format!(
                    "the standby had not replayed the primary's last commit after {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        cmd.stdin(Stdio::null()).current_dir(&self.root);
        cmd
    }

    fn run(&self, mut cmd: Command, what: &str) -> io::Result<()> {
        let out = cmd.output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(other(format!(
                "{what} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    }

    fn initdb(&self, options: &ClusterOptions) -> io::Result<()> {
        let mut cmd = self.command("initdb");
        cmd.args([
            "-A",
            "trust",
            "--nosync",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "-D",
        ])
        .arg(&self.data);
        self.run(cmd, "initdb")?;
        // The addresses, the port and the socket directory are in port.conf (`write_port`).
        let mut conf = String::from("\n# pgpool throwaway cluster\n");
        for line in [
            "fsync = off".to_string(),
            "synchronous_commit = off".into(),
            "full_page_writes = off".into(),
            format!("max_connections = {}", options.max_connections),
            "shared_buffers = 32MB".into(),
            "log_line_prefix = '%m [%p] %e '".into(),
            "password_encryption = 'scram-sha-256'".into(),
            "include_if_exists = 'port.conf'".into(),
        ]
        .iter()
        .chain(&self.write_tls(options.tls.as_ref())?)
        .chain(&options.extra_conf)
        {
            let _ = writeln!(conf, "{line}");
        }
        let conf_path = self.data.join("postgresql.conf");
        let mut existing = fs::read_to_string(&conf_path)?;
        existing.push_str(&conf);
        fs::write(&conf_path, existing)?;
        let hba = match &options.hba {
            Some(hba) => hba.clone(),
            None if self.netns.is_some() => format!(
                "local all all trust\n\
                 local replication all trust\n\
                 host all {SCRAM_USER} 0.0.0.0/0 scram-sha-256\n\
                 host all all 0.0.0.0/0 trust\n"
            ),
            None => format!(
                "local all all trust\n\
                 local replication all trust\n\
                 host all {SCRAM_USER} 127.0.0.1/32 scram-sha-256\n\
                 host all {SCRAM_USER} ::1/128 scram-sha-256\n\
                 host all all 127.0.0.1/32 trust\n\
                 host all all ::1/128 trust\n"
            ),
        };
        fs::write(self.data.join("pg_hba.conf"), hba)?;
        Ok(())
    }

    /// Writes the TLS files into the data directory; returns the `postgresql.conf` lines.
    fn write_tls(&self, tls: Option<&ClusterTls>) -> io::Result<Vec<String>> {
        let Some(tls) = tls else {
            return Ok(Vec::new());
        };
        let owner = match &self.run_as {
            Some(user) => Some(user_ids(user).ok_or_else(|| other("cannot resolve run-as user"))?),
            None => None,
        };
        let write = |name: &str, content: &str, mode: u32| -> io::Result<PathBuf> {
            use std::os::unix::fs::PermissionsExt as _;
            let path = self.data.join(name);
            fs::write(&path, content)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
            }
            Ok(path)
        };
        let quoted = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "''"));
        let cert = write("server.crt", &tls.cert_pem, 0o644)?;
        let key = write("server.key", &tls.key_pem, 0o600)?;
        let mut lines = vec![
            "ssl = on".to_string(),
            format!("ssl_cert_file = {}", quoted(&cert)),
            format!("ssl_key_file = {}", quoted(&key)),
        ];
        if let Some(ca) = &tls.ca_pem {
            let ca = write("root.crt", ca, 0o644)?;
            lines.push(format!("ssl_ca_file = {}", quoted(&ca)));
        }
        Ok(lines)
    }

    /// Writes `port.conf`, included by `postgresql.conf`: the addresses, the port and the
    /// socket directory (a standby's `postgresql.conf` is its primary's copy; this file is
    /// its own).
    fn write_port(&self) -> io::Result<()> {
        let path = self.data.join("port.conf");
        let socket_dir = self.socket_dir.display().to_string().replace('\'', "''");
        let listen = self
            .listen
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(",");
        fs::write(
            &path,
            format!(
                "port = {}\nunix_socket_directories = '{socket_dir}'\nlisten_addresses = '{listen}'\n",
                self.port
            ),
        )?;
        if let Some(user) = &self.run_as {
            if let Some((uid, gid)) = user_ids(user) {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }

    /// Stops the server and deletes the cluster if this process dies without dropping it.
    fn spawn_watchdog(&mut self) {
        let pg_ctl = self.bindir.join("pg_ctl");
        let as_user = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- "),
            None => String::new(),
        };
        self.watchdog = spawn_watchdog(&format!(
            "{as_user}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{root}'",
            pg_ctl = pg_ctl.display(),
            data = self.data.display(),
            root = self.root.display(),
        ));
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_server(&self) -> io::Result<()> {
        let mut cmd = match &self.netns {
            // The postmaster and its backends inherit the namespace; stopping works from
            // anywhere (pg_ctl signals the pid in postmaster.pid).
            Some(ns) => {
                let inner = self.command("pg_ctl");
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns])
                    .arg(inner.get_program())
                    .args(inner.get_args());
                c.stdin(Stdio::null()).current_dir(&self.root);
                c
            }
            None => self.command("pg_ctl"),
        };
        cmd.args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(self.log_path())
            .arg("start");
        self.run(cmd, "pg_ctl start")
    }

    /// Stops the server with `mode` and waits until it is down.
    pub fn stop_server(&self, mode: StopMode) -> io::Result<()> {
        let mut cmd = self.command("pg_ctl");
        cmd.args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-m", mode.as_str(), "stop"]);
        self.run(cmd, "pg_ctl stop")
    }

    /// Restarts the server (`-m fast`): every session is terminated.
    pub fn restart(&self) -> io::Result<()> {
        self.stop_server(StopMode::Fast)?;
        self.start_server()
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication); a cluster in a
    /// network namespace names its listen address instead of 127.0.0.1.
    pub fn url(&self) -> String {
        format!("postgres://postgres@{}:{}/postgres", self.host(), self.port)
    }

    /// The same server in `key=value` form.
    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.listen
                .first()
                .copied()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            self.port
        )
    }

    /// The first listen address, as a URL host (127.0.0.1 unless in a network namespace).
    fn host(&self) -> String {
        match self.listen.first() {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
            None => Ipv4Addr::LOCALHOST.to_string(),
        }
    }

    /// `key=value` connection string over the Unix-domain socket.
    pub fn unix_conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.socket_dir.display(),
            self.port
        )
    }

    /// URL of the SCRAM-authenticated user with `password`.
    pub fn scram_url(&self, password: &str) -> String {
        format!(
            "postgres://{SCRAM_USER}:{password}@{}:{}/postgres",
            self.host(),
            self.port
        )
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The Unix-socket directory.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server binary directory (also has `pgbench` and `psql` when installed).
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The server log.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// A superuser session, for test setup and fault injection: over TCP, or over the Unix
    /// socket when [`ClusterOptions::hba`] replaced the authentication rules.
    pub fn admin(&self) -> io::Result<postgres::Client> {
        let mut config: postgres::Config = if self.admin_over_socket {
            let mut config = postgres::Config::new();
            config
                .host_path(&self.socket_dir)
                .port(self.port)
                .user("postgres")
                .dbname("postgres");
            config
        } else {
            self.url().parse().map_err(|e| other(format!("{e}")))?
        };
        config.application_name("pgpool-admin");
        config.connect_timeout(Duration::from_secs(10));
        config
            .connect(postgres::NoTls)
            .map_err(|e| other(format!("connecting to the throwaway cluster: {e}")))
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let _ = self.stop_server(StopMode::Immediate);
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}
