//! One deadline bounds the whole connect, through the pool: a server that accepts and never
//! answers, one that accepts the SSLRequest and then stalls the TLS handshake, and
//! `pool.close()` while such a connect hangs. Then multiple hosts and
//! `target_session_attrs` against a real cluster (one, private to this file: a test makes
//! it read-only).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pgpool::{Error, ErrorKind, Event, PgManager, Pool};
use pgpool_testkit::TempCluster;

use common::wait_until;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Scheduling slack on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(400);

/// A server that accepts connections and never says a word (holding every socket open).
/// With `tls`, it reads the SSLRequest, answers `S`, and then goes silent: the client's TLS
/// handshake stalls. Returns the port and how many connections it accepted.
fn silent_server(tls: bool) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            if tls {
                let mut request = [0u8; 8];
                if s.read_exact(&mut request).is_err() {
                    continue;
                }
                // 80877103: the SSLRequest code.
                assert_eq!(&request[4..], &80877103u32.to_be_bytes());
                let _ = s.write_all(b"S");
            }
            count.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (port, accepted)
}

type EventLog = Arc<Mutex<Vec<(Instant, Event)>>>;

/// A builder whose events are recorded with the time they happened.
fn recording_builder() -> (pgpool::Builder, EventLog) {
    let log: EventLog = Arc::default();
    let sink = Arc::clone(&log);
    let builder = Pool::builder()
        .application_name("connect-deadline-test")
        .event_hook(move |e| sink.lock().unwrap().push((Instant::now(), e.clone())));
    (builder, log)
}

fn connect_errors(log: &EventLog) -> Vec<(Instant, Error)> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|(t, e)| match e {
            Event::Error { error, .. } => Some((*t, error.clone())),
            _ => None,
        })
        .collect()
}

/// `pool.get()` against a stalling server: every attempt ends at the connect timeout with an
/// error naming `phase`, the caller gets a timeout after the acquire timeout, and the slot is
/// given back right after. (The breaker is off here, to see each attempt's bound; with it on,
/// the caller fails sooner, after the third attempt: `the_breaker_turns_stalled_connects_into_a_fast_failure`.)
fn stalled_connects_are_bounded(conninfo: &str, phase: &str) {
    let (builder, log) = recording_builder();
    let pool = builder
        .breaker_threshold(None)
        .max_size(1)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .build(conninfo)
        .unwrap();
    let start = Instant::now();
    let err = pool.get().map(|_| ()).unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(
        waited >= ACQUIRE_TIMEOUT && waited < ACQUIRE_TIMEOUT + SLACK,
        "get() took {waited:?}"
    );
    assert!(err.to_string().contains(phase), "{err}");

    let errors = connect_errors(&log);
    assert!(
        errors.len() >= 3,
        "only {} attempts: {errors:?}",
        errors.len()
    );
    let first = errors[0].0 - start;
    assert!(
        first >= CONNECT_TIMEOUT - Duration::from_millis(50) && first < CONNECT_TIMEOUT + SLACK,
        "the first attempt ended after {first:?} (connect_timeout {CONNECT_TIMEOUT:?})"
    );
    for (_, e) in &errors {
        assert_eq!(e.kind(), ErrorKind::Connect, "{e:?}");
        assert!(!e.is_permanent_connect(), "{e:?}");
        assert!(e.to_string().contains(phase), "{e}");
    }
    // Between two attempts: the backoff (at most 1 s) and one bounded attempt.
    for pair in errors.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap < CONNECT_TIMEOUT + Duration::from_secs(1) + SLACK,
            "an attempt took {gap:?} with its backoff"
        );
    }

    // The attempt in flight when the caller gave up ends within the connect timeout; then
    // nobody needs it and the slot is free.
    assert!(
        wait_until(Duration::from_secs(1), || pool.stats().pending == 0),
        "still connecting a second after the caller gave up: {}",
        pool.state_line()
    );
    let stats = pool.stats();
    assert_eq!(stats.open, 0);
    assert_eq!(stats.connect_errors, connect_errors(&log).len() as u64);
    assert_eq!(stats.acquire_timeouts, 1);
}

