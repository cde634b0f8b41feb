//! Network faults through a TCP proxy in the test: a stalled path, added latency, a
//! blackhole, connections cut at a chosen moment or after a chosen number of bytes, a connect
//! that hangs after the TCP handshake. Each checks that the caller's deadline holds, that the
//! error says what happened, and that the pool recovers when the network does. Timings are
//! printed on lines starting with `measured:`.

mod common;

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::wait_until;
use pgpool::{CloseReason, ErrorKind};

const LONG: Duration = Duration::from_secs(15);
/// What a loaded 2-core machine may add to any bound.
const SLACK: Duration = Duration::from_millis(1500);

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

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

#[test]
fn acquire_and_query_deadlines_hold_under_added_latency() {
    let (proxy, url) = proxied();
    let app = common::app_name("latency");
    let latency = Duration::from_millis(150); // each way: a round trip costs 300 ms or more
    proxy.delay(latency);
    let pool = common::builder(&app)
        .max_size(1)
        .validation_skip_window(Duration::ZERO) // validate on every acquire
        .validation_timeout(Duration::from_secs(10)) // far longer than the callers wait
        .build(&url)
        .unwrap();

    // A connect takes round trips: a shorter acquire gives up at its deadline.
    let wait = Duration::from_millis(200);
    let (result, took) = timed(|| pool.get_timeout(wait).map(|c| c.backend_pid()));
    let err = result.expect_err("no connect completes within one round trip");
    eprintln!(
        "measured: get_timeout({} ms) under {} ms latency returned after {} ms: {err}",
        ms(wait),
        ms(latency),
        ms(took)
    );
    assert!(took < wait + SLACK, "{took:?}");
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
        "{err}"
    );
    assert!(err.to_string().contains("connecting"), "{err}");

    // A longer one gets the connection that connect was opening.
    let (result, took) = timed(|| pool.get_timeout(LONG));
    let mut conn = result.unwrap();
    let (result, round_trip) = timed(|| conn.query_one("SELECT 1", &[]));
    result.unwrap();
    eprintln!(
        "measured: under {} ms latency: acquire with connect {} ms, one query {} ms",
        ms(latency),
        ms(took),
        ms(round_trip)
    );
    assert!(round_trip >= latency * 2, "{round_trip:?}");
    drop(conn);

    // The hand-out validation's round trip is cut at the caller's deadline.
    let wait = Duration::from_millis(150);
    let (result, took) = timed(|| pool.get_timeout(wait).map(|c| c.backend_pid()));
    let err = result.expect_err("a validation round trip takes longer than the wait");
    assert!(took < wait + SLACK, "{took:?}");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(pool.stats().closed(CloseReason::FailedValidation), 1);

    // A query timeout: cancelled on the server once it passes; the cancel's own round trips
    // go through the same latency.
    let mut conn = pool.get_timeout(LONG).unwrap();
    let query_timeout = Duration::from_millis(500);
    conn.set_query_timeout(Some(query_timeout));
    let (result, took) = timed(|| conn.query("SELECT pg_sleep(10)", &[]));
    let err = result.expect_err("the statement outlives its timeout");
    eprintln!(
        "measured: query_timeout {} ms under {} ms latency returned after {} ms: {err}",
        ms(query_timeout),
        ms(latency),
        ms(took)
    );
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
    assert!(
        took >= query_timeout && took < query_timeout + SLACK,
        "{took:?}"
    );
    // The session answered the cancel: it is kept and works.
    assert!(!conn.is_broken());
    conn.set_query_timeout(None);
    conn.query_one("SELECT 1", &[]).unwrap();
    proxy.delay(Duration::ZERO);
}

#[test]
fn a_cut_during_a_query_is_broken_with_unknown_outcome_and_the_pool_recovers() {
    let (proxy, url) = proxied();
    let app = common::app_name("cut_mid_query");
    let pool = common::builder(&app).max_size(1).build(&url).unwrap();
    let mut conn = pool.get().unwrap();
    let pid = conn.backend_pid();
    let (result, took) = thread::scope(|scope| {
        scope.spawn(|| {
            let mut admin = common::admin();
            assert!(wait_until(LONG, || {
                admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                        &[&pid],
                    )
                    .unwrap()
                    .get::<_, i64>(0)
                    == 1
            }));
            proxy.cut();
        });
        timed(|| conn.query("SELECT pg_sleep(10)", &[]))
    });
    let err = result.expect_err("the connection was cut under the statement");
    eprintln!(
        "measured: a cut during a statement failed it after {} ms: {err}",
        ms(took)
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(err.kind(), ErrorKind::Broken, "{err}");
    assert!(err.outcome_unknown());
    assert!(!err.is_retry_safe());
    assert!(conn.is_broken());
    drop(conn);
    assert!(wait_until(LONG, || pool
        .stats()
        .closed(CloseReason::Broken)
        == 1));
    let mut fresh = pool.get().unwrap();
    assert_ne!(fresh.backend_pid(), pid);
    fresh.query_one("SELECT 1", &[]).unwrap();
}

