//! Support code for pgpool's tests, benchmarks and command-line demo: [`TempCluster`], a
//! throwaway PostgreSQL server (see [`cluster`]), [`NetnsCluster`], one behind a network
//! link that can be cut (see [`netns`]), and [`TempPgBouncer`], a throwaway PgBouncer in
//! front of a cluster (see [`pgbouncer`]).
//!
//! This crate is a dev-dependency of the `pgpool` library and a dependency of `pgpool-cli`;
//! nothing in it is linked into `libpgpool`.

pub mod cluster;
pub mod netns;
pub mod pgbouncer;

pub use cluster::{
    server_bindir, ClusterOptions, ClusterTls, StopMode, TempCluster, SCRAM_PASSWORD, SCRAM_USER,
};
pub use netns::{NetnsCluster, NetnsError};
pub use pgbouncer::{
    pgbouncer_binary, pgbouncer_required, PgBouncerError, PgBouncerOptions, TempPgBouncer,
    REQUIRE_PGBOUNCER_VAR,
};
