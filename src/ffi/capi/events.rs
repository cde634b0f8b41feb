//! Pool events to C: the callback set with `pgpool_config_set_event_callback` receives every
//! [`Event`] of the pools made from that config as a `pgpool_event` struct.
//!
//! The engine calls the hook outside its lock, on the thread where the event happened. This
//! file turns the event into the struct (no allocation for connect, acquire, release and
//! remove), calls the C function, and marks the thread as inside a callback meanwhile, so
//! that the functions that could wait for that very thread refuse ([`refuse_wait`]).

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Builder;
use crate::event::{CloseReason, Event, EventHook, HookFactory};

use super::args::c_string;
use super::error::FfiError;

/// What a `pgpool_event` reports (its `kind`). Numbers never change; kinds are only added,
/// so a callback ignores kinds it does not know.
#[allow(non_camel_case_types, dead_code)]
#[repr(i32)]
pub enum pgpool_event_kind {
    /// A connection was opened (`duration_us`: how long the connect took).
    PGPOOL_EVENT_CONNECT = 1,
    /// A caller acquired a connection (`duration_us`: how long it waited).
    PGPOOL_EVENT_ACQUIRE = 2,
    /// A caller gave a connection back (`duration_us`: how long it held it).
    PGPOOL_EVENT_RELEASE = 3,
    /// A connection was closed and left the pool (`reason`, `reason_text`: why;
    /// `duration_us`: how long it lived, to a few milliseconds).
    PGPOOL_EVENT_REMOVE = 4,
    /// Something failed in the background: a connect attempt, a keepalive, a validation
    /// (`error_code`, `message`, `sqlstate`; `conn_id` and `backend_pid` for a keepalive or
    /// validation, whose REMOVE follows). Errors returned to a caller are not repeated.
    PGPOOL_EVENT_ERROR = 5,
    /// A connection has been held longer than `leak_threshold_ms` (`duration_us`: held so
    /// far; `site`: where it was acquired). Once per checkout.
    PGPOOL_EVENT_LEAK_SUSPECTED = 6,
    /// A connection held longer than `max_checkout_ms` (or still held when a bounded close
    /// ran out) was taken back; this is its removal, no REMOVE follows (`reason`
    /// PGPOOL_CLOSE_RECLAIMED, `duration_us`: held, `site`).
    PGPOOL_EVENT_RECLAIMED = 7,
    /// A session received a notice from the server (`severity`, `sqlstate`, `message`).
    PGPOOL_EVENT_NOTICE = 8,
}

/// Why a connection left the pool: the `reason` of a REMOVE or RECLAIMED event (and the
/// `closed_*` counters of `pgpool_stats`). Numbers never change; reasons are only added.
#[allow(non_camel_case_types, dead_code)]
#[repr(i32)]
pub enum pgpool_close_reason {
    /// Not a removal (every other event kind).
    PGPOOL_CLOSE_NONE = 0,
    /// Idle longer than `idle_timeout_ms`.
    PGPOOL_CLOSE_IDLE_TIMEOUT = 1,
    /// Older than `max_lifetime_ms` (or `fallback_lifetime_ms`, for a prefer-standby session
    /// on a primary).
    PGPOOL_CLOSE_LIFETIME = 2,
    /// Released while `max_idle` connections were already idle.
    PGPOOL_CLOSE_MAX_IDLE = 3,
    /// Checked out `max_uses` times.
    PGPOOL_CLOSE_MAX_USES = 4,
    /// Reported itself broken, failed its reset, or was released by a panicking thread.
    PGPOOL_CLOSE_BROKEN = 5,
    /// Failed the check before hand-out (the server terminated the session, say).
    PGPOOL_CLOSE_FAILED_VALIDATION = 6,
    /// Failed the keepalive round trip.
    PGPOOL_CLOSE_FAILED_KEEPALIVE = 7,
    /// Discarded by its holder (`pgpool_conn_discard`).
    PGPOOL_CLOSE_DISCARDED = 8,
    /// The pool closed.
    PGPOOL_CLOSE_POOL_CLOSED = 9,
    /// Taken back from its holder.
    PGPOOL_CLOSE_RECLAIMED = 10,
    /// The server is no longer what `target_session_attrs` asked for (a standby was
    /// promoted, a primary turned read-only).
    PGPOOL_CLOSE_ROLE_CHANGED = 11,
    /// On a hot standby further behind its primary than `max_replica_lag_ms`.
    PGPOOL_CLOSE_REPLICA_LAG = 12,
}

