//! Quick acquire+release overhead check: pgpool vs r2d2 over the same no-op manager.
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Noop;
impl r2d2::ManageConnection for Noop {
    type Connection = ();
    type Error = std::io::Error;
    fn connect(&self) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn is_valid(&self, _: &mut ()) -> Result<(), std::io::Error> {
        Ok(())
    }
    fn has_broken(&self, _: &mut ()) -> bool {
        false
    }
}

fn run(threads: usize, iters: usize, f: Arc<dyn Fn() + Send + Sync>) -> f64 {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let f = f.clone();
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                for _ in 0..iters {
                    f()
                }
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    for h in hs {
        h.join().unwrap();
    }
    t.elapsed().as_nanos() as f64 / (threads * iters) as f64
}

fn main() {
    let t0 = Instant::now();
    let mut x = t0;
    for _ in 0..1_000_000 {
        x = Instant::now();
    }
    println!(
        "Instant::now: {:.1} ns",
        x.duration_since(t0).as_nanos() as f64 / 1e6
    );
    let ours = pgpool::Pool::builder()
        .max_size(8)
        .keepalive_interval(None)
        .build_with_manager(pgpool::R2d2Manager(Noop))
        .unwrap();
    let theirs = r2d2::Pool::builder()
        .max_size(8)
        .connection_timeout(Duration::from_secs(30))
        .build(Noop)
        .unwrap();
    for threads in [1, 2, 8, 32] {
        let iters = 2_000_000 / threads;
        let o = ours.clone();
        let a = run(threads, iters, Arc::new(move || drop(o.get().unwrap())));
        let r = theirs.clone();
        let b = run(threads, iters, Arc::new(move || drop(r.get().unwrap())));
        println!(
            "threads {threads:>2}: pgpool {a:7.1} ns/cycle  r2d2 {b:7.1} ns/cycle  ratio {:.2}x",
            b / a
        );
    }
}
