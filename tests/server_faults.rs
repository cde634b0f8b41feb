//! Server-side faults, each on a private cluster: the server stopped (fast and immediate)
//! while the pool is idle, busy and queued; sessions terminated at random under load; the
//! server full; permanent connect errors; query timeouts and cancels that reach only their
//! own statement; which errors evict a session; a COMMIT the server turned into a ROLLBACK.
//!
//! Every test checks the promises that hold whatever the pool does inside: an acquire
//! returns by its deadline plus [`SLACK`]; errors name their cause; no broken or dirty session
//! is handed out; the pool recovers by itself; `open + pending + closing <= max_size` at every
//! sample; the pool's counts agree with `pg_stat_activity` once the dust settles. Measured
//! bounds are printed as `measured: …` lines.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{backends, wait_until};
use pgpool::{CloseReason, Error, ErrorKind, Pool};
use pgpool_testkit::{ClusterOptions, StopMode, TempCluster, SCRAM_PASSWORD};

/// What an acquire may overrun its deadline by (a loaded CI machine).
const SLACK: Duration = Duration::from_millis(1500);
/// Bound on every wait for something that should happen soon.
const LONG: Duration = Duration::from_secs(15);

/// Texts that name why a connect failed while the server is down or shutting down.
/// (A connect that meets the postmaster closing its sockets mid-stop is reset by the peer.)
const CONNECT_CAUSES: &[&str] = &[
    "refused",
    "reset by peer",
    "shutting down",
    "57p03",
    "starting up",
];

/// Texts that name why a session in use broke when the server went away.
const BROKEN_CAUSES: &[&str] = &[
    "57p01",
    "57p02",
    "terminat",
    "shutdown",
    "closed the connection",
    "reset",
    "broken pipe",
];

fn names_any(err: &Error, needles: &[&str]) -> bool {
    let text = err.to_string().to_lowercase();
    needles.iter().any(|n| text.contains(n))
}

/// Samples `pool.stats()` every 2 ms on a thread of its own and checks the slot accounting
/// at every sample; [`Sampler::finish`] stops it and fails the test on any violation.
struct Sampler {
    stop: Arc<AtomicBool>,
    /// Samples taken, violations seen, the first few violating snapshots.
    handle: thread::JoinHandle<(u64, u64, Vec<String>)>,
}

impl Sampler {
    fn start(pool: &Pool) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (pool, stop) = (pool.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                let (mut samples, mut violations, mut first) = (0u64, 0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let s = pool.stats();
                    samples += 1;
                    let broken = s.open + s.pending + s.closing > s.max_size
                        || s.open != s.in_use + s.idle + s.checking;
                    if broken {
                        violations += 1;
                        if first.len() < 5 {
                            first.push(format!("{s:?}"));
                        }
                    }
                    thread::sleep(Duration::from_millis(2));
                }
                (samples, violations, first)
            })
        };
        Sampler { stop, handle }
    }

    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (samples, violations, first) = self.handle.join().unwrap();
        assert!(samples > 0);
        assert_eq!(
            violations, 0,
            "slot accounting broken in {violations} of {samples} samples, first: {first:#?}"
        );
    }
}

/// Waits until `n` sessions of `app` are running a statement.
fn wait_active(admin: &mut postgres::Client, app: &str, n: i64) -> bool {
    wait_until(LONG, || common::active_backends(admin, app) == n)
}

/// The state `pg_stat_activity` shows for backend `pid` (None once it is gone).
fn backend_state(admin: &mut postgres::Client, pid: i32) -> Option<String> {
    admin
        .query_opt("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .unwrap()
        .and_then(|r| r.get(0))
}

// ---- The server stopped and restarted ---------------------------------------------------

const STOP_POOL: u32 = 2;

fn stop_pool(cluster: &TempCluster, app: &str) -> Pool {
    common::builder(app)
        .max_size(STOP_POOL)
        .min_idle(STOP_POOL)
        .connect_timeout(Duration::from_secs(1))
        .validation_timeout(Duration::from_secs(1))
        .keepalive_interval(Some(Duration::from_millis(300)))
        .reaper_interval(Duration::from_millis(100))
        .build(&cluster.url())
        .unwrap()
}

/// Starts the stopped server and checks that the pool refills `min_idle` with live sessions
/// on its own (no acquire meanwhile), then that every session handed out answers its first
/// query. Returns a fresh admin session.
fn restart_and_check_recovery(
    cluster: &TempCluster,
    pool: &Pool,
    app: &str,
    label: &str,
) -> postgres::Client {
    cluster.start_server().unwrap();
    let back = Instant::now();
    let mut admin = cluster.admin().unwrap();
    let acquires = pool.stats().acquires;
    let refilled = wait_until(LONG, || {
        let s = pool.stats();
        s.open == STOP_POOL && s.idle == STOP_POOL && backends(&mut admin, app) == STOP_POOL as i64
    });
    eprintln!(
        "measured: {label}: min_idle ({STOP_POOL}) refilled with live sessions {} ms after the \
         server was back, without any acquire",
        back.elapsed().as_millis()
    );
    assert!(refilled, "{label}: not refilled: {}", pool.state_line());
    assert_eq!(
        pool.stats().acquires,
        acquires,
        "{label}: nobody acquired meanwhile"
    );
    let mut held: Vec<_> = (0..STOP_POOL).map(|_| pool.get().unwrap()).collect();
    for (i, conn) in held.iter_mut().enumerate() {
        let i = i as i32;
        let v: i32 = conn
            .query_one("SELECT $1::int4 + 1", &[&i])
            .unwrap_or_else(|e| panic!("{label}: a dead session was handed out: {e}"))
            .get(0);
        assert_eq!(v, i + 1);
    }
    admin
}

/// A thread holding a connection with a `pg_sleep` in flight; it returns when its query
/// ended, and the query's result.
type Holder = thread::JoinHandle<(Instant, Result<u64, Error>)>;

/// `n` holders; the receiver hears from each once it holds its connection.
fn start_holders(pool: &Pool, n: u32) -> (mpsc::Receiver<Instant>, Vec<Holder>) {
    let (tx, rx) = mpsc::channel();
    let handles = (0..n)
        .map(|_| {
            let (pool, tx) = (pool.clone(), tx.clone());
            thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                tx.send(Instant::now()).unwrap();
                let r = conn.execute("SELECT pg_sleep(30)", &[]);
                (Instant::now(), r)
            })
        })
        .collect();
    (rx, handles)
}

