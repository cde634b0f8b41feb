/*
 * pgpool.h - the C API of libpgpool, a blocking, thread-based PostgreSQL connection pool.
 *
 * The rules below hold for every function; a function's comment states only what is
 * particular to it.
 *
 * Naming: pgpool_<object>_<verb>; objects are config, pool, conn, stmt, params, result,
 *   notification, error, log, code, registry (named pools) and shutdown (on SIGTERM and
 *   SIGINT). pgpool_version() is the library's own.
 * Results: every fallible function returns a pgpool_code (PGPOOL_OK = 0; numbers never
 *   change, new codes are only added). Its comment lists, after "Returns:", every code it
 *   can return; PGPOOL_ERR_PANIC (a panic caught inside the library, which stays usable) can
 *   come from any of them and is not repeated. The last argument `pgpool_error **out_err`
 *   may be NULL; when it is not, it is set to NULL on success and to a new detail object on
 *   failure (message, SQLSTATE, category, outcome-unknown and retry-safe flags), freed with
 *   pgpool_error_free. There is no thread-local "last error".
 * Outputs: on failure, output arguments are left untouched (the exceptions say so:
 *   pgpool_pool_health fills its report either way; a result passed in for reuse is left
 *   empty; pgpool_conn_transaction reports the callback's value whenever it ran).
 * Timeouts: every `timeout_ms` that bounds a wait means: negative = the pool's configured
 *   value, 0 = do not wait (PGPOOL_ERR_WOULD_BLOCK when the call would have to), positive =
 *   milliseconds (PGPOOL_ERR_TIMEOUT when they pass). Configuration durations (`*_ms`
 *   setters) and pgpool_conn_set_query_timeout say per function what negative and 0 mean.
 * Limits: 0 means unlimited only where a function says so.
 * Sizes: structs that grow (pgpool_stats, pgpool_health) start with `size`: set it to
 *   sizeof(the struct) as your program knows it; the library fills min(size, its own) bytes
 *   and stores that count in `size`, so old programs and new libraries (and the other way
 *   round) work together.
 * const: a pointer argument is const exactly when the call does not change the object.
 * Ownership: every object the library returns (config, pool, connection, statement,
 *   parameters, result, notification, error, and strings read from them) is owned by the
 *   library and freed only by the matching library function. Strings and bytes read from
 *   an object stay valid until that object is freed (or, for a result, reused), whatever
 *   happens to the connection or the pool. Input strings and buffers are copied, never
 *   retained. Freeing NULL is a no-op; freeing twice, or using a freed or released handle,
 *   returns PGPOOL_ERR_INVALID_HANDLE (handles are generation-checked numbers, never
 *   dereferenced by the library).
 * Threads: a pool handle is shared freely across threads; a connection handle may move
 *   between threads but is used by one thread at a time (a concurrent call returns
 *   PGPOOL_ERR_BUSY), except pgpool_conn_cancel, which is meant to be called from another
 *   thread; config, statement, parameter, result, notification and error objects may be
 *   read from any thread (a parameter list or result is changed by one thread at a time).
 * Blocking: functions that talk to the server or wait for a connection say how long they
 *   may block; the others never block beyond a short internal lock.
 * fork(): the library registers pthread_atfork handlers that hold its internal tables'
 *   locks across fork() (a fork waits for other threads to leave them, microseconds), so a
 *   child finds them free. In the child, pools, connections, results and parameter lists
 *   made before the fork belong to the parent: every call on them returns PGPOOL_ERR_FORKED
 *   at once, without I/O and without taking their locks (a parent thread may have held
 *   them), except the calls that end them, which return PGPOOL_OK: pgpool_conn_release,
 *   pgpool_conn_discard, pgpool_pool_free, pgpool_result_free and pgpool_params_free forget
 *   the object (the parent's sessions are neither reset nor closed; the child does not
 *   reclaim the memory), and pgpool_pool_close does nothing. Configs, statements,
 *   notifications and errors made before the fork work in the child. The child creates its
 *   own pool (an inherited config will do) and uses it normally; the parent is unaffected.
 *   Threads blocked inside the library at the moment of fork() (waiting for a connection,
 *   in pgpool_pool_close or pgpool_pool_wait_ready) do not matter to the child: every lock
 *   in the library keeps its waiters in the lock itself, not in a process-wide table, so
 *   the child's new pools only ever touch locks of their own.
 * Logging: set PGPOOL_LOG=error|warn|info|debug|trace to log to stderr, or install a
 *   callback with pgpool_log_set_callback. Events (connect, acquire, release, remove,
 *   error, ...) as structs: pgpool_config_set_event_callback.
 */

#ifndef PGPOOL_H
#define PGPOOL_H

/* Generated from src/ffi/capi by build.rs with cbindgen: do not edit.
 * Regenerate with `PGPOOL_UPDATE_HEADER=1 cargo build`; a test fails when it is stale. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The version of the library this header describes (Cargo's package version). */
#define PGPOOL_VERSION_MAJOR 0
#define PGPOOL_VERSION_MINOR 1
#define PGPOOL_VERSION_PATCH 0
#define PGPOOL_VERSION_STRING "0.1.0"
/* MAJOR * 1000000 + MINOR * 1000 + PATCH (each component below 1000), for #if. */
#define PGPOOL_VERSION_NUMBER 1000

/* The call site as "file.c:42", for pgpool_pool_acquire_at. PGPOOL_ACQUIRE(pool,
 * timeout_ms, &conn, &err) acquires recording it: leak reports (leak_threshold),
 * reclaim events (max_checkout) and timeout messages then name the line. */
#define PGPOOL_STRINGIFY_(x) #x
#define PGPOOL_STRINGIFY(x) PGPOOL_STRINGIFY_(x)
#define PGPOOL_SITE __FILE__ ":" PGPOOL_STRINGIFY(__LINE__)
#define PGPOOL_ACQUIRE(pool, timeout_ms, out_conn, out_err) \
    pgpool_pool_acquire_at((pool), (timeout_ms), PGPOOL_SITE, (out_conn), (out_err))


// Capacity of the text fields of `pgpool_health`, NUL included.
#define PGPOOL_HEALTH_TEXT_LEN 64

// Capacity of `pgpool_health.reasons`, NUL included.
#define PGPOOL_HEALTH_REASONS_LEN 256

// Result codes. Numbers are part of the ABI: they never change, new codes are only added.
enum pgpool_code
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  // Success.
  PGPOOL_OK = 0,
  // A required pointer argument was NULL.
  PGPOOL_ERR_NULL_ARGUMENT = 1,
  // A string argument was not valid UTF-8.
  PGPOOL_ERR_INVALID_UTF8 = 2,
  // A handle was released or freed already, never issued, or of the wrong type.
  PGPOOL_ERR_INVALID_HANDLE = 3,
  // An argument was out of its domain (negative duration, wrong parameter count, bad size).
  PGPOOL_ERR_INVALID_ARGUMENT = 4,
  // A configuration value was rejected when the pool was created; the message names it.
  PGPOOL_ERR_CONFIG = 5,
  // No connection became available in time (or a bounded close did not finish in time).
  PGPOOL_ERR_TIMEOUT = 6,
  // The pool is closed.
  PGPOOL_ERR_CLOSED = 7,
  // Too many callers were already waiting (`max_waiters`).
  PGPOOL_ERR_OVERLOADED = 8,
  // A new connection could not be opened.
  PGPOOL_ERR_CONNECT = 9,
  // The server answered with an error; the detail object carries its SQLSTATE.
  PGPOOL_ERR_SERVER = 10,
  // The connection broke; the statement's outcome may be unknown.
  PGPOOL_ERR_BROKEN = 11,
  // A row or column index was out of range.
  PGPOOL_ERR_OUT_OF_RANGE = 12,
  // A typed getter was used on a column of another type.
  PGPOOL_ERR_TYPE_MISMATCH = 13,
  // A typed getter was used on an SQL NULL.
  PGPOOL_ERR_NULL_VALUE = 14,
  // The value's type cannot be rendered as text by the library; the message names it.
  PGPOOL_ERR_UNSUPPORTED_TYPE = 15,
  // A non-blocking call found nothing ready (no idle connection).
  PGPOOL_ERR_WOULD_BLOCK = 16,
  // A connection handle was used by two threads at once.
  PGPOOL_ERR_BUSY = 17,
  // The library caught a panic; the pool stays usable.
  PGPOOL_ERR_PANIC = 18,
  // Any other misuse or driver-level failure; the message explains.
  PGPOOL_ERR_USAGE = 19,
  // A transaction callback asked for a rollback (returned nonzero); it was rolled back.
  PGPOOL_ERR_ROLLED_BACK = 20,
  // In a child process after `fork()`: the pool, connection, result or parameter list was
  // made before the fork and belongs to the parent. Nothing was sent or locked; only the
  // functions that end the object work on it (they forget it). Create a new pool.
  PGPOOL_ERR_FORKED = 21,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum pgpool_code pgpool_code;
#else
typedef int32_t pgpool_code;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

// Log levels, for `pgpool_log_set_callback`'s `max_level` and the callback's `level`.
enum pgpool_log_level
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  // No logging (as `max_level`: switches the callback off).
  PGPOOL_LOG_OFF = 0,
  // Failures.
  PGPOOL_LOG_ERROR = 1,
  // Problems the pool recovered from (a failed background connect, a dead idle session).
  PGPOOL_LOG_WARN = 2,
  // Rare lifecycle events.
  PGPOOL_LOG_INFO = 3,
  // Connects, closes, notices.
  PGPOOL_LOG_DEBUG = 4,
  // Every acquire and release.
  PGPOOL_LOG_TRACE = 5,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum pgpool_log_level pgpool_log_level;
#else
typedef int32_t pgpool_log_level;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

// A pool's health (`pgpool_stats.health`, `pgpool_health.state`).
enum pgpool_health_state
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  // The last connect attempt (if any) succeeded.
  PGPOOL_HEALTHY = 0,
  // Recent connect attempts failed, but the breaker is not open (or connections are still
  // open and serve callers).
  PGPOOL_DEGRADED = 1,
  // The breaker is open: connects keep failing and no connection is open; acquires that
  // need a new connection fail with the last connect error after one probe at most.
  PGPOOL_DOWN = 2,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum pgpool_health_state pgpool_health_state;
#else
typedef int32_t pgpool_health_state;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

// What a `pgpool_event` reports (its `kind`). Numbers never change; kinds are only added,
// so a callback ignores kinds it does not know.
enum pgpool_event_kind
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  // A connection was opened (`duration_us`: how long the connect took).
  PGPOOL_EVENT_CONNECT = 1,
  // A caller acquired a connection (`duration_us`: how long it waited).
  PGPOOL_EVENT_ACQUIRE = 2,
  // A caller gave a connection back (`duration_us`: how long it held it).
  PGPOOL_EVENT_RELEASE = 3,
  // A connection was closed and left the pool (`reason`, `reason_text`: why;
  // `duration_us`: how long it lived, to a few milliseconds).
  PGPOOL_EVENT_REMOVE = 4,
  // Something failed in the background: a connect attempt, a keepalive, a validation
  // (`error_code`, `message`, `sqlstate`; `conn_id` and `backend_pid` for a keepalive or
  // validation, whose REMOVE follows). Errors returned to a caller are not repeated.
  PGPOOL_EVENT_ERROR = 5,
  // A connection has been held longer than `leak_threshold_ms` (`duration_us`: held so
  // far; `site`: where it was acquired). Once per checkout.
  PGPOOL_EVENT_LEAK_SUSPECTED = 6,
  // A connection held longer than `max_checkout_ms` (or still held when a bounded close
  // ran out) was taken back; this is its removal, no REMOVE follows (`reason`
  // PGPOOL_CLOSE_RECLAIMED, `duration_us`: held, `site`).
  PGPOOL_EVENT_RECLAIMED = 7,
  // A session received a notice from the server (`severity`, `sqlstate`, `message`).
  PGPOOL_EVENT_NOTICE = 8,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum pgpool_event_kind pgpool_event_kind;
