//! Real faults on private clusters: the server stopped and restarted, authentication and
//! database errors, the server full, a session killed mid-query, Unix-domain sockets.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{backends, wait_until};
use pgpool::{CloseReason, ErrorKind, Pool};
use pgpool_testkit::{ClusterOptions, StopMode, TempCluster, SCRAM_PASSWORD};

const LONG: Duration = Duration::from_secs(15);

#[test]
fn acquire_while_the_server_is_down_times_out_naming_the_connect_error_then_recovers() {
    let cluster = common::private_cluster();
    let app = common::app_name("server_down");
    let pool = common::builder(&app)
        .max_size(2)
        .connect_timeout(Duration::from_secs(2))
        .build(&cluster.url())
        .unwrap();
    drop(pool.get().unwrap());
    cluster.stop_server(StopMode::Fast).unwrap();

    // The idle session died with the server; the probe notices, the reconnect is refused,
    // and the breaker opens after three refusals: the caller learns why within its deadline.
    let start = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(800)).unwrap_err();
    let waited = start.elapsed();
    assert!(waited < Duration::from_millis(800 + 1500), "{waited:?}");
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(err.is_retry_safe());
    assert!(pool.stats().connect_errors >= 1);
    // Once down, a caller waits for one probe at most (250 ms after the last attempt, then
    // a refused connect), not its 10 s; then fails with the cause.
    assert!(wait_until(LONG, || pool.stats().health == pgpool::HealthState::Down));
    let start = Instant::now();
    let err = pool.get_timeout(Duration::from_secs(10)).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    assert!(err.to_string().contains("database unavailable"), "{err}");
    let health = pool.health();
    assert!(!health.ok && health.state == pgpool::HealthState::Down);
    assert!(health.last_connect_error.is_some());

    cluster.start_server().unwrap();
    let back = Instant::now();
    assert!(wait_until(LONG, || pool.stats().health == pgpool::HealthState::Healthy));
    eprintln!(
        "measured: breaker closed {} ms after the server came back (reconnect_backoff_max 5 s)",
        back.elapsed().as_millis()
    );
    let mut conn = pool.get().unwrap();
    conn.query_one("SELECT 1", &[]).unwrap();
}

#[test]
fn a_restart_is_survived_without_handing_out_dead_sessions() {
    let cluster = common::private_cluster();
    let app = common::app_name("restart");
    let pool = common::builder(&app)
        .max_size(4)
        .validate_on_acquire(false)
        .build(&cluster.url())
        .unwrap();
    let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    drop(held);
    cluster.restart().unwrap();
    // Every idle session is dead; each is caught by the probe and replaced.
    for _ in 0..8 {
        let mut conn = pool.get().unwrap();
        conn.query_one("SELECT 1", &[]).unwrap();
    }
    let s = pool.stats();
    assert!(s.closed(CloseReason::FailedValidation) >= 1, "{s:?}");
}

#[test]
fn permanent_connect_errors_fail_at_once_with_the_servers_message() {
    let cluster = common::private_cluster();
    let app = common::app_name("auth");

    let good = common::builder(&app)
        .build(&cluster.scram_url(SCRAM_PASSWORD))
        .unwrap();
    let user: String = good
        .get()
        .unwrap()
        .query_one("SELECT current_user::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(user, pgpool_testkit::SCRAM_USER);

    let bad = common::builder(&app)
        .acquire_timeout(Duration::from_secs(20))
        .build(&cluster.scram_url("wrong-password"))
        .unwrap();
    let start = Instant::now();
    let err = bad.get().unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "failed fast, not after the timeout"
    );
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.sqlstate(), Some("28P01"));
    assert!(err.is_permanent_connect());
    assert!(!err.is_retry_safe());
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );

    // Keeping min_idle warm with a bad password must not turn into a storm of logins: after
    // a permanent error the refill waits for the reaper's next tick.
    let warm = common::builder(&app)
        .min_idle(2)
        .reaper_interval(Duration::from_secs(1))
        .build(&cluster.scram_url("wrong-password"))
        .unwrap();
    let err = warm.wait_ready(Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.sqlstate(), Some("28P01"));
    thread::sleep(Duration::from_secs(1));
    let attempts = warm.stats().connect_errors;
    // Two at start, two more at the reaper's first tick; a tight loop makes dozens.
    assert!(
        (1..=8).contains(&attempts),
        "{attempts} login attempts in ~1 s"
    );

    let url = format!(
        "postgres://postgres@127.0.0.1:{}/no_such_db",
        cluster.port()
    );
    let missing = common::builder(&app)
        .acquire_timeout(Duration::from_secs(20))
        .build(&url)
        .unwrap();
    let start = Instant::now();
    let err = missing.get().unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(err.sqlstate(), Some("3D000"));
    assert!(err.to_string().contains("no_such_db"), "{err}");
}

