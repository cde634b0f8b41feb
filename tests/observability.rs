//! What operators see, against a real server: latency histograms, the Prometheus text, the
//! health check with its reasons and JSON, statement log lines (redacted, slow ones at warn
//! level) and the periodic stats line.

mod common;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use pgpool::{HealthState, Pool};

/// Log records of this test binary (target, level, text).
static RECORDS: Mutex<Vec<(String, log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "pgpool" || m.target().starts_with("pgpool::")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            RECORDS
                .lock()
                .unwrap()
                .push((r.target().to_owned(), r.level(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
}

/// Records whose text contains `marker`.
fn records_with(marker: &str) -> Vec<(String, log::Level, String)> {
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, text)| text.contains(marker))
        .cloned()
        .collect()
}

fn pool(name: &str) -> pgpool::Builder {
    Pool::builder()
        .name(name)
        .application_name(common::app_name(name))
        .env(false)
}

#[test]
fn histograms_count_every_acquire_query_hold_and_connect() {
    let pool = pool("histograms")
        .max_size(2)
        .build(&common::url())
        .unwrap();
    for i in 0..50 {
        let mut conn = pool.get().unwrap();
        let row = conn.query_one("SELECT $1::int4 + 1", &[&i]).unwrap();
        assert_eq!(row.get::<_, i32>(0), i + 1);
    }
    {
        let mut conn = pool.get().unwrap();
        conn.batch_execute("SELECT pg_sleep(0.05)").unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.acquire_wait.count(), s.acquires, "{s:?}");
    assert_eq!(s.hold_time.count(), 51);
    assert_eq!(s.query_time.count(), 51);
    assert_eq!(s.connect_time.count(), s.connections_created);
    for h in [
        &s.acquire_wait,
        &s.query_time,
        &s.hold_time,
        &s.connect_time,
    ] {
        assert!(
            h.p50() <= h.p90() && h.p90() <= h.p99() && h.p99() <= h.max(),
            "{h:?}"
        );
    }
    // The sleep is the slowest statement and the longest hold; a connect takes real time.
    assert!(
        s.query_time.max() >= Duration::from_millis(50),
        "{:?}",
        s.query_time
    );
    assert!(
        s.query_time.p50() < Duration::from_millis(50),
        "{:?}",
        s.query_time
    );
    assert!(s.hold_time.max() >= s.query_time.max());
    assert!(s.connect_time.p50() > Duration::ZERO);
    assert!(s.query_time.sum() >= Duration::from_millis(50));
}

#[test]
fn histograms_can_be_switched_off() {
    let pool = pool("nohist")
        .max_size(1)
        .histograms(false)
        .build(&common::url())
        .unwrap();
    pool.get().unwrap().batch_execute("SELECT 1").unwrap();
    let s = pool.stats();
    assert_eq!(s.acquires, 1);
    for h in [
        &s.acquire_wait,
        &s.query_time,
        &s.hold_time,
        &s.connect_time,
    ] {
        assert_eq!(h.count(), 0);
    }
}

/// The value of the sample line `metric` (name with labels) in `text`.
fn sample(text: &str, metric: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(metric) && l[metric.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {metric} in\n{text}"));
    line[metric.len() + 1..].parse().unwrap()
}

#[test]
fn prometheus_text_matches_the_stats() {
    let pool = pool("prom").max_size(3).build(&common::url()).unwrap();
    for _ in 0..10 {
        pool.get().unwrap().execute("SELECT 1", &[]).unwrap();
    }
    pool.get().unwrap().discard();
    let text = pool.prometheus();
    let s = pool.stats();
    assert_eq!(s.hold_time.count(), 11, "a discarded checkout was held too");
    assert_eq!(
        sample(&text, "pgpool_acquires_total{pool=\"prom\"}"),
        s.acquires as f64
    );
    assert_eq!(sample(&text, "pgpool_max_connections{pool=\"prom\"}"), 3.0);
    assert_eq!(
        sample(
            &text,
            "pgpool_connections_closed_total{pool=\"prom\",reason=\"discarded\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "pgpool_health_state{pool=\"prom\",state=\"healthy\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "pgpool_query_duration_seconds_count{pool=\"prom\"}"),
        10.0
    );
    // Cumulative buckets end at the count.
    let mut last = 0.0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("pgpool_query_duration_seconds_bucket{pool=\"prom\""))
    {
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(v >= last, "{line}");
        last = v;
    }
    assert_eq!(last, 10.0);
    assert!(sample(&text, "pgpool_query_duration_seconds_sum{pool=\"prom\"}") > 0.0);
    // The last connect succeeded just now (Unix time); none failed, so no sample.
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let at = sample(
        &text,
        "pgpool_last_connect_success_timestamp_seconds{pool=\"prom\"}",
    );
    assert!((unix_now - at).abs() < 60.0, "{at} vs {unix_now}");
    assert!(!text.contains("pgpool_last_connect_failure_timestamp_seconds{"));
}

#[test]
fn health_reports_the_server_and_its_json_parses() {
    let pool = pool("healthy").build(&common::url()).unwrap();
    let h = pool.health();
    assert!(h.ok, "{:?}", h.error);
    assert_eq!(h.state, HealthState::Healthy);
    assert!(h.reasons.is_empty(), "{:?}", h.reasons);
    let json: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["pool"], "healthy");
    assert_eq!(json["state"], "healthy");
    assert_eq!(json["database"], h.database.as_str());
    assert_eq!(json["poolSize"], h.open);
    assert_eq!(json["idleCount"], h.idle);
    assert_eq!(json["waitingCount"], 0);
    assert!(json["error"].is_null());
    // ISO 8601 in UTC, as the seeds' body has it: 2026-12-01T08:24:00.000Z.
    let ts = json["timestamp"].as_str().unwrap();
    assert_eq!((ts.len(), &ts[10..11], &ts[23..]), (24, "T", "Z"), "{ts}");
    assert!(json["serverVersion"]
        .as_str()
        .unwrap()
        .chars()
        .next()
        .unwrap()
        .is_ascii_digit());
}

#[test]
fn health_is_degraded_while_too_many_callers_wait() {
    let pool = pool("crowded")
        .max_size(1)
        .degraded_waiters(Some(1))
        .health_timeout(Duration::from_millis(300))
        .build(&common::url())
        .unwrap();
    let held = pool.get().unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || pool.get_timeout(Duration::from_secs(3)).map(drop))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    while pool.stats().waiting < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let h = pool.health();
    assert_eq!(h.state, HealthState::Degraded, "{:?}", h.reasons);
    assert!(
        h.reasons.iter().any(|r| r.contains("callers waiting")),
        "{:?}",
        h.reasons
    );
    let json: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
    assert_eq!(json["state"], "degraded");
    assert!(!json["reasons"].as_array().unwrap().is_empty());
    drop(held);
    for w in waiters {
        w.join().unwrap().unwrap();
    }
}

#[test]
fn health_of_an_unreachable_server_says_why() {
    let pool = pool("gone")
        .health_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(300))
        .build("host=127.0.0.1 port=1 user=nobody")
        .unwrap();
    let h = pool.health();
    assert!(!h.ok);
    assert_ne!(h.state, HealthState::Healthy);
    assert!(!h.reasons.is_empty());
    let json: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
    assert_eq!(json["ok"], false);
    assert!(json["error"].as_str().is_some());
}

