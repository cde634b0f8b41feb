//! Pool-logic tests with an in-memory connection manager: ordering, counting, timeouts,
//! overload, close, panics. Everything that involves a database is in `pg_pool.rs` and
//! `faults.rs`; the fake here only stands in where the database is irrelevant.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pgpool::{CloseReason, Error, ErrorKind, Event, Manager, Pool, Probe};

#[derive(Clone, Copy, Debug)]
enum Fault {
    Fail,
    Panic,
}

#[derive(Default)]
struct Fake {
    connects: AtomicUsize,
    live: Arc<AtomicUsize>,
    max_live: Arc<AtomicUsize>,
    faults: Mutex<VecDeque<Fault>>,
    always_fail: AtomicBool,
    delay_ms: u64,
}

struct FakeConn {
    live: Arc<AtomicUsize>,
    broken: bool,
}

impl Drop for FakeConn {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The fake behind a shared handle, so the test can look inside while the pool owns it.
#[derive(Clone, Default)]
struct FakeManager(Arc<Fake>);

impl std::ops::Deref for FakeManager {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.0
    }
}

impl Manager for FakeManager {
    type Connection = FakeConn;

    fn connect(&self) -> Result<FakeConn, Error> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(self.delay_ms));
        if self.always_fail.load(Ordering::SeqCst) {
            return Err(Error::broken("connection refused (fake)"));
        }
        let fault = self.faults.lock().unwrap().pop_front();
        match fault {
            Some(Fault::Fail) => return Err(Error::broken("connection refused (fake)")),
            Some(Fault::Panic) => panic!("connect blew up (fake)"),
            None => {}
        }
        let now = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_live.fetch_max(now, Ordering::SeqCst);
        Ok(FakeConn {
            live: Arc::clone(&self.live),
            broken: false,
        })
    }

    fn validate(&self, conn: &mut FakeConn, _: Duration) -> Result<(), Error> {
        if conn.broken {
            Err(Error::broken("dead (fake)"))
        } else {
            Ok(())
        }
    }

    fn probe(&self, conn: &mut FakeConn) -> Probe {
        if conn.broken {
            Probe::Broken
        } else {
            Probe::Healthy
        }
    }
}

fn fake() -> FakeManager {
    FakeManager::default()
}

fn builder() -> pgpool::Builder {
    Pool::builder()
        .acquire_timeout(Duration::from_secs(5))
        .keepalive_interval(None)
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let pool = builder().max_size(1).build_with_manager(fake()).unwrap();
    let held = pool.get().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..6 {
        let (pool2, order) = (pool.clone(), Arc::clone(&order));
        handles.push(thread::spawn(move || {
            let conn = pool2.get().unwrap();
            order.lock().unwrap().push(i);
            thread::sleep(Duration::from_millis(2));
            drop(conn);
        }));
        // The next thread starts only once this one is queued, so arrival order is known.
        assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == i + 1));
    }
    drop(held);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    let s = pool.stats();
    // Six waited for a busy pool; the first acquire waited for the connection to open.
    assert_eq!(s.wait_count, 7, "{s:?}");
}

#[test]
fn a_newcomer_does_not_barge_past_waiters() {
    let pool = builder().max_size(1).build_with_manager(fake()).unwrap();
    let held = pool.get().unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || {
            let conn = pool.get().unwrap();
            release_rx.recv().unwrap(); // hold it until the newcomer has tried
            conn.id()
        })
    };
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 1));
    let id = held.id();
    drop(held);
    // The release handed the connection to the waiter under the lock: nothing is idle for a
    // newcomer, even before the waiter thread has run.
    assert!(pool.try_get().unwrap().is_none());
    let s = pool.stats();
    assert_eq!((s.idle, s.in_use, s.waiting), (0, 1, 0), "{s:?}");
    release_tx.send(()).unwrap();
    assert_eq!(waiter.join().unwrap(), id);
}

