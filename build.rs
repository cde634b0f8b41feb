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
         /* MAJOR * 1000000 + MINOR * 1000 + PATCH (each component below 1000), for #if. */\n\
         #define PGPOOL_VERSION_NUMBER {}\n\
         \n/* The call site as \"file.c:42\", for pgpool_pool_acquire_at. PGPOOL_ACQUIRE(pool,\n\
         \x20* timeout_ms, &conn, &err) acquires recording it: leak reports (leak_threshold),\n\
         \x20* reclaim events (max_checkout) and timeout messages then name the line. */\n\
         #define PGPOOL_STRINGIFY_(x) #x\n\
         #define PGPOOL_STRINGIFY(x) PGPOOL_STRINGIFY_(x)\n\
         #define PGPOOL_SITE __FILE__ \":\" PGPOOL_STRINGIFY(__LINE__)\n\
         #define PGPOOL_ACQUIRE(pool, timeout_ms, out_conn, out_err) \\\n\
         \x20   pgpool_pool_acquire_at((pool), (timeout_ms), PGPOOL_SITE, (out_conn), (out_err))\n",
        get("CARGO_PKG_VERSION"),
        number(&major) * 1_000_000 + number(&minor) * 1_000 + number(&patch),
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
    let mut raw = Vec::new();
    bindings.write(&mut raw);
    let generated = c_comments(&String::from_utf8(raw).expect("UTF-8 header")).into_bytes();

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by Cargo"));
    write_returns_table(&capi, &out_dir);
    let out = out_dir.join("pgpool.h");
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

/// One exported function of the C ABI whose result is a `pgpool_code`, and the codes its
/// doc comment lists after `Returns:`.
struct Exported {
    file: String,
    name: String,
    first_line: usize,
    last_line: usize,
    codes: Vec<String>,
}

/// Reads every `#[no_mangle]` function returning `pgpool_code` in `src/ffi/capi`, with the
/// line span of its body and the codes of its `Returns:` paragraph.
fn exported_functions(capi: &std::path::Path) -> Vec<Exported> {
    let mut out = Vec::new();
    let mut files: Vec<_> = fs::read_dir(capi)
        .expect("read src/ffi/capi")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    for path in files {
        let text = fs::read_to_string(&path).expect("read a capi file");
        let lines: Vec<&str> = text.lines().collect();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut starts = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() == "#[no_mangle]" {
                starts.push(i);
            }
        }
        for (k, &at) in starts.iter().enumerate() {
            // The signature: from the attribute to the opening brace.
            let mut sig = String::new();
            let mut j = at + 1;
            while j < lines.len() {
                sig.push_str(lines[j]);
                sig.push(' ');
                if lines[j].trim_end().ends_with('{') {
                    break;
                }
                j += 1;
            }
            if !sig.contains("-> pgpool_code") {
                continue;
            }
            let name = sig
                .split("fn ")
                .nth(1)
                .and_then(|s| s.split('(').next())
                .unwrap_or("")
                .trim()
                .to_string();
            // The doc comment above the attribute.
            let mut doc = Vec::new();
            let mut d = at;
            while d > 0 && lines[d - 1].trim_start().starts_with("///") {
                d -= 1;
                doc.push(lines[d].trim_start().trim_start_matches("///").trim());
            }
            doc.reverse();
            let mut codes = Vec::new();
            let mut in_returns = false;
            for line in &doc {
                if line.starts_with("Returns:") {
                    in_returns = true;
                } else if line.is_empty() || line.starts_with('#') {
                    in_returns = false;
                }
                if in_returns {
                    for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                        if word.starts_with("PGPOOL_") && !codes.iter().any(|c| c == word) {
                            codes.push(word.to_string());
                        }
                    }
                }
            }
            let last_line = starts.get(k + 1).copied().unwrap_or(lines.len());
            out.push(Exported {
                file: file.clone(),
                name,
                first_line: at + 1,
                last_line,
                codes,
            });
        }
    }
    out
}

/// `$OUT_DIR/returns.rs`: the table the test-hooks build checks every returned code against.
/// A function without a `Returns:` list is a build error.
fn write_returns_table(capi: &std::path::Path, out_dir: &std::path::Path) {
    let mut table = String::from(
        "// Generated by build.rs from the `Returns:` lists of src/ffi/capi.\n\
         pub(crate) static RETURNS: &[(&str, u32, u32, &str, &[pgpool_code])] = &[\n",
    );
    let mut missing = Vec::new();
    for f in exported_functions(capi) {
        if f.codes.is_empty() {
            missing.push(format!("{} ({})", f.name, f.file));
        }
        let codes: Vec<String> = f
            .codes
            .iter()
            .map(|c| format!("pgpool_code::{c}"))
            .collect();
        table.push_str(&format!(
            "    ({:?}, {}, {}, {:?}, &[{}]),\n",
            f.file,
            f.first_line,
            f.last_line,
            f.name,
            codes.join(", ")
        ));
    }
    table.push_str("];\n");
    if !missing.is_empty() {
        table.push_str(&format!(
            "compile_error!(\"C functions without a `Returns:` list in their doc comment: {}\");\n",
            missing.join(", ")
        ));
    }
    fs::write(out_dir.join("returns.rs"), table).expect("write returns.rs");
}

/// The header speaks C: the Rust `# Safety` sections (the preamble states the pointer rules
/// once) are dropped from the doc comments, with the blank comment line before them.
fn c_comments(header: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut skipping = false;
    for line in header.lines() {
        let trimmed = line.trim_start();
        if trimmed == "// # Safety" {
            skipping = true;
            if out.last().is_some_and(|l| l.trim() == "//") {
                out.pop();
            }
            continue;
        }
        if skipping {
            if trimmed.starts_with("//") {
                continue;
            }
            skipping = false;
        }
        out.push(line);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}