#else
typedef int32_t pgpool_event_kind;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

// Why a connection left the pool: the `reason` of a REMOVE or RECLAIMED event (and the
// `closed_*` counters of `pgpool_stats`). Numbers never change; reasons are only added.
enum pgpool_close_reason
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  // Not a removal (every other event kind).
  PGPOOL_CLOSE_NONE = 0,
  // Idle longer than `idle_timeout_ms`.
  PGPOOL_CLOSE_IDLE_TIMEOUT = 1,
  // Older than `max_lifetime_ms` (or `fallback_lifetime_ms`, for a prefer-standby session
  // on a primary).
  PGPOOL_CLOSE_LIFETIME = 2,
  // Released while `max_idle` connections were already idle.
  PGPOOL_CLOSE_MAX_IDLE = 3,
  // Checked out `max_uses` times.
  PGPOOL_CLOSE_MAX_USES = 4,
  // Reported itself broken, failed its reset, or was released by a panicking thread.
  PGPOOL_CLOSE_BROKEN = 5,
  // Failed the check before hand-out (the server terminated the session, say).
  PGPOOL_CLOSE_FAILED_VALIDATION = 6,
  // Failed the keepalive round trip.
  PGPOOL_CLOSE_FAILED_KEEPALIVE = 7,
  // Discarded by its holder (`pgpool_conn_discard`).
  PGPOOL_CLOSE_DISCARDED = 8,
  // The pool closed.
  PGPOOL_CLOSE_POOL_CLOSED = 9,
  // Taken back from its holder.
  PGPOOL_CLOSE_RECLAIMED = 10,
  // The server is no longer what `target_session_attrs` asked for (a standby was
  // promoted, a primary turned read-only).
  PGPOOL_CLOSE_ROLE_CHANGED = 11,
  // On a hot standby further behind its primary than `max_replica_lag_ms`.
  PGPOOL_CLOSE_REPLICA_LAG = 12,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum pgpool_close_reason pgpool_close_reason;
#else
typedef int32_t pgpool_close_reason;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

// Opaque pool configuration. Create with `pgpool_config_new`, free with `pgpool_config_free`.
// May be used from any thread; setters on one config from several threads are serialised.
// Usable in a forked child too (to create the child's pool).
typedef struct pgpool_config pgpool_config;

// Opaque connection handle. Give it back with `pgpool_conn_release` or
// `pgpool_conn_discard`.
typedef struct pgpool_conn pgpool_conn;

// Opaque error detail object. Created by the library on failure, freed with
// `pgpool_error_free`. Immutable: may be read from any thread.
typedef struct pgpool_error pgpool_error;

// Opaque notification (`NOTIFY channel, 'payload'`). Freed with `pgpool_notification_free`;
// read-only, may be read from any thread.
typedef struct pgpool_notification pgpool_notification;

// Opaque parameter list. Create with `pgpool_params_new`, fill with the `pgpool_params_add_*`
// binders, reuse with `pgpool_params_clear`, free with `pgpool_params_free`.
typedef struct pgpool_params pgpool_params;

// Opaque pool handle. Thread-safe: share it freely between threads. Freed with
// `pgpool_pool_free`.
typedef struct pgpool_pool pgpool_pool;

// Opaque registry handle: named pools. Thread-safe: share it freely between threads.
// Freed with `pgpool_registry_free`.
typedef struct pgpool_registry pgpool_registry;

// Opaque query result. Freed with `pgpool_result_free`.
typedef struct pgpool_result pgpool_result;

// Opaque prepared statement: SQL text and declared parameter types, not tied to one
// connection. Each session prepares it once (on first use, through its statement cache)
// and executes it by name afterwards. Free with `pgpool_stmt_free`; read-only, so it may
// be used from several threads at once.
typedef struct pgpool_stmt pgpool_stmt;

// One pool event, passed to the event callback (see `pgpool_config_set_event_callback`).
//
// Led by `size` like `pgpool_stats`, but filled by the library: `size` is the number of
// bytes the library filled, and fields are only ever added at the end, so a callback built
// against an older header reads what it knows and one built against a newer header checks
// `offsetof(pgpool_event, field) < event->size` before reading a field it is not sure the
// library has. Every string is NUL-terminated UTF-8, never NULL (empty when it does not
// apply), and, like the struct, valid only during the call: copy what you keep.
typedef struct pgpool_event {
  // Bytes of this struct the library filled (`sizeof(pgpool_event)` of its version).
  uint32_t size;
  // A `pgpool_event_kind`.
  int32_t kind;
  // The pool's name (`pgpool_config_set_name`, the connection string's `pool_name`, or
  // "default").
  const char *pool;
  // The kind's stable name: "connect", "acquire", "release", "remove", "error",
  // "leak_suspected", "reclaimed", "notice".
  const char *kind_name;
  // The connection (unique within the pool, never reused); 0 for NOTICE and for an ERROR
  // not on a connection (a failed connect).
  uint64_t conn_id;
  // The session's server process (`pgpool_conn_backend_pid`, `pg_backend_pid()`); 0 when
  // unknown or not about a connection.
  int32_t backend_pid;
  // A `pgpool_close_reason` for REMOVE and RECLAIMED; PGPOOL_CLOSE_NONE otherwise.
  int32_t reason;
  // Microseconds: the connect (CONNECT), the wait (ACQUIRE), the hold so far (RELEASE,
  // LEAK_SUSPECTED, RECLAIMED), the connection's age (REMOVE); -1 for the other kinds.
  int64_t duration_us;
  // ERROR: the `pgpool_code` the failure would have been returned with
  // (PGPOOL_ERR_CONNECT for a failed connect, ...); PGPOOL_OK otherwise.
  int32_t error_code;
  // Always zero (alignment).
  uint32_t reserved;
  // The reason's stable name for REMOVE and RECLAIMED ("idle_timeout", "lifetime",
  // "max_idle", "max_uses", "broken", "failed_validation", "failed_keepalive",
  // "discarded", "pool_closed", "reclaimed", "role_changed", "replica_lag"); empty
  // otherwise.
  const char *reason_text;
  // ERROR: the error's message; NOTICE: the notice's message; empty otherwise.
  const char *message;
  // ERROR: the SQLSTATE when the server sent one (28P01 for a bad password, ...);
  // NOTICE: the notice's code; empty otherwise.
  const char *sqlstate;
  // LEAK_SUSPECTED and RECLAIMED: where the connection was acquired (the label passed to
  // `pgpool_pool_acquire_at`, or "unknown"); empty otherwise.
  const char *site;
  // NOTICE: the severity ("WARNING", "NOTICE", "INFO", ...); empty otherwise.
  const char *severity;
} pgpool_event;

// The event callback: `event` is valid only during the call (see `pgpool_event`),
// `user_data` what was passed to `pgpool_config_set_event_callback`.
typedef void (*pgpool_event_fn)(const struct pgpool_event *event, void *user_data);

// Frees the `user_data` of an event callback, once the library no longer needs it.
typedef void (*pgpool_free_fn)(void *user_data);

// The callback of `pgpool_conn_transaction`: runs statements on `conn` (inside the
// transaction) and returns 0 to commit, anything else to roll back.
typedef int32_t (*pgpool_tx_fn)(struct pgpool_conn *conn, void *user_data);

// A log callback: `level` is a `pgpool_log_level` (PGPOOL_LOG_ERROR … PGPOOL_LOG_TRACE), `message` a NUL-terminated UTF-8
// string valid only during the call, `user_data` what was passed at registration.
//
// It may be called from any thread (including the pool's background threads), concurrently,
// and must not unwind (C++ exceptions, Go panics) into the library.
typedef void (*pgpool_log_fn)(int32_t level, const char *message, void *user_data);

// One latency distribution of `pgpool_stats`, in microseconds. Quantiles are within 6.25%
// of the exact value; `max_us` is exact. All zero when nothing was recorded.
typedef struct pgpool_histogram {
  // Values recorded.
  uint64_t count;
  // Their sum.
  uint64_t sum_us;
  // The median.
  uint64_t p50_us;
  // The 90th percentile.
  uint64_t p90_us;
  // The 99th percentile.
  uint64_t p99_us;
  // The largest value.
  uint64_t max_us;
} pgpool_histogram;

// A snapshot of a pool's gauges and counters (`pgpool_pool_stats`).
//
// Set `size` to `sizeof(pgpool_stats)` before the call; the library sets it to the number
// of bytes it filled. Fields are only ever added at the end.
typedef struct pgpool_stats {
  // In: `sizeof(pgpool_stats)` as the caller knows it. Out: bytes filled.
  uint32_t size;
  // The configured maximum of open connections.
  uint32_t max_size;
  // Established connections (in use + idle + being checked).
  uint32_t open;
  // Connections held by callers.
  uint32_t in_use;
  // Connections ready to hand out.
  uint32_t idle;
  // Idle connections being checked by the keepalive job.
  uint32_t checking;
  // Connection attempts in progress.
  uint32_t pending;
  // Connections being closed.
  uint32_t closing;
  // Callers waiting for a connection.
  uint32_t waiting;
  // Always zero (alignment).
  uint32_t reserved;
  // Successful acquires.
  uint64_t acquires;
  // Acquires that had to wait.
  uint64_t wait_count;
  // Total time those acquires waited, in microseconds.
  uint64_t wait_duration_us;
  // Acquires that timed out.
  uint64_t acquire_timeouts;
  // Acquires refused because `max_waiters` callers were waiting.
  uint64_t overloaded;
  // Connections opened.
  uint64_t connections_created;
  // Failed connection attempts.
  uint64_t connect_errors;
  // Validation round trips before hand-out.
  uint64_t validations;
  // Connections closed after `idle_timeout`.
  uint64_t closed_idle_timeout;
  // Connections closed after `max_lifetime`.
  uint64_t closed_lifetime;
  // Connections closed because `max_idle` were already idle.
  uint64_t closed_max_idle;
  // Connections closed after `max_uses` checkouts.
  uint64_t closed_max_uses;
  // Connections closed as broken.
  uint64_t closed_broken;
  // Connections closed after failing the check before hand-out.
  uint64_t closed_failed_validation;
  // Connections closed after failing a keepalive.
  uint64_t closed_failed_keepalive;
  // Connections discarded by callers.
  uint64_t closed_discarded;
  // Connections closed because the pool closed.
  uint64_t closed_pool_closed;
  // Connections taken back from their holders (held past `max_checkout`, or still held
  // when a bounded close ran out).
  uint64_t closed_reclaimed;
  // Checkouts reported as suspected leaks (held past `leak_threshold`).
  uint64_t leaks_suspected;
  // The pool's health: a `pgpool_health_state` value.
  int32_t health;
  // Connect attempts that failed in a row (0 after a success).
  uint32_t consecutive_connect_failures;
  // Milliseconds since the last successful connect; -1 if there was none.
  int64_t since_connect_success_ms;
  // Milliseconds since the last failed connect; -1 if there was none.
  int64_t since_connect_failure_ms;
  // Connector threads running (at most `max_concurrent_connects`).
  uint32_t connectors;
  // Always zero (alignment).
  uint32_t reserved2;
  // Time from an acquire call to hand-out (zero-filled when histograms are off).
  struct pgpool_histogram acquire_wait;
  // Time each successful connect took.
  struct pgpool_histogram connect_time;
  // Time of each statement run on the pool's connections.
  struct pgpool_histogram query_time;
  // How long each checkout was held.
  struct pgpool_histogram hold_time;
  // Connections retired because the server changed role: a standby promoted, or a
  // primary turned read-only, against the pool's `target_session_attrs`.
  uint64_t closed_role_changed;
  // Connections retired because their standby was further behind its primary than
  // `max_replica_lag`.
  uint64_t closed_replica_lag;
} pgpool_stats;