#[test]
fn hammering_never_exceeds_max_size_and_counts_stay_consistent() {
    let manager = fake();
    let pool = builder()
        .max_size(4)
        .build_with_manager(manager.clone())
        .unwrap();
    let barrier = Arc::new(Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (pool, barrier) = (pool.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..500 {
                    let conn = pool.get().unwrap();
                    let s = pool.stats();
                    assert!(s.open + s.pending + s.closing <= 4, "{s:?}");
                    assert_eq!(s.open, s.in_use + s.idle + s.checking, "{s:?}");
                    drop(conn);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.acquires, 32 * 500);
    assert_eq!(s.in_use, 0);
    assert!(manager.max_live.load(Ordering::SeqCst) <= 4);
    assert!(s.connections_created <= 4, "{s:?}");
}

#[test]
fn timeout_while_all_connections_are_busy_says_why() {
    let pool = builder().max_size(1).build_with_manager(fake()).unwrap();
    let _held = pool.get().unwrap();
    let start = Instant::now();
    let err = pool.get_timeout(Duration::from_millis(150)).unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(2));
    let text = err.to_string();
    assert!(text.contains("timed out after"), "{text}");
    assert!(text.contains("open 1/1, in use 1"), "{text}");
    assert_eq!(pool.stats().acquire_timeouts, 1);
    assert_eq!(pool.stats().waiting, 0);
}

#[test]
fn timeout_while_connects_fail_names_the_connect_error() {
    let manager = fake();
    manager.always_fail.store(true, Ordering::SeqCst);
    let pool = builder()
        .max_size(2)
        .build_with_manager(manager.clone())
        .unwrap();
    let err = pool.get_timeout(Duration::from_millis(300)).unwrap_err();
    assert!(err.is_timeout());
    assert!(
        err.to_string()
            .contains("last connect error: connection refused (fake)"),
        "{err}"
    );
    // Connects were retried with backoff while the caller waited, then stopped.
    let attempts = manager.connects.load(Ordering::SeqCst);
    assert!(attempts >= 2, "{attempts}");
    assert!(wait_until(Duration::from_secs(3), || pool.stats().pending == 0));
    assert!(pool.stats().connect_errors >= 2);
}

#[test]
fn max_waiters_rejects_at_once_with_overloaded() {
    let pool = builder()
        .max_size(1)
        .max_waiters(Some(1))
        .build_with_manager(fake())
        .unwrap();
    let held = pool.get().unwrap();
    let queued = {
        let pool = pool.clone();
        thread::spawn(move || pool.get().map(|_| ()))
    };
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 1));
    let start = Instant::now();
    let err = pool.get().unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(500));
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.to_string().contains("max_waiters 1"), "{err}");
    assert!(err.is_retry_safe());
    drop(held);
    queued.join().unwrap().unwrap();
    assert_eq!(pool.stats().overloaded, 1);
}

#[test]
fn close_wakes_every_waiter_with_pool_closed() {
    let pool = builder().max_size(1).build_with_manager(fake()).unwrap();
    let held = pool.get().unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || pool.get().map(|_| ()).unwrap_err())
        })
        .collect();
    assert!(wait_until(Duration::from_secs(5), || pool.stats().waiting == 3));
    let closer = {
        let pool = pool.clone();
        thread::spawn(move || pool.close_timeout(Duration::from_secs(5)))
    };
    for w in waiters {
        let err = w.join().unwrap();
        assert_eq!(err.kind(), ErrorKind::Closed);
        assert!(err.to_string().contains("closed"));
    }
    assert!(pool.get().unwrap_err().is_closed());
    drop(held); // close() was waiting for it
    assert!(closer.join().unwrap());
    let s = pool.stats();
    assert_eq!(s.open, 0);
    assert_eq!(s.closed(CloseReason::PoolClosed), 1);
    // Idempotent.
    assert!(pool.close());
}

#[test]
fn close_is_bounded_when_a_connection_is_never_returned() {
    let pool = builder().max_size(1).build_with_manager(fake()).unwrap();
    let held = pool.get().unwrap();
    let start = Instant::now();
    assert!(!pool.close_timeout(Duration::from_millis(100)));
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(held); // closed on return, not pooled
    assert!(wait_until(Duration::from_secs(2), || pool.stats().open == 0));
    assert_eq!(pool.stats().closed(CloseReason::PoolClosed), 1);
}

#[test]
fn a_panicking_connect_gives_its_slot_back() {
    let manager = fake();
    manager.faults.lock().unwrap().push_back(Fault::Panic);
    let pool = builder()
        .max_size(1)
        .build_with_manager(manager.clone())
        .unwrap();
    let conn = pool.get().unwrap(); // the retry after the panic succeeds
    let s = pool.stats();
    assert_eq!(s.connect_errors, 1);
    assert_eq!(s.open, 1);
    assert_eq!(s.pending, 0);
    drop(conn);
}

