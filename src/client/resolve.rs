//! Host name resolution bounded by the connect deadline.
//!
//! `getaddrinfo` has no timeout of its own: with a DNS server that does not answer it returns
//! after the resolver's retries (`resolv.conf`'s `timeout` × `attempts` per server and
//! address family: 10 s and more by default), whatever `connect_timeout` says. So a name is
//! resolved on a short-lived thread while the connecting thread waits for at most what is
//! left of its deadline; a lookup still running then is left to finish on its own (its
//! thread only resolves and exits). At most [`MAX_LOOKUPS`] such threads run at once in the
//! process, so a dead resolver cannot pile them up: beyond that a connect fails at once.
//! An IP address literal is not resolved at all.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Lookup threads running at most, process-wide.
pub(crate) const MAX_LOOKUPS: usize = 8;

static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

/// In a forked child: the parent's lookup threads are not there, so none is running. (An
/// atomic store: safe in the `fork` child handler.)
pub(crate) fn forget_lookups() {
    LOOKUPS.store(0, Ordering::SeqCst);
}

/// Why a name has no addresses.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The resolver answered: no such name, or another error of its own.
    NotFound(std::io::Error),
    /// No answer before the deadline.
    TimedOut(Duration),
    /// [`MAX_LOOKUPS`] lookups are still running (the resolver does not answer).
    Busy,
}

/// The addresses of `name`:`port`, within `deadline`.
pub(crate) fn resolve(
    name: &str,
    port: u16,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let start = Instant::now();
    if LOOKUPS.fetch_add(1, Ordering::SeqCst) >= MAX_LOOKUPS {
        LOOKUPS.fetch_sub(1, Ordering::SeqCst);
        return Err(Failure::Busy);
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let owned = name.to_owned();
    let spawned = std::thread::Builder::new()
        .name("pgpool-dns".into())
        .spawn(move || {
            let result = (owned.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>);
            LOOKUPS.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(result);
        });
    if let Err(e) = spawned {
        LOOKUPS.fetch_sub(1, Ordering::SeqCst);
        // No thread: resolve here, unbounded, rather than not at all.
        log::warn!(target: "pgpool", "cannot start a lookup thread ({e}); resolving {name} inline");
        return (name, port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(Failure::NotFound);
    }
    let wait = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(wait) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(Failure::NotFound(e)),
        Err(_) => Err(Failure::TimedOut(start.elapsed())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_local_names_resolve() {
        let far = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            resolve("127.0.0.1", 5, far).unwrap(),
            ["127.0.0.1:5".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(resolve("::1", 5, far).unwrap()[0].port(), 5);
        // An IP literal needs no time at all, even with the deadline passed.
        assert!(resolve("10.1.2.3", 1, Instant::now()).is_ok());
        assert!(!resolve("localhost", 5432, far).unwrap().is_empty());
        assert!(matches!(
            resolve("no-such-host.invalid", 1, far),
            Err(Failure::NotFound(_))
        ));
    }
}