#[test]
fn a_full_server_is_a_transient_error_and_the_pool_gets_in_when_room_frees() {
    let cluster = TempCluster::start_with(&ClusterOptions {
        max_connections: 6,
        extra_conf: vec!["superuser_reserved_connections = 1".into()],
        ..ClusterOptions::default()
    })
    .unwrap();
    let app = common::app_name("server_full");
    // Fill every non-reserved slot from outside the pool.
    let mut hogs: Vec<postgres::Client> = Vec::new();
    while hogs.len() < 10 {
        match postgres::Client::connect(&cluster.url(), postgres::NoTls) {
            Ok(c) => hogs.push(c),
            Err(_) => break,
        }
    }
    assert!(!hogs.is_empty());
    let pool = common::builder(&app)
        .max_size(2)
        .build(&cluster.url())
        .unwrap();
    // Within its deadline, the caller learns why: the server is full (a timeout naming the
    // last connect error, or the breaker's fast failure once three attempts failed).
    let start = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(600)).unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(600 + 1500));
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
        "{err}"
    );
    assert!(err.to_string().contains("53300"), "{err}");
    assert!(err.is_retry_safe(), "{err}");

    // Room frees: the background probe gets in without a caller, and callers follow.
    hogs.pop();
    let freed = Instant::now();
    assert!(
        wait_until(LONG, || pool.stats().open >= 1),
        "{:?}",
        pool.stats()
    );
    eprintln!(
        "measured: a full server's freed slot taken by the probe after {} ms",
        freed.elapsed().as_millis()
    );
    assert!(pool.get_timeout(Duration::from_secs(5)).is_ok());
}

#[test]
fn a_session_killed_mid_query_is_broken_with_unknown_outcome_and_discarded() {
    let cluster = common::private_cluster();
    let app = common::app_name("mid_query");
    let pool = common::builder(&app)
        .max_size(1)
        .build(&cluster.url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    let pid = conn.backend_pid();
    let killer = {
        let url = cluster.url();
        thread::spawn(move || {
            let mut admin = common::admin_for(&url);
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
            admin
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .unwrap();
        })
    };
    let err = conn.query("SELECT pg_sleep(10)", &[]).unwrap_err();
    killer.join().unwrap();
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
fn unix_socket_sessions_are_probed_too() {
    let cluster = common::private_cluster();
    let app = common::app_name("unix");
    let pool: Pool = common::builder(&app)
        .max_size(3)
        .validate_on_acquire(false)
        .keepalive_interval(None)
        .build(&cluster.unix_conninfo())
        .unwrap();
    let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    let pids: Vec<i32> = held.iter().map(|c| c.backend_pid()).collect();
    drop(held);
    let mut admin = cluster.admin().unwrap();
    let client_addr: Option<String> = admin
        .query_one(
            "SELECT client_addr::text FROM pg_stat_activity WHERE pid = $1",
            &[&pids[0]],
        )
        .unwrap()
        .get(0);
    assert_eq!(client_addr, None, "connected over the Unix socket");
    assert_eq!(common::terminate(&mut admin, &app), 3);
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
    for _ in 0..3 {
        let mut conn = pool.get().unwrap();
        assert!(!pids.contains(&conn.backend_pid()));
        conn.query_one("SELECT 1", &[]).unwrap();
    }
    assert_eq!(pool.stats().closed(CloseReason::FailedValidation), 3);
}
