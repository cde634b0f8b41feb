//! A TCP proxy for network-fault tests: forwards 127.0.0.1:<port> to a target and can stall
//! (stop forwarding in both directions, connections stay open, as on a dead network path) or
//! cut (close every proxied connection). It tests our own timers: while it stalls its kernel
//! still acknowledges data and keepalive probes, so TCP-level timeouts never fire through it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub struct Proxy {
    port: u16,
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts forwarding a fresh local port to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            stalled: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            streams: Arc::new(Mutex::new(Vec::new())),
        };
        let (stalled, stop, streams) = (
            Arc::clone(&proxy.stalled),
            Arc::clone(&proxy.stop),
            Arc::clone(&proxy.streams),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    streams.lock().unwrap().push(from.try_clone().unwrap());
                    let (stalled, stop) = (Arc::clone(&stalled), Arc::clone(&stop));
                    thread::spawn(move || pump(from, to, &stalled, &stop));
                }
            }
        });
        proxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops (or resumes) forwarding; connections stay open.
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }

    /// Closes every proxied connection.
    pub fn cut(&self) {
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, stalled: &AtomicBool, stop: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 16384];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if !stalled.load(Ordering::SeqCst) && !pending.is_empty() {
            if to.write_all(&pending).is_err() {
                break;
            }
            pending.clear();
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}
