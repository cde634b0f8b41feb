//! Panics in user code and closing the pool under pressure, on the shared server.
//!
//! Panics: a `transaction` closure, a thread holding a connection, an event hook. The pool
//! stays usable, the slot comes back, and the panicked session is never handed out again
//! with its transaction or its session variables.
//!
//! Closing: with busy connections, with queued waiters, twice, and concurrently with
//! acquires from 8 threads. Every call returns promptly, and nothing leaks: no backend of the
//! pool's `application_name` left in `pg_stat_activity`, none of the pool's threads
//! (`pgpool-?<id>` in `/proc/self/task/*/comm`) left running, and the process's descriptor
//! count (`/proc/self/fd`) back to its value before the pool. Every test here holds one
//! lock, so no other test of this file opens or closes descriptors meanwhile.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};

use common::{admin, backends, builder, url, wait_until};
use pgpool::{CloseReason, Error, ErrorKind, Event, Pool, TransactionStatus};

/// What a call may overrun its bound by (a loaded CI machine).
const SLACK: Duration = Duration::from_millis(1500);
const LONG: Duration = Duration::from_secs(15);

static SERIAL: Mutex<()> = Mutex::new(());

/// The start of every panic message this file provokes on purpose.
const EXPECTED: &str = "expected panic";

/// Serialises the tests of this file (a failed test must not block the others), and keeps
/// the panics they provoke on purpose (some on the pool's own threads, whose output the test
/// harness does not capture) out of the output.
fn serial() -> MutexGuard<'static, ()> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !message.is_some_and(|m| m.starts_with(EXPECTED)) {
                default(info);
            }
        }));
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The names (`comm`) of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|comm| comm.trim_end().to_string())
        .collect()
}

/// Threads of pool `id` still running: `pgpool-<kind><id>` (`h` housekeeper, `c` closer,
/// `n` connector, and any kind added later).
fn pool_threads(id: u64) -> usize {
    let id = id.to_string();
    thread_names()
        .iter()
        .filter_map(|name| name.strip_prefix("pgpool-"))
        .filter(|rest| rest.trim_start_matches(|c: char| c.is_ascii_alphabetic()) == id)
        .count()
}

/// Threads of any pool in this process.
fn all_pool_threads() -> usize {
    thread_names()
        .iter()
        .filter(|name| name.starts_with("pgpool-"))
        .count()
}

/// What the process had before the pool: the descriptor count (taken after the shared
/// server and the admin session exist) and the pool threads of any pool.
struct Baseline {
    fds: usize,
    pool_threads: usize,
    admin: postgres::Client,
}

fn baseline() -> Baseline {
    let _ = url();
    let admin = admin();
    Baseline {
        fds: fd_count(),
        pool_threads: all_pool_threads(),
        admin,
    }
}

/// After the pool is closed and every holder let go: its backends, threads and descriptors
/// are all gone within a bounded wait.
fn assert_nothing_leaked(base: &mut Baseline, pool: &Pool, app: &str) {
    let id = pool.id();
    let start = Instant::now();
    assert!(
        wait_until(LONG, || pool.stats().open == 0
            && pool.stats().pending == 0
            && pool.stats().closing == 0),
        "{}",
        pool.state_line()
    );
    assert!(
        wait_until(LONG, || backends(&mut base.admin, app) == 0),
        "{} backends left",
        backends(&mut base.admin, app)
    );
    assert!(
        wait_until(LONG, || pool_threads(id) == 0),
        "{} pool threads left",
        pool_threads(id)
    );
    assert!(
        wait_until(LONG, || all_pool_threads() <= base.pool_threads),
        "{} pool threads in the process, {} before the pool",
        all_pool_threads(),
        base.pool_threads
    );
    assert!(
        wait_until(LONG, || fd_count() <= base.fds),
        "{} descriptors, {} before the pool",
        fd_count(),
        base.fds
    );
    eprintln!(
        "measured: pool {id}: no backend, thread or descriptor left {} ms after the last release",
        start.elapsed().as_millis()
    );
}

fn unique_table(app: &str) -> String {
    format!("pc_{}", app.replace('-', "_"))
}

/// `current_setting(name, missing_ok)`: NULL or '' when the session never set it.
fn setting(conn: &mut pgpool::PgConnection, name: &str) -> Option<String> {
    conn.query_one("SELECT current_setting($1, true)", &[&name])
        .unwrap()
        .get::<_, Option<String>>(0)
        .filter(|s| !s.is_empty())
}