#[test]
fn a_transient_connect_failure_is_retried_for_the_waiter() {
    let manager = fake();
    manager
        .faults
        .lock()
        .unwrap()
        .extend([Fault::Fail, Fault::Fail]);
    let pool = builder()
        .max_size(1)
        .build_with_manager(manager.clone())
        .unwrap();
    let _conn = pool.get().unwrap();
    assert_eq!(manager.connects.load(Ordering::SeqCst), 3);
    assert_eq!(pool.stats().connect_errors, 2);
}

#[test]
fn a_guard_dropped_while_panicking_is_discarded() {
    let manager = fake();
    let pool = builder()
        .max_size(1)
        .build_with_manager(manager.clone())
        .unwrap();
    let p2 = pool.clone();
    let result = thread::spawn(move || {
        let _conn = p2.get().unwrap();
        panic!("user code failed while holding a connection");
    })
    .join();
    assert!(result.is_err());
    assert!(wait_until(Duration::from_secs(2), || pool
        .stats()
        .closed(CloseReason::Broken)
        == 1));
    assert!(wait_until(Duration::from_secs(2), || manager
        .live
        .load(Ordering::SeqCst)
        == 0));
    let _fresh = pool.get().unwrap();
    assert_eq!(pool.stats().connections_created, 2);
}

#[test]
fn max_idle_closes_extra_connections_on_release() {
    let pool = builder()
        .max_size(4)
        .max_idle(1)
        .build_with_manager(fake())
        .unwrap();
    let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    drop(held);
    assert!(wait_until(Duration::from_secs(2), || pool.stats().closing == 0));
    let s = pool.stats();
    assert_eq!(s.idle, 1);
    assert_eq!(s.closed(CloseReason::MaxIdle), 3);
}

#[test]
fn max_uses_retires_a_connection_after_n_checkouts() {
    let pool = builder()
        .max_size(1)
        .max_uses(Some(3))
        .build_with_manager(fake())
        .unwrap();
    let first = pool.get().unwrap().id();
    for _ in 0..2 {
        assert_eq!(pool.get().unwrap().id(), first);
    }
    let fourth = pool.get().unwrap().id();
    assert_ne!(fourth, first);
    assert_eq!(pool.stats().closed(CloseReason::MaxUses), 1);
}

#[test]
fn lifetime_and_idle_timeout_are_enforced_by_the_reaper() {
    let pool = builder()
        .max_size(3)
        .max_lifetime(Some(Duration::from_millis(150)))
        .reaper_interval(Duration::from_millis(10))
        .build_with_manager(fake())
        .unwrap();
    drop(pool.get().unwrap());
    assert!(wait_until(Duration::from_secs(3), || pool
        .stats()
        .closed(CloseReason::Lifetime)
        == 1));
    assert_eq!(pool.stats().open, 0);

    let pool = builder()
        .max_size(3)
        .min_idle(1)
        .idle_timeout(Some(Duration::from_millis(100)))
        .reaper_interval(Duration::from_millis(10))
        .build_with_manager(fake())
        .unwrap();
    let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    drop(held);
    assert!(wait_until(Duration::from_secs(3), || pool
        .stats()
        .closed(CloseReason::IdleTimeout)
        == 2));
    thread::sleep(Duration::from_millis(200));
    let s = pool.stats();
    assert_eq!(s.idle, 1, "never below min_idle: {s:?}");
}

#[test]
fn min_idle_is_opened_at_start_and_refilled() {
    let manager = fake();
    let pool = builder()
        .max_size(4)
        .min_idle(2)
        .reaper_interval(Duration::from_millis(10))
        .build_with_manager(manager.clone())
        .unwrap();
    pool.wait_ready(Duration::from_secs(5)).unwrap();
    assert_eq!(pool.stats().idle, 2);
    pool.get().unwrap().discard();
    assert!(wait_until(Duration::from_secs(3), || {
        let s = pool.stats();
        s.idle == 2 && s.closed(CloseReason::Discarded) == 1
    }));
}

#[test]
fn a_broken_connection_is_never_handed_out() {
    let pool = builder().max_size(2).build_with_manager(fake()).unwrap();
    let mut conn = pool.get().unwrap();
    let id = conn.id();
    conn.broken = true; // what a dead socket looks like to the probe
    drop(conn); // the fake's reset does not look; the probe at hand-out does
    let conn = pool.get().unwrap();
    assert_ne!(conn.id(), id);
    assert_eq!(pool.stats().closed(CloseReason::FailedValidation), 1);
}

