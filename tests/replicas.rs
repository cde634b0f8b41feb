//! A primary and a streaming-replication hot standby, both real ([`TempCluster::start_standby`]):
//! `target_session_attrs` picks the right server whatever the host order; `prefer-standby`
//! falls back to the primary; a refused server is named with the reason; a read-write pool
//! follows a failover (primary stopped, standby promoted) by itself; and a connection whose
//! server changes role under it (a standby promoted, a primary turned read-only) is retired
//! with [`CloseReason::RoleChanged`] after its next statement, validation or keepalive,
//! never handed out again. See docs/operations/replicas-and-failover.md.
//!
//! Measured times are printed as `measured: …` lines.

mod c_support;
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::wait_until;
use pgpool::{CloseReason, Event, Pool};
use pgpool_testkit::{StopMode, TempCluster};

/// Bound on every wait for something that should happen soon.
const LONG: Duration = Duration::from_secs(20);

/// A primary with a hot standby that has replayed everything written so far.
fn pair() -> (TempCluster, TempCluster) {
    let primary = common::private_cluster();
    primary
        .admin()
        .unwrap()
        .batch_execute(
            "CREATE TABLE t (id int4 PRIMARY KEY, who text); INSERT INTO t VALUES (1, 'primary')",
        )
        .unwrap();
    let standby = primary.start_standby().expect("starting a standby");
    primary.wait_replayed(&standby, LONG).unwrap();
    (primary, standby)
}

/// `key=value` connection string over `clusters`, in that order, with `attrs`.
fn hosts(clusters: &[&TempCluster], attrs: &str) -> String {
    let list = |f: &dyn Fn(&TempCluster) -> String| {
        clusters.iter().map(|c| f(c)).collect::<Vec<_>>().join(",")
    };
    format!(
        "host={} port={} user=postgres dbname=postgres target_session_attrs={attrs} connect_timeout=5",
        list(&|_| "127.0.0.1".to_string()),
        list(&|c| c.port().to_string()),
    )
}

fn in_recovery(pool: &Pool) -> bool {
    pool.get()
        .unwrap()
        .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
        .unwrap()
        .get(0)
}

/// Records the close reasons of Remove events.
fn removals() -> (
    Arc<Mutex<Vec<CloseReason>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (seen, move |e: &Event| {
        if let Event::Remove { reason, .. } = e {
            sink.lock().unwrap().push(*reason);
        }
    })
}

