//! `Pool::transaction_with_retry` against a real server: serialization failures are retried
//! until the work commits exactly once; errors whose outcome is unknown, and ordinary
//! statement errors, are never retried.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use pgpool::{Error, Retry};

#[test]
fn a_serialization_failure_is_retried_and_each_transaction_commits_once() {
    let app = common::app_name("retry_40001");
    let pool = common::builder(&app)
        .max_size(2)
        .build(&common::url())
        .unwrap();
    let table = format!("retry_{}", std::process::id());
    pool.execute(&format!("DROP TABLE IF EXISTS {table}"), &[])
        .unwrap();
    pool.execute(
        &format!("CREATE TABLE {table} (k int PRIMARY KEY, who text)"),
        &[],
    )
    .unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(Barrier::new(2));
    let workers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|who| {
            let (pool, attempts, barrier, table) = (
                pool.clone(),
                Arc::clone(&attempts),
                Arc::clone(&barrier),
                table.clone(),
            );
            thread::spawn(move || {
                let mut mine = 0;
                pool.transaction_with_retry(Retry::default(), |tx| {
                    mine += 1;
                    attempts.fetch_add(1, Ordering::SeqCst);
                    tx.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[])?;
                    let next: i32 = tx
                        .query_one(&format!("SELECT count(*)::int4 FROM {table}"), &[])?
                        .get(0);
                    tx.execute(
                        &format!("INSERT INTO {table} VALUES ($1 + 100 * $2, $3)"),
                        &[&next, &(if who == "a" { 1 } else { 2 }), &who],
                    )?;
                    if mine == 1 {
                        // Both first attempts read and wrote before either commits: write skew.
                        barrier.wait();
                    }
                    Ok::<_, Error>(next)
                })
            })
        })
        .collect();
    let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "one conflict, one retry"
    );
    let rows: Vec<String> = pool
        .query(&format!("SELECT who FROM {table} ORDER BY who"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["a", "b"], "each committed exactly once");
    pool.execute(&format!("DROP TABLE {table}"), &[]).unwrap();
}

#[test]
fn an_outcome_unknown_error_or_a_statement_error_is_never_retried() {
    let app = common::app_name("retry_never");
    let pool = common::builder(&app)
        .max_size(2)
        .build(&common::url())
        .unwrap();
    let attempts = AtomicU32::new(0);
    let err = pool
        .transaction_with_retry(Retry::default(), |tx| {
            attempts.fetch_add(1, Ordering::SeqCst);
            tx.execute("SELECT pg_terminate_backend(pg_backend_pid())", &[])?;
            Ok::<_, Error>(())
        })
        .unwrap_err();
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert!(err.outcome_unknown(), "{err}");

    let attempts = AtomicU32::new(0);
    let err = pool
        .transaction_with_retry(Retry::default(), |tx| {
            attempts.fetch_add(1, Ordering::SeqCst);
            tx.execute("SELECT 1 / 0", &[])?;
            Ok::<_, Error>(())
        })
        .unwrap_err();
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert_eq!(err.sqlstate(), Some("22012"));
}
