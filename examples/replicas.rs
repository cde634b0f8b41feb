//! A write pool and a read pool over the same host list: writes go to whichever host is the
//! primary now, reads prefer a standby and fall back to the primary. Run by the tests (on one
//! server, which is the primary for both) and shown in the README; docs/operations/
//! replicas-and-failover.md has the whole story.

use std::time::Duration;

use pgpool::{CloseReason, Pool};

/// `url` names the hosts (`postgres://app@db1,db2/app` for a real pair).
pub fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    // README:BEGIN rust-replicas
    // `url` lists every host: postgres://app@db1,db2,db3/shop
    let with = |params: &str| {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{params}")
    };
    // Writes: the host that accepts writes, found again by itself after a failover.
    let writes = Pool::builder()
        .name("primary")
        .build(&with("target_session_attrs=read-write"))?;
    // Reads: a standby if one is up (any of them), else the primary. Sessions are recycled
    // within 5 minutes, so reads that fell back to the primary return to a standby.
    let reads = Pool::builder()
        .name("replica")
        .max_lifetime(Some(Duration::from_secs(300)))
        .build(&with(
            "target_session_attrs=prefer-standby&load_balance_hosts=random",
        ))?;

    writes.get()?.execute(
        "CREATE TEMP TABLE IF NOT EXISTS visits (at timestamptz)",
        &[],
    )?;
    let standby: bool = reads
        .get()?
        .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])?
        .get(0);
    println!(
        "reads served by a {}",
        if standby { "standby" } else { "primary" }
    );

    // Sessions whose server changed role under them (a standby promoted, a primary fenced
    // read-only) are retired, never handed out again; the stats count them.
    let retired = writes.stats().closed(CloseReason::RoleChanged)
        + reads.stats().closed(CloseReason::RoleChanged);
    println!("{retired} sessions retired for a role change");
    // README:END rust-replicas
    Ok(())
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .ok_or("usage: replicas postgres://user@host1,host2/db (or DATABASE_URL)")?;
    run(&url)
}
