//! The README's code is real: the Rust quick start runs against PostgreSQL here, and every
//! snippet the README shows is, verbatim, a marked region of a file the tests compile and run.

mod common;

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[path = "../examples/session_features.rs"]
mod session_features;

#[path = "../examples/reliability.rs"]
mod reliability;

#[path = "../examples/operations.rs"]
mod operations;

#[path = "../examples/replicas.rs"]
mod replicas;

#[test]
fn rust_quick_start_runs() {
    quickstart::run(&common::url()).unwrap();
}

#[test]
fn rust_session_features_run() {
    session_features::run(&common::url()).unwrap();
}

#[test]
fn rust_reliability_example_runs() {
    reliability::run(&common::url()).unwrap();
}

#[test]
fn rust_operations_example_runs() {
    operations::run(&common::url()).unwrap();
}

#[test]
fn rust_replicas_example_runs() {
    replicas::run(&common::url()).unwrap();
}

/// Regions `README:BEGIN name` … `README:END name` (as comments in any language).
fn regions(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in source.lines() {
        if let Some(rest) = line.split("README:BEGIN ").nth(1) {
            current = Some((rest.trim().to_string(), Vec::new()));
        } else if line.contains("README:END") {
            if let Some((name, lines)) = current.take() {
                out.push((name, lines.join("\n")));
            }
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    out
}

#[test]
fn readme_snippets_are_the_tested_sources() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut checked = 0;
    for file in [
        "examples/quickstart.rs",
        "examples/session_features.rs",
        "examples/reliability.rs",
        "examples/operations.rs",
        "examples/replicas.rs",
        "examples/registry.rs",
        "examples-c/events.c",
        "examples-c/service.c",
        "examples-c/go-service/main.go",
        "go/events_test.go",
        "examples-c/workers.c",
        "examples-c/raii.cpp",
        "examples-c/go/main.go",
    ] {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        for (name, body) in regions(&source) {
            assert!(
                readme.contains(&body),
                "README.md lacks the `{name}` snippet of {file} verbatim:\n{body}"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked, 20,
        "README regions: rust, rust-session, rust-reliability, rust-ops, rust-replicas, \
         registry-rust, \
         registry-rust-wait, c, cpp, cpp-ops, go, go-tx, events-c, ops-c, registry-c-worker, \
         registry-c, registry-c-wait, registry-go, registry-go-shutdown, events-go"
    );
}

/// Every `file::test` that docs/RELIABILITY.md cites exists: a test in `tests/<file>.rs` whose
/// name is, or (for `name_*`) starts with, the cited one.
#[test]
fn reliability_doc_cites_only_tests_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/RELIABILITY.md")).unwrap();
    let mut cited = 0;
    for quoted in doc.split('`').skip(1).step_by(2) {
        let Some((file, name)) = quoted.split_once("::") else {
            continue;
        };
        if !file.chars().all(|c| c.is_ascii_lowercase() || c == '_') || file.is_empty() {
            continue;
        }
        let path = root.join("tests").join(format!("{file}.rs"));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("RELIABILITY.md cites {quoted}, but tests/{file}.rs does not exist")
        });
        let (prefix, exact) = match name.strip_suffix('*') {
            Some(p) => (p, false),
            None => (name, true),
        };
        let found = source.lines().any(|l| {
            let l = l.trim_start();
            l.strip_prefix("fn ").is_some_and(|rest| {
                let fname: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if exact {
                    fname == prefix
                } else {
                    fname.starts_with(prefix)
                }
            })
        });
        assert!(
            found,
            "RELIABILITY.md cites {quoted}: no such test in tests/{file}.rs"
        );
        cited += 1;
    }
    assert!(cited > 30, "only {cited} citations found");
}