#[test]
fn a_silent_server_is_bounded_by_the_connect_timeout() {
    let (port, accepted) = silent_server(false);
    stalled_connects_are_bounded(
        &format!("host=127.0.0.1 port={port} user=u dbname=d sslmode=disable"),
        "connect timed out after 500 ms waiting for the server during startup",
    );
    assert!(accepted.load(Ordering::SeqCst) >= 3);
}

#[test]
fn a_silent_server_is_bounded_while_waiting_for_the_tls_answer() {
    let (port, _) = silent_server(false);
    stalled_connects_are_bounded(
        &format!("host=127.0.0.1 port={port} user=u dbname=d sslmode=prefer"),
        "connect timed out after 500 ms waiting for the server's TLS answer",
    );
}

#[test]
fn a_stalled_tls_handshake_is_bounded_by_the_connect_timeout() {
    let (port, accepted) = silent_server(true);
    stalled_connects_are_bounded(
        &format!("host=127.0.0.1 port={port} user=u dbname=d sslmode=require"),
        "TLS handshake timed out",
    );
    assert!(accepted.load(Ordering::SeqCst) >= 3);
}

#[test]
fn the_breaker_turns_stalled_connects_into_a_fast_failure() {
    let (port, _) = silent_server(false);
    let pool = Pool::builder()
        .max_size(2)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(Duration::from_secs(30))
        .build(&format!(
            "host=127.0.0.1 port={port} user=u dbname=d sslmode=disable"
        ))
        .unwrap();
    // Three bounded attempts (two at a time, then one), then the caller learns why: well
    // before its 30 s acquire timeout.
    let start = Instant::now();
    let err = pool.get().map(|_| ()).unwrap_err();
    let waited = start.elapsed();
    assert!(
        waited < CONNECT_TIMEOUT * 3 + SLACK,
        "get() took {waited:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.to_string().contains("database unavailable"), "{err}");
    assert!(
        err.to_string().contains("connect timed out after 500 ms"),
        "{err}"
    );
    // Down: the next caller waits at most for the one probe attempt (bounded by the connect
    // timeout), not its own 30 s; the probe is the only connect running.
    let start = Instant::now();
    assert!(pool.get().is_err());
    assert!(
        start.elapsed() < CONNECT_TIMEOUT + SLACK,
        "{:?}",
        start.elapsed()
    );
    assert_eq!(pool.stats().health, pgpool::HealthState::Down);
    assert!(pool.stats().connectors <= 1);
}

/// `pool.close()` while a connect hangs: the waiting caller is failed at once, and close
/// itself is bounded: it waits for the connect in flight (a slot not yet drained) no longer
/// than that connect's own deadline or `close_timeout`, whichever comes first. The connect
/// ends at its deadline, gives its slot back, and is not retried.
fn close_is_bounded_while_connecting(tls: bool, close_timeout: Duration) {
    let connect_timeout = Duration::from_secs(3);
    let (port, accepted) = silent_server(tls);
    let mode = if tls { "require" } else { "disable" };
    let pool = Pool::builder()
        .connect_timeout(connect_timeout)
        .acquire_timeout(Duration::from_secs(10))
        .close_timeout(close_timeout)
        .build(&format!(
            "host=127.0.0.1 port={port} user=u dbname=d sslmode={mode}"
        ))
        .unwrap();
    let connect_started = Instant::now();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let result = pool.get().map(|_| ());
            (Instant::now(), result)
        });
        assert!(wait_until(Duration::from_secs(2), || {
            pool.stats().pending == 1 && accepted.load(Ordering::SeqCst) == 1
        }));
        std::thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        let drained = pool.close();
        let closed = Instant::now();
        let bound = (connect_started + connect_timeout).min(start + close_timeout);
        assert!(
            closed < bound + SLACK,
            "close() took {:?} (connect deadline in {:?}, close_timeout {close_timeout:?})",
            closed - start,
            (connect_started + connect_timeout).saturating_duration_since(start)
        );
        if close_timeout < connect_timeout {
            assert!(!drained, "the stalled connect cannot have ended yet");
        }
        let (woke, result) = waiter.join().unwrap();
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
        assert!(
            woke.saturating_duration_since(start) < SLACK,
            "the waiter woke {:?} after close()",
            woke - start
        );
    });
    assert!(pool.is_closed());
    assert!(pool.get().map(|_| ()).unwrap_err().is_closed());
    assert!(
        wait_until(
            (connect_started + connect_timeout + SLACK).saturating_duration_since(Instant::now()),
            || pool.stats().pending == 0
        ),
        "the stalled connect outlived its deadline: {}",
        pool.state_line()
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the closed pool retried"
    );
}

