//! The pgpool benchmark suite: pool overhead, end-to-end `SELECT` against r2d2, the raw
//! driver, pgbench and connect-per-query, overload fairness, memory and a TPC-B mix, all in
//! one run on one throwaway PostgreSQL cluster. Run it through `scripts/bench.sh`.
//!
//! Arguments: `--quick` (smoke run), `--out DIR` (results.json and PERFORMANCE.md),
//! `--c-driver PATH` (the C driver linked to libpgpool.so), `--command TEXT` (recorded in
//! the report), `--only SCENARIO[,SCENARIO]` (overhead, fairness, memory, select1, tpcb).
//! `--rebuild-report DIR` rewrites DIR/PERFORMANCE.md from DIR/perf/results.json (after
//! editing docs/perf/analysis.md, which the report embeds). For profiling one contender of
//! scenario 1 alone: `--child-overhead pgpool|r2d2 THREADS SECONDS`; one of scenario 2 on one
//! thread for a fixed number of queries: `--child-profile client|raw|pool QUERIES CONNINFO`
//! (scripts/profile.sh).

mod common;
mod e2e;
mod external;
mod mix;
mod overhead;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use pgpool_testkit::{ClusterOptions, TempCluster};

use common::{Plan, Row};
use external::Endpoint;

struct Args {
    quick: bool,
    out: PathBuf,
    c_driver: Option<PathBuf>,
    command: String,
    only: Option<Vec<String>>,
}

fn parse_args() -> Args {
    let mut args = Args {
        quick: false,
        out: PathBuf::from("target/bench-quick"),
        c_driver: None,
        command: "scripts/bench.sh".into(),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--out" => args.out = it.next().expect("--out DIR").into(),
            "--c-driver" => args.c_driver = it.next().map(PathBuf::from),
            "--command" => args.command = it.next().expect("--command TEXT"),
            "--only" => {
                let list = it.next().expect("--only LIST");
                args.only = Some(list.split(',').map(str::to_string).collect());
            }
            "--child-memory" => {
                let kind = it.next().expect("kind");
                let size = it.next().expect("size").parse().expect("size");
                let conninfo = it.next().expect("conninfo");
                mix::memory_child(&kind, size, &conninfo);
                std::process::exit(0);
            }
            "--rebuild-report" => {
                let dir = PathBuf::from(it.next().expect("--rebuild-report DIR"));
                report::rebuild(&dir).expect("rebuilding the report");
                std::process::exit(0);
            }
            "--child-overhead" => {
                let contender = it.next().expect("pgpool|r2d2");
                let threads = it.next().expect("threads").parse().expect("threads");
                let secs = it.next().expect("seconds").parse().expect("seconds");
                overhead::overhead_child(&contender, threads, secs);
                std::process::exit(0);
            }
            "--child-profile" => {
                let kind = it.next().expect("client|raw|pool");
                let n = it.next().expect("queries").parse().expect("queries");
                let conninfo = it.next().expect("conninfo");
                e2e::profile_child(&kind, n, &conninfo);
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench`; anything else is ignored too.
            _ => {}
        }
    }
    args
}

fn main() {
    let args = parse_args();
    let plan = Plan::new(args.quick);
    let wants = |s: &str| args.only.as_ref().is_none_or(|l| l.iter().any(|x| x == s));
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).expect("output directory");

    let cluster = TempCluster::start_with(&ClusterOptions {
        max_connections: 300,
        extra_conf: vec!["shared_buffers = '128MB'".into()],
        ..ClusterOptions::default()
    })
    .expect("throwaway PostgreSQL cluster");
    let endpoints = vec![
        Endpoint {
            name: "tcp",
            conninfo: cluster.conninfo(),
            host: "127.0.0.1".into(),
            port: cluster.port(),
        },
        Endpoint {
            name: "unix",
            conninfo: cluster.unix_conninfo(),
            host: cluster.socket_dir().display().to_string(),
            port: cluster.port(),
        },
    ];
    let server_version: String = cluster
        .admin()
        .expect("admin session")
        .query_one("SELECT version()", &[])
        .expect("version")
        .get(0);
    let select1_script =
        std::env::temp_dir().join(format!("pgpool-bench-{}-select1.sql", std::process::id()));
    std::fs::write(&select1_script, "SELECT 1;\n").expect("pgbench script");
    let c_driver = args.c_driver.clone().filter(|p| p.is_file());
    if c_driver.is_none() {
        println!("C driver not available: the C ABI contender is skipped");
    }

    let mut rows: Vec<Row> = Vec::new();
    if wants("overhead") {
        overhead::pool_overhead(&plan, &mut rows);
    }
    if wants("fairness") {
        overhead::fairness(&plan, &mut rows);
    }
    if wants("memory") {
        mix::memory(&plan, &endpoints[0], &mut rows);
    }
    if wants("select1") {
        let setup = e2e::Setup {
            endpoints: &endpoints,
            bindir: cluster.bindir(),
            c_driver,
            select1_script: select1_script.clone(),
        };
        e2e::run(&plan, &setup, &mut rows);
    }
    if wants("tpcb") {
        mix::tpcb(&plan, cluster.bindir(), &endpoints[0], &mut rows);
    }
    let _ = std::fs::remove_file(&select1_script);

    let meta = report::Meta::collect(
        &args.command,
        &server_version,
        plan.quick,
        started.elapsed(),
    );
    report::write(&args.out, &meta, &rows).expect("writing the report");
    println!(
        "wrote {}/perf/results.json and {}/PERFORMANCE.md in {:.0} s",
        args.out.display(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
}