// The result of a health check (`pgpool_pool_health`).
//
// Set `size` to `sizeof(pgpool_health)` before the call.
typedef struct pgpool_health {
  // In: `sizeof(pgpool_health)` as the caller knows it. Out: bytes filled.
  uint32_t size;
  // Open connections.
  uint32_t open;
  // Idle connections.
  uint32_t idle;
  // Waiting callers.
  uint32_t waiting;
  // Time for acquire + round trip, in microseconds.
  uint64_t latency_us;
  // True when the round trip succeeded.
  bool ok;
  // Always zero (alignment).
  uint8_t reserved[7];
  // `current_database()`, NUL-terminated (empty on failure).
  char database[PGPOOL_HEALTH_TEXT_LEN];
  // The server's `now()` as text, NUL-terminated (empty on failure).
  char server_time[PGPOOL_HEALTH_TEXT_LEN];
  // The pool's health at the end of the check: a `pgpool_health_state` value.
  int32_t state;
  // Connect attempts that failed in a row (0 after a success).
  uint32_t consecutive_connect_failures;
  // Connections held by callers.
  uint32_t in_use;
  // Always zero (alignment).
  uint32_t reserved2;
  // The server's `server_version`, NUL-terminated (empty on failure).
  char server_version[PGPOOL_HEALTH_TEXT_LEN];
  // The configured maximum of open connections.
  uint32_t max_size;
  // Always zero (alignment).
  uint32_t reserved3;
  // Why the state is not healthy, the reasons joined by "; ", NUL-terminated and cut to
  // fit (empty when healthy; `pgpool_pool_health_json` has them whole).
  char reasons[PGPOOL_HEALTH_REASONS_LEN];
  // 1 when the server is a standby (`pg_is_in_recovery()`), 0 when not, -1 on failure.
  int32_t in_recovery;
  // Always zero (alignment).
  uint32_t reserved4;
  // On a standby, how far its replay is behind its primary (the measure of
  // `max_replica_lag_ms`), in microseconds; -1 on a primary or on failure.
  int64_t replica_lag_us;
} pgpool_health;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The library's version (`"MAJOR.MINOR.PATCH"`, Cargo's package version), a static string.
// Compare with the header's `PGPOOL_VERSION_STRING` to detect a header/library mismatch.
// Thread-safe, non-blocking, never fails.
const char *pgpool_version(void);

// Creates a configuration with every option at its default (see the Rust `Config` docs:
// max_size 10, acquire_timeout 30 s, ...).
//
// Ownership: on success `*out_cfg` receives a new handle the caller frees with
// `pgpool_config_free`. Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_USAGE (too many live configs).
pgpool_code pgpool_config_new(struct pgpool_config **out_cfg, struct pgpool_error **out_err);

// Frees a configuration. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
// `PGPOOL_ERR_INVALID_HANDLE`. Pools created from it are unaffected. Thread-safe,
// non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_free(struct pgpool_config *cfg);

// Sets `max_size`: Most connections open at once (default 10; 1..=10000).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_max_size(struct pgpool_config *cfg,
                                       uint32_t value,
                                       struct pgpool_error **out_err);

// Sets `min_idle`: Idle connections kept ready (default 0; at most `max_idle`).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_min_idle(struct pgpool_config *cfg,
                                       uint32_t value,
                                       struct pgpool_error **out_err);

// Sets `max_idle`: Idle connections kept at most (default: `max_size`).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_max_idle(struct pgpool_config *cfg,
                                       uint32_t value,
                                       struct pgpool_error **out_err);

// Sets `max_lifetime_ms`: Close connections this old (default 30 min; negative: never; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_max_lifetime_ms(struct pgpool_config *cfg,
                                              int64_t value,
                                              struct pgpool_error **out_err);

// Sets `idle_timeout_ms`: Close idle connections after this long (default 10 min; negative: never; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_idle_timeout_ms(struct pgpool_config *cfg,
                                              int64_t value,
                                              struct pgpool_error **out_err);

// Sets `acquire_timeout_ms`: Default wait of an acquire (default 30 s; must be > 0).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_acquire_timeout_ms(struct pgpool_config *cfg,
                                                 int64_t value,
                                                 struct pgpool_error **out_err);

// Sets `connect_timeout_ms`: Bound on one connection attempt (default 10 s; must be > 0).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_connect_timeout_ms(struct pgpool_config *cfg,
                                                 int64_t value,
                                                 struct pgpool_error **out_err);

// Sets `max_uses`: Retire a connection after this many checkouts (default 0: unlimited).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_max_uses(struct pgpool_config *cfg,
                                       uint64_t value,
                                       struct pgpool_error **out_err);

// Sets `validate_on_acquire`: Check a connection with a round trip before handing it out (default true).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_validate_on_acquire(struct pgpool_config *cfg,
                                                  bool value,
                                                  struct pgpool_error **out_err);

// Sets `validation_skip_window_ms`: Skip that round trip for connections used this recently (default 500; >= 0).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_validation_skip_window_ms(struct pgpool_config *cfg,
                                                        int64_t value,
                                                        struct pgpool_error **out_err);

// Sets `validation_timeout_ms`: Bound on a validation or keepalive round trip (default 5 s; must be > 0).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_validation_timeout_ms(struct pgpool_config *cfg,
                                                    int64_t value,
                                                    struct pgpool_error **out_err);

// Sets `keepalive_interval_ms`: How often idle connections are checked (default 60 s; negative: never; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_keepalive_interval_ms(struct pgpool_config *cfg,
                                                    int64_t value,
                                                    struct pgpool_error **out_err);

// Sets `reaper_interval_ms`: How often idle/lifetime limits are enforced (default 1 s; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_reaper_interval_ms(struct pgpool_config *cfg,
                                                 int64_t value,
                                                 struct pgpool_error **out_err);

// Sets `max_waiters`: Fail acquires at once (`PGPOOL_ERR_OVERLOADED`) when this many callers wait (default 0: unbounded).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_max_waiters(struct pgpool_config *cfg,
                                          uint64_t value,
                                          struct pgpool_error **out_err);

// Sets `close_timeout_ms`: Default bound of a close waiting for connections in use (default 5 s; >= 0).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_close_timeout_ms(struct pgpool_config *cfg,
                                               int64_t value,
                                               struct pgpool_error **out_err);

// Sets `statement_timeout_ms`: `statement_timeout` of every session (default: server's; negative: server's; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_statement_timeout_ms(struct pgpool_config *cfg,
                                                   int64_t value,
                                                   struct pgpool_error **out_err);

// Sets `statement_cache_capacity`: Prepared statements cached per connection (default 256; 0: no cache).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_statement_cache_capacity(struct pgpool_config *cfg,
                                                       uint64_t value,
                                                       struct pgpool_error **out_err);

// Sets `tcp_user_timeout_ms`: `TCP_USER_TIMEOUT` of every socket (default 10 s; negative: leave the system's).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_tcp_user_timeout_ms(struct pgpool_config *cfg,
                                                  int64_t value,
                                                  struct pgpool_error **out_err);

// Sets `tcp_keepalive_idle_ms`: TCP keepalive idle time of every socket (default 5 s; must be > 0).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_tcp_keepalive_idle_ms(struct pgpool_config *cfg,
                                                    int64_t value,
                                                    struct pgpool_error **out_err);

// Sets `application_name` of every session (default: the connection string's, else
// "pgpool"; shorter than 64 bytes). The string is copied.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_application_name(struct pgpool_config *cfg,
                                               const char *value,
                                               struct pgpool_error **out_err);

// Sets `fallback_lifetime_ms`: how long a `target_session_attrs=prefer-standby` session
// that fell back to a primary (no standby accepted it) is kept: its lifetime, enforced as
// `max_lifetime_ms` is (PGPOOL_CLOSE_LIFETIME), so that its replacement tries the standbys
// first (default: off, only `max_lifetime_ms`; negative: off; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_fallback_lifetime_ms(struct pgpool_config *cfg,
                                                   int64_t value,
                                                   struct pgpool_error **out_err);

// Sets `init_sql`: SQL run on every new session before the pool uses it (several statements
// separated by `;`, one round trip, bounded by what is left of `connect_timeout_ms`). A
// failure fails the connect (PGPOOL_ERR_CONNECT; permanent for SQLSTATE class 42: syntax,
// privilege, undefined object). With `full_reset`, it runs again after each reset. NULL or
// an empty string: none (the default). The string is copied.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_NULL_ARGUMENT (`cfg`);
// PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_init_sql(struct pgpool_config *cfg,
                                       const char *sql,
                                       struct pgpool_error **out_err);

// Sets `query_timeout_ms`: every statement of a checked-out connection is cancelled on the
// server after this long and returns `PGPOOL_ERR_TIMEOUT` (SQLSTATE 57014) (default:
// unbounded; negative: unbounded; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_query_timeout_ms(struct pgpool_config *cfg,
                                               int64_t value,
                                               struct pgpool_error **out_err);

// Sets `full_reset`: undo session state (SET, LISTEN, advisory locks, temporary tables) on
// every release, in one extra round trip (default false).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_full_reset(struct pgpool_config *cfg,
                                         bool value,
                                         struct pgpool_error **out_err);

// Sets `transaction_pooling`: for a transaction-pooling proxy such as PgBouncer, no named
// prepared statements and no session state assumed (default false).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_transaction_pooling(struct pgpool_config *cfg,
                                                  bool value,
                                                  struct pgpool_error **out_err);

// Sets `max_concurrent_connects`: connection attempts running at once, shared by warm-up,
// refill and growth on demand, so a crowd of callers cannot start a login storm (default 2;
// at least 1; above `max_size` acts as `max_size`; 0 fails `pgpool_pool_create` with
// PGPOOL_ERR_CONFIG).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_max_concurrent_connects(struct pgpool_config *cfg,
                                                      uint32_t value,
                                                      struct pgpool_error **out_err);

