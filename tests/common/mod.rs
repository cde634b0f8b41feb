//! Shared test fixture: one throwaway PostgreSQL per test process (or the server named by
//! `PGPOOL_TEST_URL`, which `scripts/test.sh` sets so that every test binary shares one),
//! private clusters for tests that stop or restart the server, and small helpers.
#![allow(dead_code)]

pub mod certs;
pub mod proxy;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pgpool_testkit::TempCluster;

static SHARED: OnceLock<Result<TempCluster, String>> = OnceLock::new();
static SEQ: AtomicU32 = AtomicU32::new(0);

/// The URL of the shared test server (a superuser with trust authentication).
pub fn url() -> String {
    if let Ok(url) = std::env::var("PGPOOL_TEST_URL") {
        if !url.is_empty() {
            return url;
        }
    }
    match SHARED.get_or_init(|| TempCluster::start().map_err(|e| e.to_string())) {
        Ok(cluster) => cluster.url(),
        Err(e) => panic!("cannot start the throwaway PostgreSQL: {e}"),
    }
}

/// A cluster of this test's own, for stopping, restarting and other server-wide faults.
pub fn private_cluster() -> TempCluster {
    TempCluster::start().expect("cannot start a private throwaway PostgreSQL")
}

/// An `application_name` unique to this test, to find its sessions in `pg_stat_activity`.
pub fn app_name(test: &str) -> String {
    format!(
        "t{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        &test[..test.len().min(40)]
    )
}

/// A superuser session on the shared server, outside any pool.
pub fn admin() -> postgres::Client {
    admin_for(&url())
}

pub fn admin_for(url: &str) -> postgres::Client {
    let mut config: postgres::Config = url.parse().unwrap();
    config.application_name("pgpool-test-admin");
    config.connect(postgres::NoTls).expect("admin connection")
}

/// Sessions in `pg_stat_activity` with this application name.
pub fn backends(admin: &mut postgres::Client, app: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0)
}

/// Sessions with this application name that are running a statement.
pub fn active_backends(admin: &mut postgres::Client, app: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND state = 'active'",
            &[&app],
        )
        .unwrap()
        .get(0)
}

/// Backend pids with this application name.
pub fn backend_pids(admin: &mut postgres::Client, app: &str) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid",
            &[&app],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Terminates every session with this application name; returns how many.
pub fn terminate(admin: &mut postgres::Client, app: &str) -> usize {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .len()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A builder with test-friendly defaults for the shared server.
pub fn builder(app: &str) -> pgpool::Builder {
    pgpool::Pool::builder()
        .application_name(app)
        .acquire_timeout(Duration::from_secs(10))
}