fn server_stopped_while_idle_busy_and_queued(mode: StopMode) {
    let label = format!("{mode:?}").to_lowercase();
    let cluster = common::private_cluster();
    let app = common::app_name(&format!("stop_{label}"));
    let pool = stop_pool(&cluster, &app);
    pool.wait_ready(LONG).unwrap();
    let sampler = Sampler::start(&pool);

    // 1. Idle: every idle session dies with the server; an acquire meanwhile returns by its
    // deadline naming the refused reconnect.
    cluster.stop_server(mode).unwrap();
    let timeout = Duration::from_millis(1000);
    let start = Instant::now();
    let err = pool.get_timeout(timeout).unwrap_err();
    let took = start.elapsed();
    eprintln!(
        "measured: {label} stop, idle pool: acquire({} ms) returned after {} ms (bound {} ms): {err}",
        timeout.as_millis(),
        took.as_millis(),
        (timeout + SLACK).as_millis()
    );
    assert!(took <= timeout + SLACK, "{took:?}");
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
        "{err:?}"
    );
    assert!(names_any(&err, CONNECT_CAUSES), "cause not named: {err}");
    assert!(err.is_retry_safe(), "{err:?}");
    let mut admin = restart_and_check_recovery(&cluster, &pool, &app, &format!("{label}/idle"));

    // 2. Busy: a pg_sleep in flight on every connection; each query returns as soon as the
    // server is gone, Broken, outcome unknown.
    let (ready, holders) = start_holders(&pool, STOP_POOL);
    for _ in 0..STOP_POOL {
        ready.recv_timeout(LONG).unwrap();
    }
    assert!(wait_active(&mut admin, &app, STOP_POOL as i64));
    drop(admin);
    let stopping = Instant::now();
    cluster.stop_server(mode).unwrap();
    let stop_took = stopping.elapsed();
    for h in holders {
        let (ended, result) = h.join().unwrap();
        let err = result.unwrap_err();
        let after = ended.saturating_duration_since(stopping);
        eprintln!(
            "measured: {label} stop, busy pool: pg_sleep returned {} ms after the stop began \
             (pg_ctl stop took {} ms): {err}",
            after.as_millis(),
            stop_took.as_millis()
        );
        assert!(after <= stop_took + SLACK, "{after:?}");
        assert_eq!(err.kind(), ErrorKind::Broken, "{err:?}");
        assert!(err.outcome_unknown());
        assert!(names_any(&err, BROKEN_CAUSES), "cause not named: {err}");
    }
    let mut admin = restart_and_check_recovery(&cluster, &pool, &app, &format!("{label}/busy"));

    // 3. Queued: both connections busy, six callers waiting; every one returns by its own
    // deadline naming the cause.
    let (ready, holders) = start_holders(&pool, STOP_POOL);
    for _ in 0..STOP_POOL {
        ready.recv_timeout(LONG).unwrap();
    }
    assert!(wait_active(&mut admin, &app, STOP_POOL as i64));
    drop(admin);
    let wait = Duration::from_secs(3);
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || {
                let start = Instant::now();
                let r = pool.get_timeout(wait).map(|c| c.backend_pid());
                (start.elapsed(), r)
            })
        })
        .collect();
    assert!(wait_until(LONG, || pool.stats().waiting == 6));
    cluster.stop_server(mode).unwrap();
    for h in holders {
        let (_, result) = h.join().unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Broken);
    }
    let mut worst = Duration::ZERO;
    for c in callers {
        let (took, result) = c.join().unwrap();
        let err = result.expect_err("no session while the server is down");
        worst = worst.max(took);
        assert!(took <= wait + SLACK, "{took:?}: {err}");
        assert!(
            matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
            "{err:?}"
        );
        assert!(names_any(&err, CONNECT_CAUSES), "cause not named: {err}");
    }
    eprintln!(
        "measured: {label} stop, 6 callers queued on a pool of {STOP_POOL}: slowest \
         acquire({} ms) returned after {} ms (bound {} ms)",
        wait.as_millis(),
        worst.as_millis(),
        (wait + SLACK).as_millis()
    );
    let mut admin = restart_and_check_recovery(&cluster, &pool, &app, &format!("{label}/queued"));

    // The queue works again: six callers share the two sessions, every query answers.
    let callers: Vec<_> = (0..6)
        .map(|i: i32| {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                conn.query_one("SELECT $1::int4 FROM pg_sleep(0.05)", &[&i])
                    .unwrap()
                    .get::<_, i32>(0)
            })
        })
        .collect();
    for (i, c) in callers.into_iter().enumerate() {
        assert_eq!(c.join().unwrap(), i as i32);
    }
    sampler.finish();
    assert!(pool.close());
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
}

