//! Fault injection for the test suite, compiled in only with the `test-hooks` feature.
//!
//! With the feature, passing [`PANIC_MAGIC`] as an application name to
//! `pgpool_config_set_application_name`, or as the SQL text of `pgpool_conn_query`, panics
//! inside the library, so tests can check that the panic boundary turns it into
//! `PGPOOL_ERR_PANIC` and that the pool stays usable. Without the feature these are no-ops
//! and the exported API is identical.

/// The value that triggers the injected panic.
pub(crate) const PANIC_MAGIC: &str = "pgpool-test-panic";

/// Panics when `value` is [`PANIC_MAGIC`] (test builds only).
#[cfg(feature = "test-hooks")]
pub(crate) fn maybe_panic(value: &str) {
    if value == PANIC_MAGIC {
        panic!("injected test panic");
    }
}

/// No-op outside test builds.
#[cfg(not(feature = "test-hooks"))]
#[inline]
pub(crate) fn maybe_panic(value: &str) {
    let _ = value == PANIC_MAGIC;
}

/// The SQL text that makes `pgpool_stmt_new` hold the statement table's lock for
/// [`HOLD_TABLE_FOR`] first (test builds only), so the fork test can call `fork()` while
/// another thread is inside a handle table's critical section.
#[cfg(feature = "test-hooks")]
pub(crate) const HOLD_TABLE_MAGIC: &str = "pgpool-test-hold-table-lock";

/// How long [`HOLD_TABLE_MAGIC`] holds the lock.
#[cfg(feature = "test-hooks")]
pub(crate) const HOLD_TABLE_FOR: std::time::Duration = std::time::Duration::from_millis(600);

/// The value that makes a function return a code its documentation does not list, so tests
/// can check that the test build's code check catches it.
pub(crate) const UNLISTED_MAGIC: &str = "pgpool-test-unlisted-code";

/// An unlisted code (`PGPOOL_ERR_CLOSED`) when `value` is [`UNLISTED_MAGIC`] (test builds
/// only).
#[cfg(feature = "test-hooks")]
pub(crate) fn maybe_unlisted(value: &str) -> Result<(), super::error::FfiError> {
    if value == UNLISTED_MAGIC {
        return Err(super::error::FfiError::new(
            super::error::pgpool_code::PGPOOL_ERR_CLOSED,
            "injected unlisted code",
        ));
    }
    Ok(())
}

/// No-op outside test builds.
#[cfg(not(feature = "test-hooks"))]
#[inline]
pub(crate) fn maybe_unlisted(value: &str) -> Result<(), super::error::FfiError> {
    let _ = value == UNLISTED_MAGIC;
    Ok(())
}
