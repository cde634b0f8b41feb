//! The C ABI of `libpgpool.so`, described by the generated `include/pgpool.h`.
//!
//! Handles are generation-checked table entries (`handle`), every exported body runs inside
//! a panic boundary (`panic`), arguments are checked before use (`args`), and failures carry
//! numbered codes plus an optional detail object (`error`). Objects: `config`, `pool`,
//! `conn`, `result` (values rendered by `render` and `datetime`), `stats`, `log`, `registry`
//! (named pools, and shutdown on signals).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod args;
mod config;
mod conn;
mod copy;
mod datetime;
mod error;
mod exec;
mod handle;
mod log;
mod metrics;
mod notify;
mod panic;
mod params;
mod pool;
mod query;
mod registry;
mod render;
mod result;
mod stats;
mod test_hooks;

/// Every lock the fork handlers hold across `fork()` (see `sys::fork`), in the order the
/// prepare handler takes them: the handle tables and the log sink. No code path holds two of
/// them at once, so the order cannot deadlock; a table added to the C ABI is added here
/// (a test checks).
pub(crate) fn held_across_fork() -> &'static [&'static dyn crate::sys::fork::HeldAcrossFork] {
    static HELD: [&dyn crate::sys::fork::HeldAcrossFork; 10] = [
        &config::CONFIGS,
        &pool::POOLS,
        &registry::REGISTRIES,
        &conn::CONNS,
        &exec::STMTS,
        &params::PARAMS,
        &result::RESULTS,
        &notify::NOTIFICATIONS,
        &error::ERRORS,
        &log::LOGGER,
    ];
    &HELD
}

#[cfg(not(target_pointer_width = "64"))]
compile_error!("the pgpool C ABI encodes handles in 64-bit pointers");

/// The library's version (`"MAJOR.MINOR.PATCH"`, Cargo's package version), a static string.
/// Compare with the header's `PGPOOL_VERSION_STRING` to detect a header/library mismatch.
/// Thread-safe, non-blocking, never fails.
#[no_mangle]
pub extern "C" fn pgpool_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    /// Every handle table of the C ABI is held across fork().
    #[test]
    fn every_handle_table_is_held_across_fork() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi/capi");
        let mut tables = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            tables += text
                .lines()
                // Module-level statics only (unit tests have tables of their own).
                .filter(|l| {
                    (l.starts_with("static ") || l.starts_with("pub(crate) static "))
                        && l.contains(": Registry<")
                })
                .count();
        }
        assert_eq!(
            tables + 1,
            super::held_across_fork().len(),
            "tables plus the log sink"
        );
    }
}
