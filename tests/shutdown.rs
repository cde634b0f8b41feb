//! Graceful shutdown on a real SIGTERM / SIGINT, in child processes: the Rust example
//! (examples/registry.rs, run by this test binary as its child), the C example
//! (examples-c/service.c) and the Go example (examples-c/go-service) open their pools from a
//! TOML file, work until SIGTERM, close every pool within the deadline and exit 0 with their
//! sessions gone from `pg_stat_activity`; a second signal ends a shutdown at once.

mod c_support;
mod common;

#[allow(dead_code)]
#[path = "../examples/registry.rs"]
mod example;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set in the child: `file|workers|hold` for the Rust example.
const CHILD: &str = "SHUTDOWN_TEST_CHILD";

/// Not a test in the parent: in the child (re-executed with `CHILD` set) it runs the example.
#[test]
fn child_runs_the_rust_example() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let code = example::run(parts[0], parts[1].parse().unwrap(), parts[2] == "hold");
    std::process::exit(code);
}

fn pools_file(app: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgpool-shutdown-{app}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pools.toml");
    std::fs::write(
        &path,
        format!(
            "[defaults]\napplication_name = \"{app}\"\nacquire_timeout = \"5s\"\n\
             [pools.primary]\nurl = \"{url}\"\nmax_size = 4\nmin_idle = 2\n\
             [pools.replica]\nurl_env = \"SHUTDOWN_TEST_REPLICA_URL\"\nmax_size = 2\n",
            url = common::url()
        ),
    )
    .unwrap();
    path
}

/// A running example: its stdout lines arrive on a channel.
struct Service {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Service {
    fn start(mut command: Command) -> Service {
        let mut child = command
            .env("SHUTDOWN_TEST_REPLICA_URL", common::url())
            .env_remove("LD_LIBRARY_PATH")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Service {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`.
    fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let mut stderr = String::new();
                    if let Some(mut e) = self.child.stderr.take() {
                        let _ = e.read_to_string(&mut stderr);
                    }
                    panic!("no line {prefix:?}: {:?}\n--- stderr\n{stderr}", self.seen);
                }
            }
        }
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with our own child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the exit (within `timeout`); returns its status and the rest of stdout.
    fn exit(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "still running {timeout:?} after the signal: {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (
            status,
            format!("{}\n--- stderr\n{stderr}", self.seen.join("\n")),
        )
    }
}

fn rust_example(file: &Path, workers: usize, hold: bool) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child_runs_the_rust_example", "--exact", "--nocapture"])
        .env(
            CHILD,
            format!(
                "{}|{workers}|{}",
                file.display(),
                if hold { "hold" } else { "-" }
            ),
        );
    command
}

/// SIGTERM to a running service: exit 0 well within the deadline, every session gone.
fn sigterm_closes_everything(command: Command, app: &str, summary: &str) -> String {
    let mut admin = common::admin();
    let mut service = Service::start(command);
    service.expect("ready:", Duration::from_secs(60));
    assert!(common::backends(&mut admin, app) >= 2, "the pools are open");
    std::thread::sleep(Duration::from_millis(200)); // some work
    let start = Instant::now();
    service.signal(libc::SIGTERM);
    let (status, out) = service.exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(out.contains(summary), "{out}");
    assert!(out.contains("shutdown clean"), "{out}");
    assert!(
        common::wait_until(Duration::from_secs(5), || common::backends(&mut admin, app)
            == 0),
        "sessions left in pg_stat_activity"
    );
    out
}

#[test]
fn sigterm_makes_the_rust_example_close_every_pool_and_exit_0() {
    let app = common::app_name("shutdown-rust");
    let file = pools_file(&app);
    let out = sigterm_closes_everything(
        rust_example(&file, 2, false),
        &app,
        "signal 15: closed 2 pools",
    );
    assert!(
        out.contains("primary (") && out.contains("replica ("),
        "{out}"
    );
}

#[test]
fn a_statement_still_running_at_the_deadline_is_reclaimed_and_a_second_signal_exits_at_once() {
    let app = common::app_name("shutdown-hold");
    let file = pools_file(&app);
    // One connection in a 60 s statement: the close waits its 5 s, then reclaims it.
    let mut admin = common::admin();
    let mut service = Service::start(rust_example(&file, 1, true));
    service.expect("ready:", Duration::from_secs(60));
    assert!(common::wait_until(Duration::from_secs(5), || {
        common::active_backends(&mut admin, &app) >= 1
    }));
    let start = Instant::now();
    service.signal(libc::SIGTERM);
    let (status, out) = service.exit(Duration::from_secs(15));
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        took >= Duration::from_millis(4500) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert!(out.contains("1 reclaimed"), "{out}");
    assert!(
        out.contains("held statement: ") && out.contains("reclaimed"),
        "{out}"
    );
    assert!(common::wait_until(Duration::from_secs(5), || {
        common::backends(&mut admin, &app) == 0
    }));

    // The same, cut short: a second signal during the 5 s wait ends the process at once.
    let mut service = Service::start(rust_example(&file, 1, true));
    service.expect("ready:", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    service.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    service.signal(libc::SIGINT);
    let (status, out) = service.exit(Duration::from_secs(3));
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{out}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(!out.contains("shutdown clean"), "{out}");
}

#[test]
fn sigterm_makes_the_c_example_close_every_pool_and_exit_0() {
    let app = common::app_name("shutdown-c");
    let file = pools_file(&app);
    let exe = c_support::out_dir("examples").join("service");
    c_support::compile(
        &[&c_support::root().join("examples-c/service.c")],
        &exe,
        false,
    );
    let mut command = Command::new(&exe);
    command.arg(&file).arg("2");
    sigterm_closes_everything(
        command,
        &app,
        "signal 15: pools closed, 0 connections reclaimed",
    );
}

#[test]
fn sigterm_makes_the_go_example_close_every_pool_and_exit_0() {
    if Command::new("go").arg("version").output().is_err() {
        panic!("Go is not installed (scripts/setup.sh installs golang-go)");
    }
    let app = common::app_name("shutdown-go");
    let file = pools_file(&app);
    let exe = c_support::build_go_program("examples-c/go-service", "pgpool-go-service");
    let mut command = Command::new(&exe);
    command.arg(&file).arg("2");
    sigterm_closes_everything(command, &app, "pools closed, 0 connections reclaimed");
}

/// In this process: a real SIGTERM marks the shutdown and closes the pools handed over.
/// (The only test here that signals its own process: a second one would end the harness.)
#[test]
fn a_sigterm_to_this_process_requests_the_shutdown_and_closes_the_pools() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let app = common::app_name("shutdown-self");
    let pool = common::builder(&app)
        .min_idle(1)
        .build(&common::url())
        .unwrap();
    pool.wait_ready(Duration::from_secs(10)).unwrap();
    let shutdown = pgpool::shutdown::Shutdown::install().unwrap();
    shutdown.close_pools_on_signal(vec![pool.clone()], Duration::from_secs(2));
    assert!(!shutdown.requested());
    assert!(shutdown
        .wait_closed_timeout(Duration::from_millis(50))
        .is_none());
    // SAFETY: kill(2) on our own pid with SIGTERM, whose handler is installed.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
    assert!(shutdown.wait_timeout(Duration::from_secs(5)));
    assert_eq!(shutdown.signal(), Some(libc::SIGTERM));
    let report = shutdown
        .wait_closed_timeout(Duration::from_secs(5))
        .expect("closed");
    assert!(report.clean(), "{report}");
    assert_eq!(report.pools.len(), 1);
    assert!(pool.is_closed());
    assert!(pool.get().unwrap_err().is_closed());
}
