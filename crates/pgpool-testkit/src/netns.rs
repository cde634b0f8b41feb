//! A real network partition between this process and a throwaway PostgreSQL server:
//! [`NetnsCluster`] puts the server in a network namespace of its own, joined to this
//! process's namespace by a veth pair, and [`cut`](NetnsCluster::cut) silently drops every
//! packet in both directions until [`heal`](NetnsCluster::heal). Unlike a user-space proxy,
//! nothing acknowledges data or keepalive probes during a cut, so the kernel's own timers
//! (`TCP_USER_TIMEOUT`, keepalives, retransmissions, SYN retries) are what a client meets.
//!
//! Layout (names and addresses unique per fixture: process id and a counter):
//!
//! ```text
//!  this process (root namespace)            namespace pgp<pid>x<n>
//!  pr<pid>x<n>  10.a.b.c+1/30  <== veth ==>  pn<pid>x<n>  10.a.b.c+2/30   postgres listens here
//! ```
//!
//! How the cut stays silent: the *namespace* end is taken down. The root end then loses its
//! carrier but keeps its address and its connected route (marked `linkdown`), so packets to
//! the server still go into the veth, where they are dropped; a permanent neighbour entry for
//! the server's address (permanent entries survive a carrier loss) means there is no ARP
//! failure, so a new connect hangs in `SYN_SENT` instead of failing with `EHOSTUNREACH`.
//! Taking the root end down instead would remove the route, and packets would leave by the
//! default route (an immediate error, or on some machines an unrelated host answering).
//!
//! Needs root (or `CAP_NET_ADMIN` + `CAP_SYS_ADMIN`) and the `ip` tool; where either is
//! missing [`NetnsCluster::start`] returns [`NetnsError::Unavailable`], which tests report
//! as skipped. The server's Unix socket lives in the file system, so
//! [`admin`](NetnsCluster::admin) keeps working during a cut.
//!
//! The namespace and the veth pair are deleted on drop (also while unwinding from a failed
//! assertion) and, if this process dies without dropping, by a watchdog process.
//!
//! ```no_run
//! use pgpool_testkit::netns::NetnsCluster;
//! let net = NetnsCluster::start().expect("root and the ip tool");
//! let pool = pgpool::Pool::builder().build(&net.url()).unwrap();
//! net.cut().unwrap();
//! assert!(pool.get_timeout(std::time::Duration::from_secs(1)).is_err());
//! net.heal().unwrap();
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::{ClusterOptions, TempCluster};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Why a [`NetnsCluster`] could not be made.
#[derive(Debug)]
pub enum NetnsError {
    /// This machine or user cannot make network namespaces (not root, no `ip`, `EPERM`):
    /// a test should report itself skipped, naming the reason.
    Unavailable(String),
    /// The namespace was made but something after it failed (addresses, the server): a
    /// real failure, not a reason to skip.
    Failed(io::Error),
}

impl fmt::Display for NetnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsError::Unavailable(why) => write!(f, "network namespaces unavailable: {why}"),
            NetnsError::Failed(e) => write!(f, "network namespace fixture failed: {e}"),
        }
    }
}

impl std::error::Error for NetnsError {}

impl From<io::Error> for NetnsError {
    fn from(e: io::Error) -> NetnsError {
        NetnsError::Failed(e)
    }
}

