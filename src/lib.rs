//! # pgpool
//!
//! A blocking, thread-based PostgreSQL connection pool, usable from Rust and, through
//! `libpgpool.so` and `include/pgpool.h`, from C, C++, Go and anything with a C FFI.
//!
//! ```no_run
//! # fn main() -> Result<(), pgpool::Error> {
//! let pool = pgpool::Pool::builder()
//!     .max_size(8)
//!     .build("postgres://app@127.0.0.1/app")?;
//! let mut conn = pool.get()?;
//! let row = conn.query_one("SELECT $1::text || ' world'", &[&"hello"])?;
//! assert_eq!(row.get::<_, String>(0), "hello world");
//! # Ok(()) }
//! ```
//!
//! Module map: [`config`] (options and the builder), [`options`] (pool options from the
//! connection string and the environment), [`error`], [`event`] (hooks and close
//! reasons), [`manager`] (the connector abstraction), `pg` + [`connection`] (PostgreSQL
//! sessions), `pool` (state, acquire/release, background threads, guard), [`stats`] (with
//! [`Histogram`]s), [`prometheus`] (the text exposition), [`query_log`] (statement log
//! lines), [`registry`] (named pools) and [`shutdown`] (SIGTERM / SIGINT).
//! `docs/ARCHITECTURE.md` has the whole picture.

#![deny(unsafe_code)]

pub mod client;
mod clock;
mod compat;
pub mod config;
pub mod connection;
pub mod error;
pub mod event;
mod health;
mod histogram;
// The C ABI is unsafe by nature; every block in it carries its own SAFETY reason.
#[allow(unsafe_code)]
mod ffi;
pub mod manager;
pub mod options;
mod pg;
mod pool;
pub mod prometheus;
pub mod query_log;
pub mod registry;
mod retry;
pub mod shutdown;
pub mod stats;
mod stmt_cache;
mod sync;
mod sys;

pub use client::{
    CancelToken, Column, CopyIn, CopyOut, DbError, NoticeHandler, Notification, Params, Row,
    RowIndex, SimpleQueryMessage, SimpleRow, Statement, TransactionStatus,
};
pub use compat::PostgresManager;
pub use config::{Builder, Config};
pub use connection::{PgConnection, SocketBounds};
pub use error::{Error, ErrorKind};
pub use event::{CloseReason, Event};
pub use health::Health;
pub use histogram::Histogram;
pub use manager::{Interrupt, Manager, Probe, R2d2Manager};
pub use pg::PgManager;
pub use pool::{HealthState, Pool, PooledConnection};
pub use registry::{CloseReport, PoolClose, Registry, RegistryBuilder};
pub use retry::Retry;
pub use stats::Stats;

/// The `postgres` crate this pool is built on (row, statement and type APIs).
pub use postgres;
