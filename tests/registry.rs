//! Named pools against a real PostgreSQL: a registry from a TOML file opens, waits, hands
//! out and closes its pools; an unreachable pool is named; a held connection is reclaimed at
//! the one deadline; and the same from C (tests/c/registry.c, which also sends itself a
//! real SIGTERM).

mod c_support;
mod common;

use std::time::{Duration, Instant};

use pgpool::{ErrorKind, Registry};

fn two_pools(app: &str) -> String {
    format!(
        r#"
        [defaults]
        application_name = "{app}"
        acquire_timeout = "5s"

        [pools.primary]
        url = "{url}"
        max_size = 4
        min_idle = 2

        [pools.replica]
        url = "{url}"
        max_size = 2
        "#,
        url = common::url()
    )
}

#[test]
fn a_file_opens_every_pool_warm_and_gets_them_by_name() {
    let app = common::app_name("registry-open");
    let dir = std::env::temp_dir().join(format!("pgpool-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pools.toml");
    std::fs::write(&path, two_pools(&app)).unwrap();
    let registry = Registry::from_file(&path).unwrap();
    assert_eq!(registry.names(), ["primary", "replica"]);
    let mut admin = common::admin();
    assert_eq!(
        common::backends(&mut admin, &app),
        0,
        "nothing connects before open_all"
    );

    registry.open_all(Some(Duration::from_secs(10))).unwrap();
    // primary warmed min_idle 2; replica (min_idle 0) made one connection to prove itself.
    assert!(common::wait_until(Duration::from_secs(5), || {
        common::backends(&mut admin, &app) == 3
    }));
    let primary = registry.get("primary").unwrap();
    assert_eq!(primary.name(), "primary");
    assert_eq!(primary.config().max_size, 4);
    assert_eq!(primary.config().acquire_timeout, Duration::from_secs(5));
    let n: i32 = primary.query("SELECT 7", &[]).unwrap()[0].get(0);
    assert_eq!(n, 7);
    let stats = registry.stats();
    assert_eq!(stats.len(), 2);
    assert_eq!((stats[0].0.as_str(), stats[0].1.open), ("primary", 2));
    // One exposition for both pools: each family declared once, a sample per pool.
    let text = registry.prometheus();
    assert_eq!(
        text.matches("# TYPE pgpool_max_connections gauge\n")
            .count(),
        1
    );
    assert!(
        text.contains("pgpool_max_connections{pool=\"primary\"} 4\n"),
        "{text}"
    );
    assert!(
        text.contains("pgpool_max_connections{pool=\"replica\"} 2\n"),
        "{text}"
    );
    let health: serde_json::Value = serde_json::from_str(&registry.health_json()).unwrap();
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["state"], "healthy");
    assert_eq!(health["pools"][0]["pool"], "primary");
    assert_eq!(health["pools"][1]["pool"], "replica");

    let e = registry.get("analytics").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("primary, replica"), "{e}");

    let report = registry.close_all(Duration::from_secs(5));
    assert!(report.clean(), "{report}");
    assert_eq!(report.pools.len(), 2);
    assert!(common::wait_until(Duration::from_secs(5), || {
        common::backends(&mut admin, &app) == 0
    }));
    assert!(primary.get().unwrap_err().is_closed());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn open_all_names_the_pool_that_is_not_ready_and_why() {
    let registry = Registry::from_toml_str(&format!(
        r#"
        [pools.up]
        url = "{}"
        [pools.down]
        url = "host=127.0.0.1 port=1 user=nobody"
        min_idle = 1
        connect_timeout = "200ms"
        "#,
        common::url()
    ))
    .unwrap();
    let start = Instant::now();
    let e = registry
        .open_all(Some(Duration::from_millis(800)))
        .unwrap_err();
    let waited = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("1 of 2 pools not ready"), "{msg}");
    assert!(msg.contains("down: ") && !msg.contains("up: "), "{msg}");
    assert!(
        msg.to_lowercase().contains("refused"),
        "the connect error: {msg}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // The reachable pool works meanwhile.
    registry
        .get("up")
        .unwrap()
        .execute("SELECT 1", &[])
        .unwrap();
    assert!(registry.close_all(Duration::from_secs(1)).clean());
}

#[test]
fn close_all_reclaims_a_held_connection_at_one_deadline() {
    let app = common::app_name("registry-close");
    let registry = Registry::from_toml_str(&two_pools(&app)).unwrap();
    registry.open_all(Some(Duration::from_secs(10))).unwrap();
    let primary = registry.get("primary").unwrap();
    let replica = registry.get("replica").unwrap();
    let busy = std::thread::spawn(move || {
        let mut conn = primary.get().unwrap();
        conn.execute("SELECT pg_sleep(30)", &[])
    });
    let _held = replica.get().unwrap();
    let mut admin = common::admin();
    assert!(common::wait_until(Duration::from_secs(5), || {
        common::active_backends(&mut admin, &app) == 1
    }));

    let start = Instant::now();
    let report = registry.close_all(Duration::from_millis(500));
    let took = start.elapsed();
    assert!(!report.clean(), "{report}");
    assert_eq!(report.reclaimed(), 2, "{report}");
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(
        took < Duration::from_secs(2),
        "one deadline for all pools: {took:?}"
    );
    let text = report.to_string();
    assert!(text.contains("primary (1 in use, 1 reclaimed)"), "{text}");
    let err = busy.join().unwrap().unwrap_err();
    assert!(err.to_string().contains("reclaimed"), "{err}");
    assert!(common::wait_until(Duration::from_secs(5), || {
        common::active_backends(&mut admin, &app) == 0
    }));
}

#[test]
fn a_registry_from_code_names_its_pools() {
    let app = common::app_name("registry-code");
    let registry = Registry::builder()
        .pool("main", common::url(), common::builder(&app).max_size(2))
        .build()
        .unwrap();
    let pool = registry.get("main").unwrap();
    assert_eq!((pool.name(), pool.config().max_size), ("main", 2));
    pool.execute("SELECT 1", &[]).unwrap();
    assert!(registry.close_all(Duration::from_secs(1)).clean());
    assert!(registry.is_closed());
}

#[test]
fn registry_and_shutdown_from_c() {
    let url = common::url();
    let out = c_support::out_dir("c").join("registry");
    c_support::compile(
        &[&c_support::root().join("tests/c/registry.c")],
        &out,
        false,
    );
    let text = c_support::run(&out, &[&url]);
    assert!(text.contains("REGISTRY OK"), "{text}");
}