/// Runs `ip ARGS`; a failure carries the command and its stderr.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(e.kind(), "the `ip` tool (iproute2) is not installed")
            } else {
                e
            }
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `ip ARGS` output, for checks.
fn ip_output(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The namespace, the veth pair and their addresses. Dropping deletes them.
#[derive(Debug)]
struct Net {
    ns: String,
    root_if: String,
    ns_if: String,
    root_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
    root_mac: String,
    ns_mac: String,
    /// Whether the namespace and the veth pair exist yet (what Drop must delete).
    made_ns: bool,
    made_link: bool,
    watchdog: Option<Child>,
}

impl Net {
    /// Picks names and a /30 not used on this machine, derived from the pid and a counter.
    fn choose() -> io::Result<Net> {
        let pid = std::process::id();
        for _ in 0..64 {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            // 22 bits of 10.0.0.0/8 in /30 steps: 16 bits of pid, 6 of counter.
            let index = ((pid & 0xFFFF) << 6) | (n & 0x3F);
            let base = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + index * 4;
            let net = Net {
                ns: format!("pgp{pid}x{n}"),
                root_if: format!("pr{pid}x{n}"),
                ns_if: format!("pn{pid}x{n}"),
                root_ip: Ipv4Addr::from(base + 1),
                ns_ip: Ipv4Addr::from(base + 2),
                // Locally administered unicast addresses, distinct per fixture.
                root_mac: mac(0x02, index),
                ns_mac: mac(0x06, index),
                made_ns: false,
                made_link: false,
                watchdog: None,
            };
            let subnet = format!("{}/30", Ipv4Addr::from(base));
            let taken = Path::new("/run/netns").join(&net.ns).exists()
                || Path::new("/sys/class/net").join(&net.root_if).exists()
                || !ip_output(&["-o", "-4", "addr", "show", "to", &subnet])?
                    .trim()
                    .is_empty();
            if !taken {
                return Ok(net);
            }
        }
        Err(io::Error::other(
            "no free namespace name and /30 subnet after 64 tries",
        ))
    }

    /// Makes the namespace and the link, both ends up with permanent neighbour entries.
    fn create(&mut self) -> Result<(), NetnsError> {
        let unavailable = |e: io::Error| NetnsError::Unavailable(e.to_string());
        ip(&["netns", "add", &self.ns]).map_err(unavailable)?;
        self.made_ns = true;
        self.spawn_watchdog();
        ip(&[
            "link",
            "add",
            &self.root_if,
            "address",
            &self.root_mac,
            "type",
            "veth",
            "peer",
            "name",
            &self.ns_if,
            "address",
            &self.ns_mac,
            "netns",
            &self.ns,
        ])
        .map_err(unavailable)?;
        self.made_link = true;
        let root_cidr = format!("{}/30", self.root_ip);
        let ns_cidr = format!("{}/30", self.ns_ip);
        ip(&["addr", "add", &root_cidr, "dev", &self.root_if])?;
        ip(&["link", "set", &self.root_if, "up"])?;
        ip(&["-n", &self.ns, "addr", "add", &ns_cidr, "dev", &self.ns_if])?;
        ip(&["-n", &self.ns, "link", "set", "lo", "up"])?;
        self.ns_up()?;
        self.pin_root_neighbour()?;
        Ok(())
    }

    /// The root end's neighbour entry for the server: permanent, so that a connect during a
    /// cut sends its SYN into the void instead of failing the ARP lookup.
    fn pin_root_neighbour(&self) -> io::Result<()> {
        let ns_ip = self.ns_ip.to_string();
        ip(&[
            "neigh",
            "replace",
            &ns_ip,
            "lladdr",
            &self.ns_mac,
            "dev",
            &self.root_if,
            "nud",
            "permanent",
        ])
    }

    /// Brings the namespace end up (again) and waits until the root end has its carrier.
    fn ns_up(&self) -> io::Result<()> {
        ip(&["-n", &self.ns, "link", "set", &self.ns_if, "up"])?;
        // Taking the link down flushed the namespace end's neighbour table.
        let root_ip = self.root_ip.to_string();
        ip(&[
            "-n",
            &self.ns,
            "neigh",
            "replace",
            &root_ip,
            "lladdr",
            &self.root_mac,
            "dev",
            &self.ns_if,
            "nud",
            "permanent",
        ])?;
        let carrier = Path::new("/sys/class/net")
            .join(&self.root_if)
            .join("carrier");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if std::fs::read_to_string(&carrier).is_ok_and(|c| c.trim() == "1") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "{} has no carrier 5 s after bringing its peer up",
                    self.root_if
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Deletes the link and the namespace if this process dies without dropping the fixture.
    fn spawn_watchdog(&mut self) {
        self.watchdog = crate::cluster::spawn_watchdog(&format!(
            "ip link del '{root_if}' >/dev/null 2>&1; ip netns del '{ns}' >/dev/null 2>&1",
            root_if = self.root_if,
            ns = self.ns,
        ));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting either end deletes the pair.
        if self.made_link {
            let _ = ip(&["link", "del", &self.root_if]);
        }
        if self.made_ns {
            let _ = ip(&["netns", "del", &self.ns]);
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

fn mac(first: u8, index: u32) -> String {
    let [_, b, c, d] = index.to_be_bytes();
    format!("{first:02x}:70:67:{b:02x}:{c:02x}:{d:02x}")
}

/// A throwaway PostgreSQL server behind a veth link that can be cut. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct NetnsCluster {
    // Fields drop in order: the server stops before its namespace goes.
    cluster: TempCluster,
    net: Net,
    cut: AtomicBool,
}

impl NetnsCluster {
    /// Makes the namespace and the link and starts a cluster with default options in it.
    pub fn start() -> Result<NetnsCluster, NetnsError> {
        NetnsCluster::start_with(&ClusterOptions::default())
    }

    /// As [`start`](NetnsCluster::start) with cluster options. Without
    /// [`ClusterOptions::hba`], TCP clients are trusted (the SCRAM user must use SCRAM).
    pub fn start_with(options: &ClusterOptions) -> Result<NetnsCluster, NetnsError> {
        let mut net = Net::choose().map_err(|e| NetnsError::Unavailable(e.to_string()))?;
        net.create()?;
        let cluster = TempCluster::start_in_netns(options, &net.ns, IpAddr::V4(net.ns_ip))?;
        Ok(NetnsCluster {
            cluster,
            net,
            cut: AtomicBool::new(false),
        })
    }

    /// `postgres://postgres@<server address>:PORT/postgres` (trust authentication).
    pub fn url(&self) -> String {
        self.cluster.url()
    }

    /// The server's TCP address, on the far side of the link.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.net.ns_ip, self.cluster.port()))
    }

    /// This side's address on the link.
    pub fn local_ip(&self) -> Ipv4Addr {
        self.net.root_ip
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        &self.net.ns
    }

    /// The cluster (its [`admin`](TempCluster::admin), stop and start).
    pub fn cluster(&self) -> &TempCluster {
        &self.cluster
    }

    /// A superuser session over the Unix socket: works during a cut.
    pub fn admin(&self) -> io::Result<postgres::Client> {
        self.cluster.admin()
    }

    /// Cuts the link: from now on every packet either way is dropped without an error
    /// (existing connections hear nothing, new connects hang in `SYN_SENT`). Idempotent.
    pub fn cut(&self) -> io::Result<()> {
        ip(&["-n", &self.net.ns, "link", "set", &self.net.ns_if, "down"])?;
        // Permanent entries survive the carrier loss; replacing it again costs nothing.
        self.net.pin_root_neighbour()?;
        self.cut.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Heals the link: packets flow again, connections that have not timed out resume.
    pub fn heal(&self) -> io::Result<()> {
        self.net.ns_up()?;
        self.net.pin_root_neighbour()?;
        self.cut.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// True between [`cut`](NetnsCluster::cut) and [`heal`](NetnsCluster::heal).
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}
