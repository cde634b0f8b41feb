//! Scenario 4 (resident memory of idle pools, each measured in a fresh child process) and
//! scenario 5 (a pgbench-like TPC-B transaction through `Pool::transaction` vs pgbench's
//! built-in `tpcb-like`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::common::{
    alternate, anon_kib, rss_kib, run_threads, warm_pgpool, Contender, Plan, Row, Sample,
};
use crate::external::{pgbench, Endpoint, PgbenchWork};

/// In the child: RSS before and after opening an idle pool of `size` connections. One
/// connection is opened and closed first so one-time initialisation is not counted.
pub fn memory_child(kind: &str, size: u32, conninfo: &str) {
    let config: postgres::Config = conninfo.parse().expect("connection string");
    // The warm-up goes through the client the pool under test uses.
    if kind == "pgpool" {
        let settings = pgpool::Pool::builder();
        let manager = pgpool::PgManager::new(conninfo, settings.config()).expect("PgManager");
        drop(manager.open().expect("warm-up connection"));
    } else {
        drop(config.connect(NoTls).expect("warm-up connection"));
    }
    std::thread::sleep(Duration::from_millis(100));
    let (before, anon_before) = (rss_kib(), anon_kib());
    let keep: Box<dyn std::any::Any> = match kind {
        "pgpool" => {
            let pool = warm_pgpool(conninfo, size);
            Box::new(pool)
        }
        _ => {
            let pool = r2d2::Pool::builder()
                .max_size(size)
                .connection_timeout(Duration::from_secs(60))
                .build(PostgresConnectionManager::new(config, NoTls))
                .expect("r2d2");
            Box::new(pool)
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    let (after, anon_after) = (rss_kib(), anon_kib());
    println!(
        "rss_before_kib={before} rss_after_kib={after} anon_before_kib={anon_before} \
         anon_after_kib={anon_after}"
    );
    drop(keep);
}

/// Scenario 4's contenders.
pub const MEM_PGPOOL: &str = "pgpool";
pub const MEM_R2D2: &str = "r2d2 + r2d2_postgres";

/// Scenario 4: runs the child for each pool and size, alternating pgpool and r2d2.
pub fn memory(plan: &Plan, ep: &Endpoint, rows: &mut Vec<Row>) {
    let exe = std::env::current_exe().expect("current exe");
    let reps = if plan.quick { 1 } else { 2 };
    for size in [1u32, 8, 64] {
        let group = format!("idle pool of {size}");
        for kind in ["pgpool", "r2d2"] {
            let mut deltas = Vec::new();
            let mut totals = Vec::new();
            let mut anon_deltas = Vec::new();
            for _ in 0..reps {
                let out = Command::new(&exe)
                    .args(["--child-memory", kind, &size.to_string(), &ep.conninfo])
                    .output()
                    .expect("memory child");
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success(), "memory child failed: {text}");
                let field = |k: &str| -> f64 {
                    text.split_whitespace()
                        .find_map(|kv| kv.strip_prefix(k)?.parse().ok())
                        .expect("memory child output")
                };
                let (before, after) = (field("rss_before_kib="), field("rss_after_kib="));
                deltas.push(after - before);
                totals.push(after);
                anon_deltas.push(field("anon_after_kib=") - field("anon_before_kib="));
            }
            let delta = deltas.iter().sum::<f64>() / deltas.len() as f64;
            let total = totals.iter().sum::<f64>() / totals.len() as f64;
            let anon = anon_deltas.iter().sum::<f64>() / anon_deltas.len() as f64;
            let name = if kind == "pgpool" {
                MEM_PGPOOL
            } else {
                MEM_R2D2
            };
            let row = Row::new("memory", &group, name).with(vec![
                ("anon_kib_per_connection", anon / size as f64),
                ("pool_anon_kib", anon),
                ("kib_per_connection", delta / size as f64),
                ("pool_kib", delta),
                ("rss_kib", total),
            ]);
            row.print();
            rows.push(row);
        }
    }
}

/// One TPC-B-like transaction with random account, teller, branch and delta (scale 1).
fn tpcb_once(pool: &pgpool::Pool, rng: &mut fastrand::Rng) {
    let aid = rng.i32(1..=100_000);
    let tid = rng.i32(1..=10);
    let bid = 1i32;
    let delta = rng.i32(-5000..=5000);
    pool.transaction(|tx| {
        tx.execute(
            "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
            &[&delta, &aid],
        )?;
        let _: i32 = tx
            .query_one(
                "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
                &[&aid],
            )?
            .get(0);
        tx.execute(
            "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
            &[&delta, &tid],
        )?;
        tx.execute(
            "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2",
            &[&delta, &bid],
        )?;
        tx.execute(
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
             VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
            &[&tid, &bid, &aid, &delta],
        )?;
        Ok::<_, pgpool::Error>(())
    })
    .expect("TPC-B transaction");
}

fn pgpool_tpcb(plan: &Plan, ep: &Endpoint, clients: usize) -> Sample {
    let size = clients as u32;
    let pool = warm_pgpool(&ep.conninfo, size);
    let sample = run_threads(clients, plan.warmup, plan.window, |i| {
        let pool = pool.clone();
        let mut rng = fastrand::Rng::with_seed(i as u64 + 7);
        move || tpcb_once(&pool, &mut rng)
    });
    pool.close();
    sample
}

/// `pgbench -i -s 1` (quietly), creating the TPC-B tables.
pub fn init_tpcb(bindir: &Path, ep: &Endpoint) {
    let exe = bindir.join("pgbench");
    let out = Command::new(if exe.is_file() { exe } else { "pgbench".into() })
        .args(["-i", "-q", "-s", "1", "-h", &ep.host, "-U", "postgres"])
        .arg(format!("-p{}", ep.port))
        .arg("postgres")
        .output()
        .expect("pgbench -i");
    assert!(
        out.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub const TPCB_PGPOOL: &str = "pgpool transaction helper";
pub const TPCB_PREPARED: &str = "pgbench tpcb-like -M prepared";
pub const TPCB_SIMPLE: &str = "pgbench tpcb-like -M simple";

/// Scenario 5 over TCP at 1, 4 and 16 clients (pool size = clients).
pub fn tpcb(plan: &Plan, bindir: &Path, ep: &Endpoint, rows: &mut Vec<Row>) {
    init_tpcb(bindir, ep);
    let clients_list: &[usize] = if plan.quick { &[2] } else { &[1, 4, 16] };
    let secs = plan.pgbench_secs();
    let tx_plan = Plan {
        window: Duration::from_secs(secs),
        ..*plan
    };
    for &clients in clients_list {
        let tx_plan = &tx_plan;
        let mut contenders: Vec<Contender<'_>> = vec![(
            TPCB_PGPOOL.into(),
            Box::new(move || pgpool_tpcb(tx_plan, ep, clients)),
        )];
        for (name, mode) in [(TPCB_PREPARED, "prepared"), (TPCB_SIMPLE, "simple")] {
            contenders.push((
                name.into(),
                Box::new(move || {
                    let work = PgbenchWork::Builtin {
                        name: "tpcb-like",
                        mode,
                    };
                    pgbench(bindir, ep, clients, secs, &work)
                }),
            ));
        }
        let group = format!("{}, {clients} clients", ep.name);
        for (name, sample) in alternate(plan.reps.min(2), &mut contenders) {
            let metrics = sample
                .query_metrics(clients)
                .into_iter()
                .map(|(k, v)| match k {
                    "qps" => ("tps", v),
                    "cpu_us_per_query" => ("cpu_us_per_tx", v),
                    "queries" => ("transactions", v),
                    other => (other, v),
                })
                .collect();
            let row = Row::new("tpcb", &group, &name).with(metrics);
            row.print();
            rows.push(row);
        }
    }
}
