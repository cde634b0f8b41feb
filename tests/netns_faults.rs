//! Real network partitions: the server runs in a network namespace behind a veth link, and
//! `cut()` drops every packet both ways without an error (see `pgpool_testkit::netns`).
//! Nothing acknowledges data or keepalive probes during a cut, so these tests meet the
//! kernel's timers (`TCP_USER_TIMEOUT`, keepalives, SYN retries) as production does, which the
//! user-space proxy of `network_faults.rs` cannot.
//!
//! Every test asserts a promise (a call returns by its bound, the error names its cause, the
//! pool recovers) and prints what it measured on a line starting with `measured:`. Where
//! namespaces cannot be made (not root, no `ip`), each test prints `skipped: no netns (…)`
//! and returns; with `PGPOOL_REQUIRE_NETNS=1` that is a failure instead.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::wait_until;
use pgpool::{CloseReason, Error, ErrorKind, Pool};
use pgpool_testkit::{NetnsCluster, NetnsError};

/// What a loaded 2-core machine may add to any bound.
const SLACK: Duration = Duration::from_millis(1500);
/// `TCP_USER_TIMEOUT` for the tests that do not measure the defaults.
const USER_TIMEOUT: Duration = Duration::from_secs(2);
/// Keepalive idle time for those tests (the interval is then 1 s too: min(idle, 2 s)).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(1);
/// How long the long cut lasts.
const LONG_CUT: Duration = Duration::from_secs(15);
/// A wait that only a hang would exceed.
const LONG: Duration = Duration::from_secs(15);

