//! The example programs in examples-c/ (C with pthreads, C++17 with RAII, Go through the
//! go/ module) build against libpgpool.so and run against the throwaway PostgreSQL with the
//! expected output.

mod c_support;
mod common;

use std::process::Command;

#[test]
fn c_workers_example() {
    let url = common::url();
    let out = c_support::out_dir("examples").join("workers");
    c_support::compile(
        &[&c_support::root().join("examples-c/workers.c")],
        &out,
        false,
    );
    let text = c_support::run(&out, &[&url, "6", "50"]);
    assert!(
        text.contains("total balance 10000 over 10 accounts (conserved)"),
        "{text}"
    );
    assert!(text.contains("stats: max_size 4"), "{text}");
    // The URL may also come from DATABASE_URL.
    let output = Command::new(&out)
        .env("DATABASE_URL", &url)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    let text = c_support::check("workers with DATABASE_URL", &output);
    assert!(text.contains("conserved"), "{text}");
    // PGPOOL_LOG routes the library's log records to stderr.
    let output = Command::new(&out)
        .args([url.as_str(), "2", "5"])
        .env("PGPOOL_LOG", "debug")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    c_support::check("workers with PGPOOL_LOG", &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[pgpool DEBUG] pgpool: connect: conn"),
        "{stderr}"
    );
}

#[test]
fn c_events_example() {
    let url = common::url();
    let out = c_support::out_dir("examples").join("events");
    c_support::compile(
        &[&c_support::root().join("examples-c/events.c")],
        &out,
        false,
    );
    let text = c_support::run(&out, &[&url]);
    assert!(
        text.contains("[orders] connect: conn 1, backend pid "),
        "{text}"
    );
    assert!(
        text.contains("[orders] remove: conn 1, backend pid "),
        "{text}"
    );
    assert!(text.contains("(discarded)"), "{text}");
    // The health check needs a connection again (the third use discarded the first).
    assert!(
        text.contains("events: 2 connect, 4 acquire, 3 release, 2 remove, 0 error"),
        "{text}"
    );
    assert!(text.contains("query time: n=3 p50="), "{text}");
    assert!(
        text.contains("metrics: ") && text.contains(", 3 acquires"),
        "{text}"
    );
    assert!(
        text.contains(r#"health: {"ok":true,"pool":"orders","state":"healthy""#),
        "{text}"
    );
}

#[test]
fn cpp_raii_example() {
    let url = common::url();
    let out = c_support::out_dir("examples").join("raii");
    c_support::compile(
        &[&c_support::root().join("examples-c/raii.cpp")],
        &out,
        true,
    );
    let text = c_support::run(&out, &[&url]);
    assert!(text.contains("events 100 from 4 workers"), "{text}");
    assert!(text.contains("SQLSTATE 23505, retry safe no"), "{text}");
    assert!(text.contains("after rollback: 100 events"), "{text}");
    assert!(
        text.contains("hold time p99 ") && text.contains(" leases"),
        "{text}"
    );
    assert!(
        text.contains("health: healthy, 0 reasons; {\"ok\":true"),
        "{text}"
    );
}

#[test]
fn go_cgo_example() {
    if Command::new("go").arg("version").output().is_err() {
        panic!("Go is not installed (scripts/setup.sh installs golang-go)");
    }
    let url = common::url();
    let exe = c_support::build_go_program("examples-c/go", "pgpool-go-example");
    let text = c_support::run(&exe, &[&url]);
    assert!(
        text.contains("counter 400 after 16 goroutines x 25 transactions"),
        "{text}"
    );
    assert!(
        text.contains("category server, SQLSTATE 42601, retry safe false"),
        "{text}"
    );
}