/// One pool event, passed to the event callback (see `pgpool_config_set_event_callback`).
///
/// Led by `size` like `pgpool_stats`, but filled by the library: `size` is the number of
/// bytes the library filled, and fields are only ever added at the end, so a callback built
/// against an older header reads what it knows and one built against a newer header checks
/// `offsetof(pgpool_event, field) < event->size` before reading a field it is not sure the
/// library has. Every string is NUL-terminated UTF-8, never NULL (empty when it does not
/// apply), and, like the struct, valid only during the call: copy what you keep.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct pgpool_event {
    /// Bytes of this struct the library filled (`sizeof(pgpool_event)` of its version).
    pub size: u32,
    /// A `pgpool_event_kind`.
    pub kind: i32,
    /// The pool's name (`pgpool_config_set_name`, the connection string's `pool_name`, or
    /// "default").
    pub pool: *const c_char,
    /// The kind's stable name: "connect", "acquire", "release", "remove", "error",
    /// "leak_suspected", "reclaimed", "notice".
    pub kind_name: *const c_char,
    /// The connection (unique within the pool, never reused); 0 for NOTICE and for an ERROR
    /// not on a connection (a failed connect).
    pub conn_id: u64,
    /// The session's server process (`pgpool_conn_backend_pid`, `pg_backend_pid()`); 0 when
    /// unknown or not about a connection.
    pub backend_pid: i32,
    /// A `pgpool_close_reason` for REMOVE and RECLAIMED; PGPOOL_CLOSE_NONE otherwise.
    pub reason: i32,
    /// Microseconds: the connect (CONNECT), the wait (ACQUIRE), the hold so far (RELEASE,
    /// LEAK_SUSPECTED, RECLAIMED), the connection's age (REMOVE); -1 for the other kinds.
    pub duration_us: i64,
    /// ERROR: the `pgpool_code` the failure would have been returned with
    /// (PGPOOL_ERR_CONNECT for a failed connect, ...); PGPOOL_OK otherwise.
    pub error_code: i32,
    /// Always zero (alignment).
    pub reserved: u32,
    /// The reason's stable name for REMOVE and RECLAIMED ("idle_timeout", "lifetime",
    /// "max_idle", "max_uses", "broken", "failed_validation", "failed_keepalive",
    /// "discarded", "pool_closed", "reclaimed", "role_changed", "replica_lag"); empty
    /// otherwise.
    pub reason_text: *const c_char,
    /// ERROR: the error's message; NOTICE: the notice's message; empty otherwise.
    pub message: *const c_char,
    /// ERROR: the SQLSTATE when the server sent one (28P01 for a bad password, ...);
    /// NOTICE: the notice's code; empty otherwise.
    pub sqlstate: *const c_char,
    /// LEAK_SUSPECTED and RECLAIMED: where the connection was acquired (the label passed to
    /// `pgpool_pool_acquire_at`, or "unknown"); empty otherwise.
    pub site: *const c_char,
    /// NOTICE: the severity ("WARNING", "NOTICE", "INFO", ...); empty otherwise.
    pub severity: *const c_char,
}

/// The event callback: `event` is valid only during the call (see `pgpool_event`),
/// `user_data` what was passed to `pgpool_config_set_event_callback`.
#[allow(non_camel_case_types)]
pub type pgpool_event_fn =
    Option<unsafe extern "C" fn(event: *const pgpool_event, user_data: *mut c_void)>;

/// Frees the `user_data` of an event callback, once the library no longer needs it.
#[allow(non_camel_case_types)]
pub type pgpool_free_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A registered C callback, shared by the configs and pools that use it. The last one to go
/// frees `user_data` (when `armed`: a failed registration leaves it to the caller).
struct Callback {
    callback: unsafe extern "C" fn(*const pgpool_event, *mut c_void),
    user_data: usize,
    free: pgpool_free_fn,
    armed: AtomicBool,
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let (Some(free), true) = (self.free, *self.armed.get_mut()) {
            // SAFETY: registered by the host with this signature, for this `user_data`; the
            // last reference is going, so the callback is never called again.
            unsafe { free(self.user_data as *mut c_void) };
        }
    }
}