// ---- Panics ------------------------------------------------------------------------------

#[test]
fn a_panicking_transaction_closure_rolls_back_and_gives_the_slot_back() {
    let _serial = serial();
    let mut base = baseline();
    let app = common::app_name("panic_tx");
    let table = unique_table(&app);
    base.admin
        .batch_execute(&format!("CREATE TABLE {table} (x int)"))
        .unwrap();
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let first_pid = pool.get().unwrap().backend_pid();

    // On another thread, through Pool::transaction.
    let worker = {
        let (pool, table) = (pool.clone(), table.clone());
        thread::spawn(move || {
            let _: Result<(), Error> = pool.transaction(|tx| {
                tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])?;
                tx.batch_execute("SET LOCAL pgpool.dirty = 'tx'")?;
                panic!("expected panic in a transaction closure");
            });
        })
    };
    assert!(worker.join().is_err(), "the panic reached the thread");
    // On this thread, through PgConnection::transaction, the panic caught by the caller.
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut conn = pool.get().unwrap();
        let _: Result<(), Error> = conn.transaction(|tx| {
            tx.execute(&format!("INSERT INTO {table} VALUES (2)"), &[])?;
            panic!("expected panic in a transaction closure on this thread");
        });
    }));
    assert!(caught.is_err());

    let s = pool.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert!(s.open + s.pending + s.closing <= 1, "{s:?}");
    assert_eq!(s.closed(CloseReason::Broken), 2, "{s:?}");
    let mut conn = pool
        .get_timeout(Duration::from_secs(2))
        .expect("the slot came back");
    assert_ne!(
        conn.backend_pid(),
        first_pid,
        "the panicked session is gone"
    );
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    assert_eq!(setting(&mut conn, "pgpool.dirty"), None);
    let n: i64 = conn
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "both transactions were rolled back");
    drop(conn);
    base.admin
        .batch_execute(&format!("DROP TABLE {table}"))
        .unwrap();
    assert!(pool.close());
    assert_nothing_leaked(&mut base, &pool, &app);
}

#[test]
fn a_panic_while_holding_a_connection_never_hands_its_session_out_again() {
    let _serial = serial();
    let mut base = baseline();
    let app = common::app_name("panic_guard");
    let table = unique_table(&app);
    base.admin
        .batch_execute(&format!("CREATE TABLE {table} (x int)"))
        .unwrap();
    let pool = builder(&app).max_size(1).build(&url()).unwrap();

    let (tx, rx) = mpsc::channel();
    let worker = {
        let (pool, table) = (pool.clone(), table.clone());
        thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            tx.send(conn.backend_pid()).unwrap();
            // Session state a reset without a full reset would keep, and an open transaction.
            conn.batch_execute("SET pgpool.dirty = 'session'").unwrap();
            conn.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)"))
                .unwrap();
            panic!("expected panic while holding a connection");
        })
    };
    let dirty_pid = rx.recv_timeout(LONG).unwrap();
    assert!(worker.join().is_err());

    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut conn = pool.get().unwrap();
        conn.batch_execute("SET pgpool.dirty = 'again'").unwrap();
        let pid = conn.backend_pid();
        panic!("{EXPECTED}: {pid}");
    }));
    let second_pid: i32 = caught
        .unwrap_err()
        .downcast_ref::<String>()
        .and_then(|m| m.strip_prefix(EXPECTED)?.strip_prefix(": ")?.parse().ok())
        .unwrap();

    let s = pool.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert_eq!(s.closed(CloseReason::Broken), 2, "{s:?}");
    for _ in 0..3 {
        let mut conn = pool.get_timeout(Duration::from_secs(2)).unwrap();
        assert!(![dirty_pid, second_pid].contains(&conn.backend_pid()));
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        assert_eq!(setting(&mut conn, "pgpool.dirty"), None);
        let n: i64 = conn
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "the panicked transaction was not committed");
    }
    assert_eq!(pool.stats().closed(CloseReason::Broken), 2);
    assert!(wait_until(LONG, || {
        base.admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&vec![dirty_pid, second_pid]],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 0
    }));
    base.admin
        .batch_execute(&format!("DROP TABLE {table}"))
        .unwrap();
    assert!(pool.close());
    assert_nothing_leaked(&mut base, &pool, &app);
}

