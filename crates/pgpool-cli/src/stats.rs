//! `pgpool stats [--watch] [URL]`: one pool's live view while a built-in workload runs.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;

use crate::target::{self, ServerArgs};
use crate::util::{parse_duration, Failure};
use crate::workload::{self, Workload, WorkloadSpec};

/// Options of `pgpool stats`.
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Redraw the view every --interval until --duration or a signal (else: one snapshot)
    #[arg(long)]
    pub(crate) watch: bool,
    /// One JSON object per line instead of the view (the default without a terminal)
    #[arg(long)]
    pub(crate) json: bool,
    /// Time between two snapshots
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub(crate) interval: Duration,
    /// How long to watch (SIGINT/SIGTERM end it earlier)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// The built-in workload: T threads on a pool of P connections (`T,P`), `T` alone (the pool
    /// keeps the URL's size), or `off`
    #[arg(long, value_name = "T,P", default_value = "4,2", value_parser = workload::parse_spec)]
    pub(crate) workload: WorkloadSpec,
}

/// An interval of at least 10 ms.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) {
        return Err(format!("'{s}' is too short (at least 10ms)"));
    }
    Ok(d)
}

/// Runs the workload and prints snapshots; a signal ends it normally.
pub(crate) fn run(args: &StatsArgs) -> Result<(), Failure> {
    let target = target::resolve(args.server.url.as_deref(), crate::util::EXIT_FAILURE)?;
    let mut builder = target::builder(&args.server, &target, "pgpool-stats");
    if let Some(size) = args.workload.pool_size {
        builder = builder.max_size(size);
    }
    let pool = target::build(builder, &target)?;
    let workload = match Workload::start(&pool, args.workload.threads) {
        Ok(w) => w,
        Err(e) => {
            target::close(&pool);
            return Err(e);
        }
    };
    let view = !args.json && io::stdout().is_terminal();
    let start = Instant::now();
    let ticks = if args.watch {
        // Bounded: one snapshot per interval up to the duration (at least one).
        (args.duration.as_nanos() / args.interval.as_nanos()).max(1)
    } else {
        1
    };
    let mut result = Ok(());
    for tick in 1..=ticks {
        let due = start + args.interval * u32::try_from(tick).unwrap_or(u32::MAX);
        if crate::signals::wait_timeout(due.saturating_duration_since(Instant::now())) {
            break;
        }
        let stats = pool.stats();
        let elapsed = start.elapsed();
        let text = if view {
            // Home and clear, then the view: one screen, redrawn in place.
            format!(
                "\x1b[H\x1b[2J{}",
                crate::snapshot::view(pool.name(), &stats, elapsed, Some(&workload))
            )
        } else {
            let mut line =
                crate::snapshot::json(pool.name(), &stats, elapsed, Some(&workload)).to_string();
            line.push('\n');
            line
        };
        let mut stdout = io::stdout().lock();
        if let Err(e) = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            result = Err(format!("cannot write to stdout: {e}").into());
            break;
        }
    }
    workload.stop();
    target::close(&pool);
    workload.join();
    drop(target);
    result
}
