//! Which server a command talks to, and the pool it builds for it.
//!
//! The URL comes from the command's argument, else `DATABASE_URL`, else a throwaway
//! PostgreSQL cluster that this process starts (in a temporary directory, on a free port of
//! 127.0.0.1) and removes when the command ends. The URL may carry `pool_*` options and the
//! `PGPOOL_*` environment variables apply, as for any pool; command-line flags outrank both.

use std::time::Duration;

use clap::Args;

use pgpool::{Builder, ErrorKind, Pool};
use pgpool_testkit::TempCluster;

use crate::util::{parse_duration, redact, Failure, EXIT_FAILURE};

/// The server options every pool command shares.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// PostgreSQL URL or key=value string; may carry pool_* options
    /// [default: $DATABASE_URL, else a throwaway cluster started for this command]
    #[arg(value_name = "URL")]
    pub(crate) url: Option<String>,
    /// The pool's name (the `pool` label of its metrics) [default: the URL's pool_name, else
    /// "default"]
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// How long closing the pool may wait for connections in use at the end (then they are
    /// reclaimed)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) close_timeout: Duration,
}

/// A server to talk to: its URL, and the throwaway cluster behind it if this process started
/// one (removed when this is dropped).
pub(crate) struct Target {
    pub(crate) url: String,
    /// Kept for its `Drop`, which stops and removes the cluster.
    _cluster: Option<TempCluster>,
}

impl Target {
    /// The URL with any password hidden, for messages.
    pub(crate) fn shown(&self) -> String {
        redact(&self.url)
    }
}

/// Resolves the URL: `arg`, else `DATABASE_URL`, else a new throwaway cluster (announced on
/// stderr, so that stdout stays one line or JSON). `unreachable_code` is the exit code when
/// the cluster cannot start.
pub(crate) fn resolve(arg: Option<&str>, unreachable_code: u8) -> Result<Target, Failure> {
    let env_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    match arg.map(str::to_string).or(env_url) {
        Some(url) => Ok(Target {
            url,
            _cluster: None,
        }),
        None => {
            eprintln!("pgpool: no URL given: starting a throwaway PostgreSQL (removed at exit)");
            let cluster = crate::start_cluster().map_err(|e| Failure::new(unreachable_code, e))?;
            eprintln!("pgpool: throwaway PostgreSQL at {}", cluster.url());
            Ok(Target {
                url: cluster.url(),
                _cluster: Some(cluster),
            })
        }
    }
}

/// The builder every command starts from: a name when given, and this program's
/// application_name unless the URL or the environment names one (a builder setting would
/// outrank theirs).
pub(crate) fn builder(args: &ServerArgs, target: &Target, application_name: &str) -> Builder {
    let mut builder = Pool::builder().close_timeout(args.close_timeout);
    let named = target.url.to_ascii_lowercase().contains("application_name")
        || ["PGAPPNAME", "PGPOOL_APPLICATION_NAME"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if !named {
        builder = builder.application_name(application_name);
    }
    if let Some(name) = &args.name {
        builder = builder.name(name.clone());
    }
    builder
}

/// Builds the pool, to be closed within its close timeout of a SIGINT/SIGTERM; an invalid
/// URL or option is a usage error.
pub(crate) fn build(builder: Builder, target: &Target) -> Result<Pool, Failure> {
    let pool = builder
        .build(&target.url)
        .map_err(|e| build_error(&e, target))?;
    crate::signals::close_on_signal(&pool, pool.config().close_timeout);
    Ok(pool)
}

/// The failure for an error from building a pool (or its config) for `target`.
pub(crate) fn build_error(e: &pgpool::Error, target: &Target) -> Failure {
    if e.kind() == ErrorKind::Config {
        Failure::usage(format!(
            "invalid database URL or pool option for '{}': {e}",
            target.shown()
        ))
    } else {
        Failure::new(
            EXIT_FAILURE,
            format!("cannot create the pool for {}: {e}", target.shown()),
        )
    }
}

/// Closes `pool` within its close timeout, saying so on stderr when connections had to be
/// reclaimed.
pub(crate) fn close(pool: &Pool) {
    if !pool.close() {
        eprintln!(
            "pgpool: warning: pool '{}' closed with connections still in use (reclaimed)",
            pool.name()
        );
    }
}
