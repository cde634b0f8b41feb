//! A soak: a mixed workload (queries checked for their values, transactions that each commit a
//! unique key, COPY in and out) from several Rust threads and a C program
//! (tests/c/soak_worker.c, over the C ABI) for a bounded time, through a TCP proxy
//! to a private server, while a fault thread keeps breaking things at random: sessions
//! terminated, connections cut, the network stalled, the server restarted. At the end, with
//! the faults stopped:
//!
//! - every key whose transaction committed is in the table exactly once; no key whose
//!   transaction failed with a known outcome is;
//! - the pool's open count agrees with `pg_stat_activity`, and its counters add up;
//! - after close, no session, pool thread or file descriptor is left.
//!
//! `PGPOOL_SOAK_SECS` sets the duration (10 s by default; the seed is printed and can be
//! fixed with `PGPOOL_SOAK_SEED`).

mod c_support;
mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{backends, wait_until};
use pgpool::{Error, ErrorKind};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn pool_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.starts_with("pgpool-"))
                })
                .count()
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Outcomes {
    committed: HashSet<i64>,
    failed: HashSet<i64>,
    unknown: HashSet<i64>,
    errors: Vec<String>,
}

#[test]
fn a_mixed_workload_under_random_faults_loses_nothing_and_leaks_nothing() {
    let secs = env_u64("PGPOOL_SOAK_SECS", 10);
    let seed = env_u64("PGPOOL_SOAK_SEED", fastrand::u64(..));
    eprintln!("soak: {secs} s, seed {seed} (PGPOOL_SOAK_SEED to repeat)");
    let cluster = common::private_cluster();
    let target: SocketAddr = format!("127.0.0.1:{}", cluster.port()).parse().unwrap();
    let proxy = Proxy::start(target);
    let mut admin = cluster.admin().unwrap();
    admin
        .batch_execute("CREATE TABLE soak (k int8 PRIMARY KEY, v text NOT NULL)")
        .unwrap();
    let base_fds = fd_count();
    let base_threads = pool_threads();

    let app = common::app_name("soak");
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?application_name={app}",
        proxy.port()
    );
    let pool = pgpool::Pool::builder()
        .max_size(6)
        .min_idle(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(2))
        .query_timeout(Some(Duration::from_secs(2)))
        .validation_timeout(Duration::from_secs(1))
        .tcp_user_timeout(Some(Duration::from_secs(2)))
        .reconnect_backoff_max(Duration::from_millis(500))
        .reaper_interval(Duration::from_millis(100))
        .build(&url)
        .unwrap();

    // The C side: its own pool in its own process, on the same proxy.
    let c_app = format!("{app}c");
    let c_url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?application_name={c_app}",
        proxy.port()
    );
    let c_program = c_support::out_dir("c").join("soak_worker");
    c_support::compile(
        &[&c_support::root().join("tests/c/soak_worker.c")],
        &c_program,
        false,
    );
    let c_worker = Command::new(&c_program)
        .args([c_url.as_str(), &secs.to_string(), "1000000000", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the C soak worker");

    let stop = Arc::new(AtomicBool::new(false));
    let next_key = Arc::new(AtomicI64::new(1));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let ops = Arc::new(AtomicI64::new(0));
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (pool, stop, next_key, outcomes, ops) = (
                pool.clone(),
                Arc::clone(&stop),
                Arc::clone(&next_key),
                Arc::clone(&outcomes),
                Arc::clone(&ops),
            );
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed ^ (w + 1));
                while !stop.load(Ordering::SeqCst) {
                    let result = match rng.u32(0..10) {
                        0..=4 => {
                            let n = rng.i64(..);
                            pool.get().and_then(|mut c| {
                                let got: i64 = c.query_one("SELECT $1::int8", &[&n])?.get(0);
                                assert_eq!(got, n, "a wrong result");
                                Ok(())
                            })
                        }
                        5..=7 => {
                            let k = next_key.fetch_add(1, Ordering::SeqCst);
                            let r = pool.transaction(|tx| {
                                tx.execute("INSERT INTO soak VALUES ($1, 'tx')", &[&k])?;
                                tx.execute("SELECT pg_sleep(0.001)", &[])?;
                                Ok::<_, Error>(())
                            });
                            let mut o = outcomes.lock().unwrap();
                            match &r {
                                Ok(()) => o.committed.insert(k),
                                Err(e) if e.outcome_unknown() => o.unknown.insert(k),
                                Err(_) => o.failed.insert(k),
                            };
                            r
                        }
                        8 => {
                            // COPY in a batch of keys in one transaction.
                            let first = next_key.fetch_add(20, Ordering::SeqCst);
                            let keys: Vec<i64> = (first..first + 20).collect();
                            let r = pool.get().and_then(|mut c| {
                                let mut copy = c.copy_in("COPY soak (k, v) FROM STDIN")?;
                                for k in &keys {
                                    copy.write_all(format!("{k}\tcopy\n").as_bytes())
                                        .map_err(|e| Error::broken(e.to_string()))?;
                                }
                                let n = copy.finish()?;
                                assert_eq!(n, 20);
                                Ok(())
                            });
                            let mut o = outcomes.lock().unwrap();
                            for k in keys {
                                match &r {
                                    Ok(()) => o.committed.insert(k),
                                    Err(e) if e.outcome_unknown() => o.unknown.insert(k),
                                    Err(_) => o.failed.insert(k),
                                };
                            }
                            r
                        }
                        _ => pool.get().and_then(|mut c| {
                            let mut out =
                                c.copy_out("COPY (SELECT generate_series(1, 500)) TO STDOUT")?;
                            let mut text = String::new();
                            out.read_to_string(&mut text)
                                .map_err(|e| Error::broken(e.to_string()))?;
                            assert_eq!(text.lines().count(), 500);
                            Ok(())
                        }),
                    };
                    ops.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = result {
                        // Faults may fail calls, but only in the ways a fault explains.
                        assert!(
                            matches!(
                                e.kind(),
                                ErrorKind::Broken
                                    | ErrorKind::Timeout
                                    | ErrorKind::Connect
                                    | ErrorKind::Server
                            ),
                            "{e}"
                        );
                        if e.kind() == ErrorKind::Server {
                            // Only the fault's own SQLSTATEs: sessions killed or the server
                            // shutting down, statements cancelled.
                            let code = e.sqlstate().unwrap_or("");
                            assert!(code.starts_with("57") || code.starts_with("08"), "{e}");
                        }
                        outcomes.lock().unwrap().errors.push(e.kind().to_string());
                        thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();

    let mut rng = fastrand::Rng::with_seed(seed);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut faults = Vec::new();
    let mut restarts = 0;
    while Instant::now() < end {
        thread::sleep(Duration::from_millis(rng.u64(200..600)));
        let fault = match rng.u32(0..10) {
            0..=3 => {
                common::terminate(&mut admin, &app);
                common::terminate(&mut admin, &c_app);
                "terminate"
            }
            4..=5 => {
                proxy.cut();
                "cut"
            }
            6..=7 => {
                proxy.stall(true);
                thread::sleep(Duration::from_millis(rng.u64(300..1500)));
                proxy.stall(false);
                "stall"
            }
            8 if restarts < 2 => {
                restarts += 1;
                cluster.restart().unwrap();
                admin = cluster.admin().unwrap();
                "restart"
            }
            _ => "none",
        };
        faults.push(fault);
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let c_out = c_worker.wait_with_output().unwrap();
    let c_stdout = String::from_utf8_lossy(&c_out.stdout).into_owned();
    assert!(
        c_out.status.success() && c_stdout.contains("SOAK WORKER OK"),
        "C soak worker: {}\n{}",
        c_out.status,
        String::from_utf8_lossy(&c_out.stderr)
    );
    eprintln!("soak: C side: {}", c_stdout.lines().last().unwrap_or(""));
    {
        let mut o = outcomes.lock().unwrap();
        for line in c_stdout.lines() {
            let mut parts = line.split(' ');
            let (Some(kind), Some(key)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(key) = key.parse::<i64>() else {
                continue;
            };
            match kind {
                "C" => o.committed.insert(key),
                "F" => o.failed.insert(key),
                "U" => o.unknown.insert(key),
                _ => continue,
            };
        }
    }
    eprintln!(
        "soak: {} operations, faults {faults:?}",
        ops.load(Ordering::Relaxed)
    );

    // The dust settles: the pool heals by itself.
    assert!(
        wait_until(Duration::from_secs(15), || pool.health().ok),
        "{:?}",
        pool.stats()
    );
    let o = outcomes.lock().unwrap();
    eprintln!(
        "soak: {} committed, {} failed, {} unknown; errors by kind: {:?}",
        o.committed.len(),
        o.failed.len(),
        o.unknown.len(),
        {
            let mut kinds: Vec<_> = o
                .errors
                .iter()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            kinds.sort();
            kinds
        }
    );
    assert!(!o.committed.is_empty());
    let present: HashSet<i64> = admin
        .query("SELECT k FROM soak", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for k in &o.committed {
        assert!(present.contains(k), "committed key {k} is missing");
    }
    for k in &o.failed {
        assert!(
            !present.contains(k),
            "key {k} failed with a known outcome yet is present"
        );
    }
    for k in &present {
        assert!(
            o.committed.contains(k) || o.unknown.contains(k),
            "key {k} is present but was never reported committed"
        );
    }

    // Pool and server agree once nothing is in flight.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = pool.stats();
            s.in_use == 0
                && s.pending == 0
                && s.closing == 0
                && backends(&mut admin, &app) == i64::from(s.open)
        }),
        "pool {:?}, server {}",
        pool.stats(),
        backends(&mut admin, &app)
    );
    let s = pool.stats();
    assert_eq!(
        s.connections_created,
        s.closed_total() + u64::from(s.open),
        "{s:?}"
    );

    // The C program closed its pool and exited: none of its sessions is left either.
    assert!(wait_until(Duration::from_secs(10), || backends(
        &mut admin, &c_app
    ) == 0));

    // Close: nothing left on the server, and no thread or descriptor left here.
    assert!(pool.close_timeout(Duration::from_secs(5)));
    drop(pool);
    proxy.cut();
    assert!(wait_until(Duration::from_secs(10), || backends(
        &mut admin, &app
    ) == 0));
    assert!(
        wait_until(Duration::from_secs(10), || pool_threads() <= base_threads),
        "{} pool threads left",
        pool_threads()
    );
    assert!(
        wait_until(Duration::from_secs(10), || fd_count() <= base_fds),
        "{} descriptors, {base_fds} before",
        fd_count()
    );
}