#[test]
fn statements_are_logged_redacted_and_slow_ones_warned() {
    capture_logs();
    let pool = pool("qlog")
        .max_size(1)
        .slow_query_threshold(Some(Duration::from_millis(30)))
        .build(&common::url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    conn.query_one("SELECT 'qlog-fast-secret'::text, $1::int4", &[&7])
        .unwrap();
    conn.batch_execute("SELECT pg_sleep(0.06), 'qlog-slow-secret'")
        .unwrap();
    drop(conn);
    let all: Vec<_> = records_with("pool qlog:");
    assert!(
        all.iter()
            .all(|(target, _, text)| target == "pgpool::query" && !text.contains("secret")),
        "{all:?}"
    );
    let fast: Vec<_> = all
        .iter()
        .filter(|(_, l, t)| *l == log::Level::Debug && t.contains("SELECT ?::text, $1::int4"))
        .collect();
    assert_eq!(fast.len(), 1, "{all:?}");
    assert!(fast[0].2.contains("rows=1 params=1"), "{fast:?}");
    let slow: Vec<_> = all
        .iter()
        .filter(|(_, l, t)| *l == log::Level::Warn && t.contains("slow query"))
        .collect();
    assert_eq!(slow.len(), 1, "{all:?}");
    assert!(slow[0].2.contains("SELECT pg_sleep(?), ?"), "{slow:?}");
}

#[test]
fn the_stats_line_is_logged_at_its_interval() {
    capture_logs();
    let pool = pool("statsline")
        .max_size(2)
        .stats_log_interval(Some(Duration::from_millis(100)))
        .build(&common::url())
        .unwrap();
    pool.get().unwrap().execute("SELECT 1", &[]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        lines = records_with("pool statsline:");
        if lines.len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lines.len() >= 2, "{lines:?}");
    let (target, level, text) = &lines[lines.len() - 1];
    assert_eq!(
        (target.as_str(), *level),
        ("pgpool::stats", log::Level::Info)
    );
    assert!(text.contains("healthy, open 1/2"), "{text}");
    assert!(text.contains("acquires 1"), "{text}");
    assert!(text.contains("p99 acquire"), "{text}");
}

#[test]
fn statement_timeout_with_transaction_pooling_is_warned_about_at_build() {
    capture_logs();
    let _pool = pool("txpool")
        .transaction_pooling(true)
        .statement_timeout(Some(Duration::from_secs(5)))
        .build("host=127.0.0.1 port=1 user=nobody")
        .unwrap();
    let warned = RECORDS.lock().unwrap().iter().any(|(target, level, text)| {
        target == "pgpool"
            && *level == log::Level::Warn
            && text.contains("statement_timeout is sent in the startup packet")
    });
    assert!(warned, "no warning about statement_timeout behind a proxy");
}
