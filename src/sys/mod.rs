//! The few system calls pgpool makes directly, behind safe functions: the only place besides
//! the C ABI (`ffi`) where `unsafe` is allowed. Linux-only calls sit behind
//! `cfg(target_os = …)` with portable fallbacks, so the crate builds on macOS and the BSDs.

pub(crate) mod clock;
pub(crate) mod fork;
pub(crate) mod socket;
pub(crate) mod user;
