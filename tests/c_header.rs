//! The committed C header is exactly what the build generates, and it compiles on its own
//! as strict C99 and as C++17.

mod c_support;

use std::process::Command;

#[test]
fn committed_header_matches_generated() {
    let generated = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/pgpool.h"))
        .expect("build.rs writes $OUT_DIR/pgpool.h");
    let committed = std::fs::read_to_string(c_support::root().join("include/pgpool.h"))
        .expect("include/pgpool.h is committed");
    assert!(
        generated == committed,
        "include/pgpool.h is stale: regenerate it with `PGPOOL_UPDATE_HEADER=1 cargo build` \
         and commit it"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(committed.contains(&format!("#define PGPOOL_VERSION_STRING \"{version}\"")));
}

#[test]
fn header_compiles_alone_as_c99_and_cpp17() {
    let dir = c_support::out_dir("header");
    let include = c_support::root().join("include");
    for (compiler, std, file) in [("cc", "-std=c99", "h.c"), ("c++", "-std=c++17", "h.cpp")] {
        let src = dir.join(file);
        std::fs::write(
            &src,
            "#include \"pgpool.h\"\nint main(void) { return 0; }\n",
        )
        .unwrap();
        let output = Command::new(compiler)
            .args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", "-o"])
            .arg(dir.join(format!("{file}.o")))
            .arg("-I")
            .arg(&include)
            .arg(&src)
            .output()
            .expect("run the compiler");
        c_support::check(&format!("{compiler} {std} pgpool.h"), &output);
    }
}