#[test]
fn server_stopped_fast_while_idle_busy_and_queued_then_recovers() {
    server_stopped_while_idle_busy_and_queued(StopMode::Fast);
}

#[test]
fn server_stopped_immediate_while_idle_busy_and_queued_then_recovers() {
    server_stopped_while_idle_busy_and_queued(StopMode::Immediate);
}

// ---- Sessions terminated at random under load --------------------------------------------

#[test]
fn random_terminations_under_load_surface_only_as_broken_sessions() {
    let cluster = common::private_cluster();
    let app = common::app_name("random_kills");
    let mut admin = cluster.admin().unwrap();
    admin
        .batch_execute("CREATE TABLE t (w int, s int, PRIMARY KEY (w, s))")
        .unwrap();
    let pool = common::builder(&app)
        .max_size(4)
        .min_idle(2)
        .keepalive_interval(Some(Duration::from_millis(200)))
        .reaper_interval(Duration::from_millis(100))
        .build(&cluster.url())
        .unwrap();
    pool.wait_ready(LONG).unwrap();
    let sampler = Sampler::start(&pool);
    let stop = Arc::new(AtomicBool::new(false));
    let run_for = Duration::from_secs(5);

    let killer = {
        let (stop, app, url) = (Arc::clone(&stop), app.clone(), cluster.url());
        thread::spawn(move || {
            let mut admin = common::admin_for(&url);
            let mut kills = 0u64;
            let until = Instant::now() + run_for + Duration::from_secs(5);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                let killed: bool = admin
                    .query_opt(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1 ORDER BY random() LIMIT 1",
                        &[&app],
                    )
                    .unwrap()
                    .is_some_and(|r| r.get(0));
                kills += u64::from(killed);
                thread::sleep(Duration::from_millis(50));
            }
            kills
        })
    };

    let ops = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4i32)
        .map(|w| {
            let (pool, stop, ops) = (pool.clone(), Arc::clone(&stop), Arc::clone(&ops));
            thread::spawn(move || {
                let mut errors: Vec<Error> = Vec::new();
                let mut committed: Vec<i32> = Vec::new();
                let mut seq = 0i32;
                let until = Instant::now() + run_for + Duration::from_secs(5);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    let mut conn = match pool.get() {
                        Ok(c) => c,
                        Err(e) => {
                            errors.push(e);
                            continue;
                        }
                    };
                    // A few operations per checkout: an idle session in hand can be killed too.
                    for _ in 0..3 {
                        seq += 1;
                        let s = seq;
                        let a = i64::from(w) * 1_000_000 + i64::from(s);
                        let query = conn
                            .query_one("SELECT $1::int8 * 2 + $2::int8", &[&a, &7i64])
                            .map(|r| r.get::<_, i64>(0));
                        let result = query.and_then(|v| {
                            assert_eq!(v, a * 2 + 7, "wrong result");
                            conn.transaction(|tx| {
                                tx.execute("INSERT INTO t VALUES ($1, $2)", &[&w, &s])?;
                                let n: i64 = tx
                                    .query_one(
                                        "SELECT count(*) FROM t WHERE w = $1 AND s = $2",
                                        &[&w, &s],
                                    )?
                                    .get(0);
                                Ok::<_, Error>(n)
                            })
                        });
                        match result {
                            Ok(n) => {
                                assert_eq!(n, 1, "wrong result");
                                committed.push(s);
                                ops.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                let broken = conn.is_broken();
                                errors.push(e);
                                if broken {
                                    break;
                                }
                            }
                        }
                    }
                }
                (committed, errors)
            })
        })
        .collect();

    thread::sleep(run_for);
    stop.store(true, Ordering::Relaxed);
    let kills = killer.join().unwrap();
    let mut all_errors = Vec::new();
    let mut committed = Vec::new();
    for (w, h) in workers.into_iter().enumerate() {
        let (c, e) = h.join().unwrap();
        committed.extend(c.into_iter().map(|s| (w as i32, s)));
        all_errors.extend(e);
    }
    sampler.finish();
    let ok = ops.load(Ordering::Relaxed);
    eprintln!(
        "measured: {kills} random terminations in {} s under 4 workers: {ok} operations \
         succeeded, {} errors",
        run_for.as_secs(),
        all_errors.len()
    );
    assert!(kills >= 20, "only {kills} terminations");
    assert!(ok >= 100, "only {ok} operations succeeded");
    for e in &all_errors {
        let allowed = match e.kind() {
            ErrorKind::Broken => matches!(e.sqlstate(), None | Some("57P01")),
            ErrorKind::Connect => e.is_retry_safe(),
            _ => false,
        };
        assert!(allowed, "unexpected error under terminations: {e:?}");
    }
    // Every transaction that reported success is there.
    let stored: HashSet<(i32, i32)> = admin
        .query("SELECT w, s FROM t", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for row in &committed {
        assert!(stored.contains(row), "committed {row:?} is missing");
    }
    // Once the dust settles the pool's count matches the server's.
    let settle = Instant::now();
    let settled = wait_until(LONG, || {
        let s = pool.stats();
        s.in_use == 0
            && s.pending == 0
            && s.closing == 0
            && s.open >= 2
            && i64::from(s.open) == backends(&mut admin, &app)
    });
    eprintln!(
        "measured: stats agreed with pg_stat_activity {} ms after the load stopped",
        settle.elapsed().as_millis()
    );
    assert!(
        settled,
        "{} vs {} backends",
        pool.state_line(),
        backends(&mut admin, &app)
    );
    let s = pool.stats();
    assert!(s.closed(CloseReason::Broken) + s.closed(CloseReason::FailedValidation) > 0);
    assert!(pool.close());
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
}

