//! [`Health`]: the result of [`Pool::health`](crate::Pool::health), with the state's reasons
//! and the seeds' `/api/db/health` body as JSON.

use std::fmt::Write;
use std::time::Duration;

use crate::config::Config;
use crate::error::Error;
use crate::pool::HealthState;
use crate::stats::Stats;

/// The result of [`Pool::health`](crate::Pool::health).
///
/// `state` combines the breaker with what the check saw: down while the breaker is open;
/// degraded while recent connects failed, while more than
/// [`degraded_waiters`](Config::degraded_waiters) callers wait, or when the round trip
/// failed; healthy otherwise. `reasons` says why, one phrase each.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Health {
    /// The pool's name.
    pub name: String,
    /// The round trip succeeded.
    pub ok: bool,
    /// Healthy, degraded or down (see above).
    pub state: HealthState,
    /// Why the state is not healthy: empty when it is.
    pub reasons: Vec<String>,
    /// `current_database()`, empty on failure.
    pub database: String,
    /// The server's `now()` in UTC, ISO 8601 (`2026-12-01T08:24:00.000Z`); empty on failure.
    pub server_time: String,
    /// The server's `server_version`, empty on failure.
    pub server_version: String,
    /// Whether the server is a standby (`pg_is_in_recovery()`); `None` on failure.
    pub in_recovery: Option<bool>,
    /// On a standby, how far its replay is behind its primary (the measure of
    /// [`max_replica_lag`](Config::max_replica_lag)); `None` on a primary or on failure.
    pub replica_lag: Option<Duration>,
    /// Time for acquire + round trip.
    pub latency: Duration,
    /// The configured maximum of open connections.
    pub max_size: u32,
    /// Open connections (pg-pool's `totalCount`).
    pub open: u32,
    /// Idle connections (`idleCount`).
    pub idle: u32,
    /// Connections held by callers.
    pub in_use: u32,
    /// Waiting callers (`waitingCount`).
    pub waiting: u32,
    /// Connect attempts that failed in a row (0 after a success).
    pub consecutive_connect_failures: u32,
    /// The most recent connect error since the last success.
    pub last_connect_error: Option<Error>,
    /// Why the round trip failed.
    pub error: Option<Error>,
}

impl Health {
    /// The verdict on a pool whose check returned `result` (database, time, version) after
    /// `latency`, given its stats afterwards.
    pub(crate) fn assess(
        name: &str,
        config: &Config,
        stats: &Stats,
        result: Result<crate::Row, Error>,
        latency: Duration,
        last_connect_error: Option<Error>,
    ) -> Health {
        let (ok, database, server_time, server_version, error) = match &result {
            Ok(row) => (true, row.get(0), row.get(1), row.get(2), None),
            Err(e) => (
                false,
                String::new(),
                String::new(),
                String::new(),
                Some(e.clone()),
            ),
        };
        let in_recovery = result.as_ref().ok().map(|row| row.get::<_, bool>(3));
        let replica_lag = result.as_ref().ok().and_then(|row| {
            row.get::<_, Option<f64>>(4)
                .map(|s| Duration::from_secs_f64(s.clamp(0.0, 1e9)))
        });
        let mut state = stats.health;
        let mut reasons = Vec::new();
        let failures = stats.consecutive_connect_failures;
        let last = last_connect_error
            .as_ref()
            .map_or_else(String::new, |e| format!(": {e}"));
        match stats.health {
            HealthState::Down => reasons.push(format!(
                "breaker open after {failures} connect failures{last}"
            )),
            HealthState::Degraded => {
                reasons.push(format!("{failures} connect failures in a row{last}"))
            }
            _ => {}
        }
        if let Some(limit) = config.degraded_waiters {
            if stats.waiting as usize > limit {
                reasons.push(format!(
                    "{} callers waiting (more than degraded_waiters = {limit})",
                    stats.waiting
                ));
            }
        }
        if let Some(e) = &error {
            if state != HealthState::Down {
                reasons.push(format!("health check failed: {e}"));
            }
        }
        if state == HealthState::Healthy && !reasons.is_empty() {
            state = HealthState::Degraded;
        }
        Health {
            name: name.to_owned(),
            ok,
            state,
            reasons,
            database,
            server_time,
            server_version,
            in_recovery,
            replica_lag,
            latency,
            max_size: stats.max_size,
            open: stats.open,
            idle: stats.idle,
            in_use: stats.in_use,
            waiting: stats.waiting,
            consecutive_connect_failures: failures,
            last_connect_error,
            error,
        }
    }

