//! pgpool's own client against a real server: exact transaction status, reset by status,
//! statement-cache invalidation, query timeouts with server-side cancel, cancel tokens,
//! COPY, LISTEN/NOTIFY, notices, errors with all their fields, and use from inside a tokio
//! runtime.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{admin, builder, url};
use pgpool::{ErrorKind, Event, TransactionStatus};

fn unique_table(app: &str) -> String {
    format!("t_{}", app.replace('-', "_").to_lowercase())
}

#[test]
fn transaction_status_follows_every_ready_for_query() {
    let app = common::app_name("tx_status");
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    conn.execute("BEGIN", &[]).unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    let err = conn.execute("SELECT 1/0", &[]).unwrap_err();
    assert_eq!(err.sqlstate(), Some("22012"));
    assert_eq!(conn.transaction_status(), TransactionStatus::Failed);
    conn.execute("ROLLBACK", &[]).unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    conn.batch_execute("BEGIN; SELECT 1").unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    conn.batch_execute("COMMIT").unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
}

#[test]
fn a_begin_prepared_in_one_checkout_and_run_in_the_next_is_rolled_back() {
    let app = common::app_name("begin_stmt");
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    let begin = conn.prepare("BEGIN").unwrap();
    let pid = conn.backend_pid();
    drop(conn);
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.backend_pid(), pid);
    conn.execute_prepared(&begin, &[]).unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    drop(conn);
    assert_eq!(pool.manager().rollbacks_on_release(), 1);
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.backend_pid(), pid, "rolled back, not replaced");
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    let in_tx: bool = conn
        .query_one("SELECT txid_current_if_assigned() IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!in_tx);
}

#[test]
fn sql_that_merely_looks_like_transaction_control_costs_no_rollback() {
    let app = common::app_name("no_rollback");
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let notices = Arc::new(Mutex::new(Vec::new()));
    for sql in [
        "SELECT CASE WHEN $1::int > 0 THEN 'pos' ELSE 'neg' END",
        "SELECT $1::int AS start_date, 'begin' AS commit_note",
    ] {
        let mut conn = pool.get().unwrap();
        let seen = notices.clone();
        conn.set_notice_handler(Some(Arc::new(move |n: &pgpool::DbError| {
            seen.lock().unwrap().push(n.message().to_string())
        })));
        conn.query(sql, &[&1i32]).unwrap();
        drop(conn);
    }
    assert_eq!(pool.manager().rollbacks_on_release(), 0);
    assert!(
        notices.lock().unwrap().is_empty(),
        "{:?}",
        notices.lock().unwrap()
    );
}