// ---- The server full ---------------------------------------------------------------------

#[test]
fn max_connections_exhausted_names_53300_and_the_pool_fills_in_when_room_frees() {
    let cluster = TempCluster::start_with(&ClusterOptions {
        max_connections: 6,
        extra_conf: vec!["superuser_reserved_connections = 1".into()],
        ..ClusterOptions::default()
    })
    .unwrap();
    let app = common::app_name("full");
    let mut admin = cluster.admin().unwrap();
    let mut hogs: Vec<postgres::Client> = Vec::new();
    while hogs.len() < 10 {
        match postgres::Client::connect(&cluster.url(), postgres::NoTls) {
            Ok(c) => hogs.push(c),
            Err(_) => break,
        }
    }
    assert!(!hogs.is_empty() && hogs.len() < 10, "{} hogs", hogs.len());
    let pool = common::builder(&app)
        .max_size(2)
        .min_idle(1)
        .reaper_interval(Duration::from_millis(100))
        .build(&cluster.url())
        .unwrap();
    let sampler = Sampler::start(&pool);

    let timeout = Duration::from_millis(800);
    let start = Instant::now();
    let err = pool.get_timeout(timeout).unwrap_err();
    let took = start.elapsed();
    eprintln!(
        "measured: server full: acquire({} ms) returned after {} ms (bound {} ms): {err}",
        timeout.as_millis(),
        took.as_millis(),
        (timeout + SLACK).as_millis()
    );
    assert!(took <= timeout + SLACK);
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connect),
        "{err:?}"
    );
    assert!(names_any(&err, &["too many clients", "53300"]), "{err}");
    assert!(err.is_retry_safe());

    let start = Instant::now();
    let err = pool.wait_ready(timeout).unwrap_err();
    let took = start.elapsed();
    assert!(took <= timeout + SLACK, "{took:?}");
    assert!(names_any(&err, &["too many clients", "53300"]), "{err}");
    assert!(!err.is_permanent_connect());
    assert_eq!(backends(&mut admin, &app), 0);

    // Room frees: min_idle is filled without anyone asking.
    hogs.pop();
    let freed = Instant::now();
    let acquires = pool.stats().acquires;
    assert!(
        wait_until(LONG, || backends(&mut admin, &app) == 1
            && pool.stats().idle == 1),
        "{}",
        pool.state_line()
    );
    eprintln!(
        "measured: server full: min_idle filled {} ms after a slot freed",
        freed.elapsed().as_millis()
    );
    assert_eq!(pool.stats().acquires, acquires);
    let mut conn = pool.get_timeout(timeout).unwrap();
    assert_eq!(conn.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    drop(conn);
    sampler.finish();
    drop(hogs);
    assert!(pool.close());
}

// ---- Permanent connect errors ------------------------------------------------------------

struct PermanentCase {
    what: &'static str,
    conninfo: String,
    sqlstate: Option<&'static str>,
    /// A part of the server's (or the client's) message the error must carry.
    needle: &'static str,
    /// Also through `get()` (tests/faults.rs already covers some cases there).
    via_get: bool,
}

