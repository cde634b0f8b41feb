//! The Go module in go/ (package pgpool and its database/sql connector) passes
//! `go test -race ./...` against the test server (and a private primary with its streaming
//! standby for the replica tests), built against the libpgpool.so of this test run through
//! the CGO_* variables and `-tags pgpool_nopkgconfig`.

mod c_support;
mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn go_module_tests_pass_under_the_race_detector() {
    if Command::new("go").arg("version").output().is_err() {
        panic!("Go is not installed (scripts/setup.sh installs golang-go)");
    }
    let url = common::url();
    // A primary and its streaming standby for the replica tests.
    let primary = common::private_cluster();
    let standby = primary.start_standby().expect("starting a standby");
    primary
        .wait_replayed(&standby, Duration::from_secs(20))
        .unwrap();
    let root = c_support::root();
    let lib = c_support::lib_dir();
    let scratch = c_support::out_dir("go-module");
    let mut child = Command::new("go")
        .current_dir(root.join("go"))
        .args([
            "test",
            "-race",
            "-count=1",
            "-timeout=240s",
            "-tags",
            "pgpool_nopkgconfig",
            "./...",
        ])
        .env("PGPOOL_TEST_URL", &url)
        .env("PGPOOL_TEST_PRIMARY", primary.conninfo())
        .env("PGPOOL_TEST_STANDBY", standby.conninfo())
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", scratch.join("cache"))
        .env(
            "CGO_CFLAGS",
            format!("-I{}", root.join("include").display()),
        )
        .env(
            "CGO_LDFLAGS",
            format!(
                "-L{0} -Wl,--disable-new-dtags,-rpath,{0} -lpgpool",
                lib.display()
            ),
        )
        .env_remove("LD_LIBRARY_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run go test");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "go test did not finish in 300 s:\n{}\n{}",
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(
        status.success(),
        "go test -race failed ({status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("ok  \tgithub.com/pgpool/pgpool/go\t"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok  \tgithub.com/pgpool/pgpool/go/stdlib\t"),
        "{stdout}"
    );
}