#[test]
fn target_session_attrs_pick_the_primary_or_the_standby_in_either_host_order() {
    let (primary, standby) = pair();
    let app = common::app_name("tsa");
    for order in [[&primary, &standby], [&standby, &primary]] {
        for (attrs, want_standby) in [
            ("read-write", false),
            ("primary", false),
            ("read-only", true),
            ("standby", true),
            ("prefer-standby", true),
        ] {
            let pool = common::builder(&app)
                .max_size(1)
                .build(&hosts(&order, attrs))
                .unwrap();
            assert_eq!(
                in_recovery(&pool),
                want_standby,
                "{attrs} with the {} first",
                if order[0].port() == primary.port() {
                    "primary"
                } else {
                    "standby"
                }
            );
        }
        // `any` takes the first host that answers.
        let pool = common::builder(&app).build(&hosts(&order, "any")).unwrap();
        assert_eq!(in_recovery(&pool), order[0].port() == standby.port());
    }
    // Reads on the standby see what the primary wrote.
    let pool = common::builder(&app)
        .build(&hosts(&[&primary, &standby], "standby"))
        .unwrap();
    let who: String = pool
        .get()
        .unwrap()
        .query_one("SELECT who FROM t WHERE id = 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(who, "primary");
}

#[test]
fn a_refused_server_is_named_with_its_reason_and_prefer_standby_falls_back() {
    let (primary, standby) = pair();
    let app = common::app_name("refused");
    // Only the standby is given: a read-write pool says why it is not good enough.
    let pool = common::builder(&app)
        .acquire_timeout(Duration::from_secs(3))
        .build(&hosts(&[&standby], "read-write"))
        .unwrap();
    let err = pool.get().expect_err("a standby is not read-write");
    let text = err.to_string();
    assert!(
        text.contains("target_session_attrs=read-write") && text.contains("in hot standby"),
        "{text}"
    );
    assert!(
        text.contains(&standby.port().to_string()),
        "names the server: {text}"
    );

    // Only the primary: a standby pool says the server is not one.
    let pool = common::builder(&app)
        .acquire_timeout(Duration::from_secs(3))
        .build(&hosts(&[&primary], "standby"))
        .unwrap();
    let text = pool.get().expect_err("a primary is no standby").to_string();
    assert!(text.contains("not in hot standby"), "{text}");

    // prefer-standby with the standby down: the primary serves.
    standby.stop_server(StopMode::Fast).unwrap();
    let pool = common::builder(&app)
        .build(&hosts(&[&standby, &primary], "prefer-standby"))
        .unwrap();
    assert!(!in_recovery(&pool), "fell back to the primary");
    // Its connections are not retired for being on a primary: the fallback accepted it.
    let mut conn = pool.get().unwrap();
    conn.batch_execute("SELECT 1").unwrap();
    drop(conn);
    assert_eq!(pool.stats().closed(CloseReason::RoleChanged), 0);
}

#[test]
fn a_read_write_pool_follows_a_failover_to_the_promoted_standby() {
    let (primary, standby) = pair();
    let app = common::app_name("failover");
    let pool = common::builder(&app)
        .max_size(4)
        .min_idle(2)
        .acquire_timeout(Duration::from_secs(2))
        .build(&hosts(&[&primary, &standby], "read-write"))
        .unwrap();
    pool.wait_ready(LONG).unwrap();
    pool.get()
        .unwrap()
        .execute("INSERT INTO t VALUES (2, 'before failover')", &[])
        .unwrap();
    primary.wait_replayed(&standby, LONG).unwrap();

    // The primary dies: the standby is the only server left and is read-only.
    primary.stop_server(StopMode::Immediate).unwrap();
    // Idle sessions to the dead primary are found broken and retired; then no server is
    // taken, and the error says why.
    let err = (0..10)
        .find_map(|_| pool.get().err())
        .expect("acquires kept succeeding with no primary");
    let text = err.to_string();
    assert!(
        text.contains("in hot standby"),
        "names why the standby was not taken: {text}"
    );
    println!("refused with the primary down: {text}");

    // The standby is promoted; the pool finds it without being told.
    standby.promote().unwrap();
    let promoted = Instant::now();
    let mut last = String::new();
    let recovered = wait_until(LONG, || match pool.get() {
        Ok(mut conn) => match conn.execute("INSERT INTO t VALUES (3, 'after failover')", &[]) {
            Ok(_) => true,
            Err(e) => {
                last = e.to_string();
                false
            }
        },
        Err(e) => {
            last = e.to_string();
            false
        }
    });
    assert!(
        recovered,
        "the pool did not reach the promoted standby: {last}"
    );
    let took = promoted.elapsed();
    println!("measured: from promote to the first write through the pool: {took:?}");
    let rows: Vec<String> = pool
        .get()
        .unwrap()
        .query("SELECT who FROM t ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rows,
        ["primary", "before failover", "after failover"],
        "the row written before the failover was replicated"
    );
    assert!(!in_recovery(&pool));
}

#[test]
fn a_standby_pool_retires_its_sessions_once_the_standby_is_promoted() {
    let (primary, standby) = pair();
    let app = common::app_name("promoted");
    let (removed, hook) = removals();
    let pool = common::builder(&app)
        .max_size(3)
        .min_idle(3)
        .acquire_timeout(Duration::from_secs(2))
        .event_hook(hook)
        .build(&hosts(&[&standby, &primary], "standby"))
        .unwrap();
    assert!(wait_until(LONG, || pool.stats().idle == 3));
    let mut held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    for c in &mut held {
        c.batch_execute("SELECT 1").unwrap();
    }

    standby.promote().unwrap();
    // Each session hears of the promotion with its next statement (the server reports
    // in_hot_standby=off before ReadyForQuery); the statement itself runs.
    for c in &mut held {
        let recovering: bool = c
            .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
            .unwrap()
            .get(0);
        assert!(!recovering);
    }
    drop(held);
    let stats = pool.stats();
    assert_eq!(stats.closed(CloseReason::RoleChanged), 3, "{stats:?}");
    assert_eq!(stats.idle, 0, "none went back to the pool");
    assert_eq!(
        removed
            .lock()
            .unwrap()
            .iter()
            .filter(|r| **r == CloseReason::RoleChanged)
            .count(),
        3
    );
    // No standby is left: new connects are refused with the reason.
    let text = pool.get().expect_err("no standby left").to_string();
    assert!(text.contains("not in hot standby"), "{text}");
}

#[test]
fn a_read_write_pool_retires_sessions_when_the_server_turns_read_only() {
    let cluster = common::private_cluster();
    let app = common::app_name("fenced");
    let url = hosts(&[&cluster], "read-write");
    // Three pools: one finds out on release, one from its keepalive round trips alone, one
    // from the validation before each hand-out.
    let busy = common::builder(&app)
        .max_size(2)
        .min_idle(2)
        .acquire_timeout(Duration::from_secs(2))
        .build(&url)
        .unwrap();
    let idle = common::builder(&app)
        .max_size(2)
        .min_idle(2)
        .keepalive_interval(Some(Duration::from_millis(100)))
        .build(&url)
        .unwrap();
    let checked = common::builder(&app)
        .max_size(2)
        .min_idle(2)
        .acquire_timeout(Duration::from_secs(2))
        .validate_on_acquire(true)
        .validation_skip_window(Duration::ZERO)
        .build(&url)
        .unwrap();
    let pools = [&busy, &idle, &checked];
    assert!(wait_until(LONG, || pools
        .iter()
        .all(|p| p.stats().idle == 2)));
    let mut held: Vec<_> = (0..2).map(|_| busy.get().unwrap()).collect();

    // Fence the server the way a failover tool does before demoting it.
    let mut admin = cluster.admin().unwrap();
    admin
        .batch_execute("ALTER SYSTEM SET default_transaction_read_only = on")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    // The held sessions learn it with their next statement (after the reload reaches them).
    for c in &mut held {
        assert!(wait_until(LONG, || {
            c.batch_execute("SELECT 1").unwrap();
            c.parameter("default_transaction_read_only") == Some("on")
        }));
    }
    drop(held);
    assert_eq!(busy.stats().closed(CloseReason::RoleChanged), 2);
    // The idle pool's keepalive finds both of its sessions.
    assert!(
        wait_until(LONG, || idle.stats().closed(CloseReason::RoleChanged) == 2),
        "{:?}",
        idle.stats()
    );
    // The checked pool's validation finds them before hand-out (nothing else reads from
    // its sessions: they are acquired and given back unused).
    assert!(
        wait_until(LONG, || {
            drop(checked.get());
            checked.stats().closed(CloseReason::RoleChanged) == 2
        }),
        "{:?}",
        checked.stats()
    );
    let text = busy.get().expect_err("the server is read-only").to_string();
    assert!(text.contains("read-only"), "{text}");

    // Unfenced: the pools recover by themselves.
    admin
        .batch_execute("ALTER SYSTEM RESET default_transaction_read_only")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    let start = Instant::now();
    assert!(wait_until(LONG, || busy.get().is_ok_and(|mut c| c
        .execute("CREATE TABLE IF NOT EXISTS w (x int)", &[])
        .is_ok())));
    println!(
        "measured: unfenced to the first write: {:?}",
        start.elapsed()
    );
    assert!(wait_until(LONG, || pools
        .iter()
        .all(|p| p.stats().idle == 2)));
}

#[test]
fn c_a_read_write_pool_retires_a_session_of_a_fenced_server() {
    let cluster = common::private_cluster();
    let out = c_support::out_dir("c").join("replicas");
    let src = c_support::root().join("tests/c/replicas.c");
    c_support::compile(&[&src], &out, false);
    let output = c_support::run(&out, &[&cluster.conninfo()]);
    assert!(output.contains("REPLICAS OK"), "{output}");
    eprintln!("{}", output.trim_end());
}

#[test]
fn c_max_replica_lag_retires_a_lagging_standby_session_and_refuses_the_standby() {
    let (primary, standby) = pair();
    let out = c_support::out_dir("c").join("replica_lag");
    let src = c_support::root().join("tests/c/replica_lag.c");
    c_support::compile(&[&src], &out, false);
    let output = c_support::run(&out, &[&standby.conninfo(), &primary.conninfo()]);
    assert!(output.contains("REPLICA LAG OK"), "{output}");
    eprintln!("{}", output.trim_end());
}

/// The ```toml block of the guide.
fn guide_toml() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc =
        std::fs::read_to_string(root.join("docs/operations/replicas-and-failover.md")).unwrap();
    let block = doc.split("```toml\n").nth(1).expect("a toml block");
    block.split("```").next().unwrap().to_string()
}