#[test]
fn permanent_connect_errors_fail_fast_through_get_and_wait_ready() {
    let cluster = common::private_cluster();
    let port = cluster.port();
    let mut admin = cluster.admin().unwrap();
    for setup in [
        "CREATE DATABASE restricted",
        "REVOKE CONNECT ON DATABASE restricted FROM PUBLIC",
        "CREATE ROLE nopriv LOGIN",
    ] {
        admin.batch_execute(setup).unwrap();
    }
    let kv = |rest: &str| format!("host=127.0.0.1 port={port} {rest}");
    let cases = [
        PermanentCase {
            what: "wrong password",
            conninfo: cluster.scram_url("wrong-password"),
            sqlstate: Some("28P01"),
            needle: "password authentication failed",
            via_get: false,
        },
        PermanentCase {
            what: "no such database",
            conninfo: kv("user=postgres dbname=no_such_db"),
            sqlstate: Some("3D000"),
            needle: "no_such_db",
            via_get: false,
        },
        PermanentCase {
            what: "a startup option the server rejects",
            conninfo: kv("user=postgres dbname=postgres options='-c statement_timeout=abc'"),
            sqlstate: Some("22023"),
            needle: "statement_timeout",
            via_get: true,
        },
        PermanentCase {
            what: "no CONNECT privilege",
            conninfo: kv("user=nopriv dbname=restricted"),
            sqlstate: Some("42501"),
            needle: "permission denied for database",
            via_get: true,
        },
        PermanentCase {
            what: "an unresolvable host",
            conninfo: format!("host=nonexistent.invalid port={port} user=postgres dbname=postgres"),
            sqlstate: None,
            needle: "nonexistent.invalid",
            via_get: true,
        },
        PermanentCase {
            what: "TLS required, the server has none",
            conninfo: kv("user=postgres dbname=postgres sslmode=require"),
            sqlstate: None,
            needle: "TLS",
            via_get: true,
        },
    ];
    // The same server accepts a good login: the failures are the cases' own.
    pgpool::Pool::builder()
        .build(&cluster.scram_url(SCRAM_PASSWORD))
        .unwrap()
        .get()
        .unwrap();
    let bound = Duration::from_secs(1);
    let check = |case: &PermanentCase, how: &str, took: Duration, err: &Error| {
        eprintln!(
            "measured: {} via {how}: failed after {} ms (acquire_timeout 10 s, bound {} ms): {err}",
            case.what,
            took.as_millis(),
            bound.as_millis()
        );
        assert!(took < bound, "{}: {how} took {took:?}", case.what);
        assert_eq!(err.kind(), ErrorKind::Connect, "{}: {err:?}", case.what);
        assert!(err.is_permanent_connect(), "{}: {err:?}", case.what);
        assert!(!err.is_retry_safe(), "{}: {err:?}", case.what);
        assert_eq!(err.sqlstate(), case.sqlstate, "{}: {err:?}", case.what);
        if let Some(code) = case.sqlstate {
            assert!(err.to_string().contains(code), "{}: {err}", case.what);
        }
        assert!(
            err.to_string().contains(case.needle),
            "{}: {err}",
            case.what
        );
    };
    for case in &cases {
        let app = common::app_name("permanent");
        if case.via_get {
            let pool = common::builder(&app)
                .acquire_timeout(Duration::from_secs(10))
                .build(&case.conninfo)
                .unwrap();
            let start = Instant::now();
            let err = pool.get().unwrap_err();
            check(case, "get()", start.elapsed(), &err);
            assert!(pool.stats().connect_errors >= 1);
        }
        let pool = common::builder(&app)
            .min_idle(1)
            .acquire_timeout(Duration::from_secs(10))
            .build(&case.conninfo)
            .unwrap();
        let start = Instant::now();
        let err = pool.wait_ready(Duration::from_secs(10)).unwrap_err();
        check(case, "wait_ready()", start.elapsed(), &err);
    }
}

// ---- Query timeouts and cancels ----------------------------------------------------------

#[test]
fn a_query_past_its_timeout_is_cancelled_on_the_server_and_the_session_reused() {
    let cluster = common::private_cluster();
    let app = common::app_name("query_timeout");
    let pool = common::builder(&app)
        .max_size(1)
        .build(&cluster.url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    let pid = conn.backend_pid();
    let timeout = Duration::from_millis(800);
    conn.set_query_timeout(Some(timeout));

    let observer = {
        let url = cluster.url();
        thread::spawn(move || {
            let mut admin = common::admin_for(&url);
            wait_until(LONG, || {
                admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(20)%'",
                        &[&pid],
                    )
                    .unwrap()
                    .get::<_, i64>(0)
                    == 1
            })
        })
    };
    let start = Instant::now();
    let err = conn.execute("SELECT pg_sleep(20)", &[]).unwrap_err();
    let took = start.elapsed();
    assert!(
        observer.join().unwrap(),
        "the statement was seen running on the server"
    );
    eprintln!(
        "measured: query_timeout {} ms: the call returned after {} ms: {err}",
        timeout.as_millis(),
        took.as_millis()
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert_eq!(err.sqlstate(), Some("57014"));
    assert!(err.to_string().contains("57014"), "{err}");
    assert!(!err.outcome_unknown());
    assert!(took >= timeout && took <= timeout + SLACK, "{took:?}");
    assert!(!conn.is_broken());

    let mut admin = cluster.admin().unwrap();
    let since = Instant::now();
    assert!(
        wait_until(Duration::from_secs(2), || backend_state(&mut admin, pid)
            .as_deref()
            == Some("idle")),
        "{:?}",
        backend_state(&mut admin, pid)
    );
    eprintln!(
        "measured: backend idle in pg_stat_activity {} ms after the timed-out call returned",
        since.elapsed().as_millis()
    );
    for i in 0..3i32 {
        let v: i32 = conn
            .query_one("SELECT $1::int4 FROM pg_sleep(0.05)", &[&i])
            .unwrap()
            .get(0);
        assert_eq!(v, i);
    }
    drop(conn);
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.backend_pid(), pid, "the same session, reused");
    conn.query_one("SELECT 1", &[]).unwrap();
    assert_eq!(pool.stats().closed_total(), 0);
}

