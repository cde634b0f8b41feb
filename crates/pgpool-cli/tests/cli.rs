//! The `pgpool` command-line program, run as a child process: `demo` against the shared test
//! server and against its own throwaway cluster, `temp-cluster`'s lifecycle, and clean
//! failures for bad input.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pgpool");

/// The program with no database URL in its environment.
fn pgpool() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DATABASE_URL")
        .env_remove("PGPOOL_REQUIRE_CHROMIUM");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let out = cmd.output().expect("run pgpool");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    (out, stdout, stderr)
}

/// The number in the first summary row named `label` (`  queries   1234`).
fn row_value(stdout: &str, label: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix(label)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no '{label}' row in:\n{stdout}"))
}

fn assert_summary(stdout: &str) {
    assert!(row_value(stdout, "queries ") > 0.0, "{stdout}");
    assert!(row_value(stdout, "queries/s") > 0.0, "{stdout}");
    for needle in [
        "acquire wait p50",
        "acquire wait p99",
        "acquire wait max",
        "wait_count",
        "connections created",
        "closed (by reason)",
        "connect errors",
        "New connection per query",
    ] {
        assert!(stdout.contains(needle), "missing '{needle}' in:\n{stdout}");
    }
    // The end: the pool's health JSON and its histogram lines.
    let health = stdout
        .lines()
        .find(|l| l.starts_with("{\"ok\":"))
        .unwrap_or_else(|| panic!("no health JSON in:\n{stdout}"));
    assert!(health.contains("\"state\":\"healthy\""), "{health}");
    let histograms = stdout
        .split("Pool latency histograms")
        .nth(1)
        .unwrap_or_else(|| panic!("no histograms in:\n{stdout}"));
    for name in ["acquire wait", "query time", "hold time", "connect time"] {
        let row = histograms
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .unwrap_or_else(|| panic!("no '{name}' histogram row in:\n{stdout}"));
        let count: u64 = row
            .split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no count in {row}"));
        assert!(count > 0, "{name}: {row}");
    }
    let speedup = stdout
        .lines()
        .find(|l| l.starts_with("pooling is ") && l.ends_with("x faster"))
        .unwrap_or_else(|| panic!("no speedup line in:\n{stdout}"));
    let ratio: f64 = speedup
        .trim_start_matches("pooling is ")
        .trim_end_matches("x faster")
        .parse()
        .unwrap_or_else(|_| panic!("bad speedup line: {speedup}"));
    assert!(ratio > 0.0, "{speedup}");
}

#[test]
fn help_describes_the_commands() {
    let (out, stdout, _) = run(pgpool().arg("--help"));
    assert!(out.status.success());
    assert!(
        stdout.contains("demo") && stdout.contains("temp-cluster"),
        "{stdout}"
    );

    let (out, stdout, _) = run(pgpool().args(["demo", "--help"]));
    assert!(out.status.success());
    for flag in [
        "--url",
        "--threads",
        "--pool-size",
        "--seconds",
        "--per-query-seconds",
        "--no-progress",
    ] {
        assert!(stdout.contains(flag), "missing {flag} in:\n{stdout}");
    }
}

#[test]
fn demo_against_the_shared_server() {
    let url = common::url();
    let (out, stdout, stderr) = run(pgpool().args([
        "demo",
        "--url",
        &url,
        "--threads",
        "4",
        "--pool-size",
        "2",
        "--seconds",
        "1",
        "--per-query-seconds",
        "1",
        "--no-progress",
    ]));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_summary(&stdout);
    assert!(!stdout.contains("throwaway"), "{stdout}");
    assert!(
        stdout.contains("open / idle / in_use       2 / 2 / 0"),
        "{stdout}"
    );
    // No progress line: nothing per tick on stderr.
    assert!(!stderr.contains('\r'), "{stderr:?}");
}

