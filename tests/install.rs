//! The installation as C users get it: `scripts/install.sh` into a temporary prefix (reusing
//! the release build when it is current), the versioned shared library and its SONAME, the
//! static library, the headers and `pgpool.pc`; then a C program (tests/c/installed.c) built
//! only with what `pkg-config` says, once against `libpgpool.so` and once statically against
//! `libpgpool.a`, run against the test server. Also: what the library pulls in carries no
//! command-line or test code.
//!
//! Needs `cc`, `pkg-config`, `readelf` and `ldd` (scripts/setup.sh installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const ABI: &str = env!("CARGO_PKG_VERSION_MAJOR");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The target directory this test was built in (`<target>/<profile>/deps/install-…`), so the
/// install script reuses its release build.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .nth(3)
        .expect("target directory")
        .to_path_buf()
}

/// A fresh scratch directory `<target>/install-test/<name>`.
fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("install-test").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the test with the command's output unless it succeeded; returns stdout.
fn check(what: &str, output: std::io::Result<Output>) -> String {
    let output = output.unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        text(&output.stderr)
    );
    stdout
}

/// Runs scripts/install.sh with `args` under a plain POSIX shell.
fn install(args: &[&str]) -> String {
    let mut cmd = Command::new("sh");
    cmd.arg(root().join("scripts/install.sh"))
        .args(args)
        .arg("--no-ldconfig")
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("DESTDIR");
    if let Ok(cargo) = std::env::var("CARGO") {
        // The cargo running this test, first on PATH for the script.
        let dir = Path::new(&cargo).parent().unwrap().to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    check(
        &format!("scripts/install.sh {}", args.join(" ")),
        cmd.output(),
    )
}

/// The installation into `<target>/install-test/prefix`, made once per test process.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let prefix = scratch("prefix");
        install(&["--prefix", prefix.to_str().unwrap()]);
        prefix
    })
}

/// `sh -c script` with `PKG_CONFIG_PATH` at the installation and no inherited library path
/// (cargo points `LD_LIBRARY_PATH` at its own build of libpgpool.so).
fn shell(prefix: &Path, script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .env_remove("PKG_CONFIG_LIBDIR")
        .env_remove("LD_LIBRARY_PATH");
    cmd
}

fn readelf_dynamic(file: &Path) -> String {
    check(
        &format!("readelf -d {}", file.display()),
        Command::new("readelf").arg("-d").arg(file).output(),
    )
}

fn needed(file: &Path) -> Vec<String> {
    readelf_dynamic(file)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

/// Builds tests/c/installed.c into `out` with `flags` (shell words, expanded by `sh`).
fn build_program(prefix: &Path, out: &Path, flags: &str) {
    let script = format!(
        "cc -std=c99 -Wall -Wextra -Werror -pedantic '{}' -o '{}' {flags}",
        root().join("tests/c/installed.c").display(),
        out.display()
    );
    check(&script, shell(prefix, &script).output());
}

fn run_program(program: &Path, ld_library_path: Option<&Path>) -> String {
    let mut cmd = Command::new(program);
    cmd.arg(common::url()).env_remove("LD_LIBRARY_PATH");
    if let Some(dir) = ld_library_path {
        cmd.env("LD_LIBRARY_PATH", dir);
    }
    check(&program.display().to_string(), cmd.output())
}

fn ldd(program: &Path, ld_library_path: Option<&Path>) -> String {
    let mut cmd = Command::new("ldd");
    cmd.arg(program).env_remove("LD_LIBRARY_PATH");
    if let Some(dir) = ld_library_path {
        cmd.env("LD_LIBRARY_PATH", dir);
    }
    check(&format!("ldd {}", program.display()), cmd.output())
}

fn is_symlink_to(link: &Path, target: &str) -> bool {
    std::fs::read_link(link).is_ok_and(|t| t == Path::new(target))
}

#[test]
fn installs_the_versioned_library_the_headers_and_pkg_config() {
    let prefix = prefix();
    let lib = prefix.join("lib");
    let real = format!("libpgpool.so.{VERSION}");
    let soname = format!("libpgpool.so.{ABI}");

    let meta = std::fs::symlink_metadata(lib.join(&real)).expect("the versioned library");
    assert!(meta.is_file(), "{real} is a regular file");
    assert!(
        is_symlink_to(&lib.join(&soname), &real),
        "{soname} -> {real}"
    );
    assert!(
        is_symlink_to(&lib.join("libpgpool.so"), &soname),
        "libpgpool.so -> {soname}"
    );
    assert!(lib.join("libpgpool.a").is_file(), "libpgpool.a");

    let dynamic = readelf_dynamic(&lib.join(&real));
    assert!(
        dynamic.contains(&format!("Library soname: [{soname}]")),
        "SONAME of {real}:\n{dynamic}"
    );

    // Every header the repository ships, byte for byte.
    let mut headers = 0;
    for entry in std::fs::read_dir(root().join("include")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("pgpool") && name.contains(".h") {
            let installed = std::fs::read(prefix.join("include").join(&name))
                .unwrap_or_else(|e| panic!("include/{name} is not installed: {e}"));
            assert_eq!(installed, std::fs::read(&path).unwrap(), "include/{name}");
            headers += 1;
        }
    }
    assert!(headers >= 1, "no headers in include/");

    let pc = std::fs::read_to_string(lib.join("pkgconfig/pgpool.pc")).expect("pgpool.pc");
    assert!(
        pc.contains(&format!("prefix={}\n", prefix.display())),
        "{pc}"
    );
    assert!(pc.contains("Libs: -L${libdir} -lpgpool\n"), "{pc}");
    assert!(pc.contains("Libs.private: "), "{pc}");
    assert!(pc.contains("Cflags: -I${includedir}\n"), "{pc}");

    let query = |args: &str| {
        let script = format!("pkg-config {args} pgpool");
        check(&script, shell(prefix, &script).output())
            .trim()
            .to_string()
    };
    assert_eq!(query("--modversion"), VERSION);
    assert_eq!(
        query("--cflags"),
        format!("-I{}", prefix.join("include").display())
    );
    assert_eq!(query("--libs"), format!("-L{} -lpgpool", lib.display()));
    assert!(query("--static --libs").contains("-lpthread"));

    // Nothing half-written is left behind.
    for dir in [lib.clone(), lib.join("pkgconfig"), prefix.join("include")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(
                !name.to_string_lossy().contains(".tmp."),
                "temporary file {name:?} in {}",
                dir.display()
            );
        }
    }
}

