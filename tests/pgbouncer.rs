//! pgpool behind a real PgBouncer in transaction mode (`pool_mode = transaction`), in front
//! of a throwaway cluster: `transaction_pooling` under concurrency with more pgpool
//! connections than server connections, rollback before reuse, what named statements do
//! there, health, validation, keepalives and resets, cancel through PgBouncer, the startup
//! `options` parameter, and the C ABI. See docs/operations/pgbouncer.md.
//!
//! Each test starts its own cluster and PgBouncer (so server connections can be counted).
//! Skipped, with a message, when pgbouncer is not installed, unless
//! `PGPOOL_REQUIRE_PGBOUNCER=1` (scripts/test.sh sets it as root, where setup.sh installs it).

mod c_support;
mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgpool::{CloseReason, Error, TransactionStatus};
use pgpool_testkit::{PgBouncerOptions, TempCluster, TempPgBouncer};

/// A private cluster and a PgBouncer with `default_pool_size` server connections in front.
fn setup(pool_size: u32) -> Option<(TempPgBouncer, TempCluster)> {
    setup_with(PgBouncerOptions {
        default_pool_size: pool_size,
        ..PgBouncerOptions::default()
    })
}

fn setup_with(options: PgBouncerOptions) -> Option<(TempPgBouncer, TempCluster)> {
    let cluster = common::private_cluster();
    let bouncer = TempPgBouncer::start_or_skip(&cluster, &options)?;
    Some((bouncer, cluster))
}

/// Client sessions on the real server other than the cluster's admin sessions
/// ([`TempCluster::admin`], `application_name` `pgpool-admin`): PgBouncer's server
/// connections (nothing else connects to a private cluster).
fn server_sessions(admin: &mut postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' \
             AND application_name IS DISTINCT FROM 'pgpool-admin'",
            &[],
        )
        .unwrap()
        .get(0)
}

fn builder(app: &str) -> pgpool::Builder {
    common::builder(app).transaction_pooling(true)
}

