//! A TCP proxy for network-fault tests: forwards 127.0.0.1:<port> to a target, with faults
//! that can be switched on and off while connections are open:
//!
//! | fault | what the client sees |
//! |---|---|
//! | [`stall`](Proxy::stall) | nothing forwarded either way; data is kept and delivered when the stall ends |
//! | [`delay`](Proxy::delay) | every chunk delivered a fixed time after it was read (latency, not a rate limit) |
//! | [`blackhole`](Proxy::blackhole) | data is read and dropped, both ways; new connections are accepted and never reach the server |
//! | [`cut`](Proxy::cut) | every proxied connection closed at once |
//! | [`cut_after`](Proxy::cut_after) | every connection closed once N more bytes have been forwarded |
//!
//! It tests our own timers only: whatever the fault, its kernel still acknowledges data and
//! keepalive probes, so TCP-level timeouts never fire through it (see `netns_faults.rs` for
//! a real partition).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How often a pump looks at the switches when nothing arrives.
const TICK: Duration = Duration::from_millis(5);

#[derive(Default)]
struct Switches {
    stalled: AtomicBool,
    blackhole: AtomicBool,
    stop: AtomicBool,
    /// Latency added to every chunk, in microseconds.
    delay_us: AtomicU64,
    /// Bytes still to forward before everything is cut; negative: no limit.
    budget: AtomicI64,
    /// Both ends of every connection, for cutting.
    streams: Mutex<Vec<TcpStream>>,
    /// Connections accepted so far (blackholed ones included).
    accepted: AtomicU64,
}

impl Switches {
    fn cut_all(&self) {
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// How many of `n` bytes may be forwarded now, and whether that exhausts the budget.
    fn take_budget(&self, n: usize) -> (usize, bool) {
        let mut granted = n;
        let mut exhausted = false;
        let _ = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                if b < 0 {
                    granted = n;
                    exhausted = false;
                    return None;
                }
                granted = n.min(b as usize);
                let left = b - granted as i64;
                exhausted = left == 0;
                // Spent: the cut happens once, later connections are not limited.
                Some(if exhausted { -1 } else { left })
            });
        (granted, exhausted)
    }
}

pub struct Proxy {
    port: u16,
    switches: Arc<Switches>,
}

impl Proxy {
    /// Starts forwarding a fresh local port to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let switches = Arc::new(Switches::default());
        switches.budget.store(-1, Ordering::SeqCst);
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            switches: Arc::clone(&switches),
        };
        thread::spawn(move || {
            while !switches.stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        thread::sleep(TICK);
                        continue;
                    }
                };
                switches.accepted.fetch_add(1, Ordering::SeqCst);
                client.set_nonblocking(false).unwrap();
                if switches.blackhole.load(Ordering::SeqCst) {
                    // Accepted, and never connected onwards: the client talks into the void.
                    switches
                        .streams
                        .lock()
                        .unwrap()
                        .push(client.try_clone().unwrap());
                    let switches = Arc::clone(&switches);
                    thread::spawn(move || swallow(client, &switches));
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    switches
                        .streams
                        .lock()
                        .unwrap()
                        .push(from.try_clone().unwrap());
                    let switches = Arc::clone(&switches);
                    thread::spawn(move || pump(from, to, &switches));
                }
            }
        });
        proxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops (or resumes) forwarding; connections stay open and nothing is lost.
    pub fn stall(&self, on: bool) {
        self.switches.stalled.store(on, Ordering::SeqCst);
    }

    /// Delivers every chunk `latency` after it was read, in both directions (a round trip
    /// then costs at least twice `latency`). `Duration::ZERO` switches it off.
    pub fn delay(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.switches.delay_us.store(us, Ordering::SeqCst);
    }

    /// Drops everything (or, with `false`, forwards again): data on open connections is read
    /// and thrown away, both ways, and new connections are accepted but never reach the
    /// server. What was dropped stays lost.
    pub fn blackhole(&self, on: bool) {
        self.switches.blackhole.store(on, Ordering::SeqCst);
    }

    /// Closes every proxied connection.
    pub fn cut(&self) {
        self.switches.cut_all();
    }

    /// Forwards `bytes` more bytes (both directions together), then closes every proxied
    /// connection: a cut at a chosen point of an exchange. Applies once.
    pub fn cut_after(&self, bytes: u64) {
        let budget = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.switches.budget.store(budget, Ordering::SeqCst);
    }

    /// Connections accepted so far, blackholed ones included.
    pub fn accepted(&self) -> u64 {
        self.switches.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.switches.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// Reads and drops until the client goes away or the proxy stops.
fn swallow(mut client: TcpStream, switches: &Switches) {
    client.set_read_timeout(Some(TICK * 4)).unwrap();
    let mut buf = [0u8; 16384];
    while !switches.stop.load(Ordering::SeqCst) {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// One direction of one connection: read, hold each chunk for the delay (or the stall),
/// forward; drop chunks while blackholed; cut everything when the byte budget runs out.
fn pump(mut from: TcpStream, mut to: TcpStream, switches: &Switches) {
    let mut buf = [0u8; 16384];
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    'outer: loop {
        if switches.stop.load(Ordering::SeqCst) {
            break;
        }
        if !switches.stalled.load(Ordering::SeqCst) {
            while queue.front().is_some_and(|(due, _)| *due <= Instant::now()) {
                let (_, chunk) = queue.pop_front().unwrap();
                let (n, exhausted) = switches.take_budget(chunk.len());
                if to.write_all(&chunk[..n]).is_err() {
                    break 'outer;
                }
                if exhausted {
                    switches.cut_all();
                    break 'outer;
                }
            }
        }
        let wait = queue
            .front()
            .map_or(TICK, |(due, _)| {
                due.saturating_duration_since(Instant::now())
            })
            .clamp(Duration::from_millis(1), TICK);
        from.set_read_timeout(Some(wait)).unwrap();
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !switches.blackhole.load(Ordering::SeqCst) {
                    let delay = Duration::from_micros(switches.delay_us.load(Ordering::SeqCst));
                    queue.push_back((Instant::now() + delay, buf[..n].to_vec()));
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}
