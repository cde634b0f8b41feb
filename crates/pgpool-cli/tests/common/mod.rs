//! The shared test server: the one named by `PGPOOL_TEST_URL` (which `scripts/test.sh` sets
//! so that every test binary shares one), else one throwaway PostgreSQL per test process.

use std::sync::OnceLock;

use pgpool_testkit::TempCluster;

static SHARED: OnceLock<Result<TempCluster, String>> = OnceLock::new();

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
