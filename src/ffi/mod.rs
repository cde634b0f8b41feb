//! Everything that crosses a foreign-function boundary, and so the only place `unsafe` lives:
//! the few system calls the pool makes directly (`os`) and the C ABI of `libpgpool.so`
//! (`capi`).

pub(crate) mod capi;