// Sets `breaker_threshold`: after this many failed connects in a row with no connection
// open (or one permanent error such as a bad password), the pool is down: an acquire that
// needs a new connection waits for one background probe at most, then fails with the last
// connect error (PGPOOL_ERR_CONNECT) instead of waiting out its timeout (default 3; 0 switches
// the breaker off).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_breaker_threshold(struct pgpool_config *cfg,
                                                uint32_t value,
                                                struct pgpool_error **out_err);

// Sets `reconnect_backoff_max_ms`: the longest pause between connect attempts after
// failures (default 5 s; at least 10, else `pgpool_pool_create` fails with
// PGPOOL_ERR_CONFIG).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_reconnect_backoff_max_ms(struct pgpool_config *cfg,
                                                       int64_t value,
                                                       struct pgpool_error **out_err);

// Sets `leak_threshold_ms`: a connection held longer is reported once as a suspected leak
// (logged with where it was acquired: see PGPOOL_ACQUIRE), and counted in
// `pgpool_stats.leaks_suspected` (default: off; negative: off; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_leak_threshold_ms(struct pgpool_config *cfg,
                                                int64_t value,
                                                struct pgpool_error **out_err);

// Sets `max_checkout_ms`: a connection held longer is taken back: its statement cancelled
// on the server, its socket shut down (the holder's next call fails with PGPOOL_ERR_BROKEN,
// "reclaimed"; release it as usual), its slot freed for other callers (default: off;
// negative: off; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_max_checkout_ms(struct pgpool_config *cfg,
                                              int64_t value,
                                              struct pgpool_error **out_err);

// Sets `health_timeout_ms`: the bound on `pgpool_pool_health` as a whole (default 2 s;
// must be > 0, else `pgpool_pool_create` fails with PGPOOL_ERR_CONFIG).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (a negative value).
pgpool_code pgpool_config_set_health_timeout_ms(struct pgpool_config *cfg,
                                                int64_t value,
                                                struct pgpool_error **out_err);

// Sets `name`: the pool's name, used as the `pool` label of `pgpool_pool_metrics` and in
// log lines (default "default"; 1 to 63 letters, digits, '_', '-', '.', else
// `pgpool_pool_create` fails with PGPOOL_ERR_CONFIG). The string is copied.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_name(struct pgpool_config *cfg,
                                   const char *value,
                                   struct pgpool_error **out_err);

// Sets `histograms`: keep the latency histograms of `pgpool_stats` (acquire wait, connect,
// query and hold time; default true). When false they stay empty.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_histograms(struct pgpool_config *cfg,
                                         bool value,
                                         struct pgpool_error **out_err);

// Sets `stats_log_interval_ms`: log one line of gauges, counters and p99s at info level
// (target "pgpool::stats", see `pgpool_log_set_callback`) this often (default: never;
// negative: never; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_stats_log_interval_ms(struct pgpool_config *cfg,
                                                    int64_t value,
                                                    struct pgpool_error **out_err);

// Sets `slow_query_threshold_ms`: queries slower than this are logged at warn level (target
// "pgpool::query") with their text, duration and rows, never their parameter values
// (default: off; negative: off; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_slow_query_threshold_ms(struct pgpool_config *cfg,
                                                      int64_t value,
                                                      struct pgpool_error **out_err);

// Sets `degraded_waiters`: `pgpool_pool_health` reports the pool degraded while more than
// this many callers wait for a connection (default 10; negative: never).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_degraded_waiters(struct pgpool_config *cfg,
                                               int64_t value,
                                               struct pgpool_error **out_err);

// Sets `max_replica_lag_ms`: a session on a hot standby whose replay is further behind its
// primary is not used: the connect refuses such a standby (the next host is tried;
// `target_session_attrs=prefer-standby` falls back to the primary), and an open session
// found lagging is closed (PGPOOL_CLOSE_REPLICA_LAG, `pgpool_stats.closed_replica_lag`).
// Measured at connect, before a hand-out once the last measure is older than half of
// this, and by the keepalive (default: off; negative: off; at least 1).
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_max_replica_lag_ms(struct pgpool_config *cfg,
                                                 int64_t value,
                                                 struct pgpool_error **out_err);

// Sets the event callback: `callback` receives every event of the pools created from this
// config (connect, acquire, release, remove, error, leak suspected, reclaimed, notice) as a
// `pgpool_event`. NULL removes it (then `user_data` and `free_user_data` are ignored).
//
// Threads: the callback runs on the thread where the event happened: a caller's thread
// (ACQUIRE in `pgpool_pool_acquire`, RELEASE and REMOVE in `pgpool_conn_release`, ...) or
// one of the pool's background threads (CONNECT and connect ERRORs on a connector thread,
// keepalive and reaper events on the housekeeper), possibly on several threads at once. It
// runs outside the pool's lock, but inside the call that caused the event: keep it short
// and non-blocking (copy the event to a queue, bump a counter). It must return normally:
// no longjmp, C++ exception or Go panic may leave it.
//
// Re-entry: the callback may call the library, except functions that wait for a pool,
// which return PGPOOL_ERR_USAGE when called from inside an event callback, because it may
// be running on the very thread they would wait for: `pgpool_pool_acquire` and
// `pgpool_pool_acquire_at` with a `timeout_ms` other than 0, `pgpool_pool_query`,
// `pgpool_pool_exec`, `pgpool_pool_transaction_retry`, `pgpool_pool_health`,
// `pgpool_pool_wait_ready`, and `pgpool_pool_close` with a `timeout_ms` other than 0.
// Everything else works (stats, `pgpool_pool_try_acquire`, calls on a connection the
// thread holds, freeing a pool); releasing a connection from the callback delivers that
// release's events to the callback first, nested.
//
// Lifetimes: the event and its strings are valid only during the call. `user_data` is
// passed to every call; when the library no longer needs it (this config and every pool
// created from it are freed, and their last connections and background threads are gone)
// it calls `free_user_data(user_data)` once, on whichever thread lets go last (NULL
// `free_user_data`: nothing is called; keep `user_data` valid for as long as the process
// may deliver events). When this function fails, `free_user_data` is not called. Pools
// created before the call keep the callback they were created with.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_event_callback(struct pgpool_config *cfg,
                                             pgpool_event_fn callback,
                                             void *user_data,
                                             pgpool_free_fn free_user_data,
                                             struct pgpool_error **out_err);

// Sets whether pools read the `PGPOOL_*` environment variables (one per option:
// `PGPOOL_MAX_SIZE=20`, `PGPOOL_ACQUIRE_TIMEOUT=5s`, ...; a setter and the connection
// string's `pool_*` keys outrank them). Default true, as libpq reads `PGHOST` and the like;
// false for a pool whose settings must not depend on the environment. With it on, a
// `PGPOOL_*` variable that names no option makes `pgpool_pool_create` fail with
// PGPOOL_ERR_CONFIG.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_env(struct pgpool_config *cfg,
                                  bool value,
                                  struct pgpool_error **out_err);

// Sets whether pools also read other tools' environment variables for pool options, below
// `PGPOOL_*`, with those tools' units: Go `database/sql` conventions (`DB_MAX_OPEN_CONNS`,
// `DB_MAX_IDLE_CONNS`, `DB_CONN_MAX_LIFETIME`, `DB_CONN_MAX_IDLE_TIME`) and node-postgres
// ones (`PG_POOL_MAX`, `PG_POOL_MIN`, `PG_IDLE_TIMEOUT`, `PG_CONNECTION_TIMEOUT`,
// `PG_STATEMENT_TIMEOUT`, `PG_QUERY_TIMEOUT`, `PG_APP_NAME`). Default false: other code in
// the process may read these names with its own meaning. No effect while
// `pgpool_config_set_env` is false.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_config_set_env_aliases(struct pgpool_config *cfg,
                                          bool value,
                                          struct pgpool_error **out_err);

// Asks the server to cancel the statement running on `conn`. The one function that may be
// called while another thread is using the handle (that is its point: a watchdog, or a Go
// context being cancelled). The running call then returns `PGPOOL_ERR_SERVER` with SQLSTATE
// 57014, and the connection stays usable. A cancel that arrives when nothing runs is ignored
// by the server and never affects a later statement: this call returns once the server has
// taken the request, and releasing the handle waits for a cancel in flight.
//
// Blocking: one connection to the server, at most 5 s.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE (released);
// PGPOOL_ERR_USAGE (the server sent no cancel key); PGPOOL_ERR_BROKEN or
// PGPOOL_ERR_TIMEOUT (the cancel request could not be delivered); PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_cancel(struct pgpool_conn *conn, struct pgpool_error **out_err);

// Gives the connection back to the pool (rolled back first if a transaction may be open).
// The handle is dead afterwards.
//
// Blocks for at most one bounded `ROLLBACK` round trip, and until a concurrent use of the
// same handle finishes.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// In a child process after `fork()`, releasing a connection acquired before the fork
// forgets it: `PGPOOL_OK`, and the parent's session is neither reset nor closed (nothing is
// sent, no lock is taken, even one a parent thread held at the fork).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE (released already).
pgpool_code pgpool_conn_release(struct pgpool_conn *conn, struct pgpool_error **out_err);

// Closes the connection instead of returning it (after a session change the next user must
// not inherit); the pool opens a replacement if it needs one. The handle is dead afterwards.
//
// Non-blocking (closing happens in the background). In a forked child, as
// `pgpool_conn_release` (the parent's session is forgotten, not closed).
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE (released already).
pgpool_code pgpool_conn_discard(struct pgpool_conn *conn, struct pgpool_error **out_err);

// Runs `sql` with `nparams` parameters in text form (`params[i]` is `$i+1`, NULL for SQL
// NULL; the server parses each as the type the statement expects, like libpq's
// `PQexecParams`), through the connection's prepared-statement cache.
//
// Ownership: on success `*out_result` receives a result freed with `pgpool_result_free`.
// Blocking: one or two round trips, bounded by `statement_timeout` when configured.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_INVALID_ARGUMENT (parameter count);
// PGPOOL_ERR_USAGE (a COPY in progress or started by `sql`); PGPOOL_ERR_SERVER;
// PGPOOL_ERR_TIMEOUT (query timeout: SQLSTATE 57014); PGPOOL_ERR_BROKEN; PGPOOL_ERR_USAGE (too
// many live results); PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_query(struct pgpool_conn *conn,
                              const char *sql,
                              size_t nparams,
                              const char *const *params,
                              struct pgpool_result **out_result,
                              struct pgpool_error **out_err);

// Like `pgpool_conn_query` for a command: stores the number of rows affected in
// `*out_rows` (no result object).
//
// Blocking and errors as `pgpool_conn_query`.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_INVALID_ARGUMENT (parameter count);
// PGPOOL_ERR_USAGE (a COPY in progress or started by `sql`); PGPOOL_ERR_SERVER;
// PGPOOL_ERR_TIMEOUT (query timeout: SQLSTATE 57014); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_execute(struct pgpool_conn *conn,
                                const char *sql,
                                size_t nparams,
                                const char *const *params,
                                uint64_t *out_rows,
                                struct pgpool_error **out_err);

// Runs one or more `;`-separated statements with the simple protocol (no parameters, no
// rows returned). Blocking: one round trip.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (a COPY in progress or started
// by `sql`); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query timeout); PGPOOL_ERR_BROKEN;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_batch(struct pgpool_conn *conn,
                              const char *sql,
                              struct pgpool_error **out_err);

