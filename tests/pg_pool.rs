//! The pool against a real PostgreSQL server (the shared throwaway cluster): every option
//! observed from the server's side in `pg_stat_activity`, not only in the pool's own stats.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{active_backends, admin, backend_pids, backends, builder, url, wait_until};
use pgpool::{CloseReason, ErrorKind, Event};

const LONG: Duration = Duration::from_secs(10);

#[test]
fn thirty_two_threads_on_a_pool_of_four_never_open_more_than_four() {
    let app = common::app_name("hammer");
    let pool = builder(&app).max_size(4).build(&url()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicI64::new(0));
    let monitor = {
        let (stop, max_seen, app) = (Arc::clone(&stop), Arc::clone(&max_seen), app.clone());
        thread::spawn(move || {
            let mut admin = admin();
            let mut samples = 0;
            while !stop.load(Ordering::SeqCst) && samples < 10_000 {
                max_seen.fetch_max(backends(&mut admin, &app), Ordering::SeqCst);
                samples += 1;
                thread::sleep(Duration::from_millis(2));
            }
            samples
        })
    };
    let barrier = Arc::new(Barrier::new(32));
    let workers: Vec<_> = (0..32)
        .map(|t| {
            let (pool, barrier) = (pool.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for i in 0..150i32 {
                    let mut conn = pool.get().unwrap();
                    let v: i32 = conn
                        .query_one("SELECT $1::int4 + $2::int4", &[&t, &i])
                        .unwrap()
                        .get(0);
                    assert_eq!(v, t + i);
                    let s = pool.stats();
                    assert!(s.open + s.pending + s.closing <= 4, "{s:?}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(monitor.join().unwrap() > 0);
    let max = max_seen.load(Ordering::SeqCst);
    assert!(
        (1..=4).contains(&max),
        "pg_stat_activity showed {max} sessions"
    );
    let s = pool.stats();
    assert_eq!(s.acquires, 32 * 150);
    assert!(s.connections_created <= 4, "{s:?}");
    assert!(s.wait_count > 0);
    assert!(pool.close());
    assert!(wait_until(LONG, || backends(&mut admin(), &app) == 0));
}

#[test]
fn application_name_and_statement_timeout_are_set_on_every_connection() {
    let app = common::app_name("settings");
    let pool = builder(&app)
        .max_size(2)
        .statement_timeout(Some(Duration::from_millis(1500)))
        .build(&url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    let timeout: String = conn
        .query_one("SHOW statement_timeout", &[])
        .unwrap()
        .get(0);
    assert_eq!(timeout, "1500ms");
    let pid = conn.backend_pid();
    let mut admin = admin();
    let name: String = admin
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .unwrap()
        .get(0);
    assert_eq!(name, app);
    // statement_timeout is enforced by the server.
    let err = conn.query("SELECT pg_sleep(5)", &[]).unwrap_err();
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Server);
}

#[test]
fn idle_timeout_closes_connections_seen_in_pg_stat_activity() {
    let app = common::app_name("idle_timeout");
    let pool = builder(&app)
        .max_size(3)
        .idle_timeout(Some(Duration::from_millis(200)))
        .reaper_interval(Duration::from_millis(20))
        .build(&url())
        .unwrap();
    let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    assert_eq!(backends(&mut admin(), &app), 3);
    drop(held);
    let mut admin = admin();
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
    let s = pool.stats();
    assert_eq!(s.closed(CloseReason::IdleTimeout), 3);
    assert_eq!(s.open, 0);
}

#[test]
fn max_lifetime_replaces_old_sessions() {
    let app = common::app_name("lifetime");
    let pool = builder(&app)
        .max_size(1)
        .max_lifetime(Some(Duration::from_millis(300)))
        .reaper_interval(Duration::from_millis(20))
        .build(&url())
        .unwrap();
    let old_pid = pool.get().unwrap().backend_pid();
    let mut admin = admin();
    assert_eq!(backend_pids(&mut admin, &app), vec![old_pid]);
    assert!(wait_until(LONG, || pool
        .stats()
        .closed(CloseReason::Lifetime)
        == 1));
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
    let new_pid = pool.get().unwrap().backend_pid();
    assert_ne!(new_pid, old_pid);
}

#[test]
fn max_uses_retires_the_session_after_n_checkouts() {
    let app = common::app_name("max_uses");
    let pool = builder(&app)
        .max_size(1)
        .max_uses(Some(3))
        .build(&url())
        .unwrap();
    let pids: Vec<i32> = (0..4).map(|_| pool.get().unwrap().backend_pid()).collect();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[1], pids[2]);
    assert_ne!(pids[2], pids[3]);
    let mut admin = admin();
    assert!(wait_until(LONG, || backend_pids(&mut admin, &app) == vec![pids[3]]));
    assert_eq!(pool.stats().closed(CloseReason::MaxUses), 1);
}

#[test]
fn max_idle_closes_sessions_beyond_it_on_release() {
    let app = common::app_name("max_idle");
    let pool = builder(&app).max_size(4).max_idle(1).build(&url()).unwrap();
    let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    let mut admin = admin();
    assert_eq!(backends(&mut admin, &app), 4);
    drop(held);
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 1));
    let s = pool.stats();
    assert_eq!(s.closed(CloseReason::MaxIdle), 3);
    assert_eq!(s.idle, 1);
}

#[test]
fn acquire_times_out_while_every_connection_is_busy() {
    let app = common::app_name("busy_timeout");
    let pool = builder(&app).max_size(2).build(&url()).unwrap();
    let _a = pool.get().unwrap();
    let _b = pool.get().unwrap();
    let start = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(err.is_timeout());
    let text = err.to_string();
    assert!(
        text.contains("timed out after") && text.contains("open 2/2, in use 2"),
        "{text}"
    );
}

#[test]
fn a_guard_dropped_mid_transaction_leaves_no_transaction_behind() {
    let app = common::app_name("dirty_release");
    let table = format!("dirty_{}", app.replace('-', "_"));
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    pool.get()
        .unwrap()
        .batch_execute(&format!("CREATE TABLE {table} (x int)"))
        .unwrap();

    // Through the wrapper, with an explicit BEGIN.
    let mut conn = pool.get().unwrap();
    let pid = conn.backend_pid();
    conn.execute("BEGIN", &[]).unwrap();
    conn.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .unwrap();
    assert!(conn.may_be_in_transaction());
    drop(conn);
    let mut admin = admin();
    let state: String = admin
        .query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .unwrap()
        .get(0);
    assert_eq!(state, "idle");

    // A multi-statement batch, leaving a failed transaction.
    let mut conn = pool.get().unwrap();
    assert_eq!(
        conn.backend_pid(),
        pid,
        "same session, rolled back rather than replaced"
    );
    conn.batch_execute("BEGIN; INSERT INTO nowhere VALUES (1)")
        .unwrap_err();
    assert_eq!(conn.transaction_status(), pgpool::TransactionStatus::Failed);
    drop(conn);

    let mut conn = pool.get().unwrap();
    let n: i64 = conn
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the uncommitted insert was rolled back");
    let in_tx: bool = conn
        .query_one("SELECT txid_current_if_assigned() IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!in_tx);
    conn.batch_execute(&format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn transaction_helper_commits_rolls_back_on_error_and_on_panic() {
    let app = common::app_name("tx_helper");
    let table = format!("tx_{}", app.replace('-', "_"));
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    pool.execute(&format!("CREATE TABLE {table} (x int)"), &[])
        .unwrap();
    let insert = format!("INSERT INTO {table} VALUES ($1)");

    pool.transaction(|tx| tx.execute(&insert, &[&1i32]))
        .unwrap();
    let err = pool
        .transaction(|tx| {
            tx.execute(&insert, &[&2i32])?;
            tx.execute("SELECT no_such_column", &[])
        })
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("42703"));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.transaction::<(), pgpool::Error, _>(|tx| {
            tx.execute(&insert, &[&3i32]).unwrap();
            panic!("boom");
        })
    }));
    assert!(panicked.is_err());
    let rows = pool
        .query(&format!("SELECT x FROM {table} ORDER BY x"), &[])
        .unwrap();
    let xs: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(xs, vec![1]);
    // The guard released during the panic was discarded, not reused.
    assert_eq!(pool.stats().closed(CloseReason::Broken), 1);
    pool.execute(&format!("DROP TABLE {table}"), &[]).unwrap();
}

#[test]
fn repeated_queries_use_the_statement_cache() {
    let app = common::app_name("stmt_cache");
    let pool = builder(&app)
        .max_size(1)
        .statement_cache_capacity(2)
        .build(&url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    for i in 0..10i32 {
        let v: i32 = conn.query_one("SELECT $1::int4 * 2", &[&i]).unwrap().get(0);
        assert_eq!(v, i * 2);
    }
    assert_eq!(conn.cached_statements(), 1);
    let server_side: i64 = conn
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        server_side, 2,
        "the doubling query and this one, nothing else"
    );
    conn.query_one("SELECT 3", &[]).unwrap();
    assert_eq!(conn.cached_statements(), 2, "bounded by capacity");

    let off = builder(&app)
        .max_size(1)
        .statement_cache_capacity(0)
        .build(&url())
        .unwrap();
    let mut conn = off.get().unwrap();
    conn.query_one("SELECT 1", &[]).unwrap();
    assert_eq!(conn.cached_statements(), 0);
}

#[test]
fn validation_on_acquire_pings_only_outside_the_skip_window() {
    let app = common::app_name("validation");
    let pool = builder(&app)
        .max_size(1)
        .validation_skip_window(Duration::from_millis(100))
        .build(&url())
        .unwrap();
    drop(pool.get().unwrap());
    drop(pool.get().unwrap()); // used just now: no ping
    assert_eq!(pool.stats().validations, 0);
    thread::sleep(Duration::from_millis(150));
    drop(pool.get().unwrap());
    assert_eq!(pool.stats().validations, 1);
}

#[test]
fn a_terminated_backend_is_caught_before_hand_out() {
    let app = common::app_name("probe");
    // No pre-ping, no keepalive: only the zero-cost probe stands between the user and the
    // dead session.
    let pool = builder(&app)
        .max_size(1)
        .validate_on_acquire(false)
        .keepalive_interval(None)
        .build(&url())
        .unwrap();
    let old_pid = pool.get().unwrap().backend_pid();
    let mut admin = admin();
    assert_eq!(common::terminate(&mut admin, &app), 1);
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
    let mut conn = pool.get().unwrap();
    assert_ne!(conn.backend_pid(), old_pid);
    conn.query_one("SELECT 1", &[]).unwrap();
    assert_eq!(pool.stats().closed(CloseReason::FailedValidation), 1);
}

#[test]
fn keepalive_replaces_a_killed_backend_before_anyone_asks() {
    let app = common::app_name("keepalive");
    let pool = builder(&app)
        .max_size(2)
        .min_idle(2)
        .keepalive_interval(Some(Duration::from_millis(100)))
        .reaper_interval(Duration::from_millis(20))
        .build(&url())
        .unwrap();
    pool.wait_ready(LONG).unwrap();
    let mut admin = admin();
    let old = backend_pids(&mut admin, &app);
    assert_eq!(old.len(), 2);
    assert_eq!(common::terminate(&mut admin, &app), 2);
    assert!(wait_until(LONG, || pool
        .stats()
        .closed(CloseReason::FailedKeepalive)
        == 2));
    assert!(wait_until(LONG, || {
        let now = backend_pids(&mut admin, &app);
        now.len() == 2 && now.iter().all(|p| !old.contains(p))
    }));
    // A backend shows in pg_stat_activity a moment before its connector hands it to the pool.
    assert!(wait_until(LONG, || {
        let s = pool.stats();
        s.idle + s.checking == 2
    }));
    let s = pool.stats();
    assert_eq!(s.acquires, 0, "no user was involved");
    assert_eq!(s.closed(CloseReason::FailedValidation), 0);
}

#[test]
fn close_while_connections_are_busy_waits_for_them_then_closes_all() {
    let app = common::app_name("close_busy");
    let pool = builder(&app).max_size(3).build(&url()).unwrap();
    let idle = pool.get().unwrap();
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let mut conn = pool.get().unwrap();
            thread::spawn(move || {
                conn.query("SELECT pg_sleep(0.3)", &[]).unwrap();
                drop(conn);
            })
        })
        .collect();
    drop(idle);
    let start = Instant::now();
    assert!(pool.close_timeout(Duration::from_secs(5)));
    assert!(start.elapsed() >= Duration::from_millis(200));
    for b in busy {
        b.join().unwrap();
    }
    assert_eq!(pool.stats().closed(CloseReason::PoolClosed), 3);
    // Every client is closed; the server's backends exit a moment later.
    let mut admin = admin();
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
    assert!(pool.get().unwrap_err().is_closed());
}

