//! [`Retry`]: re-running a whole transaction when, and only when, that is safe.
//!
//! Safe means the server certainly did not commit the work: it rolled the transaction back
//! for a reason a new attempt can cure (serialization failure `40001`, deadlock `40P01`), or
//! the connection failed before the outcome could be in doubt (a connect error, a session
//! that broke while nothing of the transaction's effects could have been committed). An
//! error whose outcome is unknown, such as a connection lost during `COMMIT`, is never
//! retried: the caller gets it, flagged by [`Error::outcome_unknown`].

use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// How many times, and how patiently, [`Pool::transaction_with_retry`](crate::Pool::transaction_with_retry)
/// retries. The pause doubles from `initial_backoff` up to `max_backoff`, with ±20% jitter.
///
/// ```
/// use std::time::Duration;
/// let retry = pgpool::Retry {
///     max_attempts: 5,
///     ..pgpool::Retry::default()
/// };
/// assert_eq!(retry.initial_backoff, Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included; at least 1. Defaults to 3.
    pub max_attempts: u32,
    /// The first pause. Defaults to 10 ms.
    pub initial_backoff: Duration,
    /// The longest pause. Defaults to 1 s.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl Retry {
    /// True when running the failed transaction again is safe and may succeed: a
    /// serialization failure or deadlock (the server rolled it back), a transient connect
    /// error, or a broken connection whose outcome is known (nothing was committed). False
    /// for everything else, and always for an outcome-unknown error.
    ///
    /// ```
    /// use pgpool::{Error, Retry};
    /// assert!(!Retry::is_retryable(&Error::usage("bad input")));
    /// ```
    pub fn is_retryable(err: &Error) -> bool {
        if err.outcome_unknown() {
            return false;
        }
        match err.kind() {
            ErrorKind::Server => matches!(err.sqlstate(), Some("40001" | "40P01")),
            ErrorKind::Connect => !err.is_permanent_connect(),
            ErrorKind::Broken => true,
            _ => false,
        }
    }

    /// The pause before attempt `attempt + 1` (after `attempt` failures, from 1).
    pub(crate) fn pause(&self, attempt: u32) -> Duration {
        let doubled = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        doubled
            .min(self.max_backoff)
            .mul_f64(0.8 + 0.4 * fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let r = Retry {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        };
        assert!(r.pause(1) <= Duration::from_millis(12));
        assert!(r.pause(2) >= Duration::from_millis(16));
        assert!(r.pause(9) <= Duration::from_millis(60));
    }

    #[test]
    fn only_safe_errors_are_retryable() {
        assert!(Retry::is_retryable(&Error::new(
            ErrorKind::Connect,
            "refused"
        )));
        // A broken connection whose outcome is unknown (the default for `broken`) is not.
        assert!(!Retry::is_retryable(&Error::broken("reset by peer")));
        assert!(!Retry::is_retryable(&Error::closed()));
        assert!(!Retry::is_retryable(&Error::config("max_size", "0")));
    }
}