// Starts a transaction (`BEGIN`). A connection released with a transaction open is rolled
// back before reuse. Blocking: one round trip.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_USAGE (a COPY in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query
// timeout); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_begin(struct pgpool_conn *conn, struct pgpool_error **out_err);

// Commits the open transaction (`COMMIT`). Blocking: one round trip.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_USAGE (a COPY in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query
// timeout); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_commit(struct pgpool_conn *conn, struct pgpool_error **out_err);

// Rolls back the open transaction (`ROLLBACK`). Blocking: one round trip.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_USAGE (a COPY in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query
// timeout); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_rollback(struct pgpool_conn *conn, struct pgpool_error **out_err);

// Stores the server process id of the session (`pg_backend_pid()`) in `*out_pid`.
// Non-blocking.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_backend_pid(const struct pgpool_conn *conn,
                                    int32_t *out_pid,
                                    struct pgpool_error **out_err);

// Stores the connection's id in `*out_id`: unique within its pool and never reused, the
// `conn_id` of the pool's events about it (see `pgpool_config_set_event_callback`).
// Non-blocking.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_id(const struct pgpool_conn *conn,
                           uint64_t *out_id,
                           struct pgpool_error **out_err);

// Bounds every following statement on this connection until it is released: a statement
// that runs longer is cancelled on the server and its call returns `PGPOOL_ERR_TIMEOUT`
// with SQLSTATE 57014; the connection stays usable if the server answered the cancel within
// 5 s (otherwise it is closed and the call returns `PGPOOL_ERR_TIMEOUT` with the
// `outcome_unknown` flag set). `timeout_ms`: positive = milliseconds; 0 = no limit;
// negative = the pool's configured `query_timeout_ms`. Release restores the pool's value.
// Non-blocking.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_set_query_timeout(struct pgpool_conn *conn,
                                          int64_t timeout_ms,
                                          struct pgpool_error **out_err);

// Stores the session's transaction status, as the server reported it after the last
// statement, in `*out_status`: 0 = idle, 1 = in a transaction, 2 = in a failed transaction
// (statements are rejected until ROLLBACK). Non-blocking, no round trip.
//
// Thread safety: the handle may move between threads but is used by one at a time (a
// concurrent call returns `PGPOOL_ERR_BUSY`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_transaction_status(const struct pgpool_conn *conn,
                                           int32_t *out_status,
                                           struct pgpool_error **out_err);

// Runs `callback(conn, user_data)` between BEGIN and COMMIT: 0 from the callback commits;
// anything else rolls back and returns PGPOOL_ERR_ROLLED_BACK, with the callback's value
// in `*out_callback_result` (may be NULL; set whenever the callback ran, an exception to the
// outputs rule). A COMMIT the server turns into a rollback (a
// statement in the transaction failed) returns PGPOOL_ERR_SERVER with SQLSTATE 25P02, never
// PGPOOL_OK. The handle is free for the callback's own calls while it runs.
//
// Blocking: BEGIN and COMMIT/ROLLBACK round trips plus the callback.
// Returns: PGPOOL_OK (committed); PGPOOL_ERR_ROLLED_BACK; PGPOOL_ERR_NULL_ARGUMENT;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (a transaction or COPY
// already in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_transaction(struct pgpool_conn *conn,
                                    pgpool_tx_fn callback,
                                    void *user_data,
                                    int32_t *out_callback_result,
                                    struct pgpool_error **out_err);

// Starts `sql`, a `COPY … FROM STDIN` statement; then send the data (in the COPY's format)
// with `pgpool_conn_copy_in_write` and end with `pgpool_conn_copy_in_end` (or
// `pgpool_conn_copy_in_abort`).
//
// Blocking: one round trip.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (not a COPY FROM STDIN, or a
// COPY already in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_copy_in_begin(struct pgpool_conn *conn,
                                      const char *sql,
                                      struct pgpool_error **out_err);

// Sends `len` bytes of COPY data (any split: rows may span calls).
//
// Blocking: only while the socket's send buffer is full.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_ARGUMENT (`len` above
// PTRDIFF_MAX); PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (no COPY FROM
// STDIN in progress); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_copy_in_write(struct pgpool_conn *conn,
                                      const void *data,
                                      size_t len,
                                      struct pgpool_error **out_err);

// Ends the COPY; `*out_rows` (may be NULL) receives the number of rows copied.
//
// Blocking: one round trip.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_USAGE (no COPY FROM STDIN in progress); PGPOOL_ERR_SERVER (bad data: nothing
// was copied); PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_copy_in_end(struct pgpool_conn *conn,
                                    uint64_t *out_rows,
                                    struct pgpool_error **out_err);

// Aborts the COPY with `reason` (NULL: a generic one); nothing is copied. `PGPOOL_OK` also
// when the server had already rejected data sent before (the COPY is over either way).
//
// Blocking: one round trip.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (no COPY FROM STDIN in
// progress); PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_copy_in_abort(struct pgpool_conn *conn,
                                      const char *reason,
                                      struct pgpool_error **out_err);

// Starts `sql`, a `COPY … TO STDOUT` statement; then read the data with
// `pgpool_conn_copy_out_read` until it reports the end.
//
// Blocking: one round trip.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (not a COPY TO STDOUT, or a
// COPY already in progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_copy_out_begin(struct pgpool_conn *conn,
                                       const char *sql,
                                       struct pgpool_error **out_err);

// Copies up to `cap` bytes of COPY data into `buf` and stores how many in `*out_len`.
// `*out_len` 0 means the COPY has ended: the connection is usable again and `*out_rows`
// (may be NULL) receives the number of rows copied.
//
// Blocking: until data arrives.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_ARGUMENT (`cap` 0);
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_USAGE (no COPY TO STDOUT in
// progress); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_copy_out_read(struct pgpool_conn *conn,
                                      void *buf,
                                      size_t cap,
                                      size_t *out_len,
                                      uint64_t *out_rows,
                                      struct pgpool_error **out_err);

// The result code this error was returned with.
//
// Thread-safe, non-blocking.
//
// Returns: the code the error was returned with (never PGPOOL_OK); PGPOOL_OK for a NULL `err`
// (there is no error); PGPOOL_ERR_INVALID_HANDLE for a freed or unknown handle.
pgpool_code pgpool_error_code(const struct pgpool_error *err);

// The human-readable message (UTF-8, NUL-terminated).
//
// Ownership: the string belongs to the error object and stays valid until
// `pgpool_error_free(err)`. For NULL or an invalid handle a static string saying so is
// returned (never NULL). Thread-safe, non-blocking.
const char *pgpool_error_message(const struct pgpool_error *err);

// The five-character SQLSTATE the server sent, or NULL when there is none (or `err` is NULL
// or invalid). Valid until `pgpool_error_free(err)`. Thread-safe, non-blocking.
const char *pgpool_error_sqlstate(const struct pgpool_error *err);

// The error's category: the stable name of its code (`"timeout"`, `"closed"`,
// `"overloaded"`, `"connect"`, `"server"`, `"invalid_argument"`, ...). A static string,
// never freed; `"invalid_handle"` for NULL or an invalid handle. Thread-safe, non-blocking.
const char *pgpool_error_category(const struct pgpool_error *err);

// True when the statement may have run on the server although an error was returned (the
// connection died after the statement was sent): do not blindly retry non-idempotent work.
// False for NULL or an invalid handle. Thread-safe, non-blocking.
bool pgpool_error_outcome_unknown(const struct pgpool_error *err);

// True when running the same work again is safe and may succeed (nothing ran, or the server
// rolled it back for a retryable reason such as a serialization failure). False for NULL
// or an invalid handle. Thread-safe, non-blocking.
bool pgpool_error_retry_safe(const struct pgpool_error *err);

// Frees an error object. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
// `PGPOOL_ERR_INVALID_HANDLE`. Strings obtained from the object become invalid.
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already).
pgpool_code pgpool_error_free(struct pgpool_error *err);

// The stable name of a result code (`"ok"`, `"timeout"`, ...), or `"unknown"` for a number
// this version does not know. A static string. Thread-safe, non-blocking.
const char *pgpool_code_name(int32_t code);

// Creates a statement for `sql` (`$1`, `$2`, … for parameters) in `*out_stmt`.
// `param_types` holds `ntypes` type OIDs for the first parameters (0 = let the server
// infer; NULL when `ntypes` is 0); the rest are inferred. Nothing is sent to a server
// here: syntax errors surface at the first execution.
//
// Non-blocking, thread-safe.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 types).
pgpool_code pgpool_stmt_new(const char *sql,
                            size_t ntypes,
                            const uint32_t *param_types,
                            struct pgpool_stmt **out_stmt,
                            struct pgpool_error **out_err);

// Frees a statement (sessions that prepared it keep it in their cache). NULL is a no-op.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_stmt_free(struct pgpool_stmt *stmt);

// Runs `sql` with typed `params` (NULL: none) on `conn`, through its statement cache, in
// one round trip once the statement is cached.
//
// Rows: when `inout_res` is NULL they are discarded (a command). When `*inout_res` is NULL
// a new result is stored there (free it with `pgpool_result_free`). When `*inout_res` is a
// result, it is reused: its previous rows and every pointer read from them become invalid,
// and a loop that reuses one result allocates nothing per query in the steady state. On
// failure `*inout_res` is not changed (a reused result is left empty).
// `out_affected` (may be NULL) receives the command's row count.
//
// Blocking: the statement's round trip, bounded by the connection's query timeout.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY; PGPOOL_ERR_INVALID_ARGUMENT (parameter count);
// PGPOOL_ERR_USAGE (a parameter that does not fit its type, a COPY in progress or started
// by `sql`); PGPOOL_ERR_SERVER; PGPOOL_ERR_TIMEOUT (query timeout: SQLSTATE 57014);
// PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_exec(struct pgpool_conn *conn,
                             const char *sql,
                             const struct pgpool_params *params,
                             struct pgpool_result **inout_res,
                             uint64_t *out_affected,
                             struct pgpool_error **out_err);

// As `pgpool_conn_exec`, for a statement made with `pgpool_stmt_new` (its declared
// parameter types apply).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_INVALID_ARGUMENT (parameter count); PGPOOL_ERR_USAGE (a parameter that does
// not fit its type, a COPY in progress or started by the statement); PGPOOL_ERR_SERVER;
// PGPOOL_ERR_TIMEOUT (query timeout: SQLSTATE 57014); PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_exec_stmt(struct pgpool_conn *conn,
                                  const struct pgpool_stmt *stmt,
                                  const struct pgpool_params *params,
                                  struct pgpool_result **inout_res,
                                  uint64_t *out_affected,
                                  struct pgpool_error **out_err);