/// How the one statement among four is stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stopper {
    QueryTimeout,
    CancelToken,
}

/// Four threads each sleep on their own pooled connection and return their own id; one of
/// them is cancelled (by its query timeout or by its cancel token from the main thread).
/// Only that one fails; every thread then runs a few more statements on the same
/// connection, which a late cancel would hit (after a token's cancel, once `cancel` has
/// returned: the case where the next statement is sent at once is
/// `a_cancel_token_cancels_only_its_own_statement_and_never_the_next_one`).
fn cancel_reaches_only_its_own_statement(pool: &Pool, admin: &mut postgres::Client, how: Stopper) {
    const VICTIM: i32 = 2;
    let barrier = Arc::new(Barrier::new(5));
    let (tx, rx) = mpsc::channel();
    let (cancelled_tx, cancelled_rx) = mpsc::channel::<()>();
    let mut cancelled_rx = Some(cancelled_rx);
    let threads: Vec<_> = (0..4i32)
        .map(|id| {
            let (pool, barrier, tx) = (pool.clone(), Arc::clone(&barrier), tx.clone());
            let cancelled = if id == VICTIM && how == Stopper::CancelToken {
                cancelled_rx.take()
            } else {
                None
            };
            thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                if id == VICTIM {
                    if how == Stopper::QueryTimeout {
                        conn.set_query_timeout(Some(Duration::from_millis(300)));
                    }
                    tx.send((conn.backend_pid(), conn.cancel_token().unwrap()))
                        .unwrap();
                }
                barrier.wait();
                let start = Instant::now();
                let result = conn
                    .query_one("SELECT $1::int4 FROM pg_sleep(1.5)", &[&id])
                    .map(|r| r.get::<_, i32>(0));
                let took = start.elapsed();
                conn.set_query_timeout(None);
                if let Some(cancelled) = cancelled {
                    cancelled.recv_timeout(LONG).unwrap();
                }
                let after: Vec<Result<i32, Error>> = (0..3)
                    .map(|k: i32| {
                        conn.query_one("SELECT $1::int4 FROM pg_sleep(0.1)", &[&(id * 10 + k)])
                            .map(|r| r.get(0))
                    })
                    .collect();
                (id, result, took, after)
            })
        })
        .collect();
    let (victim_pid, token) = rx.recv_timeout(LONG).unwrap();
    barrier.wait();
    if how == Stopper::CancelToken {
        assert!(wait_until(LONG, || backend_state(admin, victim_pid)
            .as_deref()
            == Some("active")));
        thread::sleep(Duration::from_millis(100));
        token.cancel().unwrap();
        cancelled_tx.send(()).unwrap();
    }
    for t in threads {
        let (id, result, took, after) = t.join().unwrap();
        if id == VICTIM {
            let err = result.unwrap_err();
            eprintln!(
                "measured: {how:?}: the cancelled statement returned after {} ms: {err}",
                took.as_millis()
            );
            assert_eq!(err.sqlstate(), Some("57014"), "{err:?}");
            let kind = match how {
                Stopper::QueryTimeout => ErrorKind::Timeout,
                Stopper::CancelToken => ErrorKind::Server,
            };
            assert_eq!(err.kind(), kind, "{err:?}");
            assert!(took < Duration::from_millis(1400), "{took:?}");
        } else {
            assert_eq!(result.unwrap(), id, "{how:?}: another thread's statement");
            assert!(took >= Duration::from_millis(1400), "{took:?}");
        }
        for (k, r) in after.into_iter().enumerate() {
            let v = r.unwrap_or_else(|e| {
                panic!("{how:?}: thread {id}'s statement {k} after the cancel failed: {e:?}")
            });
            assert_eq!(v, id * 10 + k as i32);
        }
    }
}

/// Keeps every core busy until the returned flag is set (or 20 s pass): a loaded machine,
/// where the server's processes are preempted at awkward moments.
fn spin_cpus() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..3 {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::hint::spin_loop();
            }
        });
    }
    stop
}

fn four_session_pool(cluster: &TempCluster, app: &str) -> Pool {
    let pool = common::builder(app)
        .max_size(4)
        .min_idle(4)
        .build(&cluster.url())
        .unwrap();
    pool.wait_ready(LONG).unwrap();
    pool
}

