//! The operator commands as child processes against the shared test server: `health` (one
//! line, JSON, exit codes), `bench` (table, JSON, sweep), `stats --watch`, and `metrics` (the
//! Prometheus text, the health JSON, the status page in headless Chromium, SIGTERM).
//!
//! Every child is killed when its test ends, pass or fail; every wait has a deadline.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pgpool");

/// The program without a database URL, and without the test-only variables in its
/// environment (a `PGPOOL_*` name that is no pool option is refused by the pool).
fn pgpool() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DATABASE_URL")
        .env_remove("PGPOOL_REQUIRE_CHROMIUM")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run pgpool");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// `url` with `key=value` added to its query string.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A child process killed (and reaped) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl Running {
    /// Waits up to `limit` for the exit.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
    }
}

/// Waits up to `limit` for `cond`, checking every 50 ms.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn connect(url: &str) -> postgres::Client {
    let mut config: postgres::Config = url.parse().expect("URL parses");
    config.connect_timeout(Duration::from_secs(10));
    config.connect(postgres::NoTls).expect("connect")
}

/// Sessions on the server with this application_name.
fn sessions(url: &str, application_name: &str) -> i64 {
    connect(url)
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&application_name],
        )
        .expect("count sessions")
        .get(0)
}

/// An application_name no other test uses.
fn unique_name(what: &str) -> String {
    format!("pgpool-test-{what}-{}", std::process::id())
}

// ---------------------------------------------------------------------------------------
// health

