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