#[test]
fn ddl_that_changes_a_cached_result_type_is_handled() {
    let app = common::app_name("ddl_cache");
    let table = unique_table(&app);
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (a int); INSERT INTO {table} VALUES (1)"
    ))
    .unwrap();
    let select = format!("SELECT * FROM {table}");
    assert_eq!(conn.query(&select, &[]).unwrap()[0].len(), 1);
    conn.batch_execute(&format!("ALTER TABLE {table} ADD COLUMN b int DEFAULT 7"))
        .unwrap();
    // Outside a transaction: prepared again transparently.
    let rows = conn.query(&select, &[]).unwrap();
    assert_eq!(rows[0].len(), 2);
    assert_eq!(rows[0].get::<_, Option<i32>>("b"), Some(7));
    // Inside a transaction: the error is returned, the stale entry dropped.
    conn.batch_execute(&format!("ALTER TABLE {table} ADD COLUMN c int"))
        .unwrap();
    conn.begin().unwrap();
    let err = conn.query(&select, &[]).unwrap_err();
    assert_eq!(err.sqlstate(), Some("0A000"), "{err}");
    conn.rollback().unwrap();
    assert_eq!(conn.query(&select, &[]).unwrap()[0].len(), 3);
    conn.batch_execute(&format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn deallocate_all_and_discard_all_clear_the_statement_cache() {
    let app = common::app_name("discard");
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    for reset in ["DEALLOCATE ALL", "DISCARD ALL"] {
        conn.query_one("SELECT $1::int4 + 1", &[&1i32]).unwrap();
        assert!(conn.cached_statements() >= 1);
        conn.batch_execute(reset).unwrap();
        assert_eq!(
            conn.cached_statements(),
            0,
            "{reset} seen in the command tag"
        );
        let v: i32 = conn
            .query_one("SELECT $1::int4 + 1", &[&1i32])
            .unwrap()
            .get(0);
        assert_eq!(v, 2);
    }
    // A statement deallocated behind the cache's back (a function's EXECUTE, another tool):
    // 26000 is answered by preparing again.
    conn.query_one("SELECT $1::int4 * 3", &[&2i32]).unwrap();
    conn.batch_execute("DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$")
        .unwrap();
    let v: i32 = conn
        .query_one("SELECT $1::int4 * 3", &[&2i32])
        .unwrap()
        .get(0);
    assert_eq!(v, 6);
}

#[test]
fn a_query_timeout_cancels_on_the_server_and_keeps_the_session() {
    let app = common::app_name("query_timeout");
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    let pid = conn.backend_pid();
    conn.set_query_timeout(Some(Duration::from_millis(200)));
    let start = Instant::now();
    let err = conn.execute("SELECT pg_sleep(10)", &[]).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.sqlstate(), Some("57014"));
    assert!(!err.outcome_unknown());
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!conn.is_broken());
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    // Within a transaction, the cancel fails the transaction; it stays usable after ROLLBACK.
    conn.begin().unwrap();
    assert!(conn
        .execute("SELECT pg_sleep(10)", &[])
        .unwrap_err()
        .is_timeout());
    assert_eq!(conn.transaction_status(), TransactionStatus::Failed);
    conn.rollback().unwrap();
    let v: i32 = conn.query_one("SELECT 41 + 1", &[]).unwrap().get(0);
    assert_eq!(v, 42);
    drop(conn);
    let conn = pool.get().unwrap();
    assert_eq!(
        conn.backend_pid(),
        pid,
        "the same backend served the next checkout"
    );
    assert_eq!(
        conn.query_timeout(),
        None,
        "release restores the pool's query timeout"
    );
    let mut admin = admin();
    let state: String = admin
        .query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .unwrap()
        .get(0);
    assert_eq!(
        state, "idle",
        "the cancelled pg_sleep is not running any more"
    );
    drop(conn);
}

#[test]
fn the_pool_wide_query_timeout_applies_to_every_checkout() {
    let app = common::app_name("pool_query_timeout");
    let pool = builder(&app)
        .max_size(1)
        .query_timeout(Some(Duration::from_millis(150)))
        .build(&url())
        .unwrap();
    for _ in 0..2 {
        let mut conn = pool.get().unwrap();
        assert_eq!(conn.query_timeout(), Some(Duration::from_millis(150)));
        let err = conn.execute("SELECT pg_sleep(5)", &[]).unwrap_err();
        assert!(err.is_timeout(), "{err}");
        conn.set_query_timeout(None);
    }
    assert_eq!(pool.stats().open, 1);
}

