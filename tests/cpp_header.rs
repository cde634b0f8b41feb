//! The C++17 wrapper `include/pgpool.hpp`: tests/cpp/hpp_test.cpp exercises every class and
//! member against the throwaway PostgreSQL, built with `-Wall -Wextra -Werror -pedantic`,
//! once normally and once with AddressSanitizer, UndefinedBehaviorSanitizer and
//! LeakSanitizer (which must report nothing), with clang++ too when it is installed, and as
//! C++20, where `Pool::acquire` records its caller through `std::source_location`.
//!
//! Build with `--features test-hooks` to include the injected-panic checks.

mod c_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
];

/// Compiles tests/cpp/hpp_test.cpp with `compiler` and `extra` flags, linked against this
/// run's libpgpool.so (the flags of `c_support::compile`, plus `extra`). Writes to a file of
/// its own, then renames it over `name`, so concurrent builds never run a partial file.
fn build(compiler: &str, name: &str, extra: &[&str]) -> PathBuf {
    let lib = c_support::lib_dir();
    let out = c_support::out_dir("cpp").join(name);
    let partial = out.with_extension(format!("partial-{}", std::process::id()));
    let output = Command::new(compiler)
        .args([
            "-std=c++17",
            "-D_DEFAULT_SOURCE",
            "-O1",
            "-g",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .args(extra)
        .arg("-I")
        .arg(c_support::root().join("include"))
        .arg(c_support::root().join("tests/cpp/hpp_test.cpp"))
        .arg("-o")
        .arg(&partial)
        .arg(format!("-L{}", lib.display()))
        .arg("-lpgpool")
        .arg(format!("-Wl,--disable-new-dtags,-rpath,{}", lib.display()))
        .arg("-lpthread")
        .output()
        .expect("run the C++ compiler");
    c_support::check(&format!("compiling {name} with {compiler}"), &output);
    std::fs::rename(&partial, &out).expect("move the executable into place");
    out
}

fn args(url: &str) -> Vec<&str> {
    if cfg!(feature = "test-hooks") {
        vec![url, "panic"]
    } else {
        vec![url]
    }
}

/// Runs the program; fails with its output unless it exited 0 having printed "HPP OK".
fn run(program: &Path, url: &str) -> String {
    let output = Command::new(program)
        .args(args(url))
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run the C++ test program");
    let stdout = c_support::check(&program.display().to_string(), &output);
    assert!(stdout.contains("HPP OK"), "{stdout}");
    stdout
}

#[test]
fn every_class_and_member_of_the_cpp_wrapper() {
    let url = common::url();
    let program = build("c++", "hpp_test", &[]);
    let out = run(&program, &url);
    if !cfg!(feature = "test-hooks") {
        eprintln!("note: built without `test-hooks`: injected-panic checks skipped");
    }
    eprintln!("{}", out.lines().last().unwrap_or_default());
}

#[test]
fn the_cpp_wrapper_is_clean_under_asan_ubsan_and_lsan() {
    let url = common::url();
    let program = build("c++", "hpp_test_asan", SANITIZE);
    let supp = c_support::root().join("tests/cpp/lsan.supp");
    let stderr_of = |program: &Path| {
        let output = Command::new(program)
            .args(args(&url))
            .env(
                "ASAN_OPTIONS",
                "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=23",
            )
            .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
            .env("LSAN_OPTIONS", format!("suppressions={}", supp.display()))
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .expect("run the sanitized C++ test program");
        let stdout = c_support::check(&program.display().to_string(), &output);
        assert!(stdout.contains("HPP OK"), "{stdout}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = stderr_of(&program);
    // A sanitizer that reports without failing the exit code (a recovered UBSan check, a
    // suppressed leak) must not hide: stderr must hold no sanitizer report at all.
    for marker in [
        "runtime error:",
        "AddressSanitizer",
        "LeakSanitizer",
        "SUMMARY:",
    ] {
        assert!(!stderr.contains(marker), "sanitizer report:\n{stderr}");
    }
}

#[test]
fn the_cpp_wrapper_builds_with_clang_too() {
    if !c_support::have("clang++") {
        eprintln!("clang++ is not installed: skipped");
        return;
    }
    let url = common::url();
    let program = build("clang++", "hpp_test_clang", &[]);
    run(&program, &url);
}

#[test]
fn the_cpp_wrapper_records_call_sites_through_source_location_in_cpp20() {
    let url = common::url();
    // A later -std wins over the -std=c++17 of `build`.
    let program = build("c++", "hpp_test_cpp20", &["-std=c++20"]);
    let out = run(&program, &url);
    assert!(
        out.contains("call sites: std::source_location"),
        "the C++20 build did not use std::source_location:\n{out}"
    );
}
