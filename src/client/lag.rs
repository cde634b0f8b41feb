//! How far a hot standby's replay is behind its primary, for `max_replica_lag`: measured at
//! connect, then again whenever the last measure is older than half the limit.
//!
//! The measure is the standby's own, in one round trip: zero while it has replayed all the
//! WAL it received, else the time since the commit it replayed last
//! (`pg_last_xact_replay_timestamp`). A primary answers NULL and is never watched.

use std::time::Duration;

use crate::client::row::SimpleQueryMessage;
use crate::client::session::Session;
use crate::clock::Tick;
use crate::error::Error;

/// The lag in seconds as an SQL expression (`float8`), NULL on a primary (also in the
/// health check's query).
macro_rules! replica_lag_seconds {
    () => {
        "(CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN NULL \
         WHEN pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() THEN 0 \
         ELSE COALESCE(EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() \
         - pg_catalog.pg_last_xact_replay_timestamp()), 0) END)::float8"
    };
}

pub(crate) use replica_lag_seconds;

/// One row, one column: seconds behind, or NULL on a primary.
const LAG_SQL: &str = concat!("SELECT ", replica_lag_seconds!());

/// The replay lag of the standby behind `session`; `None` when the server is not in
/// recovery. One round trip, under the session's current deadline.
pub(crate) fn measure(session: &mut Session) -> Result<Option<Duration>, Error> {
    let messages = session.simple_query(LAG_SQL)?;
    let seconds = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
        _ => None,
    });
    Ok(seconds.flatten().map(|text| parse_seconds(&text)))
}

/// Seconds as the server prints them (`0`, `12.345678`); negative (clocks apart) or
/// unreadable counts as no lag.
fn parse_seconds(text: &str) -> Duration {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s.min(1e9)))
}

/// A standby session's lag, as last measured, against its limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LagWatch {
    pub(crate) max: Duration,
    /// The last measure, and when it was taken.
    pub(crate) behind: Duration,
    measured: Tick,
}

impl LagWatch {
    pub(crate) fn new(max: Duration, behind: Duration) -> LagWatch {
        LagWatch {
            max,
            behind,
            measured: Tick::now(),
        }
    }

    /// The last measure is older than half the limit: measure again before the next use.
    pub(crate) fn due(&self) -> bool {
        Tick::now().since(self.measured) >= self.max / 2
    }

    /// The watch after a new measure of `behind`.
    pub(crate) fn measured(self, behind: Duration) -> LagWatch {
        LagWatch::new(self.max, behind)
    }

    pub(crate) fn too_far(&self) -> bool {
        self.behind > self.max
    }
}

/// How a lag reads in messages: `12.3 s`.
pub(crate) fn describe(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_and_odd_answers_count_as_no_lag() {
        assert_eq!(parse_seconds("0"), Duration::ZERO);
        assert_eq!(parse_seconds("12.5"), Duration::from_millis(12_500));
        assert_eq!(
            parse_seconds(" 1.000001 "),
            Duration::from_micros(1_000_001)
        );
        assert_eq!(parse_seconds("-3.2"), Duration::ZERO);
        assert_eq!(parse_seconds("NaN"), Duration::ZERO);
        assert_eq!(parse_seconds("soon"), Duration::ZERO);
        assert_eq!(parse_seconds("1e300"), Duration::from_secs(1_000_000_000));
    }

    #[test]
    fn a_watch_is_due_after_half_its_limit_and_too_far_past_it() {
        let w = LagWatch::new(Duration::from_millis(40), Duration::from_millis(10));
        assert!(!w.due() && !w.too_far());
        std::thread::sleep(Duration::from_millis(30));
        assert!(w.due());
        let w = w.measured(Duration::from_millis(41));
        assert!(!w.due() && w.too_far());
        assert_eq!(describe(Duration::from_millis(12_340)), "12.3 s");
    }
}