#[test]
fn a_cancel_token_cancels_from_another_thread() {
    let app = common::app_name("cancel_token");
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    let token = conn.cancel_token().expect("a cancel key");
    assert_eq!(token.process_id(), conn.backend_pid());
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        token.cancel()
    });
    let start = Instant::now();
    let err = conn.execute("SELECT pg_sleep(10)", &[]).unwrap_err();
    canceller.join().unwrap().unwrap();
    assert_eq!(err.sqlstate(), Some("57014"));
    assert_eq!(
        err.kind(),
        ErrorKind::Server,
        "not our deadline: a server error"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(conn.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    // A cancel while idle is ignored by the server and hits nothing later.
    conn.cancel_token().unwrap().cancel().unwrap();
    conn.execute("SELECT pg_sleep(0.2)", &[]).unwrap();
}

#[test]
fn copy_in_and_out_with_100k_rows() {
    let app = common::app_name("copy");
    let table = unique_table(&app);
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int, name text)"
    ))
    .unwrap();
    let mut copy = conn
        .copy_in(&format!("COPY {table} (id, name) FROM STDIN"))
        .unwrap();
    for i in 0..100_000 {
        writeln!(copy, "{i}\tname {i}").unwrap();
    }
    assert_eq!(copy.finish().unwrap(), 100_000);
    let (count, sum): (i64, i64) = {
        let row = conn
            .query_one(&format!("SELECT count(*), sum(id)::int8 FROM {table}"), &[])
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((count, sum), (100_000, 4_999_950_000));

    let mut out = conn
        .copy_out(&format!(
            "COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT"
        ))
        .unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(out.finish().unwrap(), 100_000);
    assert_eq!(text.lines().count(), 100_000);
    assert_eq!(text.lines().nth(99_999), Some("99999\tname 99999"));

    // An abandoned COPY IN writes nothing and leaves the session usable.
    let mut copy = conn.copy_in(&format!("COPY {table} FROM STDIN")).unwrap();
    writeln!(copy, "1\tlost").unwrap();
    drop(copy);
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    let n: i64 = conn
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 100_000);
    // A COPY OUT dropped half-read leaves the session at ReadyForQuery.
    let mut out = conn.copy_out(&format!("COPY {table} TO STDOUT")).unwrap();
    let mut first = [0u8; 10];
    out.read_exact(&mut first).unwrap();
    drop(out);
    assert_eq!(conn.query_one("SELECT 7", &[]).unwrap().get::<_, i32>(0), 7);
    // COPY through the wrong call is an error that says what to use.
    let err = conn
        .execute(&format!("COPY {table} FROM STDIN"), &[])
        .unwrap_err();
    assert!(err.to_string().contains("copy_in"), "{err}");
    let err = conn
        .batch_execute(&format!("COPY {table} TO STDOUT"))
        .unwrap_err();
    assert!(err.to_string().contains("copy_out"), "{err}");
    assert!(!conn.is_broken());
    conn.batch_execute(&format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn listen_notify_delivers_with_a_timeout() {
    let app = common::app_name("notify");
    let channel = unique_table(&app);
    let pool = builder(&app).max_size(2).build(&url()).unwrap();
    let mut listener = pool.get().unwrap();
    listener
        .batch_execute(&format!("LISTEN {channel}"))
        .unwrap();
    let start = Instant::now();
    assert!(listener
        .wait_for_notification(Duration::from_millis(200))
        .unwrap()
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(190));
    let mut notifier = pool.get().unwrap();
    let notifier_pid = notifier.backend_pid();
    notifier
        .execute("SELECT pg_notify($1, $2)", &[&channel, &"hello"])
        .unwrap();
    let n = listener
        .wait_for_notification(Duration::from_secs(5))
        .unwrap()
        .expect("a notification");
    assert_eq!(n.channel, channel);
    assert_eq!(n.payload, "hello");
    assert_eq!(n.process_id, notifier_pid);
    // Notifications that arrive with a query's answer are kept for later.
    notifier
        .batch_execute(&format!("NOTIFY {channel}, 'one'; NOTIFY {channel}, 'two'"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    listener.execute("SELECT 1", &[]).unwrap();
    assert_eq!(listener.next_notification().unwrap().payload, "one");
    assert_eq!(listener.next_notification().unwrap().payload, "two");
    assert!(listener.next_notification().is_none());
}

#[test]
fn notices_reach_the_event_hook_and_the_connection_handler() {
    let app = common::app_name("notices");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = seen.clone();
    let pool = builder(&app)
        .max_size(1)
        .event_hook(move |e| {
            if let Event::Notice { notice, .. } = e {
                hook_seen
                    .lock()
                    .unwrap()
                    .push((notice.severity().to_string(), notice.message().to_string()));
            }
        })
        .build(&url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    conn.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$")
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("NOTICE".to_string(), "hello 42".to_string()),
            ("WARNING".to_string(), "careful".to_string())
        ]
    );
}

#[test]
fn server_errors_carry_every_field() {
    let app = common::app_name("db_error");
    let table = unique_table(&app);
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int CONSTRAINT {table}_pk PRIMARY KEY)"
    ))
    .unwrap();
    conn.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .unwrap();
    let err = conn
        .execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    let db = err.db_error().expect("server fields");
    assert_eq!(db.code(), "23505");
    assert_eq!(db.severity(), "ERROR");
    assert_eq!(db.table(), Some(table.as_str()));
    assert_eq!(db.schema(), Some("public"));
    assert_eq!(db.constraint(), Some(format!("{table}_pk").as_str()));
    assert!(db.detail().unwrap().contains("(id)=(1)"));
    let err = conn
        .execute("SELECT nosuchcolumn FROM pg_class", &[])
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("42703"));
    assert_eq!(err.db_error().unwrap().position(), Some(8));
    assert!(!conn.is_broken(), "statement errors keep the session");
    // A connection-class error breaks it: the server terminates the backend.
    let pid = conn.backend_pid();
    let mut admin = admin();
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let err = conn.execute("SELECT 1", &[]).unwrap_err();
    assert!(err.is_broken(), "{err:?}");
    assert!(conn.is_broken());
    conn.batch_execute("SELECT 1").unwrap_err();
    drop(conn);
    let mut conn = pool.get().unwrap();
    assert_ne!(conn.backend_pid(), pid);
    conn.batch_execute(&format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn parameter_errors_are_usage_errors_and_send_nothing() {
    let app = common::app_name("params");
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    let err = conn.query("SELECT $1::int4", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    assert!(err.to_string().contains("1 parameter"), "{err}");
    let err = conn.query("SELECT $1::int4", &[&"text"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    assert!(err.to_string().contains("$1"), "{err}");
    let row = conn.query_one("SELECT 1::int4", &[]).unwrap();
    assert!(row.try_get::<_, i64>(0).is_err());
    assert!(row.try_get::<_, i32>(5).is_err());
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(!conn.is_broken());
}

#[test]
fn rust_types_round_trip_including_user_defined_ones() {
    let app = common::app_name("types");
    let ty = unique_table(&app);
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    let row = conn
        .query_one(
            "SELECT $1::text, $2::int8, $3::float8, $4::bool, $5::bytea, $6::int4[], NULL::text",
            &[
                &"héllo",
                &-5i64,
                &1.5f64,
                &true,
                &vec![0u8, 255],
                &vec![1i32, 2, 3],
            ],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "héllo");
    assert_eq!(row.get::<_, i64>(1), -5);
    assert_eq!(row.get::<_, f64>(2), 1.5);
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, Vec<u8>>(4), vec![0, 255]);
    assert_eq!(row.get::<_, Vec<i32>>(5), vec![1, 2, 3]);
    assert_eq!(row.get::<_, Option<String>>(6), None);
    conn.batch_execute(&format!(
        "DROP TYPE IF EXISTS {ty}; CREATE TYPE {ty} AS ENUM ('red', 'green')"
    ))
    .unwrap();
    let rows = conn
        .query(&format!("SELECT 'green'::{ty}, ARRAY['red'::{ty}]"), &[])
        .unwrap();
    let column = &rows[0].columns()[0];
    assert_eq!(column.type_().name(), ty);
    assert!(matches!(column.type_().kind(), postgres::types::Kind::Enum(v) if v.len() == 2));
    assert!(matches!(
        rows[0].columns()[1].type_().kind(),
        postgres::types::Kind::Array(_)
    ));
    assert_eq!(rows[0].raw(0), Some(&b"green"[..]));
    conn.batch_execute(&format!("DROP TYPE {ty}")).unwrap();
}

#[test]
fn the_pool_works_from_inside_a_tokio_runtime() {
    let app = common::app_name("tokio");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let url = url();
    let value = runtime.block_on(async move {
        let pool = builder(&app).max_size(2).build(&url).unwrap();
        let mut conn = pool.get().unwrap();
        let v: i32 = conn
            .query_one("SELECT 40 + $1::int4", &[&2i32])
            .unwrap()
            .get(0);
        drop(conn);
        pool.close();
        v
    });
    assert_eq!(value, 42);
}

#[test]
fn full_reset_undoes_session_state_on_release() {
    let app = common::app_name("full_reset");
    let pool = builder(&app)
        .max_size(1)
        .full_reset(true)
        .build(&url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    conn.batch_execute("SET work_mem = '7MB'; SELECT pg_advisory_lock(4242); LISTEN somewhere")
        .unwrap();
    let pid = conn.backend_pid();
    drop(conn);
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.backend_pid(), pid);
    let work_mem: String = conn.query_one("SHOW work_mem", &[]).unwrap().get(0);
    assert_ne!(work_mem, "7MB");
    let locks: i64 = conn
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(locks, 0);
    let channels: i64 = conn
        .query_one("SELECT count(*) FROM pg_listening_channels()", &[])
        .unwrap()
        .get(0);
    assert_eq!(channels, 0);
}

#[test]
fn transaction_pooling_mode_uses_no_named_statements() {
    let app = common::app_name("txpool");
    let pool = builder(&app)
        .max_size(1)
        .transaction_pooling(true)
        .build(&url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    for i in 0..3i32 {
        let v: i32 = conn.query_one("SELECT $1::int4 * 2", &[&i]).unwrap().get(0);
        assert_eq!(v, i * 2);
    }
    assert_eq!(conn.cached_statements(), 0);
    let named: i64 = conn
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .unwrap()
        .get(0);
    assert_eq!(named, 0);
}

#[test]
fn the_compatibility_manager_pools_postgres_clients() {
    let app = common::app_name("compat");
    let mut config: postgres::Config = url().parse().unwrap();
    config.application_name(&app);
    let pool = pgpool::Pool::builder()
        .max_size(2)
        .build_with_manager(pgpool::PostgresManager::new(config, postgres::NoTls))
        .unwrap();
    let mut client = pool.get().unwrap();
    client.batch_execute("BEGIN").unwrap();
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    drop(client);
    let mut client = pool.get().unwrap();
    let again: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert_eq!(pid, again);
    let in_tx: bool = client
        .query_one("SELECT txid_current_if_assigned() IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!in_tx, "released inside a transaction: rolled back");
    assert_eq!(common::backends(&mut admin(), &app), 1);
}

#[test]
fn passwords_never_show_in_debug_errors_or_stats() {
    let app = common::app_name("secrets");
    let config: postgres::Config = url().parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let secret = "Sup3r-S3cret-Pw";
    let conninfo = format!(
        "host=127.0.0.1 port={port} user={} password={secret} dbname=postgres",
        pgpool_testkit::SCRAM_USER
    );
    let pool = builder(&app)
        .acquire_timeout(Duration::from_secs(3))
        .build(&conninfo)
        .unwrap();
    let err = pool.get().unwrap_err();
    assert_eq!(err.sqlstate(), Some("28P01"), "{err}");
    for text in [
        format!("{pool:?}"),
        format!("{:?}", pool.manager()),
        format!("{:?}", pool.manager().conn_config()),
        pool.manager().conn_config().redacted(),
        err.to_string(),
        format!("{err:?}"),
        format!("{:?}", pool.stats()),
        pool.state_line(),
    ] {
        assert!(!text.contains(secret), "password leaked: {text}");
    }
    let url_form = format!(
        "postgresql://{}:{secret}@127.0.0.1:{port}/postgres",
        pgpool_testkit::SCRAM_USER
    );
    let pool = builder(&app).build(&url_form).unwrap();
    assert!(!format!("{:?}", pool.manager()).contains(secret));
}

#[test]
fn a_commit_the_server_turns_into_a_rollback_is_an_error() {
    let app = common::app_name("failed_commit");
    let table = unique_table(&app);
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int)"
    ))
    .unwrap();
    conn.begin().unwrap();
    conn.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .unwrap();
    let _ignored = conn.execute("SELECT 1/0", &[]);
    let err = conn.commit().unwrap_err();
    assert_eq!(err.sqlstate(), Some("25P02"), "{err}");
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    // The same through the helper, whose closure swallows the error.
    let result: Result<(), pgpool::Error> = conn.transaction(|tx| {
        tx.execute(&format!("INSERT INTO {table} VALUES (2)"), &[])?;
        let _ = tx.execute("SELECT 1/0", &[]);
        Ok(())
    });
    assert_eq!(result.unwrap_err().sqlstate(), Some("25P02"));
    let n: i64 = conn
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing was written");
    conn.batch_execute(&format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn a_startup_option_the_server_rejects_fails_the_acquire_at_once() {
    let app = common::app_name("bad_option");
    let config: postgres::Config = url().parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let pool = builder(&app)
        .acquire_timeout(Duration::from_secs(10))
        .build(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=postgres options='-c statement_timeout=abc'"
        ))
        .unwrap();
    let start = Instant::now();
    let err = pool.get().unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(err.to_string().contains("statement_timeout"), "{err}");
}

#[test]
fn notifications_left_unread_do_not_reach_the_next_holder() {
    let app = common::app_name("notify_reset");
    let channel = unique_table(&app);
    let pool = builder(&app).max_size(1).build(&url()).unwrap();
    let mut conn = pool.get().unwrap();
    conn.batch_execute(&format!(
        "LISTEN {channel}; NOTIFY {channel}, 'for the first holder'"
    ))
    .unwrap();
    assert_eq!(conn.pending_notifications(), 1);
    drop(conn);
    let mut conn = pool.get().unwrap();
    assert_eq!(conn.pending_notifications(), 0);
    assert!(conn.next_notification().is_none());
    conn.batch_execute("UNLISTEN *").unwrap();
}
