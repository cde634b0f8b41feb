//! The C ABI of `libpgpool.so`, described by the generated `include/pgpool.h`.
//!
//! Handles are generation-checked table entries (`handle`), every exported body runs inside
//! a panic boundary (`panic`), arguments are checked before use (`args`), and failures carry
//! numbered codes plus an optional detail object (`error`). Objects: `config`, `pool`,
//! `conn`, `result` (values rendered by `render` and `datetime`), `stats`, `log`.
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
mod notify;
mod panic;
mod params;
mod pool;
mod query;
mod render;
mod result;
mod stats;
mod test_hooks;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("the pgpool C ABI encodes handles in 64-bit pointers");

/// The library's version (`"MAJOR.MINOR.PATCH"`, Cargo's package version), a static string.
/// Compare with the header's `PGPOOL_VERSION_STRING` to detect a header/library mismatch.
/// Thread-safe, non-blocking, never fails.
#[no_mangle]
pub extern "C" fn pgpool_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
