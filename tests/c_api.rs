//! The C ABI from C: every exported function and error path (tests/c/api.c), a
//! multi-threaded stress test (tests/c/stress.c), both under valgrind, fork() with a pool in
//! use (tests/c/fork.c), and multi-threaded misuse fuzzing under AddressSanitizer, UBSan and
//! LeakSanitizer (tests/c/misuse_fuzz.c).
//!
//! Build with `--features test-hooks` to include the injected-panic checks.

mod c_support;
mod common;

use std::path::PathBuf;

fn build(name: &str) -> PathBuf {
    let out = c_support::out_dir("c").join(name);
    let src = c_support::root().join(format!("tests/c/{name}.c"));
    c_support::compile(&[&src], &out, false);
    out
}

fn api_args(url: &str) -> Vec<&str> {
    if cfg!(feature = "test-hooks") {
        vec![url, "panic"]
    } else {
        vec![url]
    }
}

#[test]
fn every_function_and_error_path_from_c() {
    let url = common::url();
    let program = build("api");
    let out = c_support::run(&program, &api_args(&url));
    assert!(out.contains("ALL OK"), "{out}");
    if cfg!(feature = "test-hooks") {
        assert!(out.contains("injected panics"), "{out}");
    } else {
        eprintln!("note: built without `test-hooks`: injected-panic checks skipped");
    }
}

#[test]
fn typed_parameters_results_copy_notify_cancel_and_transactions_from_c() {
    let url = common::url();
    let program = build("typed");
    let out = c_support::run(&program, &[&url]);
    assert!(out.contains("TYPED OK"), "{out}");
}

#[test]
fn thirty_two_threads_share_a_pool_of_eight() {
    let url = common::url();
    let program = build("stress");
    let out = c_support::run(&program, &[&url, "32", "2000"]);
    assert!(
        out.contains("STRESS OK: 32 threads x 2000 cycles, 64000 acquires"),
        "{out}"
    );
}

/// The arguments of tests/c/fork.c: with the test hooks, a parent thread also holds a handle
/// table's lock at the moment of the fork. In every mode, parent threads are blocked in an
/// acquire at the fork, and the child has threads of its own take turns on pools of one.
fn fork_args<'a>(url: &'a str, mode: &'a str) -> Vec<&'a str> {
    let mut args = vec![url, mode];
    if cfg!(feature = "test-hooks") {
        args.push("hooks");
    }
    args
}

#[test]
fn a_forked_child_leaves_the_parents_sessions_alone_and_makes_its_own_pool() {
    let url = common::url();
    let program = build("fork");
    let out = c_support::run(&program, &fork_args(&url, "quiet"));
    assert!(out.contains("FORK OK (quiet"), "{out}");
    assert!(
        out.contains("300 turns of 3 threads on 10 pools of one"),
        "{out}"
    );
    eprintln!("{}", out.trim_end());
}

#[test]
fn a_fork_while_a_worker_thread_hammers_the_pool() {
    let url = common::url();
    let program = build("fork");
    let out = c_support::run(&program, &fork_args(&url, "busy"));
    assert!(out.contains("FORK OK (busy"), "{out}");
    assert!(
        out.contains("300 turns of 3 threads on 10 pools of one"),
        "{out}"
    );
    assert!(!out.contains(" 0 worker rounds"), "{out}");
    eprintln!("{}", out.trim_end());
}

/// Flags of the sanitizer builds (as tests/cpp_header.rs builds the C++ wrapper's test).
const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
];

/// Four threads of random misuse for a few seconds (the seed is printed; set
/// `PGPOOL_FUZZ_SEED` to replay one, `PGPOOL_FUZZ_SECONDS` to run longer). The library's
/// test-hooks build aborts on a code a function's documentation does not list; the program
/// checks the rest (known codes, detail objects, no panic) and the sanitizers everything else.
#[test]
fn misuse_from_many_threads_is_reported_never_crashes_leaks_or_hits_ub() {
    if !cfg!(feature = "test-hooks") {
        eprintln!("note: built without `test-hooks`: unlisted codes are not caught");
    }
    let url = common::url();
    let out = c_support::out_dir("c").join("misuse_fuzz_asan");
    let src = c_support::root().join("tests/c/misuse_fuzz.c");
    c_support::compile_with(&[&src], &out, false, SANITIZE);
    let seed = std::env::var("PGPOOL_FUZZ_SEED").unwrap_or_else(|_| "random".into());
    let seconds = std::env::var("PGPOOL_FUZZ_SECONDS").unwrap_or_else(|_| "10".into());
    let output = std::process::Command::new(&out)
        .args([url.as_str(), &seed, &seconds, "4"])
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=23",
        )
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run the sanitized fuzz program");
    let stdout = c_support::check(&out.display().to_string(), &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("FUZZ OK"), "{stdout}\n{stderr}");
    // A report that did not fail the exit code must not hide either.
    for marker in [
        "runtime error:",
        "AddressSanitizer",
        "LeakSanitizer",
        "SUMMARY:",
    ] {
        assert!(!stderr.contains(marker), "sanitizer report:\n{stderr}");
    }
    eprintln!("{}", stdout.trim_end());
}

#[test]
fn c_programs_are_clean_under_valgrind() {
    if !c_support::have("valgrind") {
        eprintln!("valgrind is not installed (scripts/setup.sh installs it): skipped");
        return;
    }
    let url = common::url();
    let api = build("api");
    let out = c_support::valgrind(&api, &api_args(&url));
    assert!(out.contains("ALL OK"), "{out}");
    let typed = build("typed");
    let out = c_support::valgrind(&typed, &[&url]);
    assert!(out.contains("TYPED OK"), "{out}");
    // Fewer cycles: valgrind serialises threads and runs code ~50x slower.
    let stress = build("stress");
    let out = c_support::valgrind(&stress, &[&url, "8", "50"]);
    assert!(out.contains("STRESS OK"), "{out}");
}

#[test]
fn a_code_missing_from_a_functions_documentation_is_caught() {
    if !cfg!(feature = "test-hooks") {
        eprintln!("note: built without `test-hooks`: the code check is not compiled in");
        return;
    }
    let program = build("unlisted");
    let output = std::process::Command::new(&program).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the process was not aborted");
    assert!(
        stderr.contains("pgpool_config_set_application_name returned closed"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("NOT ABORTED"));
}

#[test]
fn leaks_reclaim_breaker_bounded_close_and_retry_from_c() {
    let url = common::url();
    let program = build("reliability");
    let out = c_support::run(&program, &[&url]);
    assert!(out.contains("RELIABILITY OK"), "{out}");
    for line in out.lines().filter(|l| l.starts_with("measured:")) {
        eprintln!("{line}");
    }
}

#[test]
fn histograms_prometheus_health_json_and_log_lines_from_c() {
    let url = common::url();
    let program = build("observe");
    let out = c_support::run(&program, &[&url]);
    assert!(out.contains("OBSERVE OK"), "{out}");
}