#[test]
fn health_prints_one_line_and_exits_0_when_healthy() {
    let (out, stdout, stderr) = run(pgpool().args(["health", &common::url()]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let line = stdout.trim_end();
    assert!(line.starts_with("healthy "), "{line}");
    for needle in [
        "db=postgres",
        "version=",
        "latency=",
        "open=1",
        "idle=1",
        "in_use=0",
        "waiting=0",
        "pool=default",
    ] {
        assert!(line.contains(needle), "missing {needle} in {line}");
    }
}

#[test]
fn health_json_is_the_health_body() {
    let url = with_param(&common::url(), "pool_name=checkout");
    let (out, stdout, stderr) = run(pgpool().args(["health", "--json", &url]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v = json(&stdout);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["state"], "healthy", "{v}");
    assert_eq!(v["database"], "postgres", "{v}");
    assert_eq!(v["pool"], "checkout", "{v}");
    assert!(
        v["serverVersion"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert!(
        v["timestamp"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert!(v["latencyMs"].as_f64().is_some_and(|ms| ms > 0.0), "{v}");
    assert_eq!(v["poolSize"], 1, "{v}");
    assert_eq!(v["idleCount"], 1, "{v}");
    assert_eq!(v["waitingCount"], 0, "{v}");
    assert_eq!(v["reasons"], serde_json::json!([]), "{v}");
    assert_eq!(v["inRecovery"], false, "{v}");
    assert_eq!(v["replicaLagMs"], Value::Null, "{v}");
}

#[test]
fn health_on_a_standby_says_so_with_its_lag() {
    let primary = pgpool_testkit::TempCluster::start().unwrap();
    let standby = primary.start_standby().unwrap();
    primary
        .wait_replayed(&standby, Duration::from_secs(20))
        .unwrap();
    let (out, stdout, stderr) = run(pgpool().args(["health", &standby.url()]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(" role=standby lag=0."), "{stdout}");
    let (_, stdout, _) = run(pgpool().args(["health", "--json", &standby.url()]));
    let v = json(&stdout);
    assert_eq!(v["inRecovery"], true, "{v}");
    assert!(
        v["replicaLagMs"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{v}"
    );
    let (_, stdout, _) = run(pgpool().args(["health", &primary.url()]));
    assert!(!stdout.contains("role="), "{stdout}");
}

#[test]
fn health_reads_database_url_from_the_environment() {
    let (out, stdout, stderr) = run(pgpool().env("DATABASE_URL", common::url()).arg("health"));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("healthy "), "{stdout}");
    assert!(!stderr.contains("throwaway"), "{stderr}");
}

#[test]
fn health_of_a_closed_port_is_down_with_exit_2() {
    let url = format!(
        "postgres://postgres:secret@127.0.0.1:{}/postgres",
        closed_port()
    );
    let start = Instant::now();
    let (out, stdout, stderr) = run(pgpool().args(["health", &url, "--timeout", "2s"]));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let line = stdout.trim_end();
    assert!(line.starts_with("down "), "{line}");
    assert!(line.contains("error=\""), "{line}");
    assert!(
        line.contains("refused") || line.contains("connect"),
        "no reason in {line}"
    );
    assert!(!stdout.contains("secret") && !stderr.contains("secret"));

    let (out, stdout, stderr) = run(pgpool().args(["health", "--json", &url]));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let v = json(&stdout);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["poolSize"], 0, "{v}");
    assert!(
        v["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "no reasons: {v}"
    );
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        vec!["health", "--bogus"],
        vec!["health", "not a url"],
        vec!["bench", "--threads", "0"],
        vec!["bench", "--sweep", "8..2"],
        vec!["stats", "--interval", "soon"],
        vec!["metrics", "--listen", "nowhere"],
    ] {
        let (out, stdout, stderr) = run(pgpool().args(&args));
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stdout}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.is_empty(), "{args:?}: no message");
    }
}

#[test]
fn help_documents_every_command_and_the_exit_codes() {
    let (out, stdout, _) = run(pgpool().arg("--help"));
    assert!(out.status.success());
    for cmd in [
        "health",
        "stats",
        "bench",
        "metrics",
        "demo",
        "temp-cluster",
    ] {
        assert!(stdout.contains(cmd), "missing {cmd} in:\n{stdout}");
    }
    assert!(
        stdout.contains("Exit codes") && stdout.contains("64"),
        "{stdout}"
    );
    for (cmd, flags) in [
        ("health", &["--json", "--timeout", "--name"][..]),
        (
            "stats",
            &[
                "--watch",
                "--json",
                "--interval",
                "--duration",
                "--workload",
            ],
        ),
        (
            "bench",
            &[
                "--threads",
                "--pool-size",
                "--duration",
                "--query",
                "--json",
                "--sweep",
                "--spindles",
            ],
        ),
        ("metrics", &["--listen", "--workload", "--close-timeout"]),
    ] {
        let (out, stdout, _) = run(pgpool().args([cmd, "--help"]));
        assert!(out.status.success(), "{cmd} --help");
        for flag in flags {
            assert!(stdout.contains(flag), "{cmd}: missing {flag} in:\n{stdout}");
        }
        assert!(stdout.contains("Exit codes"), "{cmd}: {stdout}");
    }
}

// ---------------------------------------------------------------------------------------
// bench

#[test]
fn bench_json_reports_queries_and_latencies() {
    let (out, stdout, stderr) = run(pgpool().args([
        "bench",
        &common::url(),
        "--duration",
        "1s",
        "--threads",
        "3",
        "--pool-size",
        "2",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v = json(&stdout);
    assert!(v["queries"].as_u64().is_some_and(|n| n > 0), "{v}");
    assert!(v["queries_per_s"].as_f64().is_some_and(|n| n > 0.0), "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["pool_size"], 2, "{v}");
    assert_eq!(v["threads"], 3, "{v}");
    for h in ["acquire_us", "query_us", "total_us"] {
        let p50 = v[h]["p50"].as_u64().expect("p50");
        let p99 = v[h]["p99"].as_u64().expect("p99");
        assert!(p50 >= 1 && p99 >= p50, "{h}: {v}");
    }
    // stderr is no terminal: no progress bar.
    assert!(!stderr.contains('\r'), "{stderr:?}");
}

#[test]
fn bench_prints_a_table() {
    let (out, stdout, stderr) = run(pgpool().args([
        "bench",
        &common::url(),
        "--duration",
        "300ms",
        "--threads",
        "2",
        "--query",
        "SELECT 2",
    ]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("query: SELECT 2"), "{stdout}");
    for row in [
        "queries/s",
        "errors",
        "acquire p50",
        "acquire p99",
        "query p50",
        "query p99",
    ] {
        assert!(stdout.contains(row), "missing {row} in:\n{stdout}");
    }
}

#[test]
fn bench_with_a_failing_query_exits_1_with_the_server_error() {
    let (out, stdout, stderr) = run(pgpool().args([
        "bench",
        &common::url(),
        "--duration",
        "200ms",
        "--query",
        "SELEC 1",
    ]));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.starts_with("pgpool: error: "), "{stderr}");
    assert!(stderr.contains("syntax error"), "{stderr}");
}

#[test]
fn bench_sweep_plots_and_recommends_a_size() {
    let (out, stdout, stderr) = run(pgpool().args([
        "bench",
        &common::url(),
        "--sweep",
        "1,2,4",
        "--duration",
        "300ms",
        "--threads",
        "4",
    ]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // One plot row per size, with bars.
    for size in ["1", "2", "4"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{size} │")) && l.contains('█')),
            "no row for size {size} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("queries/s") && stdout.contains("p99"),
        "{stdout}"
    );
    let rec = stdout
        .lines()
        .find_map(|l| l.strip_prefix("recommended max_size: "))
        .unwrap_or_else(|| panic!("no recommendation in:\n{stdout}"));
    let size: u32 = rec.split_whitespace().next().unwrap().parse().unwrap();
    assert!([1, 2, 4].contains(&size), "{rec}");
    assert!(stdout.contains("← recommended"), "{stdout}");
    assert!(
        stdout.contains("rule of thumb: cores × 2 + spindles = "),
        "{stdout}"
    );
}

#[test]
fn bench_sweep_json_names_the_recommendation_and_the_rule_of_thumb() {
    let (out, stdout, stderr) = run(pgpool().args([
        "bench",
        &common::url(),
        "--sweep",
        "1..2",
        "--duration",
        "200ms",
        "--spindles",
        "3",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v = json(&stdout);
    let sweep = v["sweep"].as_array().expect("sweep array");
    assert_eq!(sweep.len(), 2, "{v}");
    assert!(sweep.iter().all(|r| r["queries"].as_u64() > Some(0)), "{v}");
    let rec = v["recommended_size"].as_u64().expect("recommended_size");
    assert!(rec == 1 || rec == 2, "{v}");
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(v["rule_of_thumb"]["spindles"], 3, "{v}");
    assert_eq!(v["rule_of_thumb"]["size"], cores * 2 + 3, "{v}");
}

// ---------------------------------------------------------------------------------------
// stats

#[test]
fn stats_watch_json_prints_a_line_per_interval_with_growing_counters() {
    let start = Instant::now();
    let (out, stdout, stderr) = run(pgpool().args([
        "stats",
        &common::url(),
        "--watch",
        "--json",
        "--duration",
        "2s",
        "--interval",
        "500ms",
        "--workload",
        "3,2",
    ]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let lines: Vec<Value> = stdout.lines().map(json).collect();
    assert!(lines.len() >= 2, "{stdout}");
    assert!(lines.len() <= 4, "{stdout}");
    let acquires: Vec<u64> = lines
        .iter()
        .map(|v| v["acquires"].as_u64().expect("acquires"))
        .collect();
    assert!(acquires.windows(2).all(|w| w[1] > w[0]), "{acquires:?}");
    let last = lines.last().unwrap();
    assert_eq!(last["max_size"], 2, "{last}");
    assert_eq!(last["open"], 2, "{last}");
    assert_eq!(last["health"], "healthy", "{last}");
    assert_eq!(last["workload"]["threads"], 3, "{last}");
    assert!(last["workload"]["queries"].as_u64() > Some(0), "{last}");
    let h = &last["histograms"];
    for name in ["acquire_wait", "query_time", "hold_time", "connect_time"] {
        for q in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
            assert!(h[name][q].as_f64().is_some(), "{name}.{q}: {last}");
        }
    }
    assert_eq!(h["connect_time"]["count"], 2, "{last}");
    let queries = |v: &Value| v["histograms"]["query_time"]["count"].as_u64().unwrap();
    assert!(queries(last) > queries(&lines[0]), "{stdout}");
    assert!(h["hold_time"]["p99_ms"].as_f64() > Some(0.0), "{last}");
}

#[test]
fn stats_without_watch_prints_one_snapshot() {
    let (out, stdout, stderr) = run(pgpool().args([
        "stats",
        &common::url(),
        "--interval",
        "300ms",
        "--workload",
        "2,1",
    ]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v = json(&stdout);
    assert_eq!(v["max_size"], 1, "{v}");
    assert!(v["acquires"].as_u64() > Some(0), "{v}");
}

#[test]
fn stats_watch_ends_at_sigint_with_exit_0() {
    let child = pgpool()
        .args([
            "stats",
            &common::url(),
            "--watch",
            "--json",
            "--duration",
            "60s",
            "--interval",
            "200ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut child = Running(child);
    // Keep the reader (and so the pipe) alive: a closed stdout would fail the next write.
    let (_lines, first) = first_line(&mut child.0, Duration::from_secs(30));
    json(&first);
    child.signal("INT");
    let status = child.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status}");
}

// ---------------------------------------------------------------------------------------
// metrics

/// Reads the child's first stdout line within `limit`; the reader thread keeps draining the
/// rest (returned) so the child never blocks on a full pipe.
fn first_line(child: &mut Child, limit: Duration) -> (mpsc::Receiver<String>, String) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no line on stdout within {limit:?}"));
    (rx, line)
}

/// A metrics server started for one test, killed at the end.
struct MetricsServer {
    child: Running,
    addr: String,
    /// The rest of its stdout, read on (so the pipe stays open).
    _lines: mpsc::Receiver<String>,
}

fn start_metrics(url: &str, extra: &[&str]) -> MetricsServer {
    let child = pgpool()
        .args(["metrics", "--listen", "127.0.0.1:0", url])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn pgpool metrics");
    let mut child = Running(child);
    let (lines, line) = first_line(&mut child.0, Duration::from_secs(60));
    let addr = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    MetricsServer {
        child,
        addr,
        _lines: lines,
    }
}

/// One HTTP GET: status, the Content-Type header, body.
fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics server");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

#[test]
fn metrics_serves_prometheus_health_and_stats_and_stops_on_sigterm() {
    let app = unique_name("metrics");
    let url = with_param(
        &common::url(),
        &format!("application_name={app}&pool_min_idle=2"),
    );
    let mut server = start_metrics(&url, &["--name", "orders", "--workload", "3,2"]);
    let addr = server.addr.clone();

    let (status, content_type, body) = get(&addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(body.contains("# TYPE pgpool_connections"), "{body}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("pgpool_connections") && l.contains("pool=\"orders\"")),
        "{body}"
    );

    let (status, content_type, body) = get(&addr, "/health");
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let v = json(&body);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["pool"], "orders", "{v}");

    // The workload runs: the acquires counter grows between two snapshots.
    let acquires = |addr: &str| {
        json(&get(addr, "/stats.json").2)["acquires"]
            .as_u64()
            .unwrap()
    };
    let before = acquires(&addr);
    assert!(
        eventually(Duration::from_secs(10), || acquires(&addr) > before),
        "no acquires after {before}"
    );
    assert!(eventually(Duration::from_secs(10), || sessions(
        &common::url(),
        &app
    ) == 2));

    let (status, _, _) = get(&addr, "/nowhere");
    assert_eq!(status, 404);

    let start = Instant::now();
    server.child.signal("TERM");
    let status = server.child.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    // Every session closed; the port no longer accepts connections.
    assert!(
        eventually(Duration::from_secs(10), || sessions(&common::url(), &app)
            == 0),
        "sessions left open"
    );
    assert!(TcpStream::connect(&addr).is_err(), "{addr} still listening");
}

#[test]
fn metrics_health_is_503_when_the_server_is_down() {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", closed_port());
    let server = start_metrics(&url, &["--close-timeout", "1s"]);
    let (status, _, body) = get(&server.addr, "/health");
    assert_eq!(status, 503, "{body}");
    assert_eq!(json(&body)["ok"], false, "{body}");
    let (status, _, body) = get(&server.addr, "/metrics");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn metrics_status_page_is_self_contained() {
    let server = start_metrics(&common::url(), &[]);
    let (status, content_type, page) = get(&server.addr, "/");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        page.contains("<style>") && page.contains("<script>"),
        "{page}"
    );
    // No external assets: nothing loaded from another origin.
    for needle in ["src=\"http", "href=\"http", "@import", "<link"] {
        assert!(
            !page.contains(needle),
            "external asset ({needle}) in the page"
        );
    }
    assert!(
        page.contains("/stats.json") && page.contains("setInterval"),
        "{page}"
    );
}

/// The text of the element with `id` in `dom` (`<span id="open">2</span>` → `2`).
fn element_text<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let rest = &dom[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')? + start;
    Some(rest[start..end].trim())
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

#[test]
fn metrics_status_page_shows_the_pool_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("PGPOOL_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("PGPOOL_REQUIRE_CHROMIUM=1 but no chromium on PATH");
        }
        eprintln!("skipped: no chromium");
        return;
    };
    let app = unique_name("page");
    let url = with_param(
        &common::url(),
        // No reaper tick during the test: it would top `min_idle` up while the page's health
        // check holds a connection, and the counts below would race with it.
        &format!("application_name={app}&pool_min_idle=2&pool_name=page&pool_reaper_interval=1h"),
    );
    let server = start_metrics(&url, &[]);
    assert!(
        eventually(Duration::from_secs(10), || sessions(&common::url(), &app)
            == 2),
        "the pool did not open its 2 connections"
    );
    let profile = std::env::temp_dir().join(format!("pgpool-chromium-{}", std::process::id()));
    let child = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("http://{}/", server.addr),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromium");
    let mut browser = Running(child);
    let mut stdout = browser.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        let _ = tx.send(dom);
    });
    let dom = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("chromium printed the DOM within 90 s");
    drop(browser);
    let _ = std::fs::remove_dir_all(&profile);

    assert_eq!(element_text(&dom, "pool"), Some("page"), "{dom}");
    assert!(
        dom.contains("id=\"state\" class=\"badge healthy\">healthy<"),
        "{dom}"
    );
    // The open count the page shows is what the server sees.
    let open = element_text(&dom, "open").expect("an open count");
    assert_eq!(open, sessions(&common::url(), &app).to_string(), "{dom}");
    assert_eq!(element_text(&dom, "idle"), Some("2"), "{dom}");
    assert_eq!(element_text(&dom, "waiting"), Some("0"), "{dom}");
    assert!(
        element_text(&dom, "server").is_some_and(|s| s.contains("PostgreSQL")),
        "{dom}"
    );
    // The latency table: a row per histogram, the two connects among them.
    for name in ["acquire wait", "query time", "hold time"] {
        assert!(
            dom.contains(&format!("<td>{name}</td>")),
            "no {name} row: {dom}"
        );
    }
    assert!(dom.contains("<td>connect time</td><td>2</td>"), "{dom}");
    let refreshes: u32 = element_text(&dom, "refreshes")
        .and_then(|s| s.parse().ok())
        .expect("a refresh count");
    assert!(
        refreshes >= 2,
        "the page did not refresh itself: {refreshes}"
    );
}

// ---------------------------------------------------------------------------------------
// signals, terminals, the throwaway cluster

#[test]
fn bench_cut_short_by_sigint_prints_its_results_and_exits_130() {
    let child = pgpool()
        .args(["bench", &common::url(), "--duration", "60s"])
        .args(["--threads", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut child = Running(child);
    // Let it run a little (the pool opens its connections first).
    std::thread::sleep(Duration::from_millis(1500));
    child.signal("INT");
    let status = child.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{status}");
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let v = json(&stdout);
    assert_eq!(v["interrupted"], true, "{v}");
    assert!(v["duration_s"].as_f64() < Some(30.0), "{v}");
}

#[test]
fn health_without_a_url_checks_a_throwaway_cluster() {
    let (out, stdout, stderr) = run(pgpool().args(["health", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("throwaway PostgreSQL"), "{stderr}");
    let v = json(&stdout);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["state"], "healthy", "{v}");
}

/// Runs `args` under `script`, which gives the program a terminal; `None` without `script`.
fn on_a_terminal(args: &[&str]) -> Option<(bool, String)> {
    let quoted: Vec<String> = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let out = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env_remove("DATABASE_URL")
        .env_remove("PGPOOL_REQUIRE_CHROMIUM")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[test]
fn on_a_terminal_stats_redraws_a_view_and_bench_draws_a_progress_bar() {
    let url = common::url();
    let Some((ok, screen)) = on_a_terminal(&[
        "stats",
        &url,
        "--watch",
        "--duration",
        "1s",
        "--interval",
        "250ms",
    ]) else {
        eprintln!("skipped: no `script` to provide a terminal");
        return;
    };
    assert!(ok, "{screen}");
    assert!(screen.matches("\x1b[H\x1b[2J").count() >= 2, "{screen:?}");
    for needle in [
        "connections  open",
        "callers      waiting",
        "acquire wait",
        "p99",
    ] {
        assert!(screen.contains(needle), "missing {needle} in:\n{screen}");
    }

    let (ok, screen) =
        on_a_terminal(&["bench", &url, "--duration", "1s", "--threads", "2"]).expect("script");
    assert!(ok, "{screen}");
    assert!(screen.contains("q/s") && screen.contains('█'), "{screen:?}");
    assert!(screen.contains("queries/s"), "{screen}");
}
