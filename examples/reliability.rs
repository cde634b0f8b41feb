//! What the pool does when things go wrong: the breaker's health state, leak reports with the
//! acquiring site, reclaiming a connection held too long, retrying a transaction only when
//! that is safe, and a bounded close. Run by the tests; shown in the README.

use std::time::Duration;

use pgpool::{Event, HealthState, Pool, Retry};

pub fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    // README:BEGIN rust-reliability
    let pool = Pool::builder()
        .max_size(4)
        .breaker_threshold(Some(3)) // down after 3 failed connects in a row: fail fast
        .max_concurrent_connects(2) // connects never storm a recovering server
        .leak_threshold(Some(Duration::from_secs(10))) // log who holds a connection too long
        .max_checkout(Some(Duration::from_secs(60))) // ... and take it back after a minute
        .event_hook(|event| {
            if let Event::LeakSuspected { site, held, .. } = event {
                eprintln!("held for {held:?}, acquired at {site}");
            }
        })
        .build(url)?;

    // Health: healthy, degraded (connects failing) or down (breaker open), with the cause.
    let health = pool.health();
    assert!(health.ok && health.state == HealthState::Healthy);
    println!(
        "{} on PostgreSQL {}",
        health.database, health.server_version
    );

    // A transaction retried on serialization failure or deadlock, never after an error whose
    // outcome is unknown (a connection lost during COMMIT).
    let n: i64 = pool.transaction_with_retry(Retry::default(), |tx| {
        tx.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[])?;
        Ok(tx.query_one("SELECT count(*) FROM pg_class", &[])?.get(0))
    })?;
    println!("{n} relations");

    // Close within 5 s even if the server is unreachable: what is still held is reclaimed.
    let clean = pool.close_timeout(Duration::from_secs(5));
    assert!(clean);
    // README:END rust-reliability
    Ok(())
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .ok_or("usage: reliability URL (or DATABASE_URL)")?;
    run(&url)
}
