//! What a session can do beyond queries: per-call timeouts with server-side cancel, the
//! exact transaction status, COPY both ways, LISTEN/NOTIFY. Run by the tests; shown in the
//! README.

use std::io::{Read, Write};
use std::time::Duration;

use pgpool::{Pool, TransactionStatus};

pub fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    // README:BEGIN rust-session
    let pool = Pool::builder()
        .max_size(4)
        .query_timeout(Some(Duration::from_secs(30))) // every statement, every checkout
        .build(url)?;
    let mut conn = pool.get()?;

    // A statement that runs too long is cancelled on the server; the session stays usable.
    conn.set_query_timeout(Some(Duration::from_millis(100)));
    let err = conn.execute("SELECT pg_sleep(5)", &[]).unwrap_err();
    assert!(err.is_timeout() && err.sqlstate() == Some("57014"));
    conn.set_query_timeout(None);

    // The transaction status comes from the server, never from guessing at the SQL.
    conn.batch_execute("BEGIN")?;
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    conn.batch_execute("ROLLBACK")?;

    // COPY in and out, streaming.
    conn.batch_execute("CREATE TEMP TABLE items (id int, name text)")?;
    let mut copy = conn.copy_in("COPY items FROM STDIN")?;
    for i in 0..1000 {
        writeln!(copy, "{i}\titem {i}")?;
    }
    let copied = copy.finish()?;
    let mut csv = String::new();
    conn.copy_out("COPY items TO STDOUT (FORMAT csv)")?
        .read_to_string(&mut csv)?;
    println!("copied {copied} rows in, {} lines out", csv.lines().count());

    // LISTEN / NOTIFY with a timed wait; a cancel token works from any thread.
    conn.batch_execute("LISTEN jobs")?;
    pool.get()?
        .execute("SELECT pg_notify('jobs', 'job 1')", &[])?;
    if let Some(n) = conn.wait_for_notification(Duration::from_secs(5))? {
        println!("notification on {}: {}", n.channel, n.payload);
    }
    let token = conn.cancel_token().expect("the server sent a cancel key");
    std::thread::spawn(move || token.cancel()).join().unwrap()?;
    // README:END rust-session
    Ok(())
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .ok_or("usage: session_features URL (or DATABASE_URL)")?;
    run(&url)
}