fn backend_pid(conn: &mut pgpool::PgConnection) -> i32 {
    conn.query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

#[test]
fn eight_pgpool_connections_share_two_server_connections() {
    let Some((bouncer, cluster)) = setup(2) else {
        return;
    };
    let mut admin = cluster.admin().unwrap();
    admin
        .batch_execute("CREATE TABLE hits (thread int4 NOT NULL, i int4 NOT NULL)")
        .unwrap();
    let app = common::app_name("share");
    let pool = builder(&app).max_size(8).build(&bouncer.url()).unwrap();
    const THREADS: usize = 8;
    const ITERATIONS: i32 = 60;

    // Sample the server-side session count while the threads run.
    let running = Arc::new(AtomicBool::new(true));
    let most_servers = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let running = Arc::clone(&running);
        let most = Arc::clone(&most_servers);
        let mut admin = cluster.admin().unwrap();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while running.load(Ordering::Relaxed) && Instant::now() < deadline {
                let n = server_sessions(&mut admin) as usize;
                most.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let start = Instant::now();
    let workers: Vec<_> = (0..THREADS as i32)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                // One pgpool connection for the whole run: the server pids it sees are
                // PgBouncer's choice, transaction by transaction.
                let mut conn = pool.get().unwrap();
                let mut pids = BTreeSet::new();
                for i in 0..ITERATIONS {
                    let v: i32 = conn.query_one("SELECT $1::int4 + 1", &[&i]).unwrap().get(0);
                    assert_eq!(v, i + 1);
                    let n = conn
                        .execute("INSERT INTO hits (thread, i) VALUES ($1, $2)", &[&t, &i])
                        .unwrap();
                    assert_eq!(n, 1);
                    let (pid, sum) = conn
                        .transaction(|tx| -> Result<(i32, i64), Error> {
                            let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[])?.get(0);
                            tx.execute(
                                "SELECT set_config('pgpool.k', $1::int4::text, true)",
                                &[&i],
                            )?;
                            tx.execute(
                                "INSERT INTO hits (thread, i) VALUES ($1, -($2::int4))",
                                &[&t, &i],
                            )?;
                            // Same transaction, same server: the local setting is there.
                            let k: String = tx
                                .query_one("SELECT current_setting('pgpool.k')", &[])?
                                .get(0);
                            assert_eq!(k, i.to_string());
                            let again: i32 = tx.query_one("SELECT pg_backend_pid()", &[])?.get(0);
                            assert_eq!(again, pid, "a transaction stays on one server");
                            let sum: i64 = tx
                                .query_one(
                                    "SELECT coalesce(sum(i), 0)::int8 FROM hits WHERE thread = $1",
                                    &[&t],
                                )?
                                .get(0);
                            Ok((pid, sum))
                        })
                        .unwrap();
                    assert_eq!(sum, 0, "each +i has its -i");
                    pids.insert(pid);
                }
                drop(conn);
                // Pool-level transactions too.
                for i in 0..5i32 {
                    let v: i32 = pool
                        .transaction(|tx| -> Result<i32, Error> {
                            tx.execute("INSERT INTO hits (thread, i) VALUES ($1, 0)", &[&t])?;
                            Ok(tx.query_one("SELECT $1::int4 * 3", &[&i])?.get(0))
                        })
                        .unwrap();
                    assert_eq!(v, i * 3);
                }
                pids
            })
        })
        .collect();
    let pids: Vec<BTreeSet<i32>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    running.store(false, Ordering::Relaxed);
    monitor.join().unwrap();
    let elapsed = start.elapsed();

    let rows: i64 = admin
        .query_one("SELECT count(*) FROM hits", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, THREADS as i64 * (2 * ITERATIONS as i64 + 5));
    let all: BTreeSet<i32> = pids.iter().flatten().copied().collect();
    let varied = pids.iter().filter(|p| p.len() > 1).count();
    eprintln!(
        "{THREADS} threads x {ITERATIONS} in {elapsed:?}: server pids {all:?}, \
         {varied} of {THREADS} pgpool connections saw more than one, at most {} server \
         sessions",
        most_servers.load(Ordering::Relaxed)
    );
    assert!(
        all.len() <= 2,
        "more server sessions than default_pool_size: {all:?}"
    );
    assert!(
        varied > 0,
        "no pgpool connection was moved between servers: {pids:?}"
    );
    let most = most_servers.load(Ordering::Relaxed);
    assert!((1..=2).contains(&most), "{most} server sessions seen");
    assert!(bouncer.server_connections().unwrap() <= 2);
    let stats = pool.stats();
    assert!(stats.open > 2, "pgpool opened {} connections", stats.open);
    assert_eq!(stats.closed(CloseReason::Broken), 0);
    assert_eq!(stats.closed(CloseReason::FailedValidation), 0);
}

#[test]
fn one_pgpool_connection_moves_between_servers() {
    let Some((bouncer, _cluster)) = setup(2) else {
        return;
    };
    let app = common::app_name("moves");
    let pool = builder(&app).max_size(2).build(&bouncer.url()).unwrap();
    let mut a = pool.get().unwrap();
    let mut b = pool.get().unwrap();
    // Pin one server to `b` with an open transaction: `a`'s statements must run on the
    // other one; once `b` holds the server `a` last used, `a` must move.
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let pa = backend_pid(&mut a);
        seen.insert(pa);
        b.batch_execute("BEGIN").unwrap();
        let pb = backend_pid(&mut b);
        let pa2 = backend_pid(&mut a);
        seen.insert(pa2);
        assert_ne!(
            pa2, pb,
            "a server pinned by a transaction served another client"
        );
        b.batch_execute("COMMIT").unwrap();
        if seen.len() > 1 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "one pgpool connection saw {seen:?}");
    // The pid pgpool learned at login is PgBouncer's, not a server's.
    assert!(!seen.contains(&a.backend_pid()));
}