#[test]
fn a_query_timeout_cancels_only_its_own_statement_and_never_the_next_one() {
    let cluster = common::private_cluster();
    let app = common::app_name("cancel_own_timeout");
    let pool = four_session_pool(&cluster, &app);
    let mut admin = cluster.admin().unwrap();
    cancel_reaches_only_its_own_statement(&pool, &mut admin, Stopper::QueryTimeout);

    // A deadline that races the statement's own end, on a loaded machine: whether the cancel
    // lands or comes too late, it never fails the statements that follow on that backend.
    let mut conn = pool.get().unwrap();
    let pid = conn.backend_pid();
    let (mut cancelled, mut finished) = (0, 0);
    let load = spin_cpus();
    for round in 0..30u64 {
        // 40 to 60 ms around a 50 ms statement: some cancels land, some come too late.
        conn.set_query_timeout(Some(Duration::from_millis(40 + (round % 5) * 5)));
        match conn.execute("SELECT pg_sleep(0.05)", &[]) {
            Ok(_) => finished += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
                assert_eq!(e.sqlstate(), Some("57014"), "{e:?}");
                cancelled += 1;
            }
        }
        conn.set_query_timeout(None);
        for k in 0..2i32 {
            let v: i32 = conn
                .query_one("SELECT $1::int4 FROM pg_sleep(0.01)", &[&k])
                .unwrap_or_else(|e| {
                    panic!("round {round}: a late cancel hit the next statement: {e:?}")
                })
                .get(0);
            assert_eq!(v, k);
        }
    }
    load.store(true, Ordering::Relaxed);
    eprintln!(
        "measured: racing query timeouts under load: {cancelled} cancelled, {finished} \
         finished first; no later statement hit"
    );
    assert_eq!(conn.backend_pid(), pid);
    assert!(!conn.is_broken());
    drop(conn);
    assert_eq!(pool.stats().closed_total(), 0, "every session was kept");
}

#[test]
fn a_cancel_token_from_another_thread_cancels_only_its_own_statement() {
    let cluster = common::private_cluster();
    let app = common::app_name("cancel_own_token");
    let pool = four_session_pool(&cluster, &app);
    let mut admin = cluster.admin().unwrap();
    cancel_reaches_only_its_own_statement(&pool, &mut admin, Stopper::CancelToken);
    assert_eq!(pool.stats().closed_total(), 0, "every session was kept");
}

/// PostgreSQL signals a cancelled backend twice (`kill(pid)` and `kill(-pid)`, see
/// `signal_child` in postmaster.c). The session's own thread sees the first signal's error
/// while the cancel request may still be in flight on another thread; the session sends
/// nothing new until that request is over, so the second signal lands while it is idle (and
/// the server ignores it) instead of on the next statement.
#[test]
fn a_cancel_token_never_cancels_the_statement_after_the_cancelled_one() {
    let cluster = common::private_cluster();
    let app = common::app_name("cancel_next_token");
    let pool = common::builder(&app)
        .max_size(1)
        .build(&cluster.url())
        .unwrap();

    // A cancel from another thread, the next statement sent as soon as the cancelled one
    // returns, on a loaded machine.
    let mut conn = pool.get().unwrap();
    // Both statements cached: each call is one message batch, no round trip before it.
    conn.prepare_cached("SELECT pg_sleep(5)").unwrap();
    conn.prepare_cached("SELECT $1::int4 FROM pg_sleep(0.01)")
        .unwrap();
    let pid = conn.backend_pid();
    // One canceller thread: for each token, waits until the statement runs, then cancels.
    let (go, tokens) = mpsc::channel::<pgpool::CancelToken>();
    let (sent, results) = mpsc::channel();
    let canceller = {
        let url = cluster.url();
        thread::spawn(move || {
            let mut admin = common::admin_for(&url);
            for token in tokens {
                let running = wait_until(LONG, || {
                    admin
                        .query_one(
                            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 \
                             AND state = 'active' AND query = 'SELECT pg_sleep(5)'",
                            &[&pid],
                        )
                        .unwrap()
                        .get::<_, i64>(0)
                        == 1
                });
                sent.send(running.then(|| token.cancel())).unwrap();
            }
        })
    };
    let load = spin_cpus();
    let mut hit = Vec::new();
    for round in 0..80 {
        go.send(conn.cancel_token().unwrap()).unwrap();
        let err = conn.execute("SELECT pg_sleep(5)", &[]).unwrap_err();
        assert_eq!(err.sqlstate(), Some("57014"), "{err:?}");
        let next = conn.query_one("SELECT $1::int4 FROM pg_sleep(0.01)", &[&round]);
        results
            .recv_timeout(LONG)
            .unwrap()
            .expect("the statement was seen running")
            .unwrap();
        match next {
            Ok(row) => assert_eq!(row.get::<_, i32>(0), round),
            Err(e) => hit.push(format!("round {round}: {e}")),
        }
    }
    drop(go);
    canceller.join().unwrap();
    load.store(true, Ordering::Relaxed);
    assert!(
        hit.is_empty(),
        "a cancel hit the statement after the cancelled one in {} of 80 rounds: {hit:#?}",
        hit.len()
    );
}

