//! pgpool's own synchronous PostgreSQL client: one struct owns the socket, the protocol state
//! and the buffers; no async runtime anywhere.

pub mod conninfo;
pub(crate) mod tls;
