//! The [`Builder`]'s `build*` methods: they need the pool and the PostgreSQL manager, which
//! `config.rs` (options, validation, setters) does not depend on.

use std::sync::Arc;

use crate::config::Builder;
use crate::error::Error;
use crate::event::{emit, Event};
use crate::manager::Manager;
use crate::pg::PgManager;
use crate::pool::Pool;

impl Builder {
    /// Validates the options and builds a PostgreSQL pool for `conninfo`, a URL
    /// (`postgres://user:pass@host:port/db?opt=val`) or `key=value` string.
    ///
    /// The string may also set pool options (`pool_max_size=20`, `pool_acquire_timeout=5s`,
    /// …), and so may the environment (`PGPOOL_MAX_SIZE`, …, unless
    /// [`env`](Builder::env)`(false)`); a setter outranks the string, which outranks the
    /// environment. See [`options`](crate::options).
    ///
    /// Returns at once: the first `min_idle` connections are opened in the background (use
    /// [`Pool::wait_ready`] to wait for them). Errors: an invalid option, or an unparsable
    /// connection string.
    pub fn build(self, conninfo: &str) -> Result<Pool<PgManager>, Error> {
        let (config, hook, conninfo) = self.resolve(Some(conninfo))?;
        if config.transaction_pooling && config.statement_timeout.is_some() {
            log::warn!(
                target: "pgpool",
                "statement_timeout is sent in the startup packet's options, which PgBouncer \
                 refuses (or ignores, with ignore_startup_parameters = options): behind a \
                 transaction-pooling proxy set it on the server role, or use query_timeout"
            );
        }
        if config.transaction_pooling && config.init_sql.is_some() {
            log::warn!(
                target: "pgpool",
                "init_sql runs in one transaction of one server connection behind a \
                 transaction-pooling proxy: later transactions may run on other server \
                 connections, where what it set does not hold"
            );
        }
        let mut manager = PgManager::new(&conninfo, &config)?;
        if let Some(hook) = &hook {
            let hook = hook.clone();
            manager = manager.with_notice_handler(Arc::new(move |notice| {
                emit(
                    Some(&hook),
                    Event::Notice {
                        notice: Box::new(notice.clone()),
                    },
                )
            }));
        }
        Ok(Pool::start(manager, config, hook))
    }

    /// Validates the options and builds a pool around any [`Manager`]. Options that concern
    /// PostgreSQL sessions (statement timeout, application name, statement cache, TCP
    /// settings) are the manager's business and are ignored here. The environment's pool
    /// options apply as in [`build`](Builder::build).
    pub fn build_with_manager<M: Manager>(self, manager: M) -> Result<Pool<M>, Error> {
        let (config, hook, _) = self.resolve(None)?;
        Ok(Pool::start(manager, config, hook))
    }
}
