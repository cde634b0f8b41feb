//! Generates the C header `include/pgpool.h` from the C ABI in `src/ffi/capi` with cbindgen.
//!
//! The header is always generated into `$OUT_DIR/pgpool.h`. The committed copy in `include/`
//! is written when it is missing or when `PGPOOL_UPDATE_HEADER=1`; otherwise a stale copy
//! only produces a warning here and a failing test (`tests/c_header.rs`).

use std::env;
use std::fs;
use std::path::PathBuf;

fn version_macros() -> String {
    let get = |key: &str| env::var(key).unwrap_or_else(|_| panic!("{key} is set by Cargo"));
    let (major, minor, patch) = (
        get("CARGO_PKG_VERSION_MAJOR"),
        get("CARGO_PKG_VERSION_MINOR"),
        get("CARGO_PKG_VERSION_PATCH"),
    );
    let number = |s: &str| s.parse::<u64>().expect("numeric version component");
    format!(
        "\n/* The version of the library this header describes (Cargo's package version). */\n\
         #define PGPOOL_VERSION_MAJOR {major}\n\
         #define PGPOOL_VERSION_MINOR {minor}\n\
         #define PGPOOL_VERSION_PATCH {patch}\n\
         #define PGPOOL_VERSION_STRING \"{}\"\n\
         /* MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons. */\n\
         #define PGPOOL_VERSION_NUMBER {}\n",
        get("CARGO_PKG_VERSION"),
        number(&major) * 10_000 + number(&minor) * 100 + number(&patch),
    )
}

/// The shared library's ABI version: the package's major version (0 until 1.0, so every 0.x
/// release shares `libpgpool.so.0`; scripts/install.sh names the installed files the same way).
/// Passed to the linker for the cdylib only; the rlib and the staticlib are unaffected.
fn soname_link_args() {
    let major =
        env::var("CARGO_PKG_VERSION_MAJOR").expect("CARGO_PKG_VERSION_MAJOR is set by Cargo");
    match env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos") | Ok("ios") => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libpgpool.{major}.dylib")
        }
        Ok("windows") | Err(_) => {}
        Ok(_) => println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpgpool.so.{major}"),
    }
}

fn main() {
    soname_link_args();
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by Cargo"));
    let capi = root.join("src/ffi/capi");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=src/ffi/capi");
    println!("cargo:rerun-if-changed=include/pgpool.h");
    println!("cargo:rerun-if-env-changed=PGPOOL_UPDATE_HEADER");

    let mut config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("valid cbindgen.toml");
    config.after_includes = Some(version_macros());
    // Only the C ABI module (and the submodules it declares) is parsed, so public items of
    // the Rust API never leak into the header.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(capi.join("mod.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);

    let out = PathBuf::from(env::var("OUT_DIR").expect("set by Cargo")).join("pgpool.h");
    fs::write(&out, &generated).expect("write $OUT_DIR/pgpool.h");

    let committed = root.join("include/pgpool.h");
    let current = fs::read(&committed).ok();
    let update = env::var("PGPOOL_UPDATE_HEADER").is_ok_and(|v| v == "1");
    if current.as_deref() != Some(generated.as_slice()) {
        if current.is_none() || update {
            fs::create_dir_all(root.join("include")).expect("create include/");
            fs::write(&committed, &generated).expect("write include/pgpool.h");
        } else {
            println!(
                "cargo:warning=include/pgpool.h is stale; regenerate it with \
                 PGPOOL_UPDATE_HEADER=1 cargo build"
            );
        }
    }
}
