//! Scenario 2: end-to-end `SELECT` throughput, latency and client CPU per query over TCP and
//! the unix socket, every contender alternating within each (transport, threads) group.

use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::common::{alternate, run_threads, warm_pgpool, Contender, Plan, Row, Sample};
use crate::external::{c_driver, pgbench, Endpoint, PgbenchWork};

/// The query every pooled contender runs: one parameter, through a prepared statement.
pub const SQL: &str = "SELECT $1::int4";

/// Everything scenario 2 needs.
pub struct Setup<'a> {
    pub endpoints: &'a [Endpoint],
    pub bindir: &'a Path,
    /// The C driver linked to `libpgpool.so`, when it was built.
    pub c_driver: Option<PathBuf>,
    /// A pgbench script holding `SELECT 1;`.
    pub select1_script: PathBuf,
}

fn pg_config(conninfo: &str) -> postgres::Config {
    let mut config: postgres::Config = conninfo.parse().expect("connection string");
    config.connect_timeout(Duration::from_secs(30));
    config
}

fn check(v: i32) {
    assert_eq!(v, 1, "SELECT returned {v}");
}

/// pgpool's Rust API: acquire, `query_one` through the statement cache, release.
pub fn pgpool_rust(plan: &Plan, ep: &Endpoint, threads: usize, size: u32) -> Sample {
    let pool = warm_pgpool(&ep.conninfo, size);
    let sample = run_threads(threads, plan.warmup, plan.window, |_| {
        let pool = pool.clone();
        move || {
            let mut conn = pool.get().expect("pgpool get");
            check(conn.query_one(SQL, &[&1i32]).expect("query").get(0));
        }
    });
    pool.close();
    sample
}

/// r2d2 + r2d2_postgres as a user writes it: defaults (a validation query on every
/// checkout), the statement prepared by `query_one` each time.
fn r2d2_default(plan: &Plan, ep: &Endpoint, threads: usize, size: u32) -> Sample {
    let manager = PostgresConnectionManager::new(pg_config(&ep.conninfo), NoTls);
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(60))
        .build(manager)
        .expect("r2d2");
    run_threads(threads, plan.warmup, plan.window, |_| {
        let pool = pool.clone();
        move || {
            let mut conn = pool.get().expect("r2d2 get");
            check(conn.query_one(SQL, &[&1i32]).expect("query").get(0));
        }
    })
}

/// r2d2_postgres's manager with the statement prepared once per connection.
#[derive(Debug)]
struct CachedStatement(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for CachedStatement {
    type Connection = (postgres::Client, postgres::Statement);
    type Error = postgres::Error;

    fn connect(&self) -> Result<Self::Connection, postgres::Error> {
        let mut client = self.0.connect()?;
        let statement = client.prepare(SQL)?;
        Ok((client, statement))
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.0)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        self.0.has_broken(&mut conn.0)
    }
}

/// r2d2 tuned: no checkout test, a cached statement per connection.
fn r2d2_tuned(plan: &Plan, ep: &Endpoint, threads: usize, size: u32) -> Sample {
    let manager = CachedStatement(PostgresConnectionManager::new(
        pg_config(&ep.conninfo),
        NoTls,
    ));
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(60))
        .build(manager)
        .expect("r2d2 tuned");
    run_threads(threads, plan.warmup, plan.window, |_| {
        let pool = pool.clone();
        move || {
            let mut conn = pool.get().expect("r2d2 get");
            let (client, statement) = &mut *conn;
            check(
                client
                    .query_one(&*statement, &[&1i32])
                    .expect("query")
                    .get(0),
            );
        }
    })
}

/// The raw driver: one `postgres::Client` per thread, statement prepared once, no pool.
fn raw_client(plan: &Plan, ep: &Endpoint, threads: usize) -> Sample {
    let config = pg_config(&ep.conninfo);
    run_threads(threads, plan.warmup, plan.window, |_| {
        let mut client = config.connect(NoTls).expect("connect");
        let statement = client.prepare(SQL).expect("prepare");
        move || {
            check(
                client
                    .query_one(&statement, &[&1i32])
                    .expect("query")
                    .get(0),
            )
        }
    })
}

/// pgpool's own client with no pool: one session per thread (`PgManager::open`), the
/// statement prepared once, the same loop as the raw driver.
fn pgpool_client(plan: &Plan, ep: &Endpoint, threads: usize) -> Sample {
    let settings = pgpool::Pool::builder().application_name("pgpool-bench");
    let manager = pgpool::PgManager::new(&ep.conninfo, settings.config()).expect("PgManager");
    run_threads(threads, plan.warmup, plan.window, |_| {
        let mut conn = manager.open().expect("connect");
        let statement = conn.prepare_cached(SQL).expect("prepare");
        move || {
            let (rows, _) = conn.query_prepared(&statement, &[&1i32]).expect("query");
            assert_eq!(rows.len(), 1, "SELECT returned {} rows", rows.len());
            check(rows[0].get(0));
        }
    })
}

/// No pool at all: connect, one simple-protocol `SELECT 1`, disconnect.
fn connect_per_query(plan: &Plan, ep: &Endpoint, threads: usize) -> Sample {
    let config = pg_config(&ep.conninfo);
    let plan = Plan {
        warmup: Duration::from_millis(20),
        ..*plan
    };
    run_threads(threads, plan.warmup, plan.window, |_| {
        let config = config.clone();
        move || {
            let mut client = config.connect(NoTls).expect("connect");
            let rows = client.simple_query("SELECT 1").expect("query");
            assert!(!rows.is_empty());
        }
    })
}