#[test]
fn errors_and_abandoned_transactions_are_rolled_back_before_reuse() {
    let Some((bouncer, cluster)) = setup(2) else {
        return;
    };
    let mut admin = cluster.admin().unwrap();
    admin.batch_execute("CREATE TABLE t (v int4)").unwrap();
    let app = common::app_name("rollback");
    let pool = builder(&app).max_size(1).build(&bouncer.url()).unwrap();

    // A statement error inside a transaction: rolled back, the connection kept.
    let err = pool
        .transaction(|tx| -> Result<(), Error> {
            tx.execute("INSERT INTO t VALUES ($1)", &[&1i32])?;
            tx.query_one("SELECT 1 / $1::int4", &[&0i32])?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("22012"), "{err}");
    {
        let mut conn = pool.get().unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        let n: i64 = conn
            .query_one("SELECT count(*) FROM t", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    }

    // A guard dropped inside a transaction, with a local setting and a row: the next user
    // gets an idle session and sees neither; PgBouncer got its server back.
    {
        let mut conn = pool.get().unwrap();
        conn.batch_execute("BEGIN; INSERT INTO t VALUES (2); SET LOCAL statement_timeout = 1234")
            .unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    }
    {
        let mut conn = pool.get().unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        let n: i64 = conn
            .query_one("SELECT count(*) FROM t", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
        let timeout: String = conn
            .query_one("SELECT current_setting('statement_timeout')", &[])
            .unwrap()
            .get(0);
        assert_eq!(timeout, "0");
    }
    // A failed transaction left open (the error swallowed, the guard dropped).
    {
        let mut conn = pool.get().unwrap();
        conn.batch_execute("BEGIN").unwrap();
        assert!(conn.execute("SELECT 1 / $1::int4", &[&0i32]).is_err());
        assert_eq!(conn.transaction_status(), TransactionStatus::Failed);
    }
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    let v: i32 = conn.query_one("SELECT $1::int4", &[&7i32]).unwrap().get(0);
    assert_eq!(v, 7);
    drop(conn);
    let stuck: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stuck, 0);
    let stats = pool.stats();
    assert_eq!(
        stats.connections_created, 1,
        "the one connection was reused"
    );
    assert_eq!(stats.closed(CloseReason::Broken), 0);
}

/// Sessions through PgBouncer that hold a server with an open transaction, to steer which
/// server the next statement of another client runs on.
struct Pinners {
    clients: Vec<(postgres::Client, Option<i32>)>,
}

impl Pinners {
    fn new(bouncer: &TempPgBouncer, n: usize) -> Pinners {
        let clients = (0..n)
            .map(|_| {
                let client = postgres::Config::new()
                    .host("127.0.0.1")
                    .port(bouncer.port())
                    .user("postgres")
                    .dbname("postgres")
                    .connect_timeout(Duration::from_secs(10))
                    .connect(postgres::NoTls)
                    .unwrap();
                (client, None)
            })
            .collect();
        Pinners { clients }
    }

    /// Every pinner opens a transaction (each on its own server); returns their pids.
    fn pin_all(&mut self) -> Vec<i32> {
        for (client, pinned) in &mut self.clients {
            if pinned.is_none() {
                let rows = client
                    .simple_query("BEGIN; SELECT pg_backend_pid()::text")
                    .unwrap();
                let pid = rows
                    .iter()
                    .find_map(|m| match m {
                        postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
                        _ => None,
                    })
                    .unwrap();
                *pinned = Some(pid);
            }
        }
        self.clients.iter().map(|(_, p)| p.unwrap()).collect()
    }

    /// Leaves only the server `pid` free: every other server stays in a pinner's transaction.
    fn free_only(&mut self, pid: i32) {
        self.pin_all();
        for (client, pinned) in &mut self.clients {
            if *pinned == Some(pid) {
                client.batch_execute("COMMIT").unwrap();
                *pinned = None;
            }
        }
    }
}

/// Named statements through PgBouncer in transaction mode, with a server chosen for each
/// statement: each pgpool connection numbers its statements from `pgpool_1`, so two of
/// them prepare the same name on different servers, and a cached statement later runs on a
/// server where that name means the other connection's statement. pgpool cannot see the
/// switch: the answer is silently wrong. A name prepared twice on one server fails with
/// 42P05. With `transaction_pooling` the same steps give the right answers.
#[test]
fn named_statements_break_in_transaction_mode_and_unnamed_ones_do_not() {
    let Some((bouncer, _cluster)) = setup(2) else {
        return;
    };
    for transaction_pooling in [false, true] {
        let app = common::app_name("named");
        let pool = common::builder(&app)
            .max_size(2)
            .transaction_pooling(transaction_pooling)
            .build(&bouncer.url())
            .unwrap();
        let mut a = pool.get().unwrap();
        let mut b = pool.get().unwrap();
        let mut pinners = Pinners::new(&bouncer, 2);
        let servers = pinners.pin_all();
        let (s1, s2) = (servers[0], servers[1]);

        // `a` prepares and runs its statement on s1.
        pinners.free_only(s1);
        assert_eq!(backend_pid(&mut a), s1);
        let v: i32 = a.query_one("SELECT $1::int4 + 1", &[&1i32]).unwrap().get(0);
        assert_eq!(v, 2);
        let v: i32 = a.query_one("SELECT $1::int4 - 2", &[&1i32]).unwrap().get(0);
        assert_eq!(v, -1);
        // `b` prepares and runs a different one on s2.
        pinners.free_only(s2);
        assert_eq!(backend_pid(&mut b), s2);
        let v: i32 = b
            .query_one("SELECT $1::int4 * 100", &[&1i32])
            .unwrap()
            .get(0);
        assert_eq!(v, 100);
        // `a` runs its statement again; PgBouncer picks s2.
        let v: i32 = a.query_one("SELECT $1::int4 + 1", &[&1i32]).unwrap().get(0);
        // And `b` on s1, where `a`'s statements live.
        pinners.free_only(s1);
        let on_s1 = b
            .query_one("SELECT $1::int4 * 100", &[&1i32])
            .map(|r| r.get::<_, i32>(0));
        let fresh = b
            .query_one("SELECT $1::int4 - 1", &[&1i32])
            .map(|r| r.get::<_, i32>(0));
        if transaction_pooling {
            assert_eq!(v, 2);
            assert_eq!(on_s1.unwrap(), 100);
            assert_eq!(fresh.unwrap(), 0);
            assert_eq!(a.cached_statements(), 0);
            assert_eq!(b.cached_statements(), 0);
        } else {
            // Both connections named `pg_backend_pid()` `pgpool_1` and their next statement
            // `pgpool_2`. a's cached `pgpool_2` ran on s2, where it is b's: 1 * 100, not 1 + 1.
            assert_eq!(v, 100, "a cached named statement ran on another server");
            // b's cached `pgpool_2` ran on s1, where it is a's: 1 + 1.
            assert_eq!(on_s1.unwrap(), 2);
            // b's next name, `pgpool_3`, already exists on s1 (a's `- 2`): a clear error,
            // and the next attempt takes the next name.
            let err = fresh.unwrap_err();
            assert_eq!(err.sqlstate(), Some("42P05"), "{err}");
            assert!(err.to_string().contains("already exists"), "{err}");
            let v: i32 = b.query_one("SELECT $1::int4 - 1", &[&1i32]).unwrap().get(0);
            assert_eq!(v, 0);
        }
        drop(pinners);
    }
}

#[test]
fn health_validation_keepalives_and_resets_work_through_pgbouncer() {
    let Some((bouncer, _cluster)) = setup(2) else {
        return;
    };
    let app = common::app_name("health");
    let pool = builder(&app)
        .max_size(4)
        .min_idle(4)
        .validate_on_acquire(true)
        .validation_skip_window(Duration::ZERO)
        .keepalive_interval(Some(Duration::from_millis(50)))
        .full_reset(true)
        .build(&bouncer.url())
        .unwrap();
    let health = pool.health();
    assert!(health.ok, "{health:?}");
    assert_eq!(health.database, "postgres");
    assert!(!health.server_version.is_empty());
    for i in 0..20i32 {
        let mut conn = pool.get().unwrap();
        conn.batch_execute("SET application_name = 'changed'")
            .unwrap();
        let v: i32 = conn.query_one("SELECT $1::int4", &[&i]).unwrap().get(0);
        assert_eq!(v, i);
    }
    // Let the keepalive job run over the idle connections.
    assert!(common::wait_until(Duration::from_secs(10), || {
        pool.stats().open >= 4
    }));
    std::thread::sleep(Duration::from_millis(400));
    let stats = pool.stats();
    assert!(stats.validations >= 20, "{stats:?}");
    for reason in [
        CloseReason::Broken,
        CloseReason::FailedValidation,
        CloseReason::FailedKeepalive,
    ] {
        assert_eq!(stats.closed(reason), 0, "{reason:?}: {stats:?}");
    }
    assert!(pool.health().ok);
}

#[test]
fn a_query_timeout_is_cancelled_through_pgbouncer() {
    let Some((bouncer, cluster)) = setup(2) else {
        return;
    };
    let app = common::app_name("cancel");
    let pool = builder(&app)
        .max_size(2)
        .query_timeout(Some(Duration::from_millis(300)))
        .build(&bouncer.url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    let start = Instant::now();
    let err = conn.execute("SELECT pg_sleep(10)", &[]).unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
    assert!(elapsed < Duration::from_secs(3), "cancel took {elapsed:?}");
    // The session answered the cancel: kept, and usable at once.
    let v: i32 = conn.query_one("SELECT $1::int4", &[&5i32]).unwrap().get(0);
    assert_eq!(v, 5);
    drop(conn);
    let mut admin = cluster.admin().unwrap();
    assert!(common::wait_until(Duration::from_secs(5), || {
        let sleeping: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' \
                 AND state = 'active'",
                &[],
            )
            .unwrap()
            .get(0);
        sleeping == 0
    }));
    assert!(pool.health().ok);
    assert_eq!(pool.stats().closed(CloseReason::Broken), 0);
}

/// pgpool sends `statement_timeout` in the startup packet's `options`. PgBouncer 1.18 refuses
/// an unknown startup parameter (the connect fails with its message), and one listed in
/// `ignore_startup_parameters` is dropped: the setting does not reach the server.
#[test]
fn statement_timeout_in_startup_options_does_not_pass_pgbouncer() {
    let Some((bouncer, _cluster)) = setup(2) else {
        return;
    };
    let app = common::app_name("options");
    let pool = builder(&app)
        .max_size(1)
        .statement_timeout(Some(Duration::from_millis(1500)))
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .build(&bouncer.url())
        .unwrap();
    let start = Instant::now();
    let err = pool.get().map(drop).unwrap_err();
    eprintln!("after {:?}: {err}", start.elapsed());
    assert!(
        err.to_string().contains("unsupported startup parameter"),
        "{err}"
    );
    drop(pool);
    drop(bouncer);
}

#[test]
fn statement_timeout_is_dropped_when_pgbouncer_ignores_options() {
    let Some((bouncer, _cluster)) = setup_with(PgBouncerOptions {
        ignore_startup_parameters: vec!["extra_float_digits".into(), "options".into()],
        ..PgBouncerOptions::default()
    }) else {
        return;
    };
    let app = common::app_name("ignored");
    let pool = builder(&app)
        .max_size(1)
        .statement_timeout(Some(Duration::from_millis(1500)))
        .build(&bouncer.url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    let timeout: String = conn
        .query_one("SELECT current_setting('statement_timeout')", &[])
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0", "PgBouncer passed `options` on after all");
}

#[test]
fn the_c_api_runs_typed_queries_from_four_threads_through_pgbouncer() {
    let Some((bouncer, _cluster)) = setup(2) else {
        return;
    };
    let out = c_support::out_dir("c").join("pgbouncer");
    let src = c_support::root().join("tests/c/pgbouncer.c");
    c_support::compile(&[&src], &out, false);
    let output = c_support::run(&out, &[&bouncer.url(), "4", "100"]);
    assert!(
        output.contains("PGBOUNCER OK: 4 threads x 100 cycles"),
        "{output}"
    );
    assert!(bouncer.server_connections().unwrap() <= 2);
    eprintln!("{}", output.trim_end());
}

#[test]
fn the_throwaway_pgbouncer_is_stopped_and_removed_on_drop() {
    let Some((bouncer, _cluster)) = setup(1) else {
        return;
    };
    let port = bouncer.port();
    assert!(port != 5432 && port != 6432);
    let dir = bouncer.dir().to_path_buf();
    assert!(dir.join("pgbouncer.ini").is_file());
    assert_eq!(bouncer.default_pool_size(), 1);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    drop(bouncer);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
        }),
        "PgBouncer still listens on {port} after drop"
    );
}