#[test]
fn close_is_bounded_while_a_connect_is_stalled() {
    close_is_bounded_while_connecting(false, Duration::from_secs(5));
    close_is_bounded_while_connecting(false, Duration::from_millis(300));
}

#[test]
fn close_is_bounded_while_a_tls_handshake_is_stalled() {
    close_is_bounded_while_connecting(true, Duration::from_secs(5));
    close_is_bounded_while_connecting(true, Duration::from_millis(300));
}

// ---- Multiple hosts and target_session_attrs ---------------------------------------------------

fn cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(common::private_cluster)
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn the_next_host_is_tried_when_one_is_down() {
    let c = cluster();
    let dead = dead_port();
    let info = format!(
        "host=127.0.0.1,127.0.0.1 port={dead},{} user=postgres dbname=postgres",
        c.port()
    );
    let pool = Pool::builder()
        .acquire_timeout(Duration::from_secs(10))
        .build(&info)
        .unwrap();
    let start = Instant::now();
    let mut conn = pool.get().unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    let port: i32 = conn
        .query_one("SELECT inet_server_port()", &[])
        .unwrap()
        .get(0);
    assert_eq!(port, i32::from(c.port()));
    drop(conn);

    // Every host down: one error naming every address tried.
    let other = dead_port();
    let info =
        format!("host=127.0.0.1,127.0.0.1 port={dead},{other} user=postgres dbname=postgres");
    let err = PgManager::new(&info, Pool::builder().config())
        .unwrap()
        .open()
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{dead}")), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{other}")), "{text}");
}

/// Opens one session over `info` with the pool's `connect_timeout`; returns how long it
/// took and the port of the server reached.
fn open_timed(info: &str, connect_timeout: Duration) -> (Duration, Result<i32, Error>) {
    let config = Pool::builder().connect_timeout(connect_timeout);
    let manager = PgManager::new(info, config.config()).unwrap();
    let start = Instant::now();
    let result = manager.open().and_then(|mut conn| {
        conn.query_one("SELECT inet_server_port()", &[])
            .map(|row| row.get(0))
    });
    (start.elapsed(), result)
}

#[test]
fn a_silent_host_leaves_time_for_the_hosts_after_it() {
    let c = cluster();
    let (silent, accepted) = silent_server(false);
    let info = format!(
        "host=127.0.0.1,127.0.0.1 port={silent},{} user=postgres dbname=postgres",
        c.port()
    );
    // No connect_timeout in the string: the silent host gets half of the 4 s.
    let (took, port) = open_timed(&info, Duration::from_secs(4));
    assert_eq!(
        port.unwrap(),
        i32::from(c.port()),
        "the second host was reached"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(2) + SLACK * 3,
        "{took:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    println!("measured: a silent first host of two, 4 s connect timeout: connected in {took:?}");

    // With connect_timeout in the string, each attempt gets that (libpq's meaning), within
    // the pool's whole connect timeout.
    let (took, port) = open_timed(
        &format!("{info} connect_timeout=2"),
        Duration::from_secs(10),
    );
    assert_eq!(port.unwrap(), i32::from(c.port()));
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(2) + SLACK * 3,
        "{took:?}"
    );

    // Silent alone: the whole timeout, and the message says which part of it ran out.
    let info =
        format!("host=127.0.0.1,127.0.0.1 port={silent},{silent} user=postgres dbname=postgres");
    let (took, result) = open_timed(&info, Duration::from_secs(2));
    let text = result.unwrap_err().to_string();
    assert!(took < Duration::from_secs(2) + SLACK, "{took:?}");
    assert!(
        text.contains("share of the 2000 ms connect timeout")
            && text.contains("connect timed out after 2000 ms"),
        "{text}"
    );
}

fn attrs_info(c: &TempCluster, attrs: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres target_session_attrs={attrs}",
        c.port()
    )
}