#[test]
fn a_cut_at_any_byte_of_an_exchange_is_broken_and_the_session_is_replaced() {
    let (proxy, url) = proxied();
    let app = common::app_name("cut_after");
    let pool = common::builder(&app).max_size(1).build(&url).unwrap();
    const ROWS: i64 = 10_000; // about 1 MB of result
    let sql = "SELECT g, repeat('x', 100) FROM generate_series(1, $1::int8) g";
    // From before the first message is forwarded to the middle of the result stream.
    let cuts = [0, 1, 7, 40, 200, 1_000, 20_000, 300_000];
    for (i, cut) in cuts.into_iter().enumerate() {
        let mut conn = pool.get().unwrap();
        proxy.cut_after(cut);
        let (result, took) = timed(|| conn.query(sql, &[&ROWS]));
        let err = match result {
            Ok(rows) => panic!("a cut after {cut} bytes returned {} rows", rows.len()),
            Err(e) => e,
        };
        assert!(
            took < Duration::from_secs(5),
            "cut after {cut} bytes: {took:?}"
        );
        assert_eq!(
            err.kind(),
            ErrorKind::Broken,
            "cut after {cut} bytes: {err}"
        );
        assert!(err.outcome_unknown(), "cut after {cut} bytes: {err}");
        assert!(conn.is_broken());
        drop(conn);
        let closed = i as u64 + 1;
        assert!(wait_until(LONG, || pool
            .stats()
            .closed(CloseReason::Broken)
            == closed));
    }
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.query(sql, &[&ROWS]).unwrap().len(), ROWS as usize);
    assert_eq!(pool.stats().connections_created, cuts.len() as u64 + 1);
}

#[test]
fn a_blackholed_server_holds_no_caller_past_its_deadline() {
    let (proxy, url) = proxied();
    let app = common::app_name("blackhole");
    let pool = common::builder(&app)
        .max_size(1)
        .validation_skip_window(Duration::ZERO)
        .validation_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_millis(600))
        .build(&url)
        .unwrap();
    drop(pool.get().unwrap());
    proxy.blackhole(true);

    // The idle session's validation hears nothing: the caller's deadline ends it.
    let wait = Duration::from_millis(400);
    let (result, took) = timed(|| pool.get_timeout(wait).map(|c| c.backend_pid()));
    let err = result.expect_err("nothing answers in a blackhole");
    eprintln!(
        "measured: get_timeout({} ms) into a blackhole (idle session) returned after {} ms: {err}",
        ms(wait),
        ms(took)
    );
    assert!(took < wait + SLACK, "{took:?}");
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
        "{err}"
    );
    assert_eq!(pool.stats().closed(CloseReason::FailedValidation), 1);

    // New connects are accepted and then hear nothing: each ends at connect_timeout, the
    // wait at the caller's deadline, and the error names the connect timeout.
    let accepted = proxy.accepted();
    let wait = Duration::from_millis(1500);
    let (result, took) = timed(|| pool.get_timeout(wait).map(|c| c.backend_pid()));
    let err = result.expect_err("nothing answers in a blackhole");
    eprintln!(
        "measured: get_timeout({} ms) into a blackhole (connecting) returned after {} ms: {err}",
        ms(wait),
        ms(took)
    );
    assert!(took < wait + SLACK, "{took:?}");
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
        "{err}"
    );
    assert!(err.to_string().contains("connect timed out"), "{err}");
    assert!(
        proxy.accepted() > accepted,
        "the connects reached the blackhole"
    );

    proxy.blackhole(false);
    let (result, took) = timed(|| pool.get_timeout(LONG));
    result.unwrap().query_one("SELECT 1", &[]).unwrap();
    eprintln!(
        "measured: first get after the blackhole ended took {} ms",
        ms(took)
    );
}

#[test]
fn a_query_timeout_holds_when_the_server_stops_answering() {
    let (proxy, url) = proxied();
    let app = common::app_name("blackhole_query");
    let query_timeout = Duration::from_millis(500);
    let pool = common::builder(&app)
        .max_size(1)
        .query_timeout(Some(query_timeout))
        .build(&url)
        .unwrap();
    let mut conn = pool.get().unwrap();
    conn.query_one("SELECT 1", &[]).unwrap();
    proxy.blackhole(true);
    let (result, took) = timed(|| conn.query("SELECT 1", &[]));
    let err = result.expect_err("nothing answers in a blackhole");
    eprintln!(
        "measured: query_timeout {} ms into a blackhole returned after {} ms: {:?}: {err}",
        ms(query_timeout),
        ms(took),
        err.kind()
    );
    assert!(err.is_timeout(), "{err}");
    // The timeout, then one window (the timeout itself, counted as 1 to 5 s) for the cancel
    // request and its answer.
    let window = query_timeout.clamp(Duration::from_secs(1), Duration::from_secs(5));
    assert!(took < query_timeout + window + SLACK, "{took:?}");
    assert!(conn.is_broken(), "an unanswered session cannot be kept");
}

#[test]
fn a_zero_timeout_acquire_over_a_slow_link_keeps_its_healthy_session() {
    let (proxy, url) = proxied();
    let app = common::app_name("try_get_slow_link");
    let pool = common::builder(&app)
        .max_size(1)
        .validation_skip_window(Duration::ZERO) // a round trip before every hand-out
        .build(&format!("{url}?application_name={app}"))
        .unwrap();
    drop(pool.get().unwrap());
    // About 4 ms per round trip: more than a 1 ms budget, far less than validation_timeout.
    proxy.delay(Duration::from_millis(2));
    for _ in 0..20 {
        let conn = pool
            .try_get()
            .unwrap()
            .expect("the idle session is handed out");
        drop(conn);
    }
    let s = pool.stats();
    assert_eq!(s.closed(CloseReason::FailedValidation), 0, "{s:?}");
    assert_eq!(s.connections_created, 1, "{s:?}");
    assert!(s.validations >= 20, "{s:?}");
}

#[test]
fn a_zero_timeout_acquire_on_a_fresh_pool_starts_a_connect() {
    let (_proxy, url) = proxied();
    let app = common::app_name("try_get_fresh");
    let pool = common::builder(&app)
        .max_size(2)
        .build(&format!("{url}?application_name={app}"))
        .unwrap();
    assert!(pool.try_get().unwrap().is_none());
    assert!(wait_until(Duration::from_secs(5), || pool.stats().idle == 1));
    assert!(pool.try_get().unwrap().is_some());
}