// Acquires a connection from `pool` (waiting per `timeout_ms`: negative = the pool's
// `acquire_timeout_ms`, 0 = only an idle one, positive = milliseconds), runs `stmt` (or,
// when `stmt` is NULL, `sql`) as `pgpool_conn_exec_stmt` / `pgpool_conn_exec` do, and
// releases the connection: one call for the whole round (one crossing for cgo callers).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY (the parameter list or the result is in use by
// another thread); PGPOOL_ERR_INVALID_ARGUMENT (parameter count); PGPOOL_ERR_USAGE
// (a parameter that does not fit its type, a COPY statement); PGPOOL_ERR_SERVER;
// PGPOOL_ERR_BROKEN; PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing
// idle), PGPOOL_ERR_CLOSED, PGPOOL_ERR_OVERLOADED, PGPOOL_ERR_CONNECT (a permanent connect
// error), PGPOOL_ERR_TIMEOUT (no connection in time); PGPOOL_ERR_FORKED.
pgpool_code pgpool_pool_exec(struct pgpool_pool *pool,
                             int64_t timeout_ms,
                             const struct pgpool_stmt *stmt,
                             const char *sql,
                             const struct pgpool_params *params,
                             struct pgpool_result **inout_res,
                             uint64_t *out_affected,
                             struct pgpool_error **out_err);

// Routes the library's log records at `max_level` or more severe (1 error … 5 trace; 0 or
// a NULL `callback` switches the callback off) to `callback`.
//
// Thread-safe; replaces any previous callback. After it returns, the previous callback may
// still be running on another thread for a record already in flight.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_USAGE (another logger is installed in this process).
pgpool_code pgpool_log_set_callback(pgpool_log_fn callback,
                                    void *user_data,
                                    int32_t max_level,
                                    struct pgpool_error **out_err);

// Stores the pool's statistics as Prometheus text (exposition format 0.0.4: serve it as
// `text/plain; version=0.0.4`) in `*out_text`: every gauge, counter and histogram, labelled
// with the pool's name (`pgpool_config_set_name`), close counters by reason. The families
// are listed in the README (Operations).
//
// Ownership: `*out_text` is a new NUL-terminated string from `malloc`; free it with
// `pgpool_string_free` (or `free`). Thread-safe, non-blocking (a consistent snapshot under
// the pool's lock).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (out of memory).
pgpool_code pgpool_pool_metrics(const struct pgpool_pool *pool,
                                char **out_text,
                                struct pgpool_error **out_err);

// Runs a health check (as `pgpool_pool_health`) and stores its result as one JSON object
// in `*out_json`: `ok`, `pool`, `state` ("healthy", "degraded", "down"), `reasons` (an array
// of phrases), `database`, `timestamp` (the server's time, ISO 8601 UTC), `serverVersion`,
// `latencyMs`, `maxSize`, `poolSize` (open), `idleCount`, `inUseCount`, `waitingCount`,
// `consecutiveConnectFailures`, `lastConnectError` and `error` (strings or null).
//
// An unhealthy pool is not a failure of this call: the JSON says so and the call returns
// PGPOOL_OK. Ownership: `*out_json` is a new string from `malloc`; free it with
// `pgpool_string_free` (or `free`). Thread-safe; blocks at most the configured
// `health_timeout` (2 s by default).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (out of memory); PGPOOL_ERR_FORKED.
pgpool_code pgpool_pool_health_json(const struct pgpool_pool *pool,
                                    char **out_json,
                                    struct pgpool_error **out_err);

// Stores the statistics of every opened pool of `reg` as one Prometheus text (as
// `pgpool_pool_metrics`: one block per metric family, a `pool` label per pool) in
// `*out_text`. Pools not opened yet are left out.
//
// Ownership: `*out_text` is a new string from `malloc`; free it with `pgpool_string_free`
// (or `free`). Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (out of memory); PGPOOL_ERR_FORKED.
pgpool_code pgpool_registry_metrics(const struct pgpool_registry *reg,
                                    char **out_text,
                                    struct pgpool_error **out_err);

// Runs a health check of every opened pool of `reg` in parallel and stores the result as
// one JSON object in `*out_json`: `ok` (every check succeeded), `state` (the worst pool's:
// "healthy", "degraded", "down") and `pools`, an array of `pgpool_pool_health_json`
// objects. Unhealthy pools are not a failure of this call.
//
// Ownership: `*out_json` is a new string from `malloc`; free it with `pgpool_string_free`
// (or `free`). Thread-safe; blocks at most the longest `health_timeout` of the pools.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (out of memory); PGPOOL_ERR_FORKED.
pgpool_code pgpool_registry_health_json(const struct pgpool_registry *reg,
                                        char **out_json,
                                        struct pgpool_error **out_err);

// Frees a string returned by `pgpool_pool_metrics`, `pgpool_registry_metrics`,
// `pgpool_pool_health_json` or `pgpool_registry_health_json`. NULL is
// ignored. Thread-safe; each string is freed once.
//
// Returns nothing (never fails).
void pgpool_string_free(char *text);

// Waits for a notification on `conn` (after `LISTEN channel` on it) and stores it in
// `*out_notification`. `timeout_ms`: negative = wait without limit, 0 = only one already
// received (`PGPOOL_ERR_WOULD_BLOCK` otherwise), positive = milliseconds
// (`PGPOOL_ERR_TIMEOUT` when none arrived). Notifications that arrive during other
// statements are kept and returned first, in order.
//
// Blocking: up to `timeout_ms`.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_BUSY;
// PGPOOL_ERR_WOULD_BLOCK; PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_USAGE (a COPY in progress);
// PGPOOL_ERR_BROKEN; PGPOOL_ERR_FORKED.
pgpool_code pgpool_conn_wait_notification(struct pgpool_conn *conn,
                                          int64_t timeout_ms,
                                          struct pgpool_notification **out_notification,
                                          struct pgpool_error **out_err);

// The channel name (owned by the notification); NULL for a NULL or invalid handle.
const char *pgpool_notification_channel(const struct pgpool_notification *n);

// The payload (owned by the notification; empty if none was given); NULL for a NULL or
// invalid handle.
const char *pgpool_notification_payload(const struct pgpool_notification *n);

// The notifying backend's process id; 0 for a NULL or invalid handle.
int32_t pgpool_notification_process_id(const struct pgpool_notification *n);

// Frees a notification and its strings. NULL is a no-op.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE.
pgpool_code pgpool_notification_free(struct pgpool_notification *n);

// Creates an empty parameter list in `*out_params`.
//
// Thread safety: a list may be filled and used from any thread, one at a time.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT (`out_params` is NULL).
pgpool_code pgpool_params_new(struct pgpool_params **out_params, struct pgpool_error **out_err);

// Frees a parameter list. NULL is a no-op. In a forked child, a list made before the fork
// is forgotten (`PGPOOL_OK`; its memory is not reclaimed there).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already, or not a parameter list).
pgpool_code pgpool_params_free(struct pgpool_params *params);

// Appends SQL NULL (for a parameter of any type).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_null(struct pgpool_params *params, struct pgpool_error **out_err);

// Appends a boolean (for a `bool` parameter).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_bool(struct pgpool_params *params,
                                   bool value,
                                   struct pgpool_error **out_err);

// Appends a 16-bit integer (for any integer, float or numeric parameter it fits).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_int16(struct pgpool_params *params,
                                    int16_t value,
                                    struct pgpool_error **out_err);

// Appends a 32-bit integer (for any integer, float or numeric parameter it fits).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_int32(struct pgpool_params *params,
                                    int32_t value,
                                    struct pgpool_error **out_err);

// Appends a 64-bit integer (for any integer, float or numeric parameter it fits).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_int64(struct pgpool_params *params,
                                    int64_t value,
                                    struct pgpool_error **out_err);

// Appends a 4-byte float (for a float4, float8 or numeric parameter).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_float4(struct pgpool_params *params,
                                     float value,
                                     struct pgpool_error **out_err);

// Appends an 8-byte float (for a float4, float8 or numeric parameter).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters); PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_float8(struct pgpool_params *params,
                                     double value,
                                     struct pgpool_error **out_err);

// Appends text: `len` bytes at `text` (UTF-8, not necessarily NUL-terminated; `len` may
// be 0). For a text-like parameter it is the value; for any other type it is that type's
// text input form (`'2024-01-31'`, `'{1,2}'`, `'12.50'`), parsed by the server. The bytes
// are copied.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT (`params`, or `text` with `len` > 0);
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_INVALID_ARGUMENT (more
// than 65535 parameters); PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_text(struct pgpool_params *params,
                                   const char *text,
                                   size_t len,
                                   struct pgpool_error **out_err);

// Appends binary data for a `bytea` parameter: `len` bytes at `data` (copied).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT (`params`, or `data` with `len` > 0);
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters);
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_bytea(struct pgpool_params *params,
                                    const uint8_t *data,
                                    size_t len,
                                    struct pgpool_error **out_err);

// Appends a value in its type's text input form, with the type's OID (what `PQexecParams`
// offers for any type): `text` is NUL-terminated UTF-8, copied. The server parses it as
// the parameter's type; a nonzero OID declares that type in a one-call statement (as
// `PQexecParams`' `paramTypes` do; a `pgpool_stmt` declares its types itself).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_INVALID_ARGUMENT (more than 65535 parameters);
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_add_typed_text(struct pgpool_params *params,
                                         uint32_t type_oid,
                                         const char *text,
                                         struct pgpool_error **out_err);

// Removes every parameter (the list's memory is kept for reuse).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_params_clear(struct pgpool_params *params, struct pgpool_error **out_err);

// Creates a pool for `conninfo` (a URL `postgres://user:pass@host:port/db?opt=val` or a
// `key=value` string) with the options in `cfg` (NULL: all defaults; `cfg` is copied and
// may be freed afterwards).
//
// Returns at once: connections open in the background (`min_idle` of them) or on demand.
// Ownership: on success `*out_pool` receives a handle the caller frees with
// `pgpool_pool_free`. Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE (a freed `cfg`); PGPOOL_ERR_CONFIG (an invalid option or
// connection string, naming it); PGPOOL_ERR_USAGE (too many live pools).
pgpool_code pgpool_pool_create(const char *conninfo,
                               const struct pgpool_config *cfg,
                               struct pgpool_pool **out_pool,
                               struct pgpool_error **out_err);

// Waits until `min_idle` connections are open, so a service can fail fast at start-up
// (`timeout_ms` per the timeout rule: negative = the configured `acquire_timeout`).
//
// Thread-safe; blocks at most `timeout_ms`.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and not ready); PGPOOL_ERR_TIMEOUT;
// PGPOOL_ERR_CLOSED; PGPOOL_ERR_CONNECT (a permanent connect error); PGPOOL_ERR_FORKED;
// PGPOOL_ERR_USAGE (called from an event callback).
pgpool_code pgpool_pool_wait_ready(const struct pgpool_pool *pool,
                                   int64_t timeout_ms,
                                   struct pgpool_error **out_err);

// Acquires a connection, waiting per `timeout_ms` (negative: the configured
// `acquire_timeout`; 0: only an idle one, `PGPOOL_ERR_WOULD_BLOCK` otherwise; positive:
// milliseconds).
//
// Ownership: on success `*out_conn` receives a handle the caller must give back with
// `pgpool_conn_release` (or `pgpool_conn_discard`). Thread-safe; blocks at most the timeout
// (plus one bounded validation round trip).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing idle); PGPOOL_ERR_TIMEOUT;
// PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT (a permanent connect error,
// or the breaker open: see `pgpool_config_set_breaker_threshold`); PGPOOL_ERR_USAGE (too
// many live connection handles); PGPOOL_ERR_FORKED (a pool made before fork(), in the
// child).
pgpool_code pgpool_pool_acquire(struct pgpool_pool *pool,
                                int64_t timeout_ms,
                                struct pgpool_conn **out_conn,
                                struct pgpool_error **out_err);