#[test]
fn events_reach_the_hook_outside_the_lock() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool_slot: Arc<Mutex<Option<Pool<FakeManager>>>> = Arc::new(Mutex::new(None));
    let (seen2, slot2) = (Arc::clone(&seen), Arc::clone(&pool_slot));
    let pool = builder()
        .max_size(1)
        .max_uses(Some(1))
        .event_hook(move |e| {
            // Calling back into the pool from the hook must not deadlock.
            if let Some(p) = slot2.lock().unwrap().as_ref() {
                let _ = p.stats();
            }
            let name = match e {
                Event::Connect { .. } => "connect",
                Event::Acquire { .. } => "acquire",
                Event::Release { .. } => "release",
                Event::Remove { reason, .. } => reason.as_str(),
                Event::Error { .. } => "error",
                _ => "other",
            };
            seen2.lock().unwrap().push(name);
        })
        .build_with_manager(fake())
        .unwrap();
    *pool_slot.lock().unwrap() = Some(pool.clone());
    drop(pool.get().unwrap());
    assert!(wait_until(Duration::from_secs(2), || seen
        .lock()
        .unwrap()
        .len()
        == 4));
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["connect", "acquire", "release", "max_uses"]
    );
    pool_slot.lock().unwrap().take();
}

fn pool_threads(id_marker: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == id_marker)
        .count()
}

#[test]
fn background_threads_stop_when_the_pool_closes_or_is_dropped() {
    for explicit_close in [true, false] {
        let pool = builder()
            .max_size(1)
            .keepalive_interval(Some(Duration::from_secs(60)))
            .reaper_interval(Duration::from_secs(60))
            .build_with_manager(fake())
            .unwrap();
        let id = pool.id();
        let (reaper, keepalive) = (format!("pgpool-r{id}"), format!("pgpool-k{id}"));
        // A thread names itself once it runs.
        assert!(wait_until(Duration::from_secs(2), || pool_threads(&reaper)
            == 1
            && pool_threads(&keepalive) == 1));
        let start = Instant::now();
        if explicit_close {
            pool.close();
        } else {
            drop(pool);
        }
        assert!(wait_until(Duration::from_secs(2), || pool_threads(&reaper)
            == 0
            && pool_threads(&keepalive) == 0));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

#[test]
fn dropping_the_last_pool_handle_closes_the_pool() {
    let manager = fake();
    let pool = builder()
        .max_size(2)
        .build_with_manager(manager.clone())
        .unwrap();
    let guard = pool.get().unwrap();
    drop(pool.get().unwrap());
    drop(pool);
    // The idle one is closed at once; the one in use when it comes back.
    assert!(wait_until(Duration::from_secs(2), || manager
        .live
        .load(Ordering::SeqCst)
        == 1));
    drop(guard);
    assert!(wait_until(Duration::from_secs(2), || manager
        .live
        .load(Ordering::SeqCst)
        == 0));
}

#[test]
fn try_get_never_waits() {
    let pool = builder().max_size(1).build_with_manager(fake()).unwrap();
    let held = pool.get().unwrap();
    let start = Instant::now();
    assert!(pool.try_get().unwrap().is_none());
    assert!(start.elapsed() < Duration::from_millis(100));
    drop(held);
    assert!(pool.try_get().unwrap().is_some());
}

#[test]
fn a_thread_gets_back_the_connection_it_released_last() {
    use std::sync::mpsc::channel;
    let pool = builder().max_size(4).build_with_manager(fake()).unwrap();
    let mine = pool.get().unwrap();
    let my_id = mine.id();
    let (got_tx, got_rx) = channel();
    let (go_tx, go_rx) = channel::<()>();
    let other = {
        let pool = pool.clone();
        thread::spawn(move || {
            let theirs = pool.get().unwrap();
            got_tx.send(theirs.id()).unwrap();
            go_rx.recv().unwrap();
            drop(theirs);
        })
    };
    let other_id = got_rx.recv().unwrap();
    drop(mine); // released first ...
    go_tx.send(()).unwrap();
    other.join().unwrap(); // ... so the other thread's connection is the most recently used
    assert_ne!(my_id, other_id);
    assert_eq!(pool.stats().idle, 2);
    // Plain MRU would hand out the other thread's connection; affinity returns this one.
    assert_eq!(pool.get().unwrap().id(), my_id);
    let elsewhere = {
        let pool = pool.clone();
        thread::spawn(move || pool.get().unwrap().id())
            .join()
            .unwrap()
    };
    assert_eq!(
        elsewhere, my_id,
        "a thread with no history gets the most recently used"
    );
}
