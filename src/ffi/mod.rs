//! Everything that crosses a foreign-function boundary, and so the only place `unsafe` lives:
//! the few system calls the pool makes directly (`os`).

pub(crate) mod os;
