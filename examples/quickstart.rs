//! The README's Rust quick start: `cargo run --example quickstart -- postgres://…`
//! (or with `DATABASE_URL` set).

use std::time::Duration;

// README:BEGIN rust
use pgpool::{Error, Pool};

pub fn run(url: &str) -> Result<(), Error> {
    let pool = Pool::builder()
        .max_size(8) // at most 8 sessions open
        .min_idle(2) // kept warm in the background
        .acquire_timeout(Duration::from_secs(5))
        .statement_timeout(Some(Duration::from_secs(30)))
        .application_name("quickstart")
        .build(url)?;

    // Blocking worker threads share one pool; a guard returns its connection on drop.
    let workers: Vec<_> = (0..4)
        .map(|i: i32| {
            let pool = pool.clone();
            std::thread::spawn(move || -> Result<i32, Error> {
                let mut conn = pool.get()?;
                let row = conn.query_one("SELECT $1::int4 * 10", &[&i])?;
                Ok(row.get(0))
            })
        })
        .collect();
    for w in workers {
        println!("worker got {}", w.join().expect("worker panicked")?);
    }

    // A transaction: committed when the closure returns Ok, rolled back on Err or panic.
    let total: i64 = pool.transaction(|tx| {
        tx.batch_execute("CREATE TEMP TABLE IF NOT EXISTS t (x int)")?;
        tx.execute("INSERT INTO t SELECT generate_series(1, $1)", &[&100i32])?;
        Ok::<_, Error>(tx.query_one("SELECT sum(x) FROM t", &[])?.get(0))
    })?;
    println!("sum = {total}");

    let stats = pool.stats();
    println!(
        "open {} idle {} in use {} waited {} times ({:?})",
        stats.open, stats.idle, stats.in_use, stats.wait_count, stats.wait_duration
    );
    pool.close(); // waits (bounded) for connections in use, then closes everything
    Ok(())
}
// README:END rust

#[allow(dead_code)]
fn main() {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| {
            eprintln!("usage: quickstart POSTGRES_URL (or set DATABASE_URL)");
            std::process::exit(2)
        });
    if let Err(e) = run(&url) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
