//! A DNS server that never answers: the connect deadline bounds the host name lookup too.
//!
//! `getaddrinfo` has no timeout of its own (10 s and more with the default `resolv.conf`). The
//! test runs a copy of this test binary in a network namespace of its own whose
//! `resolv.conf` (`/etc/netns/<ns>/resolv.conf`, which `ip netns exec` mounts over
//! `/etc/resolv.conf`) names a server on the namespace's loopback that reads every query
//! and answers none. The child checks that the resolver really is silent, then that a
//! connect to a host name fails by its `connect_timeout` with an error that says why. Where
//! namespaces cannot be made it prints `skipped: no netns (…)`; with `PGPOOL_REQUIRE_NETNS=1`
//! that is a failure.

use std::net::{ToSocketAddrs, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use pgpool::{ErrorKind, PgManager, Pool};

/// Set in the child's environment: run the child's part.
const CHILD: &str = "DNS_FAULT_CHILD";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// What a loaded 2-core machine may add.
const SLACK: Duration = Duration::from_millis(1500);

#[test]
fn a_silent_dns_server_costs_at_most_the_connect_timeout() {
    if std::env::var(CHILD).is_ok() {
        return child();
    }
    let ns = format!("pgpool-dns-{}", std::process::id());
    if let Err(why) = Command::new("ip")
        .args(["netns", "add", &ns])
        .output()
        .map_err(|e| e.to_string())
        .and_then(|o| {
            if o.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).trim().to_owned())
            }
        })
    {
        if std::env::var("PGPOOL_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
            panic!("PGPOOL_REQUIRE_NETNS=1 but no netns: {why}");
        }
        eprintln!("skipped: no netns ({why})");
        return;
    }
    let etc = std::path::PathBuf::from(format!("/etc/netns/{ns}"));
    let cleanup = Cleanup(ns.clone(), etc.clone());
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n",
    )
    .unwrap();
    let up = Command::new("ip")
        .args(["-n", &ns, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());

    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(&exe)
        .args([
            "--exact",
            "a_silent_dns_server_costs_at_most_the_connect_timeout",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(cleanup);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("child: ok"), "{text}");
    // The harness may print the test's name on the same line as its first output.
    for line in text
        .lines()
        .filter_map(|l| l.find("measured:").map(|i| &l[i..]))
    {
        println!("{line}");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "{text}");
}

/// Inside the namespace: a server that swallows queries, proof that the resolver hangs, then
/// the bounded connect.
fn child() {
    let _swallow = UdpSocket::bind("127.0.0.1:53").expect("bind the silent DNS server");
    let host = "db.pgpool-dns-fault.test";

    // The fault is real: a plain lookup is still waiting after 3 s.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send((host, 5432).to_socket_addrs().map(|a| a.count()));
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_err(),
        "the resolver answered: the fault is not in place"
    );

    let conninfo = format!("host={host} port=5432 user=app");
    // One connect: the lookup is bounded by the connect deadline.
    let settings = Pool::builder().env(false).connect_timeout(CONNECT_TIMEOUT);
    let manager = PgManager::new(&conninfo, settings.config()).unwrap();
    let start = Instant::now();
    let err = manager
        .open()
        .expect_err("no server behind a silent resolver");
    let took = start.elapsed();
    println!(
        "measured: a connect to a name the resolver never answers failed after {took:?}: {err}"
    );
    assert!(
        took <= CONNECT_TIMEOUT + SLACK,
        "took {took:?}: the resolver's own timeouts"
    );
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("resolving host name") && text.contains(host),
        "the error says why: {text}"
    );

    // A pool whose breaker opens at the first failure fails the acquire as quickly, with
    // that cause, instead of waiting out its acquire timeout.
    let pool = settings
        .breaker_threshold(Some(1))
        .acquire_timeout(Duration::from_secs(10))
        .build(&conninfo)
        .unwrap();
    let start = Instant::now();
    let err = pool.get().expect_err("no server behind a silent resolver");
    let took = start.elapsed();
    println!("measured: the acquire failed after {took:?}: {err}");
    assert!(took <= CONNECT_TIMEOUT + SLACK, "took {took:?}");
    assert!(err.to_string().contains("resolving host name"), "{err}");
    println!("child: ok");
}

/// Deletes the namespace and its `/etc/netns` directory, even when the test fails.
struct Cleanup(String, std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}
