mod common;

use std::time::Duration;

#[test]
fn query_through_pool() {
    let app = common::app_name("smoke");
    let pool = common::builder(&app)
        .max_size(2)
        .build(&common::url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    let row = conn.query_one("SELECT $1::int + 1", &[&41i32]).unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(conn);
    let s = pool.stats();
    assert_eq!(s.open, 1);
    assert_eq!(s.idle, 1);
    assert!(pool.close_timeout(Duration::from_secs(5)));
}
