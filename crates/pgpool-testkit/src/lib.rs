//! Support code for pgpool's tests, benchmarks and command-line demo: [`TempCluster`], a
//! throwaway PostgreSQL server (see [`cluster`]).
//!
//! This crate is a dev-dependency of the `pgpool` library and a dependency of `pgpool-cli`;
//! nothing in it is linked into `libpgpool`.

pub mod cluster;

pub use cluster::{
    server_bindir, ClusterOptions, ClusterTls, StopMode, TempCluster, SCRAM_PASSWORD, SCRAM_USER,
};