/// Connects through a pool with `target_session_attrs=attrs`; returns whether the session
/// is read-only.
fn connects_with(c: &TempCluster, attrs: &str) -> bool {
    let pool = Pool::builder()
        .acquire_timeout(Duration::from_secs(10))
        .build(&attrs_info(c, attrs))
        .unwrap();
    let mut conn = pool
        .get()
        .unwrap_or_else(|e| panic!("target_session_attrs={attrs}: {e}"));
    let in_recovery: bool = conn
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(!in_recovery, "the cluster is a primary");
    let read_only: String = conn
        .query_one("SHOW transaction_read_only", &[])
        .unwrap()
        .get(0);
    read_only == "on"
}

/// The server does not satisfy `attrs`: a single session says so, and so does the pool's
/// `get()`. That error is not permanent (a failover may yet bring the right server), so the
/// pool keeps trying until the acquire timeout, which is kept short here.
fn refused_with(c: &TempCluster, attrs: &str) {
    let info = attrs_info(c, attrs);
    let err = PgManager::new(&info, Pool::builder().config())
        .unwrap()
        .open()
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err:?}");
    let needle = format!("target_session_attrs={attrs}");
    assert!(err.to_string().contains(&needle), "{err}");

    let acquire = Duration::from_millis(700);
    let pool = Pool::builder()
        .acquire_timeout(acquire)
        .build(&info)
        .unwrap();
    let start = Instant::now();
    let err = pool.get().map(|_| ()).unwrap_err();
    let took = start.elapsed();
    assert!(took < acquire + SLACK, "{took:?}");
    assert!(err.to_string().contains(&needle), "{err}");
}

#[test]
fn target_session_attrs_on_a_primary_then_on_a_read_only_server() {
    let c = cluster();
    // A normal primary.
    assert!(!connects_with(c, "any"));
    assert!(!connects_with(c, "primary"));
    assert!(!connects_with(c, "read-write"));
    assert!(!connects_with(c, "prefer-standby"));
    refused_with(c, "standby");
    refused_with(c, "read-only");

    // Read-only by default, still a primary.
    let mut admin = c.admin().unwrap();
    admin
        .batch_execute("ALTER SYSTEM SET default_transaction_read_only = on")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        let mut fresh = c.admin().unwrap();
        let row = fresh
            .query_one("SHOW default_transaction_read_only", &[])
            .unwrap();
        row.get::<_, String>(0) == "on"
    }));
    assert!(connects_with(c, "read-only"));
    assert!(connects_with(c, "prefer-standby"));
    assert!(connects_with(c, "primary"));
    assert!(connects_with(c, "any"));
    refused_with(c, "read-write");
    refused_with(c, "standby");

    // A read-only server listed first: read-write skips to the next host.
    let info = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres \
         target_session_attrs=read-write",
        c.port(),
        dead_port()
    );
    let err = PgManager::new(&info, Pool::builder().config())
        .unwrap()
        .open()
        .map(|_| ())
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("target_session_attrs=read-write"), "{text}");

    admin
        .batch_execute("ALTER SYSTEM RESET default_transaction_read_only")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
}

/// Answers the first connection's SSLRequest with `S` and then garbage (the TLS handshake
/// fails); relays every later connection to the real server.
fn broken_tls_then_relay(real: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut first = true;
        for stream in listener.incoming().take(8) {
            let Ok(mut client) = stream else { return };
            if first {
                first = false;
                let mut request = [0u8; 8];
                let _ = client.read_exact(&mut request);
                let _ = client.write_all(b"SHTTP/1.1 400 Bad Request\r\n\r\n");
                continue;
            }
            let Ok(server) = TcpStream::connect(("127.0.0.1", real)) else {
                return;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut c2, &mut s2).ok());
            let (mut s3, mut c3) = (server, client);
            std::thread::spawn(move || std::io::copy(&mut s3, &mut c3).ok());
        }
    });
    port
}

#[test]
fn sslmode_prefer_retries_without_tls_when_the_handshake_fails() {
    let c = cluster();
    let port = broken_tls_then_relay(c.port());
    let settings = Pool::builder().connect_timeout(Duration::from_secs(5));
    let manager = PgManager::new(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=prefer"),
        settings.config(),
    )
    .unwrap();
    let mut conn = manager.open().expect("plain after the failed handshake");
    assert!(!conn.is_tls());
    assert_eq!(conn.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    // Under require the same failure is final.
    let port = broken_tls_then_relay(c.port());
    let manager = PgManager::new(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require"),
        settings.config(),
    )
    .unwrap();
    let err = manager.open().unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
}