#[test]
fn events_report_connect_acquire_release_and_remove() {
    let app = common::app_name("events");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let pool = builder(&app)
        .max_size(1)
        .event_hook(move |e| {
            let tag = match e {
                Event::Connect { .. } => "connect".to_string(),
                Event::Acquire { .. } => "acquire".to_string(),
                Event::Release { .. } => "release".to_string(),
                Event::Remove { reason, .. } => format!("remove:{}", reason.as_str()),
                Event::Error { error, .. } => format!("error:{}", error.kind()),
                _ => "other".to_string(),
            };
            seen2.lock().unwrap().push(tag);
        })
        .build(&url())
        .unwrap();
    drop(pool.get().unwrap());
    pool.close();
    assert!(wait_until(LONG, || seen.lock().unwrap().len() == 4));
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["connect", "acquire", "release", "remove:pool_closed"]
    );
}

#[test]
fn events_carry_the_sessions_backend_pid_through_a_terminated_session() {
    let app = common::app_name("event-pids");
    let seen: Arc<Mutex<Vec<Event>>> = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let pool = builder(&app)
        .max_size(1)
        .event_hook(move |e| seen2.lock().unwrap().push(e.clone()))
        .build(&url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    let first: i32 = conn
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert_eq!(conn.backend_pid(), first);
    drop(conn);
    let mut admin = admin();
    assert_eq!(backend_pids(&mut admin, &app), vec![first]);
    assert_eq!(common::terminate(&mut admin, &app), 1);
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
    // The hand-out check finds the session dead: it is removed, naming its pid, and a new
    // one is opened.
    let conn = pool.get().unwrap();
    let second = conn.backend_pid();
    assert_ne!(second, first);
    drop(conn);
    let events = seen.lock().unwrap().clone();
    let summary: Vec<(&str, Option<i32>)> = events
        .iter()
        .map(|e| (e.kind_name(), e.backend_pid()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("connect", Some(first)),
            ("acquire", Some(first)),
            ("release", Some(first)),
            ("error", Some(first)),
            ("remove", Some(first)),
            ("connect", Some(second)),
            ("acquire", Some(second)),
            ("release", Some(second)),
        ],
        "{events:?}"
    );
    // The validation's error names the connection; its removal says why.
    assert_eq!(events[3].conn_id(), Some(1));
    assert!(matches!(
        events[4],
        Event::Remove {
            reason: CloseReason::FailedValidation,
            conn_id: 1,
            ..
        }
    ));
    assert_eq!(events[5].conn_id(), Some(2));
    // The removal carries the connection's age: it lived at least as long as its hold.
    let (held, age) = (events[2].duration().unwrap(), events[4].duration().unwrap());
    assert!(age + Duration::from_millis(5) >= held, "{age:?} < {held:?}");
    assert!(events[0].duration().is_some() && events[3].duration().is_none());
}

#[test]
fn health_reports_database_time_latency_and_counts() {
    let app = common::app_name("health");
    let pool = builder(&app).max_size(2).build(&url()).unwrap();
    let h = pool.health();
    assert!(h.ok, "{:?}", h.error);
    assert_eq!(h.database, "postgres");
    assert!(!h.server_time.is_empty());
    assert!(h.latency > Duration::ZERO);
    assert_eq!((h.open, h.idle, h.waiting), (1, 1, 0));
}

#[test]
fn key_value_connection_strings_work_and_bad_ones_are_config_errors() {
    let app = common::app_name("conninfo");
    let config: postgres::Config = url().parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let kv = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let pool = builder(&app).build(&kv).unwrap();
    pool.get().unwrap().query_one("SELECT 1", &[]).unwrap();
    let err = builder(&app)
        .build("host=127.0.0.1 port=notaport")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.option(), Some("port"), "{err}");
    assert!(err.to_string().contains("notaport"), "{err}");
    let err = builder(&app)
        .build("host=127.0.0.1 colour=blue")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn every_session_gets_keepalives_and_a_tcp_user_timeout() {
    let app = common::app_name("socket_bounds");
    let pool = builder(&app)
        .max_size(1)
        .tcp_user_timeout(Some(Duration::from_millis(4500)))
        .tcp_keepalive_idle(Duration::from_secs(7))
        .build(&url())
        .unwrap();
    let bounds = pool
        .get()
        .unwrap()
        .socket_bounds()
        .expect("a located TCP socket");
    assert!(bounds.keepalive);
    assert_eq!(bounds.keepalive_idle, Duration::from_secs(7));
    assert_eq!(bounds.tcp_user_timeout, Some(Duration::from_millis(4500)));

    let defaults = builder(&app).max_size(1).build(&url()).unwrap();
    let bounds = defaults.get().unwrap().socket_bounds().unwrap();
    assert_eq!(bounds.tcp_user_timeout, Some(Duration::from_secs(10)));
    assert_eq!(bounds.keepalive_idle, Duration::from_secs(5));
}

#[test]
fn nested_transactions_use_savepoints() {
    let app = common::app_name("savepoints");
    let table = format!("sp_{}", app.replace('-', "_"));
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    pool.execute(&format!("CREATE TABLE {table} (x int)"), &[])
        .unwrap();
    let insert = format!("INSERT INTO {table} VALUES ($1)");
    pool.transaction(|outer| {
        outer.execute(&insert, &[&1i32])?;
        let inner = outer.transaction(|inner| {
            inner.execute(&insert, &[&2i32])?;
            inner.execute("SELECT 1/0", &[])
        });
        assert_eq!(inner.unwrap_err().sqlstate(), Some("22012"));
        outer.transaction(|inner| inner.execute(&insert, &[&3i32]))?;
        Ok::<_, pgpool::Error>(())
    })
    .unwrap();
    let rows = pool
        .query(&format!("SELECT x FROM {table} ORDER BY x"), &[])
        .unwrap();
    let xs: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(xs, vec![1, 3]);
    let mut conn = pool.get().unwrap();
    assert!(!conn.may_be_in_transaction());
    conn.batch_execute(&format!("DROP TABLE {table}")).unwrap();
}

/// Rows `init_sql` logged for `app` in `pgpool_init_log`.
fn init_runs(app: &str) -> i64 {
    admin()
        .query_one(
            "SELECT count(*) FROM pgpool_init_log WHERE app = $1",
            &[&app],
        )
        .unwrap()
        .get(0)
}

fn init_sql_for(app: &str) -> String {
    admin()
        .batch_execute("CREATE TABLE IF NOT EXISTS pgpool_init_log (app text, pid int4)")
        .unwrap();
    format!(
        "SET search_path TO app_schema, public; \
         INSERT INTO pgpool_init_log VALUES ('{app}', pg_backend_pid())"
    )
}

fn search_path(conn: &mut pgpool::PooledConnection) -> String {
    conn.query_one("SHOW search_path", &[]).unwrap().get(0)
}

#[test]
fn init_sql_runs_once_on_every_new_session() {
    let app = common::app_name("init-once");
    let pool = builder(&app)
        .max_size(2)
        .init_sql(init_sql_for(&app))
        .build(&url())
        .unwrap();
    let mut a = pool.get().unwrap();
    let mut b = pool.get().unwrap();
    assert_eq!(search_path(&mut a), "app_schema, public");
    assert_eq!(search_path(&mut b), "app_schema, public");
    drop((a, b));
    for _ in 0..5 {
        let mut c = pool.get().unwrap();
        assert_eq!(search_path(&mut c), "app_schema, public");
    }
    assert_eq!(pool.stats().connections_created, 2);
    assert_eq!(init_runs(&app), 2, "once per session, not per checkout");
}

#[test]
fn with_full_reset_init_sql_runs_again_after_each_reset() {
    let app = common::app_name("init-reset");
    let pool = builder(&app)
        .max_size(1)
        .full_reset(true)
        .init_sql(init_sql_for(&app))
        .build(&url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    conn.batch_execute("SET search_path TO public").unwrap();
    assert_eq!(search_path(&mut conn), "public");
    drop(conn);
    // RESET ALL undid both SETs; init_sql, in the same round trip, set its own again.
    let mut conn = pool.get().unwrap();
    assert_eq!(search_path(&mut conn), "app_schema, public");
    drop(conn);
    assert_eq!(pool.stats().connections_created, 1);
    assert_eq!(
        init_runs(&app),
        3,
        "at connect and after each of the two resets"
    );
}

#[test]
fn a_failing_init_sql_fails_the_connect_and_a_syntax_error_at_once() {
    let app = common::app_name("init-bad");
    let pool = builder(&app)
        .min_idle(1)
        .init_sql("SELEC 1")
        .build(&url())
        .unwrap();
    let start = Instant::now();
    let err = pool.wait_ready(Duration::from_secs(5)).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(err.is_permanent_connect(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.sqlstate(), Some("42601"));
    let text = err.to_string();
    assert!(
        text.contains("init_sql failed") && text.contains("syntax error"),
        "{text}"
    );
    let text = pool
        .get()
        .expect_err("no session without its init")
        .to_string();
    assert!(text.contains("init_sql failed"), "{text}");
    assert_eq!(backends(&mut admin(), &app), 0, "no session was kept");

    // A transaction left open is refused too.
    let pool = builder(&app)
        .min_idle(1)
        .init_sql("BEGIN")
        .build(&url())
        .unwrap();
    let err = pool.wait_ready(Duration::from_secs(5)).unwrap_err();
    assert!(err.to_string().contains("inside a transaction"), "{err}");

    // A slow one is bounded by the connect timeout, retried like any failed connect, and
    // cancelled on the server: it does not run on after its session is dropped.
    let pool = builder(&app)
        .max_size(1)
        .init_sql("SELECT pg_sleep(30)")
        .connect_timeout(Duration::from_millis(500))
        .build(&url())
        .unwrap();
    let start = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(1500)).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("init_sql failed: timed out"),
        "{err}"
    );
    assert!(pool.stats().connect_errors >= 1);
    pool.close();
    assert!(
        wait_until(Duration::from_secs(3), || active_backends(
            &mut admin(),
            &app
        ) == 0),
        "an init script is still running on the server"
    );
}
