//! [`Breaker`]: the pool's view of whether the database can be reached, from the outcomes of
//! its connect attempts, and when the next attempt may start.
//!
//! The pool is **down** when connects keep failing (`threshold` in a row, or one permanent
//! error such as a bad password) and no connection is open: then a single probe retries with
//! jittered exponential backoff, and an acquire that needs a new connection waits for the
//! outcome of one probe (the one running, or the next, which a caller pulls forward to 250 ms
//! after the last attempt) if that fits in its deadline, else fails at once with the last
//! connect error. It is **degraded** while connects fail but the breaker is
//! not open (or connections are still open), and **healthy** after a success.

use std::time::{Duration, Instant};

use crate::error::Error;

/// The pool's health, as [`Stats::health`](crate::Stats::health) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HealthState {
    /// The last connect attempt (if any) succeeded.
    #[default]
    Healthy,
    /// Recent connect attempts failed, but the breaker is not open (or connections are
    /// still open and serve callers).
    Degraded,
    /// The breaker is open: connects keep failing and no connection is open. Acquires that
    /// need a new connection fail at once until a probe succeeds.
    Down,
}

impl HealthState {
    /// `"healthy"`, `"degraded"` or `"down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Down => "down",
        }
    }
}

/// First pause after a failure while the breaker is closed (doubling up to `CLOSED_MAX`).
const CLOSED_FIRST: Duration = Duration::from_millis(10);
const CLOSED_MAX: Duration = Duration::from_secs(1);
/// First pause between probes once the breaker is open (doubling up to the configured max).
const OPEN_FIRST: Duration = Duration::from_millis(250);

/// Connect outcomes and the backoff they imply.
///
/// Invariant: `failures == 0` iff the last outcome was a success (or there was none), and
/// then `next_attempt` is `None` (no pause).
#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: Option<u32>,
    backoff_max: Duration,
    /// Consecutive failed attempts.
    failures: u32,
    /// The last failure was permanent (authentication, unknown database, ...).
    permanent: bool,
    last_error: Option<Error>,
    last_success: Option<Instant>,
    last_failure: Option<Instant>,
    /// No attempt starts before this.
    next_attempt: Option<Instant>,
}

impl Breaker {
    pub(crate) fn new(threshold: Option<u32>, backoff_max: Duration) -> Breaker {
        Breaker {
            threshold,
            backoff_max,
            failures: 0,
            permanent: false,
            last_error: None,
            last_success: None,
            last_failure: None,
            next_attempt: None,
        }
    }

    /// The failures alone would open the breaker (whether connections are open aside).
    fn tripped(&self) -> bool {
        self.failures > 0
            && self
                .threshold
                .is_some_and(|t| self.permanent || self.failures >= t)
    }

    /// Down: tripped with no connection open (`live` counts open connections).
    pub(crate) fn is_down(&self, live: usize) -> bool {
        live == 0 && self.tripped()
    }

    pub(crate) fn state(&self, live: usize) -> HealthState {
        if self.is_down(live) {
            HealthState::Down
        } else if self.failures > 0 {
            HealthState::Degraded
        } else {
            HealthState::Healthy
        }
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    pub(crate) fn last_success(&self) -> Option<Instant> {
        self.last_success
    }

    pub(crate) fn last_failure(&self) -> Option<Instant> {
        self.last_failure
    }

    /// When the next attempt may start, if not now.
    pub(crate) fn wait_until(&self, now: Instant) -> Option<Instant> {
        self.next_attempt.filter(|&at| at > now)
    }

    /// The earliest a caller's demand may start the next probe: 250 ms (the first open
    /// pause) after the last attempt ended, so probes started by callers are at most four a
    /// second.
    pub(crate) fn earliest_probe(&self, now: Instant) -> Instant {
        self.last_failure.map_or(now, |t| (t + OPEN_FIRST).max(now))
    }

    /// Starts the next attempt no later than `at`.
    pub(crate) fn pull_forward(&mut self, at: Instant) {
        if let Some(next) = self.next_attempt {
            self.next_attempt = Some(next.min(at));
        }
    }

    pub(crate) fn succeeded(&mut self, now: Instant) {
        self.failures = 0;
        self.permanent = false;
        self.last_error = None;
        self.last_success = Some(now);
        self.next_attempt = None;
    }

    /// Records a failed attempt and schedules the next one: 10 ms doubling to 1 s while the
    /// breaker is closed, 250 ms doubling to `backoff_max` once tripped, each ±20%.
    pub(crate) fn failed(&mut self, err: &Error, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.permanent = err.is_permanent_connect();
        self.last_error = Some(err.clone());
        self.last_failure = Some(now);
        let pause = if self.tripped() || self.permanent {
            let k = self
                .failures
                .saturating_sub(self.threshold.unwrap_or(1))
                .min(16);
            (OPEN_FIRST * 2u32.saturating_pow(k)).min(self.backoff_max)
        } else {
            (CLOSED_FIRST * 2u32.saturating_pow((self.failures - 1).min(16))).min(CLOSED_MAX)
        };
        let jitter = 0.8 + 0.4 * fastrand::f64();
        self.next_attempt = Some(now + pause.mul_f64(jitter));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn transient() -> Error {
        Error::new(ErrorKind::Connect, "connection refused")
    }

    #[test]
    fn opens_after_the_threshold_only_with_nothing_open() {
        let now = Instant::now();
        let mut b = Breaker::new(Some(3), Duration::from_secs(5));
        assert_eq!(b.state(0), HealthState::Healthy);
        b.failed(&transient(), now);
        b.failed(&transient(), now);
        assert_eq!(b.state(0), HealthState::Degraded);
        b.failed(&transient(), now);
        assert_eq!(b.state(0), HealthState::Down);
        assert_eq!(
            b.state(2),
            HealthState::Degraded,
            "open connections still serve"
        );
        b.succeeded(now);
        assert_eq!(b.state(0), HealthState::Healthy);
        assert!(b.wait_until(now).is_none());
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let now = Instant::now();
        let mut b = Breaker::new(Some(1), Duration::from_secs(2));
        let mut last = Duration::ZERO;
        for i in 0..12 {
            b.failed(&transient(), now);
            let pause = b.wait_until(now).unwrap() - now;
            assert!(pause <= Duration::from_millis(2400), "{i}: {pause:?}");
            if i < 3 {
                assert!(pause > last.mul_f64(1.2), "{i}: {pause:?} after {last:?}");
            }
            last = pause;
        }
        assert!(last >= Duration::from_millis(1600));
    }

    #[test]
    fn off_without_a_threshold() {
        let now = Instant::now();
        let mut b = Breaker::new(None, Duration::from_secs(5));
        for _ in 0..10 {
            b.failed(&transient(), now);
        }
        assert_eq!(b.state(0), HealthState::Degraded);
    }
}
