//! The Prometheus text exposition (format 0.0.4) of pools' [`Stats`]: every gauge, counter
//! and histogram, in base units (seconds), counters ending in `_total`, one block per metric
//! family with the pools as `pool` labels, close counters labelled by `reason`.
//!
//! | family | type | labels |
//! |---|---|---|
//! | `pgpool_connections` | gauge | `pool`, `state` (`in_use`, `idle`, `checking`, `pending`, `closing`) |
//! | `pgpool_max_connections` | gauge | `pool` |
//! | `pgpool_waiting_callers` | gauge | `pool` |
//! | `pgpool_connectors` | gauge | `pool` |
//! | `pgpool_health_state` | gauge (1 for the current state) | `pool`, `state` |
//! | `pgpool_consecutive_connect_failures` | gauge | `pool` |
//! | `pgpool_last_connect_success_timestamp_seconds`, `pgpool_last_connect_failure_timestamp_seconds` | gauge (Unix time; no sample before the first) | `pool` |
//! | `pgpool_acquires_total` | counter | `pool` |
//! | `pgpool_acquire_waits_total`, `pgpool_acquire_wait_seconds_total` | counter | `pool` |
//! | `pgpool_acquire_timeouts_total`, `pgpool_acquire_overloaded_total` | counter | `pool` |
//! | `pgpool_connections_created_total`, `pgpool_connect_errors_total` | counter | `pool` |
//! | `pgpool_validations_total`, `pgpool_leaks_suspected_total` | counter | `pool` |
//! | `pgpool_connections_closed_total` | counter | `pool`, `reason` |
//! | `pgpool_acquire_duration_seconds`, `pgpool_connect_duration_seconds`, `pgpool_query_duration_seconds`, `pgpool_hold_duration_seconds` | histogram | `pool`, `le` |
//!
//! ```
//! # fn main() -> Result<(), pgpool::Error> {
//! let pool = pgpool::Pool::builder()
//!     .name("orders")
//!     .build("host=127.0.0.1 port=1 user=nobody")?;
//! let text = pool.prometheus();
//! assert!(text.contains("pgpool_max_connections{pool=\"orders\"} 10\n"));
//! assert!(text.contains("# TYPE pgpool_query_duration_seconds histogram\n"));
//! # Ok(()) }
//! ```

use std::fmt::Write;
use std::time::Duration;

use crate::event::CloseReason;
use crate::histogram::Histogram;
use crate::pool::breaker::HealthState;
use crate::stats::Stats;

/// The `le` bounds of every histogram, in seconds (`+Inf` follows).
pub const BUCKETS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 60.0,
];

