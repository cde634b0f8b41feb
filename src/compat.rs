//! The compatibility path for code written against rust-postgres: [`PostgresManager`] pools
//! `postgres::Client`s with pgpool's engine (FIFO waiters, deadlines, lifetimes, stats).
//! r2d2_postgres's manager works too, through [`R2d2Manager`](crate::R2d2Manager).
//!
//! What it costs against the default pool ([`Pool::builder().build(…)`](crate::Builder::build)),
//! measured on the same machine (see docs/PERFORMANCE.md):
//! - every `postgres::Client` runs a tokio runtime and talks to its connection task through
//!   a channel: several times the instructions and system calls per query;
//! - the driver hides the transaction status, so every release sends a `ROLLBACK` (a round
//!   trip, and a server WARNING when no transaction was open);
//! - the driver hides its socket: no zero-cost probe before hand-out (validation round trips
//!   only); `connect_timeout` bounds only the TCP connect;
//! - closing may block on a cut network, so retired clients close on a closer thread;
//! - it panics when called from inside a tokio runtime (the driver starts its own).

use std::time::Duration;

use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres::Socket;

use crate::error::Error;
use crate::manager::{Manager, Probe};

/// A [`Manager`] of `postgres::Client`s. See the [module documentation](self) for its costs.
///
/// ```no_run
/// # fn main() -> Result<(), pgpool::Error> {
/// let config: postgres::Config = "host=localhost user=app".parse().unwrap();
/// let manager = pgpool::PostgresManager::new(config, postgres::NoTls);
/// let pool = pgpool::Pool::builder().max_size(4).build_with_manager(manager)?;
/// let mut client = pool.get()?;
/// let row = client.query_one("SELECT 1::int4", &[]).map_err(pgpool::Error::from)?;
/// assert_eq!(row.get::<_, i32>(0), 1);
/// # Ok(()) }
/// ```
pub struct PostgresManager<T> {
    config: postgres::Config,
    tls: T,
}

impl<T> PostgresManager<T> {
    /// Pools clients opened with `config` and `tls`.
    pub fn new(config: postgres::Config, tls: T) -> PostgresManager<T> {
        PostgresManager { config, tls }
    }
}

impl<T> std::fmt::Debug for PostgresManager<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresManager")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("user", &self.config.get_user())
            .finish()
    }
}

impl<T> Manager for PostgresManager<T>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type Connection = postgres::Client;

    fn connect(&self) -> Result<postgres::Client, Error> {
        self.config
            .connect(self.tls.clone())
            .map_err(Error::from_connect)
    }

    fn validate(&self, conn: &mut postgres::Client, timeout: Duration) -> Result<(), Error> {
        conn.is_valid(timeout).map_err(Error::from_query)
    }

    fn probe(&self, conn: &mut postgres::Client) -> Probe {
        if conn.is_closed() {
            Probe::Broken
        } else {
            Probe::Healthy
        }
    }

    /// The driver does not say whether a transaction is open: always roll back.
    fn reset(&self, conn: &mut postgres::Client) -> bool {
        !conn.is_closed() && conn.batch_execute("ROLLBACK").is_ok()
    }
}