/// The fixture, or `None` after printing why the test is skipped.
fn net(test: &str) -> Option<NetnsCluster> {
    match NetnsCluster::start() {
        Ok(net) => Some(net),
        Err(NetnsError::Unavailable(why)) => {
            if std::env::var("PGPOOL_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
                panic!("PGPOOL_REQUIRE_NETNS=1 but no netns: {why}");
            }
            eprintln!("skipped: no netns ({why}) [{test}]");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A builder for pools over the link: short TCP timers so that a dead peer is noticed in
/// about two seconds, housekeeping off unless a test turns it on.
fn builder(app: &str) -> pgpool::Builder {
    Pool::builder()
        .application_name(app)
        .tcp_user_timeout(Some(USER_TIMEOUT))
        .tcp_keepalive_idle(KEEPALIVE_IDLE)
        .connect_timeout(Duration::from_secs(2))
        .validation_timeout(Duration::from_secs(2))
        .keepalive_interval(None)
        .acquire_timeout(Duration::from_secs(10))
}

/// How long a dead link can keep a call that waits for the server when the socket has
/// `USER_TIMEOUT` and `KEEPALIVE_IDLE`: unacknowledged data fails after `USER_TIMEOUT`; a
/// call waiting for a reply (nothing unacknowledged) fails at the first keepalive check
/// after `USER_TIMEOUT` since the last packet heard (idle, then every interval).
fn dead_link_bound() -> Duration {
    USER_TIMEOUT.max(KEEPALIVE_IDLE * 2)
}

/// Joins `handle`, failing the test if the thread still runs after `limit`: a call that
/// hangs must fail the test, not hang it.
fn join_within<T>(handle: thread::JoinHandle<T>, limit: Duration, what: &str) -> T {
    assert!(
        wait_until(limit, || handle.is_finished()),
        "{what} still running after {limit:?}"
    );
    handle.join().unwrap()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Waits until a session of `app` is running a statement (seen over the Unix socket).
fn wait_active(net: &NetnsCluster, app: &str, n: i64) {
    let mut admin = net.admin().unwrap();
    assert!(
        wait_until(LONG, || {
            admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE application_name = $1 AND state = 'active'",
                    &[&app],
                )
                .unwrap()
                .get::<_, i64>(0)
                >= n
        }),
        "{n} statements of {app} never became active"
    );
}

/// An error from a dead link names it: a timeout (the kernel's `ETIMEDOUT` or a deadline)
/// or the connection lost.
fn names_dead_link(err: &Error) -> bool {
    let text = err.to_string().to_lowercase();
    text.contains("timed out") || text.contains("connection") || text.contains("broken")
}

#[test]
fn a_cut_is_silent_for_existing_connections_and_new_connects() {
    let Some(net) = net("silent") else { return };
    let addr = net.addr();
    let established = std::net::TcpStream::connect_timeout(&addr, LONG).unwrap();
    socket2::SockRef::from(&established)
        .set_tcp_user_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    established
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    net.cut().unwrap();
    assert!(net.is_cut());

    // Unacknowledged data: no reset, no unreachable; the user timeout ends it.
    let (result, took) = timed(|| {
        use std::io::{Read, Write};
        // An SSLRequest: the server would answer at once over a live link.
        (&established).write_all(&[0, 0, 0, 8, 4, 210, 22, 47])?;
        (&established).read(&mut [0u8; 16])
    });
    let err = result.expect_err("nothing can be read over a cut link");
    eprintln!(
        "measured: unacknowledged write over a cut link failed after {} ms ({err})",
        ms(took)
    );
    assert_eq!(err.raw_os_error(), Some(libc::ETIMEDOUT), "{err}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(1) + SLACK);

    // A new connect hears nothing either (not EHOSTUNREACH, not refused).
    let (result, took) =
        timed(|| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(1000)));
    let err = result.expect_err("a connect over a cut link cannot complete");
    eprintln!(
        "measured: connect over a cut link gave up after {} ms ({err})",
        ms(took)
    );
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(took >= Duration::from_millis(900), "{took:?}: {err}");

    // The Unix socket does not cross the link.
    net.admin().unwrap().query_one("SELECT 1", &[]).unwrap();

    net.heal().unwrap();
    assert!(!net.is_cut());
    let (result, took) = timed(|| std::net::TcpStream::connect_timeout(&addr, LONG));
    result.unwrap();
    eprintln!("measured: first connect after heal took {} ms", ms(took));
}

#[test]
fn a_query_in_flight_when_the_link_dies_fails_within_the_tcp_bound() {
    let Some(net) = net("mid_query") else { return };
    let url = net.url();
    let app = common::app_name("mid_query");
    let pool = builder(&app).max_size(2).build(&url).unwrap();
    let mut waiting = pool.get().unwrap();
    let mut sending = pool.get().unwrap();
    sending.query_one("SELECT 1", &[]).unwrap();
    // The defaults (tcp_user_timeout 10 s, keepalive idle 5 s): how long a call can hang.
    let default_app = common::app_name("mid_query_defaults");
    let defaults = Pool::builder()
        .application_name(&default_app)
        .build(&url)
        .unwrap();
    let mut default_conn = defaults.get().unwrap();

    let in_flight = thread::spawn(move || {
        let r = timed(|| waiting.query("SELECT pg_sleep(60)", &[]));
        (r, waiting.is_broken())
    });
    let default_in_flight = thread::spawn(move || {
        let r = timed(|| default_conn.query("SELECT pg_sleep(60)", &[]));
        (r, default_conn.is_broken())
    });
    wait_active(&net, &app, 1);
    wait_active(&net, &default_app, 1);
    net.cut().unwrap();

    // Sent after the cut: the request itself is never acknowledged.
    let (sent_result, sent_took) = timed(|| sending.query("SELECT 2", &[]));
    let err = sent_result.expect_err("no answer over a cut link");
    eprintln!(
        "measured: query sent over a cut link failed after {} ms (bound {} ms): {:?}: {err}",
        ms(sent_took),
        ms(USER_TIMEOUT + SLACK),
        err.kind()
    );
    assert!(sent_took < USER_TIMEOUT + SLACK, "{sent_took:?}");
    assert!(
        matches!(err.kind(), ErrorKind::Broken | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.outcome_unknown(), "{err}");
    assert!(names_dead_link(&err), "{err}");
    assert!(sending.is_broken());

    let ((result, took), broken) = join_within(in_flight, LONG, "the query in flight");
    let err = result.expect_err("no answer over a cut link");
    eprintln!(
        "measured: query in flight at the cut failed after {} ms (bound {} ms): {:?}: {err}",
        ms(took),
        ms(dead_link_bound() + SLACK),
        err.kind()
    );
    assert!(took < dead_link_bound() + SLACK, "{took:?}");
    assert!(
        matches!(err.kind(), ErrorKind::Broken | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.outcome_unknown(), "{err}");
    assert!(names_dead_link(&err), "{err}");
    assert!(broken);

    let ((result, took), broken) =
        join_within(default_in_flight, LONG, "the query in flight (defaults)");
    let err = result.expect_err("no answer over a cut link");
    // Keepalive probes at 5, 7, 9, 11 s; the first check past 10 s aborts.
    let default_bound = Duration::from_secs(11);
    eprintln!(
        "measured: query in flight at the cut with default settings failed after {} ms \
         (bound {} ms): {err}",
        ms(took),
        ms(default_bound + SLACK)
    );
    assert!(took < default_bound + SLACK, "{took:?}");
    assert!(broken, "{err}");

    drop(sending);
    assert!(wait_until(LONG, || pool
        .stats()
        .closed(CloseReason::Broken)
        == 2));
    net.heal().unwrap();
    let mut fresh = pool.get_timeout(LONG).unwrap();
    fresh.query_one("SELECT 1", &[]).unwrap();
}

#[test]
fn a_connection_the_kernel_gave_up_on_is_broken_not_a_timeout() {
    let Some(net) = net("etimedout") else { return };
    let app = common::app_name("etimedout");
    let pool = builder(&app).max_size(1).build(&net.url()).unwrap();
    let mut conn = pool.get().unwrap();
    conn.query_one("SELECT 1", &[]).unwrap();
    net.cut().unwrap();
    let err = conn
        .query("SELECT 2", &[])
        .expect_err("no answer over a cut link");
    eprintln!(
        "measured: a query on a link the kernel gave up on: {:?}: {err}",
        err.kind()
    );
    assert_eq!(err.kind(), ErrorKind::Broken, "{err}");
    assert!(err.outcome_unknown());
    assert!(conn.is_broken());
}

#[test]
fn a_query_timeout_shorter_than_the_tcp_bound_ends_a_call_on_a_cut_link() {
    let Some(net) = net("query_timeout") else {
        return;
    };
    let app = common::app_name("query_timeout");
    let query_timeout = Duration::from_millis(800);
    let pool = Pool::builder()
        .application_name(&app)
        .max_size(2)
        .query_timeout(Some(query_timeout))
        .build(&net.url())
        .unwrap();
    let mut waiting = pool.get().unwrap();
    let mut sending = pool.get().unwrap();
    sending.query_one("SELECT 1", &[]).unwrap();
    let in_flight = thread::spawn(move || timed(|| waiting.query("SELECT pg_sleep(60)", &[])));
    wait_active(&net, &app, 1);
    net.cut().unwrap();
    let (result, took) = timed(|| sending.query("SELECT 2", &[]));
    let err = result.expect_err("no answer over a cut link");
    eprintln!(
        "measured: query sent over a cut link with query_timeout {} ms returned after {} ms: {:?}: {err}",
        ms(query_timeout),
        ms(took),
        err.kind()
    );
    let (in_flight_result, in_flight_took) = join_within(in_flight, LONG, "the query in flight");
    let in_flight_err = in_flight_result.expect_err("no answer over a cut link");
    eprintln!(
        "measured: query in flight at the cut with query_timeout {} ms returned after {} ms: {:?}: {in_flight_err}",
        ms(query_timeout),
        ms(in_flight_took),
        in_flight_err.kind()
    );
    for (err, took) in [(&err, took), (&in_flight_err, in_flight_took)] {
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
        // The timeout, then one window (the timeout itself, counted as 1 to 5 s) for the
        // cancel request that cannot get through.
        let window = query_timeout.clamp(Duration::from_secs(1), Duration::from_secs(5));
        assert!(took < query_timeout + window + SLACK, "{took:?}: {err}");
    }
}

#[test]
fn acquires_on_a_cut_link_return_by_their_deadline_and_hand_out_no_dead_session() {
    let Some(net) = net("idle_cut") else { return };
    let app = common::app_name("idle_cut");
    // Validates on every hand-out: a round trip that a cut link cannot answer.
    let validating = builder(&app)
        .max_size(2)
        .min_idle(2)
        .validation_skip_window(Duration::ZERO)
        .validation_timeout(Duration::from_secs(10)) // longer than any caller here waits
        .connect_timeout(Duration::from_secs(1))
        // The kernel's keepalive must not kill the idle sessions first: the round trips
        // are what this measures.
        .tcp_keepalive_idle(Duration::from_secs(30))
        .build(&net.url())
        .unwrap();
    validating.wait_ready(LONG).unwrap();
    // Hands out a recently used connection on the zero-cost probe's word alone.
    let trusting = builder(&app)
        .max_size(1)
        .validation_skip_window(Duration::from_secs(60))
        .tcp_keepalive_idle(Duration::from_secs(30))
        .build(&net.url())
        .unwrap();
    trusting.get().unwrap().query_one("SELECT 1", &[]).unwrap();
    net.cut().unwrap();

    // Without validation a session is handed out (nothing has noticed the cut yet), but then its first statement fails within the TCP bound, names the dead link,
    // and the session is discarded, not put back.
    let (result, took) = timed(|| trusting.get_timeout(Duration::from_secs(1)));
    assert!(took < Duration::from_secs(1) + SLACK, "{took:?}");
    match result {
        Err(err) => {
            eprintln!(
                "measured: unvalidated get_timeout(1000 ms) refused after {} ms: {err}",
                ms(took)
            );
            assert!(
                matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
                "{err}"
            );
        }
        Ok(mut conn) => {
            let (result, took) = timed(|| conn.query_one("SELECT 1", &[]));
            let err = result.expect_err("no answer over a cut link");
            eprintln!(
                "measured: unvalidated session handed out on a cut link; its first query failed \
                 after {} ms (bound {} ms): {err}",
                ms(took),
                ms(USER_TIMEOUT + SLACK)
            );
            assert!(took < USER_TIMEOUT + SLACK, "{took:?}");
            assert!(
                matches!(err.kind(), ErrorKind::Broken | ErrorKind::Timeout),
                "{err}"
            );
            assert!(names_dead_link(&err), "{err}");
            assert!(conn.is_broken());
            drop(conn);
            assert_eq!(trusting.stats().closed(CloseReason::Broken), 1);
            assert_eq!(trusting.stats().idle, 0);
        }
    }

    // With validation nothing is handed out, and each caller's deadline bounds the round trip.
    for wait in [300, 1000, 2500].map(Duration::from_millis) {
        let (result, took) = timed(|| validating.get_timeout(wait).map(|c| c.backend_pid()));
        eprintln!(
            "measured: get_timeout({} ms) on a cut link with idle sessions returned after {} ms \
             (bound {} ms): {result:?}",
            ms(wait),
            ms(took),
            ms(wait + SLACK)
        );
        assert!(took < wait + SLACK, "{took:?}");
        // Handing out would mean a session that failed (or skipped) its round trip.
        let err = result.expect_err("no session can pass validation over a cut link");
        assert!(
            matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
            "{err}"
        );
        assert!(err.to_string().contains("timed out"), "{err}");
    }
    // Both idle sessions failed their round trip and were closed, not put back.
    let s = validating.stats();
    assert_eq!(s.closed(CloseReason::FailedValidation), 2, "{s:?}");
    assert_eq!(s.acquires, 0, "{s:?}");

    net.heal().unwrap();
    for pool in [&validating, &trusting] {
        let (result, took) = timed(|| pool.get_timeout(LONG));
        result.unwrap().query_one("SELECT 1", &[]).unwrap();
        eprintln!("measured: first get after heal took {} ms", ms(took));
    }
}

#[test]
fn connects_on_a_cut_link_end_by_the_acquire_deadline_and_name_the_connect_timeout() {
    let Some(net) = net("connect_cut") else {
        return;
    };
    let app = common::app_name("connect_cut");
    net.cut().unwrap();
    // connect_timeout shorter than the caller's wait: several attempts, each timing out.
    let short = builder(&app)
        .max_size(1)
        .connect_timeout(Duration::from_millis(700))
        .build(&net.url())
        .unwrap();
    // connect_timeout longer: the caller's deadline ends the wait, the connect goes on.
    let long = builder(&app)
        .max_size(1)
        .connect_timeout(Duration::from_secs(10))
        .build(&net.url())
        .unwrap();
    let cases = [
        (
            short.clone(),
            Duration::from_millis(2000),
            "connect timed out",
        ),
        (long.clone(), Duration::from_millis(1000), "connecting 1"),
    ];
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(pool, wait, cause)| {
            thread::spawn(move || {
                let (result, took) = timed(|| pool.get_timeout(wait).map(|c| c.backend_pid()));
                (wait, cause, result, took, pool.config().connect_timeout)
            })
        })
        .collect();
    for h in handles {
        let (wait, cause, result, took, connect_timeout) = join_within(h, LONG, "an acquire");
        let err = result.expect_err("nothing connects over a cut link");
        eprintln!(
            "measured: get_timeout({} ms) with connect_timeout {} ms on a cut link returned \
             after {} ms (bound {} ms): {err}",
            ms(wait),
            ms(connect_timeout),
            ms(took),
            ms(wait + SLACK)
        );
        assert!(took < wait + SLACK, "{took:?}");
        assert!(
            matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
            "{err}"
        );
        assert!(err.to_string().contains(cause), "{err}");
    }
    assert!(short.stats().connect_errors >= 1);

    net.heal().unwrap();
    for pool in [&short, &long] {
        let (result, took) = timed(|| pool.get_timeout(LONG));
        result.unwrap().query_one("SELECT 1", &[]).unwrap();
        eprintln!(
            "measured: first get after heal (connect_timeout {} ms) took {} ms",
            ms(pool.config().connect_timeout),
            ms(took)
        );
    }
}

/// From `heal()` to recovered: a connect attempt in flight, a refill tick, a fresh connect.
const RECOVERY_BOUND: Duration = Duration::from_secs(8);

#[test]
fn after_heal_the_pool_refills_min_idle_by_itself_and_serves_queries() {
    let Some(net) = net("recovery") else { return };
    let app = common::app_name("recovery");
    const MIN_IDLE: u32 = 3;
    let warm = builder(&app)
        .max_size(4)
        .min_idle(MIN_IDLE)
        .keepalive_interval(Some(Duration::from_millis(300)))
        .reaper_interval(Duration::from_millis(200))
        .validation_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_secs(1))
        .build(&net.url())
        .unwrap();
    warm.wait_ready(LONG).unwrap();
    let serving = builder(&app)
        .max_size(2)
        .connect_timeout(Duration::from_secs(1))
        .build(&net.url())
        .unwrap();
    serving.get().unwrap().query_one("SELECT 1", &[]).unwrap();

    net.cut().unwrap();
    let cut_at = Instant::now();
    // The keepalive finds every idle session dead; the refills cannot connect.
    assert!(
        wait_until(LONG, || warm.stats().closed(CloseReason::FailedKeepalive)
            >= u64::from(MIN_IDLE)),
        "{:?}",
        warm.stats()
    );
    eprintln!(
        "measured: keepalive found {MIN_IDLE} idle sessions dead {} ms after the cut",
        ms(cut_at.elapsed())
    );
    thread::sleep(Duration::from_secs(1));
    let s = warm.stats();
    assert!(s.idle < MIN_IDLE, "{s:?}");
    assert!(s.connect_errors >= 1, "{s:?}");

    net.heal().unwrap();
    let healed = Instant::now();
    let first_query = thread::spawn(move || {
        let mut attempts = 0;
        while healed.elapsed() < LONG {
            attempts += 1;
            let ok = serving
                .get_timeout(Duration::from_millis(500))
                .and_then(|mut c| c.query_one("SELECT 1", &[]))
                .is_ok();
            if ok {
                return Some((healed.elapsed(), attempts));
            }
        }
        None
    });
    // No acquire on `warm`: the housekeeper alone brings it back to min_idle.
    assert!(
        wait_until(LONG, || warm.stats().idle >= MIN_IDLE),
        "{:?}",
        warm.stats()
    );
    let refilled = healed.elapsed();
    let (first, attempts) = join_within(first_query, LONG, "the first query after the heal")
        .expect("no successful query within 15 s of the heal");
    eprintln!(
        "measured: after heal, first successful query in {} ms ({attempts} attempts), \
         min_idle {MIN_IDLE} refilled in {} ms without any acquire (bound {} ms)",
        ms(first),
        ms(refilled),
        ms(RECOVERY_BOUND)
    );
    assert_eq!(warm.stats().acquires, 0);
    assert!(refilled < RECOVERY_BOUND, "{refilled:?}");
    assert!(first < RECOVERY_BOUND, "{first:?}");
    let mut conn = warm.get_timeout(Duration::from_secs(1)).unwrap();
    conn.query_one("SELECT 1", &[]).unwrap();
}

struct Call {
    start: Instant,
    end: Instant,
    ok: bool,
}

#[test]
fn during_a_long_cut_no_call_outlives_its_bound() {
    let Some(net) = net("long_cut") else { return };
    let app = common::app_name("long_cut");
    const THREADS: usize = 4;
    const MAX_CALLS: usize = 5_000;
    let acquire = Duration::from_secs(1);
    let pool = builder(&app)
        .max_size(THREADS as u32)
        .min_idle(2)
        .connect_timeout(Duration::from_secs(1))
        .validation_timeout(Duration::from_secs(1))
        .keepalive_interval(Some(Duration::from_secs(1)))
        .reaper_interval(Duration::from_millis(250))
        .build(&net.url())
        .unwrap();
    pool.wait_ready(LONG).unwrap();
    // A call is an acquire (bounded by `acquire`) and one statement (bounded by the link's
    // TCP timers when the session was handed out without a round trip), then the release.
    let bound = acquire + dead_link_bound();
    let stop = Arc::new(AtomicBool::new(false));
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    // Bounded in count and in time, whatever happens.
    let give_up = Instant::now() + LONG_CUT + LONG * 2;
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (pool, stop, calls) = (pool.clone(), Arc::clone(&stop), Arc::clone(&calls));
            thread::spawn(move || {
                let mut successes_after_stop = 0;
                for _ in 0..MAX_CALLS {
                    let start = Instant::now();
                    if start > give_up {
                        return;
                    }
                    let ok = pool
                        .get_timeout(acquire)
                        .and_then(|mut c| c.query_one("SELECT pg_sleep(0.02)", &[]))
                        .is_ok();
                    calls.lock().unwrap().push(Call {
                        start,
                        end: Instant::now(),
                        ok,
                    });
                    if stop.load(Ordering::SeqCst) {
                        successes_after_stop += usize::from(ok);
                        if successes_after_stop > 0 {
                            return;
                        }
                    }
                    if !ok {
                        thread::sleep(Duration::from_millis(10));
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(1));
    net.cut().unwrap();
    let cut_at = Instant::now();
    thread::sleep(LONG_CUT);
    let heal_at = Instant::now();
    net.heal().unwrap();
    // Each worker stops at its first success after this.
    thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        join_within(
            w,
            RECOVERY_BOUND + bound,
            "a worker with no success since the heal",
        );
    }

    let calls = calls.lock().unwrap();
    let during: Vec<&Call> = calls
        .iter()
        .filter(|c| c.end > cut_at && c.start < heal_at)
        .collect();
    let longest = during
        .iter()
        .map(|c| c.end - c.start)
        .max()
        .unwrap_or_default();
    let inside: Vec<&&Call> = during
        .iter()
        .filter(|c| c.start >= cut_at && c.end <= heal_at)
        .collect();
    let first_ok_after_heal = calls
        .iter()
        .filter(|c| c.ok && c.start >= heal_at)
        .map(|c| c.end - heal_at)
        .min();
    eprintln!(
        "measured: longest call during a {} s cut: {} ms (bound {} ms); {} calls overlapped \
         the cut, {} ran inside it; first success {} ms after the heal",
        LONG_CUT.as_secs(),
        ms(longest),
        ms(bound + SLACK),
        during.len(),
        inside.len(),
        first_ok_after_heal.map_or(-1, |d| d.as_millis() as i64)
    );
    assert!(longest <= bound + SLACK, "{longest:?}");
    // Bounded calls keep coming back: several per thread over the cut, not one hung call.
    assert!(inside.len() >= THREADS * 2, "{}", inside.len());
    // Nothing can succeed over a cut link: a success would be a lie (or a leaked cache).
    assert!(inside.iter().all(|c| !c.ok));
    assert!(first_ok_after_heal.is_some());
}

#[test]
fn closing_the_pool_during_a_cut_returns_within_its_bound() {
    let Some(net) = net("close_cut") else { return };
    let app = common::app_name("close_cut");
    // Idle and in use on the dead link.
    let mixed = builder(&app)
        .max_size(3)
        .min_idle(2)
        .build(&net.url())
        .unwrap();
    mixed.wait_ready(LONG).unwrap();
    let mut busy_conn = mixed.get().unwrap();
    let busy = thread::spawn(move || {
        let r = timed(|| busy_conn.query("SELECT pg_sleep(60)", &[]));
        drop(busy_conn);
        r
    });
    // Only idle sessions on the dead link.
    let idle_only = builder(&app)
        .max_size(2)
        .min_idle(2)
        .build(&net.url())
        .unwrap();
    idle_only.wait_ready(LONG).unwrap();
    // Full: a caller waits for the one session, which is held.
    let full = builder(&app).max_size(1).build(&net.url()).unwrap();
    let held = full.get().unwrap();
    let waiter = {
        let full = full.clone();
        thread::spawn(move || timed(|| full.get_timeout(Duration::from_secs(30)).map(|_| ())))
    };
    wait_active(&net, &app, 1);
    assert!(wait_until(LONG, || full.stats().waiting == 1));
    net.cut().unwrap();

    let close = Duration::from_secs(1);
    let (drained, took) = timed(|| idle_only.close_timeout(close));
    eprintln!(
        "measured: close_timeout({} ms) of a pool with idle sessions on a cut link returned \
         {drained} after {} ms",
        ms(close),
        ms(took)
    );
    assert!(took < close + SLACK, "{took:?}");
    assert!(
        drained,
        "closing idle sessions needs no answer from the server"
    );
    assert_eq!(idle_only.stats().open, 0);

    let (drained, took) = timed(|| mixed.close_timeout(close));
    eprintln!(
        "measured: close_timeout({} ms) with a statement in flight on a cut link returned \
         {drained} after {} ms (bound {} ms)",
        ms(close),
        ms(took),
        ms(close + SLACK)
    );
    assert!(took < close + SLACK, "{took:?}");
    assert!(mixed.is_closed());
    assert!(mixed
        .get_timeout(Duration::from_secs(1))
        .unwrap_err()
        .is_closed());

    let (drained, took) = timed(|| full.close_timeout(close));
    assert!(took < close + SLACK, "{took:?}");
    assert!(!drained, "a session is still held");
    let (result, waited) = join_within(waiter, LONG, "the waiter");
    let err = result.expect_err("the pool closed under the waiter");
    assert!(err.is_closed(), "{err}");
    assert!(waited < LONG, "{waited:?}");
    // Giving back a session on the dead link does not block either.
    let (_, took) = timed(|| drop(held));
    eprintln!(
        "measured: releasing a held session into a closed pool on a cut link took {} ms",
        ms(took)
    );
    assert!(took < SLACK, "{took:?}");
    assert!(full.close_timeout(close));

    // The statement in flight ends by the TCP bound; then the pool is drained.
    let (result, took) = join_within(busy, LONG, "the statement in flight");
    let err = result.expect_err("no answer over a cut link");
    assert!(took < dead_link_bound() + SLACK, "{took:?}: {err}");
    let (drained, took) = timed(|| mixed.close_timeout(close));
    assert!(drained, "{:?}", mixed.stats());
    assert!(took < SLACK, "{took:?}");
    assert_eq!(mixed.stats().open, 0);
}

#[test]
fn a_failover_off_a_partitioned_primary_reaches_the_promoted_standby() {
    let Some(net) = net("failover") else {
        return;
    };
    // The standby streams over the primary's Unix socket: it keeps up through the cut.
    let standby = net.cluster().start_standby().expect("a standby");
    let app = common::app_name("netns-failover");
    let connect_timeout = Duration::from_secs(4);
    let info = format!(
        "host={},127.0.0.1 port={},{} user=postgres dbname=postgres target_session_attrs=read-write",
        net.addr().ip(),
        net.addr().port(),
        standby.port()
    );
    let pool = builder(&app)
        .connect_timeout(connect_timeout)
        .max_size(2)
        .build(&info)
        .unwrap();
    let server_addr = |pool: &Pool| -> String {
        pool.get()
            .unwrap()
            .query_one("SELECT inet_server_addr()::text", &[])
            .unwrap()
            .get(0)
    };
    assert!(server_addr(&pool).starts_with(&net.addr().ip().to_string()));
    pool.get()
        .unwrap()
        .batch_execute("CREATE TABLE failover (x int); INSERT INTO failover VALUES (1)")
        .unwrap();
    net.cluster().wait_replayed(&standby, LONG).unwrap();

    // The primary's machine vanishes (nothing answers, nothing refuses) and the standby is
    // promoted. The first host swallows every connect; only its share of the connect
    // timeout is lost on it, and the next host is reached.
    net.cut().unwrap();
    standby.promote().unwrap();
    let start = Instant::now();
    let mut last = String::new();
    let recovered = wait_until(LONG * 2, || {
        match pool
            .get()
            .and_then(|mut c| c.execute("INSERT INTO failover VALUES (2)", &[]))
        {
            Ok(_) => true,
            Err(e) => {
                last = e.to_string();
                false
            }
        }
    });
    let took = start.elapsed();
    assert!(recovered, "no write reached the promoted standby: {last}");
    eprintln!(
        "measured: primary partitioned and standby promoted: first write through the pool after {} ms",
        ms(took)
    );
    // At most: the idle session to the primary found dead (a validation or a statement,
    // bounded by the TCP timers), then one connect whose first attempt gets half of the
    // connect timeout.
    let bound = dead_link_bound() + connect_timeout / 2 + SLACK * 2;
    assert!(
        took < bound,
        "{took:?} (bound {bound:?}); last error: {last}"
    );
    assert!(server_addr(&pool).starts_with("127.0.0.1"));
    let rows: i64 = pool
        .get()
        .unwrap()
        .query_one("SELECT count(*) FROM failover", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 2, "the row written before the cut was replicated");
}