/// The exposition of `pools` (name, stats), ready to serve as `text/plain; version=0.0.4`.
pub fn render(pools: &[(&str, &Stats)]) -> String {
    let mut out = String::with_capacity(4096 + pools.len() * 6144);
    let mut family =
        |name: &str, kind: &str, help: &str, each: &dyn Fn(&mut String, &str, &Stats)| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (pool, stats) in pools {
                each(&mut out, &escape(pool), stats);
            }
        };
    let gauge = |name: &'static str, value: fn(&Stats) -> u64| {
        move |out: &mut String, pool: &str, s: &Stats| {
            let _ = writeln!(out, "{name}{{pool=\"{pool}\"}} {}", value(s));
        }
    };

    family(
        "pgpool_connections",
        "gauge",
        "Connections by state: in use, idle, being checked, being opened, being closed.",
        &|out, pool, s| {
            for (state, n) in [
                ("in_use", s.in_use),
                ("idle", s.idle),
                ("checking", s.checking),
                ("pending", s.pending),
                ("closing", s.closing),
            ] {
                let _ = writeln!(
                    out,
                    "pgpool_connections{{pool=\"{pool}\",state=\"{state}\"}} {n}"
                );
            }
        },
    );
    family(
        "pgpool_max_connections",
        "gauge",
        "The configured maximum of open connections.",
        &gauge("pgpool_max_connections", |s| s.max_size.into()),
    );
    family(
        "pgpool_waiting_callers",
        "gauge",
        "Callers waiting for a connection.",
        &gauge("pgpool_waiting_callers", |s| s.waiting.into()),
    );
    family(
        "pgpool_connectors",
        "gauge",
        "Connector threads running.",
        &gauge("pgpool_connectors", |s| s.connectors.into()),
    );
    family(
        "pgpool_health_state",
        "gauge",
        "1 for the pool's current health state (healthy, degraded, down), 0 for the others.",
        &|out, pool, s| {
            for (state, name) in [
                (HealthState::Healthy, "healthy"),
                (HealthState::Degraded, "degraded"),
                (HealthState::Down, "down"),
            ] {
                let on = u8::from(s.health == state);
                let _ = writeln!(
                    out,
                    "pgpool_health_state{{pool=\"{pool}\",state=\"{name}\"}} {on}"
                );
            }
        },
    );
    family(
        "pgpool_consecutive_connect_failures",
        "gauge",
        "Connect attempts that failed in a row (0 after a success).",
        &gauge("pgpool_consecutive_connect_failures", |s| {
            s.consecutive_connect_failures.into()
        }),
    );
    // Unix times of the last connect outcomes (no sample before the first).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    for (name, help, since) in [
        (
            "pgpool_last_connect_success_timestamp_seconds",
            "Unix time of the last successful connect.",
            (|s| s.since_connect_success) as fn(&Stats) -> Option<Duration>,
        ),
        (
            "pgpool_last_connect_failure_timestamp_seconds",
            "Unix time of the last failed connect.",
            |s| s.since_connect_failure,
        ),
    ] {
        family(name, "gauge", help, &move |out, pool, s| {
            if let Some(ago) = since(s) {
                let at = now.saturating_sub(ago).as_secs_f64();
                let _ = writeln!(out, "{name}{{pool=\"{pool}\"}} {at:.3}");
            }
        });
    }
    for (name, help, value) in [
        (
            "pgpool_acquires_total",
            "Successful acquires.",
            (|s| s.acquires) as fn(&Stats) -> u64,
        ),
        (
            "pgpool_acquire_waits_total",
            "Acquires that had to wait.",
            |s| s.wait_count,
        ),
        (
            "pgpool_acquire_timeouts_total",
            "Acquires that timed out.",
            |s| s.acquire_timeouts,
        ),
        (
            "pgpool_acquire_overloaded_total",
            "Acquires refused because max_waiters callers were waiting.",
            |s| s.overloaded,
        ),
        (
            "pgpool_connections_created_total",
            "Connections opened.",
            |s| s.connections_created,
        ),
        (
            "pgpool_connect_errors_total",
            "Failed connection attempts.",
            |s| s.connect_errors,
        ),
        (
            "pgpool_validations_total",
            "Validation round trips before hand-out.",
            |s| s.validations,
        ),
        (
            "pgpool_leaks_suspected_total",
            "Checkouts held longer than leak_threshold.",
            |s| s.leaks_suspected,
        ),
    ] {
        family(name, "counter", help, &move |out, pool, s| {
            let _ = writeln!(out, "{name}{{pool=\"{pool}\"}} {}", value(s));
        });
    }
    family(
        "pgpool_acquire_wait_seconds_total",
        "counter",
        "Total time acquires spent waiting.",
        &|out, pool, s| {
            let _ = writeln!(
                out,
                "pgpool_acquire_wait_seconds_total{{pool=\"{pool}\"}} {}",
                seconds(s.wait_duration)
            );
        },
    );
    family(
        "pgpool_connections_closed_total",
        "counter",
        "Connections closed, by reason.",
        &|out, pool, s| {
            for reason in CloseReason::ALL {
                let _ = writeln!(
                    out,
                    "pgpool_connections_closed_total{{pool=\"{pool}\",reason=\"{}\"}} {}",
                    reason.as_str(),
                    s.closed(reason)
                );
            }
        },
    );
    for (name, help, pick) in [
        (
            "pgpool_acquire_duration_seconds",
            "Time from an acquire call to hand-out.",
            (|s| &s.acquire_wait) as fn(&Stats) -> &Histogram,
        ),
        (
            "pgpool_connect_duration_seconds",
            "Time each successful connect took.",
            |s| &s.connect_time,
        ),
        (
            "pgpool_query_duration_seconds",
            "Time of each statement callers ran.",
            |s| &s.query_time,
        ),
        (
            "pgpool_hold_duration_seconds",
            "How long each checkout was held.",
            |s| &s.hold_time,
        ),
    ] {
        family(name, "histogram", help, &move |out, pool, s| {
            histogram(out, name, pool, pick(s));
        });
    }
    out
}

fn histogram(out: &mut String, name: &str, pool: &str, h: &Histogram) {
    for le in BUCKETS {
        let n = h.count_at_most(Duration::from_secs_f64(le));
        let _ = writeln!(out, "{name}_bucket{{pool=\"{pool}\",le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{pool=\"{pool}\",le=\"+Inf\"}} {}",
        h.count()
    );
    let _ = writeln!(out, "{name}_sum{{pool=\"{pool}\"}} {}", seconds(h.sum()));
    let _ = writeln!(out, "{name}_count{{pool=\"{pool}\"}} {}", h.count());
}

/// Seconds as Prometheus prints floats (`0.000125`, `3`).
fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample line's family was declared just before, once; histograms are cumulative.
    #[test]
    fn exposition_is_well_formed() {
        let mut a = Stats {
            max_size: 4,
            acquires: 7,
            ..Stats::default()
        };
        a.closed_by_reason[CloseReason::Broken.index()] = 2;
        let b = Stats::default();
        let text = render(&[("a", &a), ("we\"ird", &b)]);
        let mut declared = std::collections::HashSet::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap().to_owned();
                assert!(declared.insert(name.clone()), "{name} declared twice");
                current = name;
            } else if !line.starts_with('#') {
                let metric = line.split(['{', ' ']).next().unwrap();
                let family = metric
                    .strip_suffix("_bucket")
                    .or_else(|| metric.strip_suffix("_sum"))
                    .or_else(|| metric.strip_suffix("_count"))
                    .filter(|f| *f == current)
                    .unwrap_or(metric);
                assert_eq!(family, current, "{line}");
            }
        }
        assert!(text.contains("pgpool_acquires_total{pool=\"a\"} 7\n"));
        assert!(text.contains("pgpool_connections_closed_total{pool=\"a\",reason=\"broken\"} 2\n"));
        assert!(text.contains("pgpool_max_connections{pool=\"we\\\"ird\"} 0\n"));
        assert!(text.contains("pgpool_query_duration_seconds_bucket{pool=\"a\",le=\"+Inf\"} 0\n"));
    }
}
