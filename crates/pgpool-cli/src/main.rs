//! `pgpool`: the command-line face of the pool, for operators and scripts.
//!
//! * `health [URL]`: one health check, one line or JSON; the exit code tells the state.
//! * `stats --watch [URL]`: a live view of one pool (states, waiters, counters, latency
//!   histograms) while a small built-in workload runs.
//! * `bench [URL]`: acquire and query throughput and latency; `--sweep` tries a range of pool
//!   sizes, plots throughput and p99 against size and recommends one.
//! * `metrics --listen ADDR [URL]`: a Prometheus endpoint, the health JSON and a
//!   self-refreshing status page.
//! * `demo`: worker threads through one pool, then a new connection per query, compared.
//! * `temp-cluster`: a throwaway PostgreSQL for scripts, until stdin closes or a signal.
//!
//! Without a URL (and without `DATABASE_URL`) the pool commands start a throwaway cluster and
//! remove it at the end. SIGINT/SIGTERM stop a command gracefully (the library's
//! `pgpool::shutdown`): its pool closes within `--close-timeout`, so no more work is accepted,
//! the command stops its threads, prints what it has and removes its cluster; a second signal
//! exits at once. Errors are one `pgpool: error: ...` line on stderr; the exit codes are in
//! [`EXIT_CODES`].

mod bench;
mod demo;
mod health;
mod metrics;
mod plot;
mod signals;
mod snapshot;
mod stats;
mod sweep;
mod target;
mod temp_cluster;
mod util;
mod workload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pgpool_testkit::TempCluster;

use util::{Failure, EXIT_USAGE};

/// The exit codes, as `--help` shows them.
const EXIT_CODES: &str = "\
Exit codes:
  0    success; health: healthy
  1    failure (cannot connect, a query failed, ...); health: degraded
  2    health: down, unreachable, or the check could not run
  64   usage: a bad option or value, an invalid URL or pool option
  130  interrupted: demo or bench cut short by SIGINT/SIGTERM (their partial results are printed)

`stats --watch`, `metrics` and `temp-cluster` treat SIGINT/SIGTERM as their normal end: 0.
A second signal ends any command at once: 130 (SIGINT) or 143 (SIGTERM).";

/// A blocking, thread-based PostgreSQL connection pool: health checks, live stats,
/// benchmarks, a Prometheus endpoint and a demo.
#[derive(Debug, Parser)]
#[command(name = "pgpool", version, about, after_long_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a server through a pool: one line, or JSON; the exit code tells the state.
    ///
    /// Acquires a connection (opening one), asks the server for its database, version and
    /// time, and prints the result with the pool's counts: `healthy  db=app version=16.4
    /// latency=1.2ms open=1 idle=1 in_use=0 waiting=0 pool=default`. With --json it prints the
    /// body of the seeds' `/api/db/health` endpoint instead.
    ///
    /// Exit codes: 0 healthy, 1 degraded (the check passed, but connects failed recently or too
    /// many callers wait), 2 down or unreachable (the check failed, or no throwaway cluster
    /// could start), 64 usage error.
    #[command(after_long_help = EXIT_CODES)]
    Health(health::HealthArgs),
    /// Watch one pool live while a small built-in workload runs.
    ///
    /// Starts a pool and a workload of T threads on P connections (`--workload T,P`, each
    /// thread acquiring and running a short query in a loop, so there is something to watch),
    /// then every --interval redraws a compact view: states (open, idle, in use, waiting,
    /// pending), counters (acquires, waits, timeouts, connects, closes) and the histograms
    /// p50/p90/p99/max of acquire wait, query, hold and connect time. Without --watch it prints
    /// one snapshot after one interval. Without a terminal, or with --json, it prints one JSON
    /// object per line per interval. Ends after --duration or at SIGINT/SIGTERM (exit 0).
    #[command(after_long_help = EXIT_CODES)]
    Stats(stats::StatsArgs),
    /// Measure acquire and query throughput and latency against a server.
    ///
    /// T threads share a pool of P connections for --duration; each loops: acquire, run
    /// --query, release. A progress bar is drawn on a terminal; the final table gives
    /// queries/s, acquire and query p50/p99 (measured by the client) and errors. With --json
    /// the table is one JSON object.
    ///
    /// --sweep runs one such bench per pool size, draws throughput and p99 against size in the
    /// terminal and recommends the smallest size whose throughput is within 5% of the best,
    /// next to the rule of thumb `cores × 2 + spindles` (cores: this machine's available
    /// parallelism, which is the server's only when both run here; spindles: --spindles).
    #[command(after_long_help = EXIT_CODES)]
    Bench(bench::BenchArgs),
    /// Serve Prometheus metrics, the health JSON and a live status page over HTTP.
    ///
    /// GET /metrics: the pool's metrics in the Prometheus text format (version 0.0.4).
    /// GET /health: the health JSON (200 when healthy or degraded, 503 when down).
    /// GET /stats.json: the pool's stats snapshot as JSON.
    /// GET /: a self-contained status page (no external assets) that refreshes itself.
    ///
    /// Prints `listening on http://ADDR/` on stdout once bound (port 0 picks a free one). Runs
    /// until SIGINT/SIGTERM, then stops accepting requests and work, closes the pool within
    /// --close-timeout and exits 0.
    #[command(after_long_help = EXIT_CODES)]
    Metrics(metrics::MetricsArgs),
    /// Run worker threads through one pool and compare with a new connection per query.
    ///
    /// Without --url (or DATABASE_URL) a throwaway PostgreSQL cluster is started in a
    /// temporary directory and removed at the end. N threads share a pool of P connections
    /// for S seconds; each loops acquire, `SELECT $1::int4 + 1`, release. The summary shows
    /// queries/s, acquire-wait percentiles and the pool's statistics, its health JSON and
    /// histogram lines; then the same threads open a new connection for every query for S2
    /// seconds, and the speedup is printed.
    #[command(after_long_help = EXIT_CODES)]
    Demo(demo::DemoArgs),
    /// Start a throwaway PostgreSQL, print its URL, keep it until stdin closes or a signal.
    ///
    /// Prints exactly one line on stdout, the server's URL (a superuser with trust
    /// authentication on 127.0.0.1), then waits. The cluster is stopped and its directory
    /// removed when standard input reaches end-of-file or on SIGTERM/SIGINT; if this process
    /// is killed outright, a watchdog process removes it. Typical use in a script:
    /// `pgpool temp-cluster > url.txt < fifo &`.
    #[command(after_long_help = EXIT_CODES)]
    TempCluster,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors get EX_USAGE, not clap's 2.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    signals::install();
    let result = match cli.command {
        Command::Health(args) => health::run(&args),
        Command::Stats(args) => stats::run(&args).map(|()| 0),
        Command::Bench(args) => bench::run(&args),
        Command::Metrics(args) => metrics::run(&args).map(|()| 0),
        Command::Demo(args) => demo::run(&args).map(|()| {
            if signals::interrupted() {
                signals::EXIT_INTERRUPTED
            } else {
                0
            }
        }),
        Command::TempCluster => temp_cluster::run().map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, message }) => {
            eprintln!("pgpool: error: {message}");
            ExitCode::from(code)
        }
    }
}

/// Starts a throwaway cluster with a readable error.
pub(crate) fn start_cluster() -> Result<TempCluster, String> {
    TempCluster::start().map_err(|e| format!("cannot start a throwaway PostgreSQL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