thread_local! {
    /// How many event callbacks this thread is inside (a callback may release a connection
    /// and so run another).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Refuses a call that waits for a pool when it comes from inside an event callback: the
/// callback may run on the thread that call would wait for (a pool's connector thread, whose
/// connection is not in the pool yet), so it could stall until its timeout or forever.
pub(crate) fn refuse_wait(function: &str) -> Result<(), FfiError> {
    if DEPTH.try_with(Cell::get).unwrap_or(0) > 0 {
        return Err(FfiError::usage(format!(
            "{function} called from an event callback: it may wait for the thread the \
             callback runs on; hand the work to another thread (try_acquire, stats and \
             calls on a connection you hold are allowed)"
        )));
    }
    Ok(())
}

/// Marks this thread as inside a callback until dropped.
struct Inside;

impl Inside {
    fn enter() -> Inside {
        let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
        Inside
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// `builder` with the C callback (NULL: none) in place of any hook.
pub(crate) fn with_callback(mut builder: Builder, cb: Option<&CallbackRef>) -> Builder {
    builder.hook = None;
    builder.hook_for = cb.map(|cb| {
        let cb = Arc::clone(&cb.0);
        let factory: HookFactory = Arc::new(move |name: &str| -> EventHook {
            let cb = Arc::clone(&cb);
            let name = c_string(name);
            Arc::new(move |event: &Event| deliver(&cb, &name, event))
        });
        factory
    });
    builder
}

/// A registration in progress: [`disarm`](CallbackRef::disarm) it if it failed.
pub(crate) struct CallbackRef(Arc<Callback>);

impl CallbackRef {
    pub(crate) fn new(
        callback: unsafe extern "C" fn(*const pgpool_event, *mut c_void),
        user_data: *mut c_void,
        free: pgpool_free_fn,
    ) -> CallbackRef {
        CallbackRef(Arc::new(Callback {
            callback,
            user_data: user_data as usize,
            free,
            armed: AtomicBool::new(true),
        }))
    }

    /// The registration failed: `user_data` stays the caller's.
    pub(crate) fn disarm(&self) {
        self.0.armed.store(false, Ordering::Relaxed);
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn reason_of(reason: CloseReason) -> (i32, &'static CStr) {
    use pgpool_close_reason::*;
    let code = match reason {
        CloseReason::IdleTimeout => PGPOOL_CLOSE_IDLE_TIMEOUT,
        CloseReason::Lifetime => PGPOOL_CLOSE_LIFETIME,
        CloseReason::MaxIdle => PGPOOL_CLOSE_MAX_IDLE,
        CloseReason::MaxUses => PGPOOL_CLOSE_MAX_USES,
        CloseReason::Broken => PGPOOL_CLOSE_BROKEN,
        CloseReason::FailedValidation => PGPOOL_CLOSE_FAILED_VALIDATION,
        CloseReason::FailedKeepalive => PGPOOL_CLOSE_FAILED_KEEPALIVE,
        CloseReason::Discarded => PGPOOL_CLOSE_DISCARDED,
        CloseReason::PoolClosed => PGPOOL_CLOSE_POOL_CLOSED,
        CloseReason::Reclaimed => PGPOOL_CLOSE_RECLAIMED,
        CloseReason::RoleChanged => PGPOOL_CLOSE_ROLE_CHANGED,
        CloseReason::ReplicaLag => PGPOOL_CLOSE_REPLICA_LAG,
    };
    let text = match reason {
        CloseReason::IdleTimeout => c"idle_timeout",
        CloseReason::Lifetime => c"lifetime",
        CloseReason::MaxIdle => c"max_idle",
        CloseReason::MaxUses => c"max_uses",
        CloseReason::Broken => c"broken",
        CloseReason::FailedValidation => c"failed_validation",
        CloseReason::FailedKeepalive => c"failed_keepalive",
        CloseReason::Discarded => c"discarded",
        CloseReason::PoolClosed => c"pool_closed",
        CloseReason::Reclaimed => c"reclaimed",
        CloseReason::RoleChanged => c"role_changed",
        CloseReason::ReplicaLag => c"replica_lag",
    };
    (code as i32, text)
}

fn kind_of(event: &Event) -> (pgpool_event_kind, &'static CStr) {
    use pgpool_event_kind::*;
    match event {
        Event::Connect { .. } => (PGPOOL_EVENT_CONNECT, c"connect"),
        Event::Acquire { .. } => (PGPOOL_EVENT_ACQUIRE, c"acquire"),
        Event::Release { .. } => (PGPOOL_EVENT_RELEASE, c"release"),
        Event::Remove { .. } => (PGPOOL_EVENT_REMOVE, c"remove"),
        Event::Error { .. } => (PGPOOL_EVENT_ERROR, c"error"),
        Event::LeakSuspected { .. } => (PGPOOL_EVENT_LEAK_SUSPECTED, c"leak_suspected"),
        Event::Reclaimed { .. } => (PGPOOL_EVENT_RECLAIMED, c"reclaimed"),
        Event::Notice { .. } => (PGPOOL_EVENT_NOTICE, c"notice"),
    }
}

/// The texts an event owns while its callback runs.
#[derive(Default)]
struct Texts {
    message: Option<CString>,
    sqlstate: Option<CString>,
    site: Option<CString>,
    severity: Option<CString>,
}

fn ptr(text: &Option<CString>) -> *const c_char {
    text.as_deref().unwrap_or(c"").as_ptr()
}

/// Calls the C callback with `event` of the pool named `pool`.
fn deliver(cb: &Callback, pool: &CStr, event: &Event) {
    let (kind, kind_name) = kind_of(event);
    let mut texts = Texts::default();
    let (mut reason, mut reason_text, mut error_code) = (0, c"", 0);
    match event {
        Event::Remove { reason: r, .. } => (reason, reason_text) = reason_of(*r),
        Event::Reclaimed { site, .. } => {
            (reason, reason_text) = reason_of(CloseReason::Reclaimed);
            texts.site = Some(c_string(site));
        }
        Event::LeakSuspected { site, .. } => texts.site = Some(c_string(site)),
        Event::Error { error, .. } => {
            let detail = FfiError::from(error.clone());
            error_code = detail.code as i32;
            texts.message = Some(c_string(&detail.message));
            texts.sqlstate = detail.sqlstate.as_deref().map(c_string);
        }
        Event::Notice { notice } => {
            texts.message = Some(c_string(notice.message()));
            texts.sqlstate = Some(c_string(notice.code()));
            texts.severity = Some(c_string(notice.severity()));
        }
        _ => {}
    }
    let c_event = pgpool_event {
        size: std::mem::size_of::<pgpool_event>() as u32,
        kind: kind as i32,
        pool: pool.as_ptr(),
        kind_name: kind_name.as_ptr(),
        conn_id: event.conn_id().unwrap_or(0),
        backend_pid: event.backend_pid().unwrap_or(0),
        reason,
        duration_us: event.duration().map_or(-1, micros),
        error_code,
        reserved: 0,
        reason_text: reason_text.as_ptr(),
        message: ptr(&texts.message),
        sqlstate: ptr(&texts.sqlstate),
        site: ptr(&texts.site),
        severity: ptr(&texts.severity),
    };
    let _inside = Inside::enter();
    // SAFETY: the callback was registered by the host with this signature; the event and
    // every string it points to (`pool`, `texts`, static names) outlive the call;
    // `user_data` is opaque to the library.
    unsafe { (cb.callback)(&c_event, cb.user_data as *mut c_void) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_layout_is_the_headers() {
        assert_eq!(std::mem::size_of::<pgpool_event>(), 96);
        assert_eq!(std::mem::offset_of!(pgpool_event, conn_id), 24);
        assert_eq!(std::mem::offset_of!(pgpool_event, duration_us), 40);
        assert_eq!(std::mem::offset_of!(pgpool_event, reason_text), 56);
    }

    #[test]
    fn every_close_reason_has_its_number_and_the_stats_name() {
        for (i, reason) in CloseReason::ALL.into_iter().enumerate() {
            let (code, text) = reason_of(reason);
            assert_eq!(code, i as i32 + 1);
            assert_eq!(text.to_str().unwrap(), reason.as_str());
        }
    }

    #[test]
    fn a_call_that_waits_is_refused_inside_a_callback_only() {
        assert!(refuse_wait("f").is_ok());
        let inside = Inside::enter();
        let nested = Inside::enter();
        assert!(refuse_wait("f")
            .unwrap_err()
            .message
            .contains("event callback"));
        drop(nested);
        assert!(refuse_wait("f").is_err());
        drop(inside);
        assert!(refuse_wait("f").is_ok());
    }
}
