//! One pool's stats as JSON (for `stats --json` and `/stats.json`) and as a compact terminal
//! view (for `stats --watch`).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Map, Value};

use pgpool::{CloseReason, Histogram, Stats};

use crate::util::{fmt_duration, millis_f64};
use crate::workload::Workload;

/// The stats snapshot as one JSON object. Durations are in milliseconds (`*_ms`).
pub(crate) fn json(
    pool: &str,
    stats: &Stats,
    elapsed: Duration,
    workload: Option<&Workload>,
) -> Value {
    let closed: Map<String, Value> = CloseReason::ALL
        .iter()
        .map(|&r| (r.as_str().to_string(), json!(stats.closed(r))))
        .collect();
    let mut value = json!({
        "pool": pool,
        "elapsed_s": (elapsed.as_secs_f64() * 1e3).round() / 1e3,
        "health": stats.health.as_str(),
        "max_size": stats.max_size,
        "open": stats.open,
        "idle": stats.idle,
        "in_use": stats.in_use,
        "checking": stats.checking,
        "pending": stats.pending,
        "closing": stats.closing,
        "waiting": stats.waiting,
        "acquires": stats.acquires,
        "wait_count": stats.wait_count,
        "wait_ms": millis_f64(stats.wait_duration),
        "acquire_timeouts": stats.acquire_timeouts,
        "overloaded": stats.overloaded,
        "connections_created": stats.connections_created,
        "connect_errors": stats.connect_errors,
        "consecutive_connect_failures": stats.consecutive_connect_failures,
        "validations": stats.validations,
        "leaks_suspected": stats.leaks_suspected,
        "closed": closed,
        "histograms": histograms_json(stats),
    });
    if let (Some(w), Some(obj)) = (workload, value.as_object_mut()) {
        obj.insert(
            "workload".into(),
            json!({ "threads": w.threads(), "queries": w.queries(), "errors": w.errors() }),
        );
    }
    value
}

/// The pool's latency histograms by name: acquire wait, query, hold and connect time.
pub(crate) fn histograms(stats: &Stats) -> [(&'static str, &Histogram); 4] {
    [
        ("acquire_wait", &stats.acquire_wait),
        ("query_time", &stats.query_time),
        ("hold_time", &stats.hold_time),
        ("connect_time", &stats.connect_time),
    ]
}

/// The latency histograms by name, each `{count, mean_ms, p50_ms, p90_ms, p99_ms, max_ms}`.
fn histograms_json(stats: &Stats) -> Value {
    let map: Map<String, Value> = histograms(stats)
        .into_iter()
        .map(|(name, h)| {
            let value = json!({
                "count": h.count(),
                "mean_ms": millis_f64(h.mean()),
                "p50_ms": millis_f64(h.p50()),
                "p90_ms": millis_f64(h.p90()),
                "p99_ms": millis_f64(h.p99()),
                "max_ms": millis_f64(h.max()),
            });
            (name.to_string(), value)
        })
        .collect();
    Value::Object(map)
}

/// The histogram rows of a text report: a header, then name, count, p50, p90, p99, max.
pub(crate) fn histogram_rows(stats: &Stats) -> Vec<String> {
    let mut rows = vec![format!(
        "  {:<14} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "latency", "count", "p50", "p90", "p99", "max"
    )];
    for (name, h) in histograms(stats) {
        rows.push(format!(
            "  {:<14} {:>9} {:>10} {:>10} {:>10} {:>10}",
            name.replace('_', " "),
            h.count(),
            fmt_duration(h.p50()),
            fmt_duration(h.p90()),
            fmt_duration(h.p99()),
            fmt_duration(h.max()),
        ));
    }
    rows
}

/// The compact terminal view, a dozen lines.
pub(crate) fn view(
    pool: &str,
    stats: &Stats,
    elapsed: Duration,
    workload: Option<&Workload>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pgpool stats  pool={pool}  health={}  {:.1} s",
        stats.health.as_str(),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  connections  open {}/{}  idle {}  in use {}  checking {}  pending {}  closing {}",
        stats.open,
        stats.max_size,
        stats.idle,
        stats.in_use,
        stats.checking,
        stats.pending,
        stats.closing
    );
    let _ = writeln!(
        out,
        "  callers      waiting {}  acquires {}  waited {} ({} total)  timeouts {}  refused {}",
        stats.waiting,
        stats.acquires,
        stats.wait_count,
        fmt_duration(stats.wait_duration),
        stats.acquire_timeouts,
        stats.overloaded
    );
    let _ = writeln!(
        out,
        "  connects     created {}  errors {} ({} in a row)  closed {}  leaks {}",
        stats.connections_created,
        stats.connect_errors,
        stats.consecutive_connect_failures,
        stats.closed_total(),
        stats.leaks_suspected
    );
    if let Some(w) = workload {
        let _ = writeln!(
            out,
            "  workload     {} threads  queries {}  errors {}",
            w.threads(),
            w.queries(),
            w.errors()
        );
    }
    for row in histogram_rows(stats) {
        let _ = writeln!(out, "{row}");
    }
    out
}