#[test]
fn a_panicking_event_hook_leaves_the_pool_working() {
    let _serial = serial();
    let mut base = baseline();
    let app = common::app_name("panic_hook");
    let calls = Arc::new(AtomicU64::new(0));
    let pool = {
        let calls = Arc::clone(&calls);
        builder(&app)
            .max_size(2)
            .min_idle(1)
            .event_hook(move |event: &Event| {
                calls.fetch_add(1, Ordering::Relaxed);
                panic!("{EXPECTED} in the event hook on {event:?}");
            })
            .build(&url())
            .unwrap()
    };
    pool.wait_ready(LONG).unwrap();
    for i in 0..5i32 {
        let mut conn = pool.get().unwrap();
        let v: i32 = conn.query_one("SELECT $1::int4", &[&i]).unwrap().get(0);
        assert_eq!(v, i);
    }
    let mut a = pool.get().unwrap();
    let b = pool.get().unwrap();
    b.discard();
    let n: i32 = pool
        .transaction(|tx| tx.query_one("SELECT 7", &[]).map(|r| r.get(0)))
        .unwrap();
    assert_eq!(n, 7);
    a.query_one("SELECT 1", &[]).unwrap();
    drop(a);
    let s = pool.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert!(s.open + s.pending + s.closing <= 2, "{s:?}");
    assert_eq!(s.acquires, 8, "{s:?}");
    assert_eq!(s.closed(CloseReason::Discarded), 1, "{s:?}");
    assert!(pool.close());
    assert_nothing_leaked(&mut base, &pool, &app);
    let calls = calls.load(Ordering::Relaxed);
    eprintln!("measured: the event hook panicked {calls} times; the pool carried on");
    // Connects, 8 acquires and releases, removes: every event reached the hook.
    assert!(calls >= 20, "{calls} hook calls");
}

// ---- Closing -----------------------------------------------------------------------------

#[test]
fn close_with_busy_connections_is_bounded_and_they_close_as_they_come_back() {
    let _serial = serial();
    let mut base = baseline();
    let app = common::app_name("close_busy");
    let pool = builder(&app)
        .max_size(3)
        .close_timeout(Duration::from_millis(500))
        .build(&url())
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let holders: Vec<_> = (0..3)
        .map(|_| {
            let (pool, tx) = (pool.clone(), tx.clone());
            thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                tx.send(()).unwrap();
                let start = Instant::now();
                // The close reclaims it at its deadline: the call returns then.
                let result = conn.execute("SELECT pg_sleep(1.5)", &[]);
                drop(conn);
                (start.elapsed(), result.err())
            })
        })
        .collect();
    for _ in 0..3 {
        rx.recv_timeout(LONG).unwrap();
    }
    assert!(wait_until(LONG, || common::active_backends(
        &mut base.admin,
        &app
    ) == 3));
    let start = Instant::now();
    let drained = pool.close();
    let took = start.elapsed();
    eprintln!(
        "measured: close with 3 busy connections returned {drained} after {} ms \
         (close_timeout 500 ms, bound {} ms)",
        took.as_millis(),
        (Duration::from_millis(500) + SLACK).as_millis()
    );
    assert!(took <= Duration::from_millis(500) + SLACK, "{took:?}");
    assert!(pool.is_closed());
    assert!(pool.get().unwrap_err().is_closed());
    assert!(
        !drained,
        "the statements were still running at the deadline"
    );
    for h in holders {
        let (took, err) = h.join().expect("no panic in a holder");
        assert!(took <= Duration::from_millis(500) + SLACK, "{took:?}");
        let err = err.expect("reclaimed at the close's deadline");
        assert!(err.to_string().contains("reclaimed"), "{err}");
        eprintln!(
            "measured: a busy statement ended by the close after {} ms",
            took.as_millis()
        );
    }
    // Closing again after every holder let go: prompt, and everything is closed.
    let start = Instant::now();
    assert!(wait_until(LONG, || pool.close()));
    assert!(start.elapsed() <= SLACK);
    assert_eq!(pool.stats().closed(CloseReason::Reclaimed), 3);
    assert_nothing_leaked(&mut base, &pool, &app);
}

