//! `pgpool`: the command-line face of the pool.
//!
//! * `pgpool demo` runs worker threads through one pool against a PostgreSQL server (a
//!   throwaway one when no URL is given), shows live progress, prints a summary of
//!   throughput, acquire-wait percentiles and pool statistics, then repeats the work with a
//!   new connection per query to show what pooling buys.
//! * `pgpool temp-cluster` starts a throwaway PostgreSQL, prints its URL on one line and keeps
//!   it running until standard input reaches end-of-file or the process gets SIGTERM/SIGINT,
//!   so that scripts can share one server among many test programs.
//!
//! Errors are reported as one `pgpool: error: ...` line on stderr with exit code 1.

mod demo;

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

use clap::{Parser, Subcommand};
use crossbeam_channel::Sender;

use pgpool_testkit::TempCluster;

/// Set by the first SIGINT/SIGTERM: long-running work stops early and cleans up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Signals received so far; a second one exits at once.
static SIGNALS: AtomicU32 = AtomicU32::new(0);
/// Woken on every signal (the `temp-cluster` command waits on it).
static SIGNAL_TX: OnceLock<Sender<()>> = OnceLock::new();

/// Exit code after an interrupt, as shells report death by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// A blocking, thread-based PostgreSQL connection pool: demo and tools.
#[derive(Debug, Parser)]
#[command(name = "pgpool", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run worker threads through one pool and compare with a new connection per query.
    ///
    /// Without --url (or DATABASE_URL) a throwaway PostgreSQL cluster is started in a
    /// temporary directory and removed at the end. N threads share a pool of P connections
    /// for S seconds; each loops acquire, `SELECT $1::int4 + 1`, release. The summary shows
    /// queries/s, acquire-wait percentiles and the pool's statistics; then the same threads
    /// open a new connection for every query for S2 seconds, and the speedup is printed.
    Demo(demo::DemoArgs),
    /// Start a throwaway PostgreSQL, print its URL, keep it until stdin closes or a signal.
    ///
    /// Prints exactly one line on stdout, the server's URL (a superuser with trust
    /// authentication on 127.0.0.1), then waits. The cluster is stopped and its directory
    /// removed when standard input reaches end-of-file or on SIGTERM/SIGINT; if this process
    /// is killed outright, a watchdog process removes it. Typical use in a script:
    /// `pgpool temp-cluster > url.txt < fifo &`.
    TempCluster,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_signal_handler();
    // A signal is how `temp-cluster` is meant to stop; for the demo it cuts the run short.
    let (result, signal_is_failure) = match cli.command {
        Command::Demo(args) => (demo::run(&args), true),
        Command::TempCluster => (temp_cluster(), false),
    };
    match result {
        Ok(()) if signal_is_failure && interrupted() => ExitCode::from(EXIT_INTERRUPTED),
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pgpool: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Routes SIGINT and SIGTERM to [`INTERRUPTED`] and [`SIGNAL_TX`]; a second signal exits at
/// once (a throwaway cluster's watchdog then removes it).
fn install_signal_handler() {
    let (tx, rx) = crossbeam_channel::unbounded();
    // Keep the receiver reachable for the commands that wait on it.
    let _ = SIGNAL_RX.set(rx);
    let _ = SIGNAL_TX.set(tx);
    let installed = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
            eprintln!("\npgpool: interrupted again, exiting now");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        if let Some(tx) = SIGNAL_TX.get() {
            let _ = tx.send(());
        }
    });
    if let Err(e) = installed {
        eprintln!("pgpool: warning: cannot handle SIGINT/SIGTERM ({e}); Ctrl-C ends at once");
    }
}

/// The receiving end of the signal channel.
static SIGNAL_RX: OnceLock<crossbeam_channel::Receiver<()>> = OnceLock::new();

/// True once SIGINT or SIGTERM was received.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Starts a throwaway cluster with a readable error.
pub(crate) fn start_cluster() -> Result<TempCluster, String> {
    TempCluster::start().map_err(|e| format!("cannot start a throwaway PostgreSQL: {e}"))
}

/// `pgpool temp-cluster`: see [`Command::TempCluster`].
fn temp_cluster() -> Result<(), String> {
    let cluster = start_cluster()?;
    if interrupted() {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", cluster.url())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the URL to stdout: {e}"))?;
    drop(stdout);

    let (eof_tx, eof_rx) = crossbeam_channel::bounded::<()>(1);
    std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut sink = [0u8; 4096];
            let mut stdin = io::stdin().lock();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = eof_tx.send(());
        })
        .map_err(|e| format!("cannot start the stdin thread: {e}"))?;

    match SIGNAL_RX.get() {
        Some(signals) => {
            crossbeam_channel::select! {
                recv(eof_rx) -> _ => {},
                recv(signals) -> _ => {},
            }
        }
        None => {
            let _ = eof_rx.recv();
        }
    }
    drop(cluster);
    Ok(())
}

/// `url` with any password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            if let Some((user, _password)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}{tail}");
            }
        }
        return url.to_string();
    }
    // key=value form: hide the value of `password=`.
    url.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("host=h password=secret user=u"),
            "host=h password=*** user=u"
        );
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