// ---- Which errors evict a session --------------------------------------------------------

#[test]
fn statement_errors_keep_the_session_and_connection_errors_discard_it() {
    let cluster = common::private_cluster();
    let app = common::app_name("evict");
    let pool = common::builder(&app)
        .max_size(1)
        .build(&cluster.url())
        .unwrap();
    let pid = pool.get().unwrap().backend_pid();
    for (sql, code) in [
        ("SELECT 1/0", "22012"),
        ("SELEC 1", "42601"),
        ("SELECT * FROM no_such_table", "42P01"),
    ] {
        let mut conn = pool.get().unwrap();
        let err = conn.query(sql, &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
        assert_eq!(err.sqlstate(), Some(code), "{err:?}");
        assert!(!err.outcome_unknown());
        assert!(!conn.is_broken());
        drop(conn);
        // Inside a transaction too: the release rolls it back and keeps the session.
        let mut conn = pool.get().unwrap();
        conn.begin().unwrap();
        assert_eq!(conn.query(sql, &[]).unwrap_err().sqlstate(), Some(code));
        drop(conn);
        let mut conn = pool.get().unwrap();
        assert_eq!(conn.backend_pid(), pid, "{code} kept the session");
        assert_eq!(conn.transaction_status(), pgpool::TransactionStatus::Idle);
        conn.query_one("SELECT 1", &[]).unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.closed_total(), 0, "{s:?}");
    assert_eq!(s.connections_created, 1);

    // A terminated backend: the next statement fails Broken and the release discards it.
    let mut admin = cluster.admin().unwrap();
    let mut conn = pool.get().unwrap();
    assert!(admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap()
        .get::<_, bool>(0));
    assert!(wait_until(LONG, || backend_state(&mut admin, pid).is_none()));
    let err = conn.query("SELECT 1", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Broken, "{err:?}");
    assert!(names_any(&err, BROKEN_CAUSES), "{err}");
    assert!(conn.is_broken());
    drop(conn);
    assert!(wait_until(LONG, || pool
        .stats()
        .closed(CloseReason::Broken)
        == 1));
    let mut conn = pool.get().unwrap();
    assert_ne!(conn.backend_pid(), pid);
    conn.query_one("SELECT 1", &[]).unwrap();
    assert_eq!(pool.stats().closed_total(), 1);
}

// ---- A COMMIT the server turned into a ROLLBACK ------------------------------------------

#[test]
fn a_commit_turned_into_a_rollback_is_an_error_and_writes_nothing() {
    let cluster = common::private_cluster();
    let app = common::app_name("commit_rollback");
    let pool = common::builder(&app)
        .max_size(1)
        .build(&cluster.url())
        .unwrap();
    let mut admin = cluster.admin().unwrap();
    admin
        .batch_execute(
            "CREATE TABLE t (x int); \
             CREATE TABLE u (x int UNIQUE DEFERRABLE INITIALLY DEFERRED); \
             INSERT INTO u VALUES (1)",
        )
        .unwrap();
    let count = |admin: &mut postgres::Client, table: &str| -> i64 {
        admin
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0)
    };

    // Pool::transaction, whose closure swallowed a statement's error.
    let result: Result<(), Error> = pool.transaction(|tx| {
        tx.execute("INSERT INTO t VALUES (1)", &[])?;
        let ignored = tx.execute("SELECT 1/0", &[]);
        assert_eq!(ignored.unwrap_err().sqlstate(), Some("22012"));
        Ok(())
    });
    let err = result.unwrap_err();
    assert_eq!(err.sqlstate(), Some("25P02"), "{err:?}");
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert_eq!(count(&mut admin, "t"), 0, "nothing was written");

    // A deferred constraint fails the COMMIT itself: the server rolls back.
    let mut conn = pool.get().unwrap();
    conn.begin().unwrap();
    conn.execute("INSERT INTO t VALUES (2)", &[]).unwrap();
    conn.execute("INSERT INTO u VALUES (1)", &[]).unwrap();
    let err = conn.commit().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(err.sqlstate(), Some("23505"), "{err:?}");
    assert_eq!(conn.transaction_status(), pgpool::TransactionStatus::Idle);
    drop(conn);
    let result: Result<(), Error> = pool.transaction(|tx| {
        tx.execute("INSERT INTO t VALUES (3)", &[])?;
        tx.execute("INSERT INTO u VALUES (1)", &[])?;
        Ok(())
    });
    assert_eq!(result.unwrap_err().sqlstate(), Some("23505"));
    assert_eq!(count(&mut admin, "t"), 0, "nothing was written");
    assert_eq!(count(&mut admin, "u"), 1);

    // The session is clean and kept.
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.transaction_status(), pgpool::TransactionStatus::Idle);
    conn.execute("INSERT INTO t VALUES (4)", &[]).unwrap();
    assert_eq!(count(&mut admin, "t"), 1);
    assert_eq!(pool.stats().closed_total(), 0);
}
