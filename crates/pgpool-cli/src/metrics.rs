//! `pgpool metrics --listen ADDR [URL]`: Prometheus metrics, the health JSON and a status page
//! over HTTP (`tiny_http`), until SIGINT/SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tiny_http::{Header, Method, Request, Response, Server};

use pgpool::{HealthState, Pool};

use crate::target::{self, ServerArgs};
use crate::util::{Failure, EXIT_FAILURE};
use crate::workload::{self, Workload, WorkloadSpec};

/// The status page: one file, inline CSS and JS, no external assets.
const PAGE: &str = include_str!("page.html");
/// Threads answering requests (a `/health` check may take up to its timeout).
const HTTP_THREADS: usize = 4;
/// How often an idle request thread checks for the stop.
const POLL: Duration = Duration::from_millis(100);

/// Options of `pgpool metrics`.
#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Address to listen on (port 0: a free port; the bound address is printed)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9187")]
    pub(crate) listen: SocketAddr,
    /// The pool's max_size [default: the URL's pool_max_size, else 10]
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) pool_size: Option<u32>,
    /// Generate traffic: T threads on a pool of P connections (`T,P`), `T`, or `off`
    #[arg(long, value_name = "T,P", default_value = "off", value_parser = workload::parse_spec)]
    pub(crate) workload: WorkloadSpec,
}

/// What request threads share.
struct State {
    pool: Pool,
    workload: Option<Workload>,
    started: Instant,
}

/// Serves until a signal, then shuts down in order: stop accepting requests, stop the
/// workload, close the pool within its close timeout, remove the throwaway cluster.
pub(crate) fn run(args: &MetricsArgs) -> Result<(), Failure> {
    let target = target::resolve(args.server.url.as_deref(), EXIT_FAILURE)?;
    let mut builder = target::builder(&args.server, &target, "pgpool-metrics");
    if let Some(size) = args.workload.pool_size.or(args.pool_size) {
        builder = builder.max_size(size);
    }
    let pool = target::build(builder, &target)?;
    let server = match Server::http(args.listen) {
        Ok(server) => Arc::new(server),
        Err(e) => {
            target::close(&pool);
            return Err(format!("cannot listen on {}: {e}", args.listen).into());
        }
    };
    let workload = match Workload::start(&pool, args.workload.threads) {
        Ok(w) => (w.threads() > 0).then_some(w),
        Err(e) => {
            target::close(&pool);
            return Err(e);
        }
    };
    let state = Arc::new(State {
        pool: pool.clone(),
        workload,
        started: Instant::now(),
    });
    let addr = server
        .server_addr()
        .to_ip()
        .map_or_else(|| args.listen.to_string(), |a| a.to_string());
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on http://{addr}/ (pool {})", pool.name());
        let _ = stdout.flush();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for i in 0..HTTP_THREADS {
        let (server, state, stop) = (Arc::clone(&server), Arc::clone(&state), Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match server.recv_timeout(POLL) {
                        Ok(Some(request)) => respond(&state, request),
                        Ok(None) => {}
                        Err(e) => {
                            eprintln!("pgpool: warning: accepting a request failed: {e}");
                            std::thread::sleep(POLL);
                        }
                    }
                }
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => eprintln!("pgpool: warning: cannot start HTTP thread {i}: {e}"),
        }
    }
    if handles.is_empty() {
        target::close(&pool);
        return Err("no HTTP thread could start".into());
    }

    crate::signals::wait();
    eprintln!("pgpool: stopping: no more requests; closing the pool");
    stop.store(true, Ordering::SeqCst);
    for handle in handles {
        let _ = handle.join();
    }
    // The last clone of the server closes the listening socket.
    drop(server);
    if let Some(w) = state.workload.as_ref() {
        w.stop();
    }
    target::close(&pool);
    if let Ok(state) = Arc::try_unwrap(state) {
        if let Some(w) = state.workload {
            w.join();
        }
    }
    drop(target);
    Ok(())
}

fn header(name: &str, value: &str) -> Header {
    // Both halves are ASCII constants of ours: the conversion cannot fail.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

/// Answers one request.
fn respond(state: &State, request: Request) {
    let method = request.method().clone();
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let (status, content_type, body) = match (&method, path.as_str()) {
        (Method::Get | Method::Head, "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            state.pool.prometheus(),
        ),
        (Method::Get | Method::Head, "/health") => {
            let health = state.pool.health();
            let down = !health.ok || health.state == HealthState::Down;
            (
                if down { 503 } else { 200 },
                "application/json",
                health.to_json(),
            )
        }
        (Method::Get | Method::Head, "/stats.json") => {
            let value = crate::snapshot::json(
                state.pool.name(),
                &state.pool.stats(),
                state.started.elapsed(),
                state.workload.as_ref(),
            );
            (200, "application/json", value.to_string())
        }
        (Method::Get | Method::Head, "/") => (200, "text/html; charset=utf-8", PAGE.to_string()),
        (Method::Get | Method::Head, _) => (404, "text/plain; charset=utf-8", "not found\n".into()),
        _ => (
            405,
            "text/plain; charset=utf-8",
            "method not allowed\n".into(),
        ),
    };
    let response = Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"));
    // A client that went away is no concern of ours.
    let _ = request.respond(response);
}
