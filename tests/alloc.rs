//! The steady-state query path allocates nothing: a counting allocator checks the calling
//! thread while it runs cached statements through the pool and through one session.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// thread-local Cell, which allocates nothing itself (const-initialised).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded under the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_cached_statement_through_the_pool_allocates_nothing_per_query() {
    let app = common::app_name("alloc");
    let pool = common::builder(&app)
        .max_size(2)
        .validate_on_acquire(false)
        .build(&common::url())
        .unwrap();
    let run = |n: i32| {
        let mut conn = pool.get().unwrap();
        let v: i32 = conn.query_one("SELECT $1::int4 + 1", &[&n]).unwrap().get(0);
        assert_eq!(v, n + 1);
        conn.execute("SELECT $1::int4", &[&n]).unwrap();
    };
    for n in 0..200 {
        run(n); // warm-up: the connection, the statement, buffers at their size
    }
    let before = allocations();
    for n in 0..1000 {
        run(n);
    }
    let per_query = (allocations() - before) as f64 / 2000.0;
    // The counter does count: a Vec is one allocation.
    let mark = allocations();
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
    drop(std::hint::black_box(v));
    assert_eq!(allocations(), mark + 1);
    assert!(
        per_query < 0.01,
        "{per_query} allocations per query in the steady state"
    );
}

#[test]
fn query_one_and_query_opt_count_rows_without_a_vec() {
    let app = common::app_name("first_row");
    let pool = common::builder(&app)
        .max_size(1)
        .build(&common::url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    let err = conn
        .query_one("SELECT generate_series(1, 3)", &[])
        .unwrap_err();
    assert!(err.to_string().contains("got 3"), "{err}");
    assert!(conn
        .query_opt("SELECT 1 WHERE false", &[])
        .unwrap()
        .is_none());
    assert!(conn.query_opt("SELECT generate_series(1, 2)", &[]).is_err());
    // Wider than the inline offsets: the values still line up.
    let row = conn
        .query_one("SELECT 1, 2, 3, 4, 5, 6, 7, 8, 9, NULL::int4, 11", &[])
        .unwrap();
    assert_eq!(row.len(), 11);
    assert_eq!(row.get::<_, i32>(8), 9);
    assert_eq!(row.get::<_, Option<i32>>(9), None);
    assert_eq!(row.get::<_, i32>(10), 11);
}