    /// A check that could not run at all (its thread panicked): not ok, degraded, `error`.
    pub(crate) fn failed(name: &str, error: Error) -> Health {
        Health {
            name: name.to_owned(),
            ok: false,
            state: HealthState::Degraded,
            reasons: vec![format!("health check failed: {error}")],
            database: String::new(),
            server_time: String::new(),
            server_version: String::new(),
            in_recovery: None,
            replica_lag: None,
            latency: Duration::ZERO,
            max_size: 0,
            open: 0,
            idle: 0,
            in_use: 0,
            waiting: 0,
            consecutive_connect_failures: 0,
            last_connect_error: None,
            error: Some(error),
        }
    }

    /// The check as one JSON object: the seeds' `/api/db/health` body (`ok`, `database`,
    /// `timestamp`, `poolSize`, `idleCount`, `waitingCount`) and the rest in the same style.
    ///
    /// ```
    /// # fn main() -> Result<(), pgpool::Error> {
    /// let pool = pgpool::Pool::builder()
    ///     .name("orders")
    ///     .health_timeout(std::time::Duration::from_millis(300))
    ///     .build("host=127.0.0.1 port=1 user=nobody connect_timeout=1")?;
    /// let json = pool.health().to_json();
    /// assert!(json.starts_with(r#"{"ok":false,"pool":"orders","state":"#));
    /// # Ok(()) }
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        let _ = write!(
            out,
            "{{\"ok\":{},\"pool\":{},\"state\":{},\"reasons\":[",
            self.ok,
            json_str(&self.name),
            json_str(state_name(self.state))
        );
        for (i, r) in self.reasons.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_str(r));
        }
        let _ = write!(
            out,
            "],\"database\":{},\"timestamp\":{},\"serverVersion\":{},\"inRecovery\":{},\
             \"replicaLagMs\":{},\"latencyMs\":{:.3},\"maxSize\":{},\"poolSize\":{},\
             \"idleCount\":{},\"inUseCount\":{},\"waitingCount\":{},\"consecutiveConnectFailures\":{},\"lastConnectError\":{},\
             \"error\":{}}}",
            json_str(&self.database),
            json_str(&self.server_time),
            json_str(&self.server_version),
            self.in_recovery
                .map_or_else(|| "null".to_owned(), |b| b.to_string()),
            self.replica_lag.map_or_else(
                || "null".to_owned(),
                |d| format!("{:.3}", d.as_secs_f64() * 1e3)
            ),
            self.latency.as_secs_f64() * 1e3,
            self.max_size,
            self.open,
            self.idle,
            self.in_use,
            self.waiting,
            self.consecutive_connect_failures,
            json_opt(self.last_connect_error.as_ref()),
            json_opt(self.error.as_ref()),
        );
        out
    }
}

/// `"healthy"`, `"degraded"` or `"down"`.
pub(crate) fn state_name(state: HealthState) -> &'static str {
    match state {
        HealthState::Down => "down",
        HealthState::Degraded => "degraded",
        _ => "healthy",
    }
}

fn json_opt(e: Option<&Error>) -> String {
    e.map_or_else(|| "null".to_owned(), |e| json_str(&e.to_string()))
}

/// `s` as a JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_above_the_threshold_degrade_a_healthy_pool() {
        let config = Config {
            degraded_waiters: Some(2),
            ..Config::default()
        };
        let stats = Stats {
            waiting: 3,
            ..Stats::default()
        };
        let h = Health::assess(
            "p",
            &config,
            &stats,
            Err(Error::closed()),
            Duration::ZERO,
            None,
        );
        assert_eq!(h.state, HealthState::Degraded);
        assert_eq!(h.reasons.len(), 2, "{:?}", h.reasons);
        assert!(
            h.reasons[0].contains("3 callers waiting"),
            "{:?}",
            h.reasons
        );
        let json = h.to_json();
        assert!(json.contains("\"state\":\"degraded\""), "{json}");
        assert!(json.contains("\"waitingCount\":3"), "{json}");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
    }
}
