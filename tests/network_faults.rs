//! Network faults through a TCP proxy in the test: a stalled path, cut connections, a connect
//! that hangs after the TCP handshake. Each checks that the caller's acquire deadline holds
//! and that the pool recovers when the network does.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::wait_until;
use pgpool::CloseReason;

const LONG: Duration = Duration::from_secs(15);

fn proxied() -> (Proxy, String) {
    let config: postgres::Config = common::url().parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port)));
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port());
    (proxy, url)
}

#[test]
fn validation_on_a_stalled_network_stays_inside_the_acquire_deadline() {
    let (proxy, url) = proxied();
    let app = common::app_name("stalled_validation");
    let pool = common::builder(&app)
        .max_size(1)
        .validation_skip_window(Duration::ZERO) // validate on every acquire
        .validation_timeout(Duration::from_secs(10)) // far longer than the caller will wait
        .acquire_timeout(Duration::from_millis(700))
        .connect_timeout(Duration::from_millis(500))
        .build(&url)
        .unwrap();
    pool.get().unwrap().query_one("SELECT 1", &[]).unwrap();

    proxy.stall(true);
    let start = Instant::now();
    let err = pool.get().unwrap_err();
    let waited = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(
        waited < Duration::from_secs(2),
        "the validation round trip was cut at the caller's deadline, not at validation_timeout: {waited:?}"
    );
    assert_eq!(pool.stats().closed(CloseReason::FailedValidation), 1);

    proxy.stall(false);
    assert!(wait_until(LONG, || pool.get().is_ok()));
    pool.get().unwrap().query_one("SELECT 1", &[]).unwrap();
}

#[test]
fn cut_connections_are_replaced_before_anyone_uses_them() {
    let (proxy, url) = proxied();
    let app = common::app_name("cut");
    let pool = common::builder(&app)
        .max_size(2)
        .validate_on_acquire(false)
        .keepalive_interval(None)
        .build(&url)
        .unwrap();
    let held: Vec<_> = (0..2).map(|_| pool.get().unwrap()).collect();
    // Through a proxy the server sees other ports than ours; the sockets are still located.
    assert!(held.iter().all(|c| c.socket_bounds().is_some()));
    drop(held);
    proxy.cut();
    for _ in 0..4 {
        let mut conn = pool.get().unwrap();
        conn.query_one("SELECT 1", &[]).unwrap();
    }
    assert_eq!(pool.stats().closed(CloseReason::FailedValidation), 2);
}

#[test]
fn a_connect_hanging_after_the_handshake_does_not_hold_the_caller_past_its_deadline() {
    let (proxy, url) = proxied();
    let app = common::app_name("hung_connect");
    let pool = common::builder(&app).max_size(1).build(&url).unwrap();
    proxy.stall(true);
    let start = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(400)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(err.is_timeout());
    assert!(err.to_string().contains("connecting 1"), "{err}");
    // When the network comes back, the connect in flight completes and serves the next caller.
    proxy.stall(false);
    let mut conn = pool.get_timeout(LONG).unwrap();
    conn.query_one("SELECT 1", &[]).unwrap();
    assert_eq!(pool.stats().connections_created, 1);
}

#[test]
fn a_stalled_connect_does_not_hold_back_another_pools_connects() {
    let cluster = common::private_cluster();
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], cluster.port())));
    let app = common::app_name("stall_isolation");
    let stalled = common::builder(&app)
        .max_size(1)
        .build(&format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            proxy.port()
        ))
        .unwrap();
    proxy.stall(true);
    // Its first connect hangs after the TCP handshake, inside socket location.
    assert!(stalled.get_timeout(Duration::from_millis(300)).is_err());
    // A pool over the Unix socket (also located by elimination) connects meanwhile.
    let other = common::builder(&app)
        .max_size(1)
        .build(&cluster.unix_conninfo())
        .unwrap();
    let start = Instant::now();
    let mut conn = other.get_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    conn.query_one("SELECT 1", &[]).unwrap();
    assert!(
        conn.socket_bounds().is_none(),
        "a Unix socket has no TCP bounds"
    );
    proxy.stall(false);
}