#[test]
fn close_wakes_every_queued_waiter_at_once_with_closed() {
    let _serial = serial();
    let mut base = baseline();
    let app = common::app_name("close_waiters");
    let pool = builder(&app)
        .max_size(1)
        .close_timeout(Duration::from_millis(1000))
        .build(&url())
        .unwrap();
    let held = pool.get().unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || {
                let r = pool.get_timeout(Duration::from_secs(10)).map(|_| ());
                (Instant::now(), r)
            })
        })
        .collect();
    assert!(wait_until(LONG, || pool.stats().waiting == 4));
    let closing = Instant::now();
    assert!(!pool.close(), "a connection is still held");
    let close_took = closing.elapsed();
    let mut worst = Duration::ZERO;
    for w in waiters {
        let (woke, result) = w.join().unwrap();
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed, "{err:?}");
        worst = worst.max(woke.saturating_duration_since(closing));
    }
    eprintln!(
        "measured: 4 queued waiters woke {} ms after close began (close itself took {} ms \
         with one connection held, close_timeout 1000 ms)",
        worst.as_millis(),
        close_took.as_millis()
    );
    // Woken by the close itself, not when it gave up waiting for the held connection.
    assert!(worst <= Duration::from_millis(500), "{worst:?}");
    assert!(close_took <= Duration::from_millis(1000) + SLACK);
    assert_eq!(pool.stats().waiting, 0);
    // The held connection was reclaimed at the deadline: nothing is open any more.
    assert_eq!(pool.stats().open, 0);
    assert_eq!(pool.stats().closed(CloseReason::Reclaimed), 1);
    drop(held);
    assert!(pool.close_timeout(Duration::from_secs(5)));
    assert_nothing_leaked(&mut base, &pool, &app);
}

#[test]
fn close_twice_and_concurrently_with_acquires_from_8_threads() {
    let _serial = serial();
    let mut base = baseline();
    let app = common::app_name("close_race");
    let pool = builder(&app)
        .max_size(4)
        .min_idle(2)
        .close_timeout(Duration::from_secs(3))
        .build(&url())
        .unwrap();
    let call_bound = Duration::from_secs(2);
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8i32)
        .map(|t| {
            let (pool, stop) = (pool.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let (mut ok, mut slowest) = (0u64, Duration::ZERO);
                let until = Instant::now() + LONG;
                loop {
                    assert!(Instant::now() < until, "still acquiring after the close");
                    let start = Instant::now();
                    let result = pool.get_timeout(call_bound).and_then(|mut conn| {
                        conn.query_one("SELECT $1::int4", &[&t])
                            .map(|r| r.get::<_, i32>(0))
                    });
                    slowest = slowest.max(start.elapsed());
                    match result {
                        Ok(v) => {
                            assert_eq!(v, t);
                            ok += 1;
                        }
                        Err(e) if e.is_closed() => return (ok, slowest),
                        Err(e) if stop.load(Ordering::Relaxed) => {
                            // A statement caught by the close of its session.
                            assert!(
                                matches!(e.kind(), ErrorKind::Broken | ErrorKind::Server),
                                "{e:?}"
                            );
                        }
                        Err(e) => panic!("before the close: {e:?}"),
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let closers: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || {
                let start = Instant::now();
                let drained = pool.close();
                (start.elapsed(), drained)
            })
        })
        .collect();
    let mut slowest_close = Duration::ZERO;
    for c in closers {
        let (took, _) = c.join().expect("no panic in close");
        slowest_close = slowest_close.max(took);
        assert!(took <= Duration::from_secs(3) + SLACK, "{took:?}");
    }
    let (mut ok, mut slowest_call) = (0, Duration::ZERO);
    for w in workers {
        let (n, slowest) = w.join().expect("no panic in a worker");
        ok += n;
        slowest_call = slowest_call.max(slowest);
    }
    eprintln!(
        "measured: close from 2 threads during acquires from 8: slowest close {} ms, slowest \
         acquire+query {} ms (bound {} ms); {ok} queries before the close",
        slowest_close.as_millis(),
        slowest_call.as_millis(),
        (call_bound + SLACK).as_millis()
    );
    assert!(ok > 0);
    assert!(slowest_call <= call_bound + SLACK);
    let start = Instant::now();
    assert!(pool.close(), "a third close, after everything came back");
    assert!(start.elapsed() <= SLACK);
    assert!(pool.get().unwrap_err().is_closed());
    assert!(pool.try_get().unwrap_err().is_closed());
    assert!(pool
        .wait_ready(Duration::from_secs(1))
        .unwrap_err()
        .is_closed());
    assert_nothing_leaked(&mut base, &pool, &app);
}