#[test]
fn demo_reads_database_url_from_the_environment() {
    let (out, stdout, stderr) = run(pgpool().env("DATABASE_URL", common::url()).args([
        "demo",
        "--threads",
        "2",
        "--pool-size",
        "1",
        "--seconds",
        "0.5",
        "--per-query-seconds",
        "0",
    ]));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("throwaway"), "{stdout}");
    assert!(row_value(&stdout, "queries ") > 0.0, "{stdout}");
    // Zero seconds of per-query work skips the comparison.
    assert!(!stdout.contains("pooling is"), "{stdout}");
    // stderr is a pipe here: no progress line unless forced.
    assert!(!stderr.contains('\r'), "{stderr:?}");
}

#[test]
fn demo_forced_progress_draws_on_stderr() {
    let (out, stdout, stderr) = run(pgpool().args([
        "demo",
        "--url",
        &common::url(),
        "--threads",
        "2",
        "--pool-size",
        "2",
        "--seconds",
        "1",
        "--per-query-seconds",
        "0",
        "--progress",
    ]));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains('\r') && stderr.contains("q/s"),
        "{stderr:?}"
    );
    assert!(stderr.contains("waiting"), "{stderr:?}");
}

#[test]
fn demo_without_a_url_runs_its_own_cluster() {
    let (out, stdout, stderr) = run(pgpool().args([
        "demo",
        "--threads",
        "3",
        "--pool-size",
        "2",
        "--seconds",
        "1",
        "--per-query-seconds",
        "0.5",
        "--no-progress",
    ]));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("throwaway PostgreSQL"), "{stdout}");
    assert_summary(&stdout);
    // The cluster's directory is gone when the program ends.
    let data_dir = stdout
        .split("(data directory ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no data directory in:\n{stdout}"));
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
}

#[test]
fn demo_with_a_bad_url_fails_cleanly() {
    // An invalid URL is a usage error (64); an unreachable server a failure (1).
    for (url, expected, code) in [
        ("not a url", "invalid database URL", 64),
        (
            "postgres://postgres:secret@127.0.0.1:1/postgres",
            "cannot connect",
            1,
        ),
    ] {
        let (out, stdout, stderr) =
            run(pgpool().args(["demo", "--url", url, "--seconds", "1", "--no-progress"]));
        assert_eq!(out.status.code(), Some(code), "{url}: {stdout}\n{stderr}");
        assert!(stderr.starts_with("pgpool: error: "), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("secret"), "password shown: {stderr}");
    }
}

#[test]
fn demo_rejects_bad_options() {
    // Usage errors exit 64 (EX_USAGE), not clap's 2, which `health` uses for "down".
    let (out, _, stderr) = run(pgpool().args(["demo", "--threads", "0"]));
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--threads"), "{stderr}");
    let (out, _, stderr) = run(pgpool().args(["demo", "--seconds", "soon"]));
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Starts `pgpool temp-cluster` and reads its URL (bounded wait).
fn start_temp_cluster() -> (Child, String) {
    let mut child = pgpool()
        .arg("temp-cluster")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn pgpool temp-cluster");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            panic!("temp-cluster printed no URL within 120 s");
        }
    };
    let url = line.trim().to_string();
    assert!(url.starts_with("postgres://"), "not a URL: {line:?}");
    (child, url)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("temp-cluster did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse().expect("URL parses");
    config.connect_timeout(Duration::from_secs(10));
    config.connect(postgres::NoTls)
}

/// Connects, checks `SELECT 1`, and returns the cluster's data directory.
fn check_up(url: &str) -> PathBuf {
    let mut client = connect(url).expect("the temp cluster accepts connections");
    let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
    let dir: String = client.query_one("SHOW data_directory", &[]).unwrap().get(0);
    PathBuf::from(dir)
}

fn check_gone(url: &str, data_dir: &Path) {
    assert!(connect(url).is_err(), "{url} still accepts connections");
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
}

#[test]
fn temp_cluster_runs_until_stdin_closes() {
    let (mut child, url) = start_temp_cluster();
    let data_dir = check_up(&url);
    drop(child.stdin.take());
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status}");
    check_gone(&url, &data_dir);
}

#[test]
fn temp_cluster_stops_cleanly_on_sigterm() {
    let (mut child, url) = start_temp_cluster();
    let data_dir = check_up(&url);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status}");
    check_gone(&url, &data_dir);
}