#[test]
fn a_c_program_links_the_shared_library_through_pkg_config() {
    let prefix = prefix();
    let out = scratch("dynamic").join("installed");
    build_program(prefix, &out, "$(pkg-config --cflags --libs pgpool)");

    let soname = format!("libpgpool.so.{ABI}");
    let deps = needed(&out);
    assert!(deps.contains(&soname), "NEEDED {soname}: {deps:?}");

    let lib = prefix.join("lib");
    let stdout = run_program(&out, Some(&lib));
    assert_eq!(stdout, format!("SELECT 1 = 1 (libpgpool {VERSION})\n"));

    // The loader resolves the SONAME to the installed symlink.
    let ldd = ldd(&out, Some(&lib));
    let expected = format!("{soname} => {}", lib.join(&soname).display());
    assert!(ldd.contains(&expected), "no '{expected}' in:\n{ldd}");
}

#[test]
fn a_c_program_links_the_static_library_through_pkg_config() {
    let prefix = prefix();
    let out = scratch("static").join("installed-static");
    // `-lpgpool` would pick libpgpool.so from the same directory: `-l:libpgpool.a` asks the
    // linker for the archive by name, with the system libraries Libs.private lists.
    build_program(
        prefix,
        &out,
        "$(pkg-config --static --cflags pgpool) \
         $(pkg-config --static --libs pgpool | sed 's/-lpgpool\\b/-l:libpgpool.a/')",
    );

    let deps = needed(&out);
    assert!(
        deps.iter().all(|d| !d.contains("pgpool")),
        "the static build needs no libpgpool: {deps:?}"
    );
    let ldd = ldd(&out, None);
    assert!(!ldd.contains("libpgpool"), "{ldd}");

    let stdout = run_program(&out, None);
    assert_eq!(stdout, format!("SELECT 1 = 1 (libpgpool {VERSION})\n"));
}

#[test]
fn destdir_stages_an_installation_and_reinstalling_is_harmless() {
    prefix(); // the release build is current from here on
    let stage = scratch("destdir");
    let stage_arg = stage.to_str().unwrap();
    for _ in 0..2 {
        install(&["--destdir", stage_arg, "--prefix", "/opt/pgpool"]);
    }
    let lib = stage.join("opt/pgpool/lib");
    let real = format!("libpgpool.so.{VERSION}");
    let soname = format!("libpgpool.so.{ABI}");
    assert!(lib.join(&real).is_file());
    assert!(is_symlink_to(&lib.join(&soname), &real));
    assert!(is_symlink_to(&lib.join("libpgpool.so"), &soname));
    assert!(lib.join("libpgpool.a").is_file());
    assert!(stage.join("opt/pgpool/include/pgpool.h").is_file());
    let pc = std::fs::read_to_string(lib.join("pkgconfig/pgpool.pc")).unwrap();
    // The staging directory is not part of the installed paths.
    assert!(pc.starts_with("prefix=/opt/pgpool\n"), "{pc}");
    assert!(!pc.contains(stage_arg), "{pc}");
    let mut names: Vec<String> = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["libpgpool.a", "libpgpool.so", &soname, &real, "pkgconfig"],
        "a second run adds nothing"
    );
}

#[test]
fn the_library_depends_on_no_cli_or_test_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = check(
        "cargo tree -e normal -p pgpool",
        Command::new(cargo)
            .current_dir(root())
            .args(["tree", "-e", "normal", "-p", "pgpool", "--prefix", "none"])
            .output(),
    );
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"postgres"), "{tree}");
    for forbidden in [
        "clap",
        "ctrlc",
        "hdrhistogram",
        "pgpool-testkit",
        "pgpool-cli",
    ] {
        assert!(
            !crates.contains(&forbidden),
            "pgpool depends on {forbidden}:\n{tree}"
        );
    }
}
