//! LISTEN / NOTIFY from C: `pgpool_conn_wait_notification` and the `pgpool_notification`
//! object it returns.

use std::ffi::{c_char, CString};
use std::time::Duration;

use super::args::{self, c_string};
use super::conn::{pgpool_conn, with_conn};
use super::error::{pgpool_code, pgpool_error, FfiError};
use super::handle::{Inherit, Registry};
use super::panic::{boundary, boundary_value};

/// Opaque notification (`NOTIFY channel, 'payload'`). Freed with `pgpool_notification_free`;
/// read-only, may be read from any thread.
#[allow(non_camel_case_types)]
pub struct pgpool_notification {
    _private: (),
}

pub(crate) struct Notice {
    process_id: i32,
    channel: CString,
    payload: CString,
}

pub(crate) static NOTIFICATIONS: Registry<Notice> =
    Registry::new(0x4E, "pgpool_notification", Inherit::Share);

/// Waits for a notification on `conn` (after `LISTEN channel` on it) and stores it in
/// `*out_notification`. `timeout_ms`: negative = wait without limit, 0 = only one already
/// received (`PGPOOL_ERR_WOULD_BLOCK` otherwise), positive = milliseconds
/// (`PGPOOL_ERR_TIMEOUT` when none arrived). Notifications that arrive during other
/// statements are kept and returned first, in order.
///
/// Blocking: up to `timeout_ms`.
/// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
/// PGPOOL_ERR_WOULD_BLOCK; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_USAGE (a COPY in progress);
/// PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
///
/// # Safety
/// `out_notification` and `out_err` NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn pgpool_conn_wait_notification(
    conn: *mut pgpool_conn,
    timeout_ms: i64,
    out_notification: *mut *mut pgpool_notification,
    out_err: *mut *mut pgpool_error,
) -> pgpool_code {
    // SAFETY: the output pointer is NULL-checked and written under the caller's guarantee.
    unsafe {
        boundary(out_err, || {
            args::out(out_notification, "out_notification")?;
            let found = with_conn(conn, |c| {
                let wait = match timeout_ms {
                    t if t < 0 => Duration::from_secs(u64::from(u32::MAX)),
                    t => Duration::from_millis(t as u64),
                };
                Ok(match c.next_notification() {
                    Some(n) => Some(n),
                    None if timeout_ms == 0 => c.wait_for_notification(Duration::ZERO)?,
                    None => c.wait_for_notification(wait)?,
                })
            })?;
            let Some(n) = found else {
                return Err(if timeout_ms == 0 {
                    FfiError::new(
                        pgpool_code::PGPOOL_ERR_WOULD_BLOCK,
                        "no notification received",
                    )
                } else {
                    FfiError::new(
                        pgpool_code::PGPOOL_ERR_TIMEOUT,
                        format!("no notification within {timeout_ms} ms"),
                    )
                });
            };
            let handle = NOTIFICATIONS.insert(Notice {
                process_id: n.process_id,
                channel: c_string(&n.channel),
                payload: c_string(&n.payload),
            })?;
            args::write(out_notification, handle as *mut pgpool_notification);
            Ok(())
        })
    }
}

fn field(n: *const pgpool_notification, f: impl FnOnce(&Notice) -> *const c_char) -> *const c_char {
    boundary_value(std::ptr::null(), || match NOTIFICATIONS.get(n as usize) {
        Ok(notice) => f(&notice),
        Err(_) => std::ptr::null(),
    })
}

/// The channel name (owned by the notification); NULL for a NULL or invalid handle.
#[no_mangle]
pub extern "C" fn pgpool_notification_channel(n: *const pgpool_notification) -> *const c_char {
    // The CString's buffer lives as long as the notification.
    field(n, |notice| notice.channel.as_ptr())
}

/// The payload (owned by the notification; empty if none was given); NULL for a NULL or
/// invalid handle.
#[no_mangle]
pub extern "C" fn pgpool_notification_payload(n: *const pgpool_notification) -> *const c_char {
    field(n, |notice| notice.payload.as_ptr())
}

/// The notifying backend's process id; 0 for a NULL or invalid handle.
#[no_mangle]
pub extern "C" fn pgpool_notification_process_id(n: *const pgpool_notification) -> i32 {
    boundary_value(0, || {
        NOTIFICATIONS
            .get(n as usize)
            .map(|notice| notice.process_id)
            .unwrap_or(0)
    })
}

/// Frees a notification and its strings. NULL is a no-op.
///
/// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE.
#[no_mangle]
pub extern "C" fn pgpool_notification_free(n: *mut pgpool_notification) -> pgpool_code {
    if n.is_null() {
        return pgpool_code::PGPOOL_OK;
    }
    // SAFETY: a NULL out_err is always valid.
    unsafe {
        boundary(std::ptr::null_mut(), || {
            NOTIFICATIONS.remove(n as usize)?;
            Ok(())
        })
    }
}