// As `pgpool_pool_acquire`, recording `site` (a NUL-terminated label, copied: a call site
// such as `"worker.c:42"`, a request name; NULL for none) as where the connection was
// acquired. Leak reports (`leak_threshold_ms`), reclaim events (`max_checkout_ms`) and
// timeout messages name it. `PGPOOL_ACQUIRE(pool, timeout_ms, &conn, &err)` passes
// `__FILE__:__LINE__`. Costs one small allocation per call for the label.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing idle); PGPOOL_ERR_TIMEOUT;
// PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT (a permanent connect error,
// or the breaker open); PGPOOL_ERR_USAGE (too many live connection handles);
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_pool_acquire_at(struct pgpool_pool *pool,
                                   int64_t timeout_ms,
                                   const char *site,
                                   struct pgpool_conn **out_conn,
                                   struct pgpool_error **out_err);

// Runs `callback(conn, user_data)` in a transaction on a connection of its own (acquired
// per `timeout_ms`, released afterwards) like `pgpool_conn_transaction`, and runs it again,
// on a fresh connection after a jittered pause (10 ms doubling to 1 s), when the attempt
// failed in a way that is safe to retry: a serialization failure (40001) or deadlock
// (40P01) the server rolled back (in COMMIT's error, or in the failed statement that made
// the callback return non-zero), a transient connect error, or a connection that broke
// before anything could be committed. Never after an error whose outcome is unknown (a
// connection lost during COMMIT): that error is returned, flagged in `*out_err`, and never
// after the callback returned a negative value (its way to say "roll back and stop"). At
// most `max_attempts` attempts (0 counts as 1). The callback may run several times: keep
// side effects outside the database out of it. `*out_callback_result` (may be NULL)
// receives the last run's value.
//
// Blocking: the acquires, round trips, callbacks and pauses of every attempt. Thread-safe.
//
// Returns: PGPOOL_OK (committed); PGPOOL_ERR_ROLLED_BACK; PGPOOL_ERR_NULL_ARGUMENT;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing idle);
// PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT;
// PGPOOL_ERR_SERVER; PGPOOL_ERR_BROKEN; PGPOOL_ERR_BUSY (the callback released or misused
// the handle); PGPOOL_ERR_USAGE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_pool_transaction_retry(struct pgpool_pool *pool,
                                          int64_t timeout_ms,
                                          uint32_t max_attempts,
                                          pgpool_tx_fn callback,
                                          void *user_data,
                                          int32_t *out_callback_result,
                                          struct pgpool_error **out_err);

// Takes an idle connection without waiting; `PGPOOL_ERR_WOULD_BLOCK` when none is idle (a
// connect is started if there is room, so a later call may succeed).
//
// Ownership and errors as `pgpool_pool_acquire`. Thread-safe; does not wait for other
// callers (a hand-out check may cost one bounded round trip).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_WOULD_BLOCK; PGPOOL_ERR_CLOSED; PGPOOL_ERR_CONNECT (a permanent connect error);
// PGPOOL_ERR_USAGE (too many live connection handles); PGPOOL_ERR_FORKED.
pgpool_code pgpool_pool_try_acquire(struct pgpool_pool *pool,
                                    struct pgpool_conn **out_conn,
                                    struct pgpool_error **out_err);

// One-shot query: acquires a connection (waiting up to the configured `acquire_timeout`),
// runs `sql` with `nparams` text parameters (`params[i]` NULL for SQL NULL) through its
// statement cache, releases it.
//
// Ownership: on success `*out_result` receives a result freed with `pgpool_result_free`.
// Thread-safe; blocks for the acquire plus the statement (bounded by `statement_timeout`).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_INVALID_ARGUMENT (parameter count); PGPOOL_ERR_USAGE
// (a COPY statement, or too many live results); PGPOOL_ERR_SERVER; PGPOOL_ERR_BROKEN;
// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and nothing idle); PGPOOL_ERR_TIMEOUT;
// PGPOOL_ERR_CLOSED; PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT (a permanent connect error);
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_pool_query(struct pgpool_pool *pool,
                              const char *sql,
                              size_t nparams,
                              const char *const *params,
                              struct pgpool_result **out_result,
                              struct pgpool_error **out_err);

// Fills `*out` with a consistent snapshot of the pool's gauges and counters. Set
// `out->size = sizeof(pgpool_stats)` first.
//
// Thread-safe, non-blocking (takes the pool lock briefly).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (`out->size` below 8); PGPOOL_ERR_FORKED.
pgpool_code pgpool_pool_stats(const struct pgpool_pool *pool,
                              struct pgpool_stats *out,
                              struct pgpool_error **out_err);

// Runs a health check: acquires a connection, asks the server for its database name,
// version and time, and fills `*out` (set `out->size = sizeof(pgpool_health)` first) with
// the result, the round trip's latency, the pool's counts and its health state
// (`pgpool_health_state`: healthy, degraded, down).
//
// Returns `PGPOOL_OK` when healthy; otherwise the failure's code (with its detail in
// `*out_err`), `*out` still filled with `ok = false`. Thread-safe; blocks for at most the
// configured `health_timeout` (2 s by default) as a whole.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_INVALID_ARGUMENT (`out->size` below 8); PGPOOL_ERR_TIMEOUT; PGPOOL_ERR_CLOSED;
// PGPOOL_ERR_OVERLOADED; PGPOOL_ERR_CONNECT; PGPOOL_ERR_SERVER; PGPOOL_ERR_BROKEN;
// PGPOOL_ERR_FORKED (`*out` is not filled); PGPOOL_ERR_USAGE (called from an event
// callback; `*out` is not filled).
pgpool_code pgpool_pool_health(const struct pgpool_pool *pool,
                               struct pgpool_health *out,
                               struct pgpool_error **out_err);

// Closes the pool: new acquires fail with `PGPOOL_ERR_CLOSED`, queued callers wake with it
// at once, idle connections close, and the call waits up to `timeout_ms` (negative: the
// configured `close_timeout`) for connections in use to come back, less a tenth of it (at
// most 250 ms) kept for cancels. Then what is still held is reclaimed: its socket is shut
// down (the holder's call fails with `PGPOOL_ERR_BROKEN`, "reclaimed"; it releases the
// handle as usual) and its statement cancelled on the server from a background thread,
// which the call waits for until the timeout is over: a program that exits right after
// leaves nothing running on a reachable server, and the call returns on time even with the
// server unreachable. With `timeout_ms` 0 nothing is reclaimed: connections in use close
// as they come back. Idempotent. The handle stays valid (stats still work) until
// `pgpool_pool_free`.
//
// Thread-safe; blocks at most the timeout. Returns `PGPOOL_ERR_TIMEOUT` when connections
// were still in use at the deadline (and were reclaimed).
//
// In a child process after `fork()`, a pool made before the fork is left alone (its
// connections are the parent's): `PGPOOL_OK` at once, without I/O.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and connections still in use); PGPOOL_ERR_TIMEOUT
// (connections still in use at the deadline, now reclaimed); PGPOOL_ERR_USAGE (called from
// an event callback with a `timeout_ms` other than 0).
pgpool_code pgpool_pool_close(struct pgpool_pool *pool,
                              int64_t timeout_ms,
                              struct pgpool_error **out_err);

// Frees the pool handle. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
// `PGPOOL_ERR_INVALID_HANDLE`. The pool closes (without waiting) when its last handle is
// freed; connections still held stay usable and close when released.
// Thread-safe, non-blocking.
//
// In a child process after `fork()`, freeing a pool made before the fork forgets it:
// `PGPOOL_OK`, and the parent's connections are neither reset nor closed (nothing is sent,
// no lock is taken; the child does not reclaim the memory).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already).
pgpool_code pgpool_pool_free(struct pgpool_pool *pool);

// Reads a registry from the text of a TOML file: an optional `[defaults]` table of pool
// options for every pool, and one `[pools.<name>]` table per pool with `url` (or `url_env`,
// the name of an environment variable holding it) and any pool option by its name
// (`max_size = 20`, `acquire_timeout = "5s"`, `validate_on_acquire = false`; the values of
// the `pool_*` connection string keys). Every name, option and connection string is
// checked; nothing connects (see `pgpool_registry_open_all`). `toml` is copied.
//
// Ownership: on success `*out_reg` receives a handle the caller frees with
// `pgpool_registry_free`. Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_CONFIG
// (invalid TOML, an unknown key, a bad value, a missing url, an invalid pool name: the
// message names the pool and the key); PGPOOL_ERR_USAGE (too many live registries).
pgpool_code pgpool_registry_from_toml(const char *toml,
                                      struct pgpool_registry **out_reg,
                                      struct pgpool_error **out_err);

// Reads a registry from the TOML file at `path`, as `pgpool_registry_from_toml` reads its
// text; errors name the file. `path` is copied.
//
// Ownership: on success `*out_reg` receives a handle the caller frees with
// `pgpool_registry_free`. Thread-safe; blocks for reading the file.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8; PGPOOL_ERR_CONFIG
// (the file cannot be read, or its contents are invalid: the message names the file, the
// pool and the key); PGPOOL_ERR_USAGE (too many live registries).
pgpool_code pgpool_registry_from_file(const char *path,
                                      struct pgpool_registry **out_reg,
                                      struct pgpool_error **out_err);

// Opens every pool not open yet (each starts warming its `min_idle` connections in the
// background) and, when `wait_ms` is positive, waits until every pool is ready (its
// `min_idle` connections open; with `min_idle` 0, one connection made and checked), all
// pools at once within that one deadline. `wait_ms` 0 or negative: returns once the pools
// are opened, without waiting for connections (the exception to the timeout rule: there is
// no configured wait). The pools stay open when this fails; `pgpool_registry_close_all`
// closes them.
//
// Thread-safe; blocks at most `wait_ms`.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_TIMEOUT (some pool not ready in time: the message names each such pool and its
// last connect error); PGPOOL_ERR_CONNECT (every pool not ready failed with a permanent
// connect error, such as a bad password); PGPOOL_ERR_CLOSED (`pgpool_registry_close_all` ran
// before some pool opened); PGPOOL_ERR_CONFIG; PGPOOL_ERR_USAGE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_registry_open_all(const struct pgpool_registry *reg,
                                     int64_t wait_ms,
                                     struct pgpool_error **out_err);

// Stores in `*out_count` the number of pools in the registry.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_registry_count(const struct pgpool_registry *reg,
                                  size_t *out_count,
                                  struct pgpool_error **out_err);

// Stores in `*out_name` the name of the pool at `index` (0 ≤ index < count; a file's pools
// are sorted by name).
//
// Ownership: the string belongs to the registry and stays valid until
// `pgpool_registry_free(reg)`. Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE (`index` ≥ the count); PGPOOL_ERR_FORKED.
pgpool_code pgpool_registry_name(const struct pgpool_registry *reg,
                                 size_t index,
                                 const char **out_name,
                                 struct pgpool_error **out_err);

