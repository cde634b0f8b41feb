//! `pgpool health [URL]`: one health check through a pool, as one line or as the JSON body
//! of the seeds' `/api/db/health`, with the exit code telling the state.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use pgpool::{Health, HealthState};

use crate::target::{self, ServerArgs};
use crate::util::{millis_f64, parse_duration, Failure};

/// Exit code: healthy.
pub(crate) const EXIT_HEALTHY: u8 = 0;
/// Exit code: the check succeeded but the pool is degraded.
pub(crate) const EXIT_DEGRADED: u8 = 1;
/// Exit code: down, unreachable, or the check could not run.
pub(crate) const EXIT_DOWN: u8 = 2;

/// Options of `pgpool health`.
#[derive(Debug, Args)]
pub(crate) struct HealthArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Print the JSON body of `/api/db/health` instead of one line (ok, pool, state,
    /// reasons, database, timestamp, serverVersion, inRecovery, replicaLagMs, latencyMs,
    /// poolSize, idleCount, ...)
    #[arg(long)]
    pub(crate) json: bool,
    /// Bound on the whole check: connecting, the round trip (sets health_timeout)
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
}

/// The exit code for a health result.
pub(crate) fn exit_code(health: &Health) -> u8 {
    match (health.ok, health.state) {
        (true, HealthState::Healthy) => EXIT_HEALTHY,
        (true, HealthState::Degraded) => EXIT_DEGRADED,
        _ => EXIT_DOWN,
    }
}

/// The state word of the one-line form: the breaker's state, or `down` when the check failed.
pub(crate) fn state_word(health: &Health) -> &'static str {
    if health.ok {
        health.state.as_str()
    } else {
        HealthState::Down.as_str()
    }
}

/// `healthy  db=app version=16.4 latency=1.2ms open=1 idle=1 in_use=0 waiting=0 pool=default`
/// (on a standby `role=standby lag=0.0s` after the version), then the reasons of a degraded
/// state or the error of a failed check.
pub(crate) fn one_line(health: &Health) -> String {
    let mut line = format!("{:<8} ", state_word(health));
    if health.ok {
        // `15.6 (Debian 15.6-0+deb12u1)`: the number is what matters on one line.
        let version = health
            .server_version
            .split_whitespace()
            .next()
            .unwrap_or("");
        line.push_str(&format!("db={} version={version} ", health.database));
        if health.in_recovery == Some(true) {
            let lag = health
                .replica_lag
                .map_or_else(|| "?".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
            line.push_str(&format!("role=standby lag={lag} "));
        }
    }
    line.push_str(&format!(
        "latency={:.1}ms open={} idle={} in_use={} waiting={} pool={}",
        millis_f64(health.latency),
        health.open,
        health.idle,
        health.in_use,
        health.waiting,
        health.name,
    ));
    match &health.error {
        Some(e) => line.push_str(&format!(" error=\"{}\"", one_line_text(&e.to_string()))),
        None if !health.reasons.is_empty() => line.push_str(&format!(
            " reasons=\"{}\"",
            one_line_text(&health.reasons.join("; "))
        )),
        None => {}
    }
    line
}

/// `text` on one line (newlines folded, quotes softened) for a `key="..."` field.
fn one_line_text(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('"', "'")
}

/// Runs the check; returns the exit code of the state.
pub(crate) fn run(args: &HealthArgs) -> Result<u8, Failure> {
    let target = target::resolve(args.server.url.as_deref(), EXIT_DOWN)?;
    let builder = target::builder(&args.server, &target, "pgpool-health")
        .health_timeout(args.timeout)
        .connect_timeout(args.timeout)
        .acquire_timeout(args.timeout);
    let pool = target::build(builder, &target)?;
    let health = pool.health();
    let text = if args.json {
        health.to_json()
    } else {
        one_line(&health)
    };
    target::close(&pool);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(EXIT_DOWN, format!("cannot write to stdout: {e}")))?;
    Ok(exit_code(&health))
}