/// Thread counts and pool sizes of scenario 2.
fn matrix(plan: &Plan) -> (Vec<usize>, bool) {
    if plan.quick {
        (vec![4], false)
    } else {
        (vec![1, 4, 16, 64], true)
    }
}

/// Contender names: the pool size goes in parentheses.
pub fn pooled_name(base: &str, size: u32) -> String {
    format!("{base} (pool {size})")
}

pub const PGPOOL: &str = "pgpool Rust API";
pub const PGPOOL_C: &str = "pgpool C ABI";
pub const R2D2_DEFAULT: &str = "r2d2 defaults";
pub const R2D2_TUNED: &str = "r2d2 tuned";
pub const RAW: &str = "raw postgres::Client";
pub const CLIENT: &str = "pgpool-client (one per thread)";
pub const PGBENCH_PREPARED: &str = "pgbench -M prepared";
pub const PGBENCH_SIMPLE: &str = "pgbench -M simple";
pub const CONNECT: &str = "connect per query";

pub fn run(plan: &Plan, setup: &Setup<'_>, rows: &mut Vec<Row>) {
    let (thread_counts, pool_eq_threads) = matrix(plan);
    let reps = plan.reps.min(2);
    let secs = plan.pgbench_secs();
    for ep in setup.endpoints {
        for &threads in &thread_counts {
            let mut sizes = vec![8u32];
            if pool_eq_threads && threads != 8 {
                sizes.push(threads as u32);
            }
            let mut contenders: Vec<Contender<'_>> = Vec::new();
            for &size in &sizes {
                contenders.push((
                    pooled_name(PGPOOL, size),
                    Box::new(move || pgpool_rust(plan, ep, threads, size)),
                ));
                if let Some(driver) = &setup.c_driver {
                    let window = plan.window.as_secs_f64();
                    contenders.push((
                        pooled_name(PGPOOL_C, size),
                        Box::new(move || c_driver(driver, ep, threads, size, window)),
                    ));
                }
                contenders.push((
                    pooled_name(R2D2_DEFAULT, size),
                    Box::new(move || r2d2_default(plan, ep, threads, size)),
                ));
                contenders.push((
                    pooled_name(R2D2_TUNED, size),
                    Box::new(move || r2d2_tuned(plan, ep, threads, size)),
                ));
            }
            contenders.push((RAW.into(), Box::new(move || raw_client(plan, ep, threads))));
            contenders.push((
                CLIENT.into(),
                Box::new(move || pgpool_client(plan, ep, threads)),
            ));
            let script = setup.select1_script.as_path();
            let bindir = setup.bindir;
            for (name, mode) in [(PGBENCH_PREPARED, "prepared"), (PGBENCH_SIMPLE, "simple")] {
                contenders.push((
                    name.into(),
                    Box::new(move || {
                        pgbench(
                            bindir,
                            ep,
                            threads,
                            secs,
                            &PgbenchWork::Script { mode, script },
                        )
                    }),
                ));
            }
            contenders.push((
                CONNECT.into(),
                Box::new(move || connect_per_query(plan, ep, threads)),
            ));
            let group = format!("{}, {threads} threads", ep.name);
            for (name, sample) in alternate(reps, &mut contenders) {
                let row = Row::new("select1", &group, &name).with(sample.query_metrics(threads));
                row.print();
                rows.push(row);
            }
            if setup.c_driver.is_none() {
                for size in &sizes {
                    let mut row = Row::new("select1", &group, &pooled_name(PGPOOL_C, *size));
                    row.note = Some("skipped: C ABI not built".into());
                    row.print();
                    rows.push(row);
                }
            }
        }
    }
}

/// For profiling (`scripts/profile.sh`): one session or pool on one thread runs `n` queries of
/// the end-to-end loop after one warm-up query, then exits. `kind`: `client` (pgpool's own
/// client, no pool), `raw` (`postgres::Client`), `pool` (the Rust API, pool of 8).
pub fn profile_child(kind: &str, n: u64, conninfo: &str) {
    match kind {
        "client" => {
            let settings = pgpool::Pool::builder().application_name("pgpool-bench");
            let manager = pgpool::PgManager::new(conninfo, settings.config()).expect("PgManager");
            let mut conn = manager.open().expect("connect");
            let statement = conn.prepare_cached(SQL).expect("prepare");
            for _ in 0..=n {
                let (rows, _) = conn.query_prepared(&statement, &[&1i32]).expect("query");
                assert_eq!(rows.len(), 1);
                check(rows[0].get(0));
            }
        }
        "raw" => {
            let mut client = pg_config(conninfo).connect(NoTls).expect("connect");
            let statement = client.prepare(SQL).expect("prepare");
            for _ in 0..=n {
                check(
                    client
                        .query_one(&statement, &[&1i32])
                        .expect("query")
                        .get(0),
                );
            }
        }
        "pool" => {
            let pool = warm_pgpool(conninfo, 8);
            for _ in 0..=n {
                let mut conn = pool.get().expect("pgpool get");
                check(conn.query_one(SQL, &[&1i32]).expect("query").get(0));
            }
            pool.close();
        }
        other => panic!("unknown profile contender {other} (client, raw or pool)"),
    }
    println!("{kind} queries={n}");
}