#[test]
fn the_registry_file_in_the_guide_opens_a_write_and_a_read_pool() {
    let (primary, standby) = pair();
    let list = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres",
        standby.port(),
        primary.port()
    );
    // The file names environment variables; here their values are put in its place.
    let text = guide_toml()
        .replace(
            "url_env = \"SHOP_WRITE_URL\"",
            &format!("url = \"{list}?target_session_attrs=read-write\""),
        )
        .replace(
            "url_env = \"SHOP_READ_URL\"",
            &format!(
                "url = \"{list}?target_session_attrs=prefer-standby&load_balance_hosts=random\""
            ),
        );
    assert!(!text.contains("url_env"), "{text}");
    let registry = pgpool::Registry::from_toml_str(&text).unwrap();
    registry.open_all(Some(LONG)).unwrap();
    let writes = registry.get("primary").unwrap();
    let reads = registry.get("replica").unwrap();
    assert!(!in_recovery(&writes));
    assert!(in_recovery(&reads));
    assert_eq!(
        reads.config().fallback_lifetime,
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        reads.config().max_replica_lag,
        Some(Duration::from_secs(10))
    );
    assert_eq!(writes.config().max_size, 20);
    registry.close_all(Duration::from_secs(5));
}

#[test]
fn a_session_that_made_itself_read_only_is_not_handed_to_the_next_writer() {
    let cluster = common::private_cluster();
    let app = common::app_name("self-ro");
    let url = hosts(&[&cluster], "read-write");
    for full_reset in [false, true] {
        let pool = common::builder(&app)
            .max_size(1)
            .full_reset(full_reset)
            .build(&url)
            .unwrap();
        let mut conn = pool.get().unwrap();
        conn.batch_execute("SET default_transaction_read_only = on")
            .unwrap();
        drop(conn);
        let retired = pool.stats().closed(CloseReason::RoleChanged);
        // Without a full reset the setting would stay: the session is retired. With one,
        // RESET ALL undid it and the session is kept.
        assert_eq!(retired, u64::from(!full_reset), "full_reset={full_reset}");
        let read_only: String = pool
            .get()
            .unwrap()
            .query_one("SHOW default_transaction_read_only", &[])
            .unwrap()
            .get(0);
        assert_eq!(read_only, "off", "full_reset={full_reset}");
    }
}

