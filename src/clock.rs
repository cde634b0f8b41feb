//! The pool's bookkeeping clock: coarse (the kernel tick, 1–4 ms) and cheap, because the hot
//! path stamps every checkout and release. Lifetimes, idle times and the validation skip
//! window are all far coarser than a tick. Waits and deadlines use the precise
//! [`std::time::Instant`] instead, and only when a caller actually waits. Latency histograms
//! use [`Stamp`]s: precise, and on most Linux machines cheaper than `Instant` (the TSC).

use std::time::Duration;

use crate::sys::clock as os;
pub(crate) use os::{stamp, Stamp};

/// A point on the coarse monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tick(u64);

impl Tick {
    pub(crate) fn now() -> Tick {
        Tick(os::monotonic_coarse_ns())
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub(crate) fn since(self, earlier: Tick) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub(crate) fn after(self, d: Duration) -> Tick {
        Tick(
            self.0
                .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Tick;
    use std::time::Duration;

    #[test]
    fn ticks_advance_and_subtract_safely() {
        let a = Tick::now();
        std::thread::sleep(Duration::from_millis(20));
        let b = Tick::now();
        assert!(b > a);
        assert!(b.since(a) >= Duration::from_millis(10));
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(
            a.after(Duration::from_secs(1)).since(a),
            Duration::from_secs(1)
        );
    }
}
