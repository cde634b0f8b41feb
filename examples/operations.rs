//! What operators see: a named pool's latency histograms, its Prometheus text, the health
//! check as JSON, and the statement and stats log lines. Run by the tests; shown in the
//! README.

use std::time::Duration;

use pgpool::Pool;

pub fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    // README:BEGIN rust-ops
    let pool = Pool::builder()
        .name("orders") // the `pool` label of its metrics, the prefix of its log lines
        .slow_query_threshold(Some(Duration::from_millis(200))) // warn-level log line
        .stats_log_interval(Some(Duration::from_secs(60))) // one info-level line a minute
        .build(url)?;
    for i in 0..100 {
        pool.get()?.query_one("SELECT $1::int4", &[&i])?;
    }

    // Latency histograms, on by default: acquire wait, connect, query and hold time.
    let stats = pool.stats();
    println!("query time: {}", stats.query_time); // the format: n=100 p50=…ms p90=…ms p99=…ms max=…ms
    println!("hold time p99: {:?}", stats.hold_time.p99());

    // Prometheus text for a /metrics endpoint, and the body of a /api/db/health endpoint.
    let metrics = pool.prometheus();
    assert!(metrics.contains("pgpool_query_duration_seconds_count{pool=\"orders\"} 100"));
    let health = pool.health();
    println!("{}", health.to_json()); // {"ok":true,"pool":"orders","state":"healthy",…}
                                      // README:END rust-ops
    assert!(health.ok, "{:?}", health.error);
    assert_eq!(stats.query_time.count(), 100);
    pool.close();
    Ok(())
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .ok_or("usage: operations URL (or DATABASE_URL)")?;
    run(&url)
}
