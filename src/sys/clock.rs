//! A cheap monotonic clock for the pool's bookkeeping.

#![allow(unsafe_code)]

/// Nanoseconds on `CLOCK_MONOTONIC_COARSE` (Linux): the kernel's last tick (1–4 ms
/// resolution), read from the vDSO in a few nanoseconds, where a precise clock read costs
/// ~25 ns. Elsewhere, the precise monotonic clock.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn monotonic_coarse_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Portable fallback: nanoseconds since the first call, on `Instant`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn monotonic_coarse_ns() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A precise timestamp for latency histograms, from [`stamp`]. On x86-64 Linux whose kernel
/// keeps time with the TSC (so it found the counter invariant and synchronised across CPUs),
/// the raw TSC: one `rdtsc`, ~10 ns where a precise clock read costs ~25 ns. Elsewhere,
/// nanoseconds on `Instant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(u64);

/// How stamps are taken and converted, decided once per process.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Raw TSC; nanoseconds = cycles × `ns_q32` / 2^32.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    Tsc { ns_q32: u64 },
    /// Nanoseconds since `ORIGIN`.
    Monotonic,
}

static SOURCE: std::sync::OnceLock<Source> = std::sync::OnceLock::new();
static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions and touches no memory; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn source() -> Source {
    *SOURCE.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let clocksource = std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .unwrap_or_default();
            if clocksource.trim() == "tsc" {
                if let Some(ns_q32) = calibrate_tsc() {
                    return Source::Tsc { ns_q32 };
                }
            }
        }
        Source::Monotonic
    })
}

/// The TSC's period in nanoseconds (Q32 fixed point), measured against the precise clock
/// over 2 ms (the two reads at each end are ~50 ns apart: under 0.003% error).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn calibrate_tsc() -> Option<u64> {
    use std::time::{Duration, Instant};
    let (t0, c0) = (Instant::now(), rdtsc());
    let mut t1 = t0;
    while t1.duration_since(t0) < Duration::from_millis(2) {
        std::hint::spin_loop();
        t1 = Instant::now();
    }
    let cycles = rdtsc().checked_sub(c0).filter(|&c| c > 0)?;
    let ns = t1.duration_since(t0).as_nanos();
    u64::try_from((ns << 32) / u128::from(cycles)).ok()
}

/// Now, for a latency measurement ([`Stamp::elapsed`]). The first call in a process spends
/// 2 ms calibrating when the TSC is used.
#[inline]
pub(crate) fn stamp() -> Stamp {
    match source() {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        Source::Tsc { .. } => Stamp(rdtsc()),
        Source::Monotonic => {
            let origin = *ORIGIN.get_or_init(std::time::Instant::now);
            Stamp(u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
        }
    }
}

impl Stamp {
    /// Time from this stamp to `later` (zero if `later` is earlier).
    #[inline]
    pub(crate) fn until(self, later: Stamp) -> std::time::Duration {
        let units = later.0.saturating_sub(self.0);
        let ns = match source() {
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Source::Tsc { ns_q32 } => {
                u64::try_from((u128::from(units) * u128::from(ns_q32)) >> 32).unwrap_or(u64::MAX)
            }
            Source::Monotonic => units,
        };
        std::time::Duration::from_nanos(ns)
    }

    /// Time since this stamp.
    #[inline]
    pub(crate) fn elapsed(self) -> std::time::Duration {
        self.until(stamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn stamps_measure_what_the_precise_clock_measures() {
        let (s, t) = (stamp(), Instant::now());
        std::thread::sleep(Duration::from_millis(30));
        let (by_stamp, by_clock) = (s.elapsed(), t.elapsed());
        let diff = by_stamp.as_secs_f64() - by_clock.as_secs_f64();
        assert!(
            diff.abs() < 0.0005 + by_clock.as_secs_f64() * 0.01,
            "{by_stamp:?} vs {by_clock:?}"
        );
        assert_eq!(
            stamp().until(s),
            Duration::ZERO,
            "an earlier stamp reads zero"
        );
    }
}
