//! Taking connections back from holders, against a real server: `max_checkout` reclaims a
//! connection stuck in a long statement (cancelled on the server, socket shut down, slot
//! freed), and a bounded close ends on time with a statement still running.

mod c_support;
mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{backends, wait_until};
use pgpool::{CloseReason, ErrorKind, Event};

const LONG: Duration = Duration::from_secs(10);

fn active_sleeps(admin: &mut postgres::Client, app: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND state = 'active' AND query LIKE '%pg_sleep%'",
            &[&app],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_connection_held_past_max_checkout_is_reclaimed_and_its_slot_freed() {
    let app = common::app_name("max_checkout");
    let reclaimed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&reclaimed);
    let pool = common::builder(&app)
        .max_size(1)
        .max_checkout(Some(Duration::from_millis(300)))
        .reaper_interval(Duration::from_millis(50))
        .event_hook(move |e| {
            if let Event::Reclaimed { site, .. } = e {
                sink.lock().unwrap().push(site.clone());
            }
        })
        .build(&common::url())
        .unwrap();
    let holder = {
        let pool = pool.clone();
        thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            let start = Instant::now();
            let err = conn.execute("SELECT pg_sleep(30)", &[]).unwrap_err();
            let took = start.elapsed();
            // The holder's next call fails clearly too; then it gives the shell back.
            let again = conn.execute("SELECT 1", &[]).unwrap_err();
            (err, again, took)
        })
    };
    let mut admin = common::admin();
    assert!(wait_until(LONG, || active_sleeps(&mut admin, &app) == 1));

    // The only slot comes back to other callers although the holder never released it.
    let start = Instant::now();
    let mut conn = pool.get_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(conn.query_one("SELECT 7", &[]).unwrap().get::<_, i32>(0), 7);
    eprintln!(
        "measured: slot of a connection held past max_checkout 300 ms free after {} ms",
        start.elapsed().as_millis()
    );
    drop(conn);

    let (err, again, took) = holder.join().unwrap();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(err.kind(), ErrorKind::Broken, "{err}");
    assert!(err.to_string().contains("reclaimed"), "{err}");
    assert!(again.to_string().contains("reclaimed"), "{again}");
    // Cancelled and disconnected on the server: no statement of ours still sleeps there.
    assert!(wait_until(LONG, || active_sleeps(&mut admin, &app) == 0));
    let s = pool.stats();
    assert_eq!(s.closed(CloseReason::Reclaimed), 1, "{s:?}");
    assert_eq!(s.connections_created, s.closed_total() + u64::from(s.open));
    let sites = reclaimed.lock().unwrap().clone();
    assert_eq!(sites.len(), 1);
    assert!(sites[0].contains("reclaim.rs:"), "{sites:?}");
    assert!(wait_until(LONG, || backends(&mut admin, &app)
        == i64::from(pool.stats().open)));
}

#[test]
fn close_with_a_statement_still_running_ends_on_time_and_leaves_nothing_on_the_server() {
    let app = common::app_name("bounded_close");
    let pool = common::builder(&app)
        .max_size(3)
        .build(&common::url())
        .unwrap();
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                let start = Instant::now();
                let result = conn.execute("SELECT pg_sleep(30)", &[]);
                (result, start.elapsed())
            })
        })
        .collect();
    let queued = {
        let pool = pool.clone();
        thread::spawn(move || {
            let _a = pool.get().unwrap();
            thread::sleep(Duration::from_millis(50));
            // Everything is busy now: this caller queues until the close.
            let start = Instant::now();
            (pool.get().map(|_| ()), start.elapsed())
        })
    };
    let mut admin = common::admin();
    assert!(wait_until(LONG, || active_sleeps(&mut admin, &app) == 2));
    thread::sleep(Duration::from_millis(100));

    let start = Instant::now();
    let clean = pool.close_timeout(Duration::from_millis(300));
    let took = start.elapsed();
    eprintln!(
        "measured: close_timeout(300 ms) with 2 statements running returned after {} ms",
        took.as_millis()
    );
    assert!(!clean, "statements were still running");
    assert!(took < Duration::from_millis(300 + 700), "{took:?}");

    let (queued_result, queued_waited) = queued.join().unwrap();
    assert_eq!(queued_result.unwrap_err().kind(), ErrorKind::Closed);
    assert!(queued_waited < took + Duration::from_millis(200));
    for h in holders {
        let (result, held) = h.join().unwrap();
        let err = result.unwrap_err();
        assert!(err.to_string().contains("reclaimed"), "{err}");
        assert!(held < Duration::from_secs(3), "{held:?}");
    }
    assert!(wait_until(LONG, || backends(&mut admin, &app) == 0));
    assert!(
        pool.close_timeout(Duration::from_millis(100)),
        "a second close is clean"
    );
}

#[test]
fn c_a_program_that_exits_right_after_a_bounded_close_leaves_nothing_running() {
    let app = common::app_name("close_exit");
    let out = c_support::out_dir("c").join("close_exit");
    let src = c_support::root().join("tests/c/close_exit.c");
    c_support::compile(&[&src], &out, false);
    let mut admin = common::admin();
    let output = c_support::run(&out, &[&common::url(), &app]);
    assert!(output.contains("CLOSED in"), "{output}");
    eprintln!("{}", output.trim_end());
    // The cancel reached the server before the close returned: the 60 s statement ends at
    // once, though the program that ran it is gone.
    assert!(
        wait_until(Duration::from_secs(2), || active_sleeps(&mut admin, &app)
            == 0),
        "the reclaimed statement is still running on the server"
    );
}
