//! Building and running the C, C++ and Go programs of the C ABI tests against the
//! `libpgpool.so` that `cargo test` builds next to the test executables.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `target/<profile>`: the test executable lives in `target/<profile>/deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps directory");
    deps.parent().expect("profile directory").to_path_buf()
}

/// The directory holding the `libpgpool.so` built for this test run. `cargo test` builds the
/// library's cdylib into `target/<profile>/deps/` (with this run's features) without copying
/// it up to `target/<profile>/`, so the copy next to the test executable is the current one.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps directory").to_path_buf();
    let dir = if deps.join("libpgpool.so").exists() {
        deps
    } else {
        profile_dir()
    };
    assert!(
        dir.join("libpgpool.so").exists(),
        "libpgpool.so not found in {} (cargo test builds it with the cdylib crate type)",
        dir.display()
    );
    soname_link(&dir);
    dir
}

/// The library's SONAME is `libpgpool.so.<major>` (build.rs), so programs linked with
/// `-lpgpool` ask the loader for that name: it is made a symlink to `libpgpool.so` in `dir`, as
/// an installation has (scripts/install.sh). Created under a private name and renamed into
/// place, so concurrent test processes never see a half-made link.
pub fn soname_link(dir: &Path) {
    let soname = format!("libpgpool.so.{}", env!("CARGO_PKG_VERSION_MAJOR"));
    let link = dir.join(&soname);
    if std::fs::read_link(&link).is_ok_and(|target| target == Path::new("libpgpool.so")) {
        return;
    }
    // Unique per process and call: tests in one process build in parallel threads.
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let partial = dir.join(format!(
        "{soname}.partial-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&partial);
    std::os::unix::fs::symlink("libpgpool.so", &partial).expect("symlink the SONAME");
    std::fs::rename(&partial, &link).expect("move the SONAME symlink into place");
}

/// The crate's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory for build outputs under `target/<profile>/capi-tests`.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = profile_dir().join("capi-tests").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fails the test with the program's output unless it succeeded.
pub fn check(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    stdout
}

/// Compiles C (`cc -std=c99`) or C++ (`c++ -std=c++17`) sources into an executable linked
/// against libpgpool.so with an rpath. The compiler writes a file of its own that is then
/// renamed over `out`, so tests that build the same program at once never run a half-written
/// executable.
pub fn compile(sources: &[&Path], out: &Path, cpp: bool) {
    compile_with(sources, out, cpp, &[]);
}

/// [`compile`] with `extra` compiler and linker flags (sanitizers).
pub fn compile_with(sources: &[&Path], out: &Path, cpp: bool, extra: &[&str]) {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let lib = lib_dir();
    let partial = out.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut cmd = Command::new(if cpp { "c++" } else { "cc" });
    cmd.arg(if cpp { "-std=c++17" } else { "-std=c99" })
        .args([
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
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("tests/c"))
        .args(sources)
        .arg("-o")
        .arg(&partial)
        .arg(format!("-L{}", lib.display()))
        .arg("-lpgpool")
        .arg(format!("-Wl,--disable-new-dtags,-rpath,{}", lib.display()))
        .arg("-lpthread");
    let output = cmd.output().expect("run the C compiler");
    check(&format!("compiling {}", out.display()), &output);
    std::fs::rename(&partial, out).expect("move the executable into place");
}

/// Runs `program` with `args`. Cargo's `LD_LIBRARY_PATH` (which may list a stale
/// `target/<profile>/libpgpool.so` first) is removed so the rpath decides.
pub fn run(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .expect("run the program");
    check(&program.display().to_string(), &output)
}

/// True when `tool` can be run.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `program` under valgrind's memcheck with the project's suppressions.
pub fn valgrind(program: &Path, args: &[&str]) -> String {
    let output = Command::new("valgrind")
        .args([
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect",
            "--quiet",
        ])
        .arg(format!(
            "--suppressions={}",
            root().join("tests/c/valgrind.supp").display()
        ))
        .arg(program)
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run valgrind");
    check(&format!("valgrind {}", program.display()), &output)
}

/// Builds the Go program in `dir` (relative to the repository) against this build's
/// `libpgpool.so` and the repository's headers; returns the executable, named `name`.
pub fn build_go_program(dir: &str, name: &str) -> PathBuf {
    let out = out_dir("go");
    let lib = lib_dir();
    let exe = out.join(name);
    let output = Command::new("go")
        .current_dir(root().join(dir))
        .args(["build", "-tags", "pgpool_nopkgconfig", "-o"])
        .arg(&exe)
        .arg(".")
        .env("GOCACHE", out.join("cache"))
        .env("GOFLAGS", "-mod=mod")
        .env(
            "CGO_CFLAGS",
            format!("-I{}", root().join("include").display()),
        )
        .env(
            "CGO_LDFLAGS",
            format!(
                "-L{0} -Wl,--disable-new-dtags,-rpath,{0} -lpgpool",
                lib.display()
            ),
        )
        .output()
        .expect("run go build");
    check("go build", &output);
    exe
}