/// Pauses the standby's replay and writes on the primary until the standby has received WAL
/// it has not replayed and its own measure of the lag exceeds `past`.
fn hold_replay_back(primary: &TempCluster, standby: &TempCluster, past: Duration) {
    let mut replica = standby.admin().unwrap();
    replica
        .batch_execute("SELECT pg_catalog.pg_wal_replay_pause()")
        .unwrap();
    let mut admin = primary.admin().unwrap();
    let start = Instant::now();
    loop {
        admin
            .batch_execute("INSERT INTO t SELECT coalesce(max(id), 0) + 1, 'later' FROM t")
            .unwrap();
        let behind: f64 = replica
            .query_one(
                "SELECT CASE WHEN pg_catalog.pg_last_wal_receive_lsn() = \
                 pg_catalog.pg_last_wal_replay_lsn() THEN 0 ELSE EXTRACT(EPOCH FROM \
                 pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp())::float8 END",
                &[],
            )
            .unwrap()
            .get(0);
        if behind > past.as_secs_f64() {
            return;
        }
        assert!(start.elapsed() < LONG, "the standby never fell behind");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_standby_further_behind_than_max_replica_lag_is_refused_and_its_sessions_retired() {
    let (primary, standby) = pair();
    let app = common::app_name("lag");
    let max = Duration::from_millis(1500);
    let (removed, hook) = removals();
    // Reads prefer the standby; validation before every hand-out is off, so only a due lag
    // measure (every max / 2) makes the round trip.
    let reads = common::builder(&app)
        .max_replica_lag(Some(max))
        .validate_on_acquire(false)
        .event_hook(hook)
        .build(&hosts(&[&standby, &primary], "prefer-standby"))
        .unwrap();
    // A standby pool whose idle sessions only the keepalive looks at.
    let (kept_removed, kept_hook) = removals();
    let kept = common::builder(&app)
        .max_replica_lag(Some(max))
        .min_idle(2)
        .keepalive_interval(Some(Duration::from_millis(200)))
        .event_hook(kept_hook)
        .build(&hosts(&[&standby], "standby"))
        .unwrap();
    // Writes: sessions on a primary are never measured.
    let writes = common::builder(&app)
        .max_replica_lag(Some(max))
        .build(&hosts(&[&primary], "read-write"))
        .unwrap();
    assert!(in_recovery(&reads), "a standby in step is used");
    assert!(wait_until(LONG, || kept.stats().idle == 2));
    writes.get().unwrap().batch_execute("SELECT 1").unwrap();
    // Health says which kind of server a pool is on, and a standby's lag.
    let (on_primary, on_standby) = (writes.health(), kept.health());
    assert_eq!(
        (on_primary.in_recovery, on_primary.replica_lag),
        (Some(false), None)
    );
    assert_eq!(on_standby.in_recovery, Some(true));
    assert!(
        on_standby.replica_lag.is_some_and(|lag| lag < max),
        "{on_standby:?}"
    );
    assert!(on_standby
        .to_json()
        .contains(r#""inRecovery":true,"replicaLagMs":"#));
    // A pool without the limit, to watch the lag grow.
    let observer = common::builder(&app)
        .build(&hosts(&[&standby], "any"))
        .unwrap();

    hold_replay_back(&primary, &standby, max + Duration::from_millis(200));
    let seen = observer.health();
    assert!(seen.replica_lag.is_some_and(|lag| lag > max), "{seen:?}");

    // A new connect refuses the standby and says why.
    let fresh = common::builder(&app)
        .max_replica_lag(Some(max))
        .acquire_timeout(Duration::from_secs(3))
        .build(&hosts(&[&standby], "standby"))
        .unwrap();
    let text = fresh
        .get()
        .expect_err("a lagging standby is refused")
        .to_string();
    assert!(
        text.contains("behind its primary (max_replica_lag 1500 ms)")
            && text.contains(&standby.port().to_string()),
        "{text}"
    );

    // The reads pool measures its session again before the next hand-out (its last measure
    // is older than max / 2 by now), retires it, and prefer-standby falls back.
    std::thread::sleep(max / 2);
    assert!(!in_recovery(&reads), "the primary serves the reads");
    let stats = reads.stats();
    assert_eq!(stats.closed(CloseReason::ReplicaLag), 1, "{stats:?}");
    assert!(removed.lock().unwrap().contains(&CloseReason::ReplicaLag));

    // The keepalive retires the standby pool's idle sessions; new ones are refused.
    assert!(wait_until(LONG, || kept
        .stats()
        .closed(CloseReason::ReplicaLag)
        == 2));
    assert_eq!(
        kept_removed
            .lock()
            .unwrap()
            .iter()
            .filter(|r| **r == CloseReason::ReplicaLag)
            .count(),
        2
    );
    assert!(kept.get().is_err());

    // The primary's pool never measured anything.
    writes.get().unwrap().batch_execute("SELECT 1").unwrap();
    assert_eq!(writes.stats().closed(CloseReason::ReplicaLag), 0);

    // Replay resumed and caught up: the standby pool refills by itself.
    standby
        .admin()
        .unwrap()
        .batch_execute("SELECT pg_catalog.pg_wal_replay_resume()")
        .unwrap();
    primary.wait_replayed(&standby, LONG).unwrap();
    assert!(wait_until(LONG, || kept.stats().idle == 2));
    assert!(in_recovery(&fresh));
}

#[test]
fn a_promoted_standby_is_no_longer_measured_for_lag() {
    let (_primary, standby) = pair();
    let app = common::app_name("unwatched");
    let max = Duration::from_millis(200);
    // Any server will do, so the promotion retires nothing; only the lag measure, due every
    // max / 2, makes validation round trips.
    let pool = common::builder(&app)
        .max_size(1)
        .max_replica_lag(Some(max))
        .validate_on_acquire(false)
        .build(&hosts(&[&standby], "any"))
        .unwrap();
    let validations = |pool: &Pool| pool.stats().validations;
    assert!(in_recovery(&pool));
    let before = validations(&pool);
    std::thread::sleep(max);
    assert!(in_recovery(&pool));
    assert_eq!(
        validations(&pool),
        before + 1,
        "a due measure is a validation"
    );

    standby.promote().unwrap();
    assert!(wait_until(LONG, || !in_recovery(&pool)));
    std::thread::sleep(max);
    pool.get().unwrap(); // the due measure finds a primary, and stops measuring
    let after = validations(&pool);
    std::thread::sleep(max);
    pool.get().unwrap();
    assert_eq!(validations(&pool), after, "a primary is not measured");
    assert_eq!(
        pool.stats().connections_created,
        1,
        "the one session was kept"
    );
}

#[test]
fn a_session_that_fell_back_to_the_primary_returns_to_the_standby_after_fallback_lifetime() {
    let (primary, standby) = pair();
    let app = common::app_name("fallback");
    standby.stop_server(StopMode::Fast).unwrap();
    let list = hosts(&[&standby, &primary], "prefer-standby");
    let returning = common::builder(&app)
        .max_size(1)
        .fallback_lifetime(Some(Duration::from_millis(300)))
        .build(&list)
        .unwrap();
    let staying = common::builder(&app).max_size(1).build(&list).unwrap();
    // A stand-in held past its lifetime is closed when it comes back.
    let on_release = common::builder(&app)
        .max_size(1)
        .fallback_lifetime(Some(Duration::from_millis(300)))
        .build(&list)
        .unwrap();
    assert!(!in_recovery(&returning), "fell back to the primary");
    assert!(!in_recovery(&staying));
    let mut held = on_release.get().unwrap();
    let recovering: bool = held
        .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(!recovering);

    standby.start_server().unwrap();
    primary.wait_replayed(&standby, LONG).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The idle stand-in past its lifetime is not handed out again (the reaper or the next
    // acquire closes it), and the acquire connects to the standby instead.
    assert!(in_recovery(&returning), "back on the standby");
    assert_eq!(returning.stats().closed(CloseReason::Lifetime), 1);
    held.batch_execute("SELECT 1").unwrap(); // still usable while held
    drop(held);
    assert_eq!(on_release.stats().closed(CloseReason::Lifetime), 1);
    assert!(in_recovery(&on_release));
    // Without the option, the fallback session stays (until max_lifetime).
    assert!(!in_recovery(&staying));
    assert_eq!(staying.stats().closed(CloseReason::Lifetime), 0);
    // A standby session is no stand-in: it is kept.
    std::thread::sleep(Duration::from_millis(300));
    assert!(in_recovery(&returning));
    assert_eq!(returning.stats().closed(CloseReason::Lifetime), 1);
    assert_eq!(returning.stats().connections_created, 2);
}