// Looks up the pool `name`, opening it if it is not open yet, and stores in `*out_pool` a
// new handle to it.
//
// Ownership: the handle is the caller's, a reference of its own to the registry's pool:
// free it with `pgpool_pool_free` (freeing it does not close the pool, which the registry
// still holds; `pgpool_registry_close_all` closes it). It stays valid after
// `pgpool_registry_free`: the pool then closes when its last handle is freed, and a closed
// pool's calls fail with PGPOOL_ERR_CLOSED, never undefined behaviour. Calling this again
// gives another handle to the same pool. Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_UTF8;
// PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_USAGE (no pool has that name: the message lists the
// registry's pools; or too many live pool handles); PGPOOL_ERR_CLOSED (the pool never opened
// before `pgpool_registry_close_all`); PGPOOL_ERR_CONFIG; PGPOOL_ERR_FORKED.
pgpool_code pgpool_registry_get(const struct pgpool_registry *reg,
                                const char *name,
                                struct pgpool_pool **out_pool,
                                struct pgpool_error **out_err);

// Closes every open pool at once, all within one deadline: new acquires fail at once with
// PGPOOL_ERR_CLOSED (work stops being accepted), idle connections close, and connections in
// use get until `deadline_ms` (negative: the longest `close_timeout` of the pools; 0: none)
// to come back; what is still held then is reclaimed as `pgpool_pool_close` describes.
// Pools that never opened never will. `*out_reclaimed` (may be NULL) receives the number of
// connections reclaimed, over every pool; it is set whether the call returns PGPOOL_OK or
// PGPOOL_ERR_TIMEOUT. Idempotent (a second call finds what is still held). Handles from
// `pgpool_registry_get` stay valid: their calls fail with PGPOOL_ERR_CLOSED.
//
// Thread-safe; blocks at most the deadline (pools close in parallel).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_TIMEOUT (connections still in use at the deadline, now reclaimed: the message
// names the pools); PGPOOL_ERR_FORKED.
pgpool_code pgpool_registry_close_all(const struct pgpool_registry *reg,
                                      int64_t deadline_ms,
                                      uint32_t *out_reclaimed,
                                      struct pgpool_error **out_err);

// Frees the registry handle. NULL is a no-op returning `PGPOOL_OK`; freeing twice returns
// `PGPOOL_ERR_INVALID_HANDLE`. Pools with no handle from `pgpool_registry_get` left close
// without waiting (call `pgpool_registry_close_all` first for a bounded, complete close);
// the others stay usable until their handles are freed. Strings from
// `pgpool_registry_name` become invalid. Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already).
pgpool_code pgpool_registry_free(struct pgpool_registry *reg);

// Takes over SIGTERM and SIGINT for the process (through the signal-hook crate; once per
// process, later calls only add what they are given): the first such signal no longer ends
// the process but requests a shutdown, which `pgpool_shutdown_requested` reports and
// `pgpool_shutdown_wait` waits for. When `reg` is not NULL, a library thread then closes
// its pools as `pgpool_registry_close_all` does, within `deadline_ms` counted from the
// signal (negative: the longest `close_timeout` of its pools). A second SIGTERM or SIGINT
// while the shutdown runs ends the process at once with status 128 + the signal's number
// (143, 130). The registry is kept (not the handle: `reg` may be freed afterwards).
//
// Not for a program whose runtime handles signals itself (Go: use os/signal and
// `pgpool_registry_close_all`). Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_USAGE (the signal handlers or
// the library's threads could not be set up); PGPOOL_ERR_FORKED.
pgpool_code pgpool_shutdown_on_signals(const struct pgpool_registry *reg,
                                       int64_t deadline_ms,
                                       struct pgpool_error **out_err);

// Whether a shutdown was requested: 0 not yet (or `pgpool_shutdown_on_signals` never ran),
// the signal's number (SIGTERM 15, SIGINT 2) when a signal requested it, -1 when
// `pgpool_shutdown_request` did. A worker loop's condition: stop taking new work once it is
// nonzero. Thread-safe, non-blocking, never fails.
int32_t pgpool_shutdown_requested(void);

// Requests the shutdown as a signal would (for a program that decides to stop by itself):
// the pools given to `pgpool_shutdown_on_signals` close. Idempotent. Thread-safe,
// non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_USAGE (`pgpool_shutdown_on_signals` never ran).
pgpool_code pgpool_shutdown_request(struct pgpool_error **out_err);

// Waits until a shutdown was requested and every pool given to `pgpool_shutdown_on_signals`
// is closed (`timeout_ms`: negative waits without bound, 0 only checks, positive
// milliseconds). `*out_reclaimed` (may be NULL) receives the number of connections that
// were still in use at the deadline and were reclaimed. `main` then returns, ending the
// process with its usual status.
//
// Thread-safe; blocks at most `timeout_ms`.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_WOULD_BLOCK (`timeout_ms` 0 and not done);
// PGPOOL_ERR_TIMEOUT (not done in time); PGPOOL_ERR_USAGE (`pgpool_shutdown_on_signals`
// never ran).
pgpool_code pgpool_shutdown_wait(int64_t timeout_ms,
                                 uint32_t *out_reclaimed,
                                 struct pgpool_error **out_err);

// Stores the pool's configured `acquire_timeout` in `*out_acquire_ms` and its
// `query_timeout` in `*out_query_ms` (-1 when unbounded), in milliseconds rounded up: what
// a wrapper needs to combine a pool's own bounds (set in a registry's file, say) with a
// caller's deadline. Either output may be NULL.
//
// Thread-safe, non-blocking.
//
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_pool_timeouts(const struct pgpool_pool *pool,
                                 int64_t *out_acquire_ms,
                                 int64_t *out_query_ms,
                                 struct pgpool_error **out_err);

// Stores the number of rows in `*out`.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_nrows(const struct pgpool_result *res,
                                uint64_t *out,
                                struct pgpool_error **out_err);

// Stores the number of columns in `*out` (also known when there are no rows).
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_ncols(const struct pgpool_result *res,
                                uint32_t *out,
                                struct pgpool_error **out_err);

// Stores the number of rows the command affected in `*out` (`INSERT`/`UPDATE`/`DELETE`
// counts; for `SELECT` the number of rows).
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_affected_rows(const struct pgpool_result *res,
                                        uint64_t *out,
                                        struct pgpool_error **out_err);

// Stores a pointer to column `col`'s name (NUL-terminated, owned by the result) in `*out`.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_column_name(const struct pgpool_result *res,
                                      uint32_t col,
                                      const char **out,
                                      struct pgpool_error **out_err);

// Stores column `col`'s type OID in `*out` (`pg_type.oid`: 23 int4, 25 text, …).
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_column_type(const struct pgpool_result *res,
                                      uint32_t col,
                                      uint32_t *out,
                                      struct pgpool_error **out_err);

// Stores a pointer to column `col`'s type name (`"int4"`, `"text"`, …; owned by the
// result) in `*out`.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_column_type_name(const struct pgpool_result *res,
                                           uint32_t col,
                                           const char **out,
                                           struct pgpool_error **out_err);

// Stores whether the value at (`row`, `col`) is SQL NULL in `*out`.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_is_null(const struct pgpool_result *res,
                                  uint64_t row,
                                  uint32_t col,
                                  bool *out,
                                  struct pgpool_error **out_err);

// The value at (`row`, `col`) as text, for every type: `*out_text` points to NUL-terminated
// UTF-8 owned by the result (numeric exact, timestamps ISO 8601, arrays and records in
// PostgreSQL's text form), `*out_len` its length without the NUL, `*out_is_null` false. For
// SQL NULL: `*out_text` NULL, `*out_len` 0 and `*out_is_null` true. Rendered on first use
// and kept.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_UNSUPPORTED_TYPE (a type the library cannot render:
// cast it to text in SQL); PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_value(const struct pgpool_result *res,
                                uint64_t row,
                                uint32_t col,
                                const char **out_text,
                                size_t *out_len,
                                bool *out_is_null,
                                struct pgpool_error **out_err);

// The value at (`row`, `col`) as text without copying when it can: for text, varchar,
// char, name, json, xml and enum columns `*out_text` points into the received row (NOT
// NUL-terminated: use `*out_len`); for other types it is the rendered text of
// `pgpool_result_value`. Owned by the result.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_NULL_VALUE (SQL NULL: check with
// `pgpool_result_is_null`); PGPOOL_ERR_UNSUPPORTED_TYPE; PGPOOL_ERR_USAGE; PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_get_text(const struct pgpool_result *res,
                                   uint64_t row,
                                   uint32_t col,
                                   const char **out_text,
                                   size_t *out_len,
                                   struct pgpool_error **out_err);

// The bytes of a `bytea` value: `*out_data` points into the received row (owned by the
// result), `*out_len` is its length.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH (not bytea); PGPOOL_ERR_NULL_VALUE;
// PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_get_bytea(const struct pgpool_result *res,
                                    uint64_t row,
                                    uint32_t col,
                                    const uint8_t **out_data,
                                    size_t *out_len,
                                    struct pgpool_error **out_err);

// Stores an integer value (int2, int4, int8, oid) in `*out`, decoded from binary.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH; PGPOOL_ERR_NULL_VALUE;
// PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_get_int64(const struct pgpool_result *res,
                                    uint64_t row,
                                    uint32_t col,
                                    int64_t *out,
                                    struct pgpool_error **out_err);

// Stores a number (float4, float8, int2, int4, int8, or numeric converted to the nearest
// double; exact numeric text: `pgpool_result_value`) in `*out`.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH; PGPOOL_ERR_NULL_VALUE;
// PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_get_double(const struct pgpool_result *res,
                                     uint64_t row,
                                     uint32_t col,
                                     double *out,
                                     struct pgpool_error **out_err);

// Stores a `bool` value in `*out`.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH; PGPOOL_ERR_NULL_VALUE;
// PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_get_bool(const struct pgpool_result *res,
                                   uint64_t row,
                                   uint32_t col,
                                   bool *out,
                                   struct pgpool_error **out_err);

// Stores a `timestamp` or `timestamptz` value as microseconds since the Unix epoch
// (1970-01-01 00:00:00 UTC; for `timestamp` without time zone, as if it were UTC) in
// `*out`. `infinity` and `-infinity` are INT64_MAX and INT64_MIN.
//
// Thread-safe, non-blocking.
// Returns: PGPOOL_OK; PGPOOL_ERR_NULL_ARGUMENT; PGPOOL_ERR_INVALID_HANDLE;
// PGPOOL_ERR_OUT_OF_RANGE; PGPOOL_ERR_TYPE_MISMATCH; PGPOOL_ERR_NULL_VALUE;
// PGPOOL_ERR_USAGE (a malformed value); PGPOOL_ERR_FORKED.
pgpool_code pgpool_result_get_timestamp(const struct pgpool_result *res,
                                        uint64_t row,
                                        uint32_t col,
                                        int64_t *out,
                                        struct pgpool_error **out_err);

// Frees a result and every string read from it. NULL is a no-op. In a forked child, a
// result made before the fork is forgotten (`PGPOOL_OK`; its memory is not reclaimed there).
//
// Returns: PGPOOL_OK; PGPOOL_ERR_INVALID_HANDLE (freed already, or not a result).
pgpool_code pgpool_result_free(struct pgpool_result *res);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* PGPOOL_H */
