/*
 * pgpool.hpp - a header-only C++17 wrapper over the C API of libpgpool (pgpool.h).
 *
 * Link with -lpgpool as for the C API; nothing else to build.
 *
 * Conventions (they hold for every class below unless its comment says otherwise):
 *
 * Errors: every failed C call becomes a pgpool::Error exception carrying the pgpool_code,
 *   the message, the SQLSTATE (empty when the server sent none), the category and the
 *   outcome-unknown / retry-safe flags. The wrapper always asks the library for the detail
 *   object and always frees it; no failure is ignored, except in destructors (see below).
 * Ownership: each class owns exactly one library handle and frees it in its destructor
 *   (Conn gives its connection back to the pool). Classes are move-only; moves are noexcept
 *   and leave the source empty (`!obj`); calling a method on an empty object throws an
 *   Error with PGPOOL_ERR_NULL_ARGUMENT, never undefined behaviour.
 * Destructors never throw: a failure while freeing or releasing (the library reports one
 *   only for a handle that is already dead) is swallowed. Call the explicit methods
 *   (Conn::release, Pool::close, Transaction::commit/rollback) to see such errors.
 * Lifetimes: pointers and string_views read from a Result point into it and stay valid until
 *   that Result is destroyed, moved from, or reused by another exec into it.
 * Thread safety: a Pool may be shared by reference between threads (every member is
 *   thread-safe). A Conn may move between threads but is used by one thread at a time, except
 *   Conn::cancel (and CancelToken), which is meant to be called from another thread. Config,
 *   Stmt and const Result members may be used from several threads at once; Params, and a
 *   Result being reused, by one at a time.
 */
#ifndef PGPOOL_HPP
#define PGPOOL_HPP

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <ratio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>
#if __cplusplus >= 202002L && defined(__has_include)
#if __has_include(<source_location>)
#include <source_location>
#endif
#endif

#include "pgpool.h"

/* Pool::acquire records its caller's file and line (when the pool's Config turns on
 * leak_threshold or max_checkout) where std::source_location is available (C++20), unless
 * PGPOOL_NO_SOURCE_LOCATION is defined. Every translation unit of a program should see the
 * same setting (it changes Pool::acquire's signature, not any layout). */
#if defined(__cpp_lib_source_location) && !defined(PGPOOL_NO_SOURCE_LOCATION)
#define PGPOOL_HPP_SOURCE_LOCATION 1
#else
#define PGPOOL_HPP_SOURCE_LOCATION 0
#endif

/* Leases a connection from `pool` (a pgpool::Pool), recording this line as where it was
 * acquired: pool.acquire_at(PGPOOL_SITE). For a timeout, write
 * pool.acquire_at(PGPOOL_SITE, timeout). PGPOOL_SITE ("file.cpp:42") comes from pgpool.h. */
#define PGPOOL_LEASE(pool) (pool).acquire_at(PGPOOL_SITE)

namespace pgpool {

/// A timeout that means "the configured default": for Pool::acquire the pool's
/// `acquire_timeout`, for Pool::close its `close_timeout`, for Conn::set_query_timeout the
/// pool's `query_timeout`. (Any negative value means the same.)
inline constexpr std::chrono::milliseconds default_timeout{-1};

/// For Conn::wait_notification: wait without limit.
inline constexpr std::chrono::milliseconds forever{-1};

/// For the Config durations that can be switched off: `leak_threshold(pgpool::never)`,
/// `max_checkout(pgpool::never)` (both off by default), and `max_lifetime`, `idle_timeout`,
/// `keepalive_interval`. (Any negative value means the same.)
inline constexpr std::chrono::milliseconds never{-1};

/// The library's version ("MAJOR.MINOR.PATCH"), a static string. Compare with
/// PGPOOL_VERSION_STRING to detect a header/library mismatch. Thread-safe, never fails.
inline std::string_view version() noexcept { return pgpool_version(); }

/// The stable name of a result code ("ok", "timeout", ...), a static string.
inline std::string_view code_name(pgpool_code code) noexcept {
  return pgpool_code_name(static_cast<int32_t>(code));
}

/// A failed pgpool call. Copying is cheap and never throws (the fields are shared).
///
/// Built from the library's detail object (which the wrapper frees right away: everything is
/// copied out), or by the wrapper itself for a check of its own (a value that does not fit
/// the requested C++ type: PGPOOL_ERR_TYPE_MISMATCH; a wrapper-side argument check:
/// PGPOOL_ERR_INVALID_ARGUMENT). `what()` is "<category>: <message>".
class Error : public std::runtime_error {
 public:
  /// Copies everything out of `err` (which may be NULL: the library gave no detail); does
  /// not free it.
  Error(pgpool_code code, const pgpool_error *err)
      : std::runtime_error(describe(code, err)), d_(std::make_shared<Detail>()) {
    d_->code = code;
    d_->message = err ? pgpool_error_message(err) : "(no detail from the library)";
    const char *state = err ? pgpool_error_sqlstate(err) : nullptr;
    d_->sqlstate = state ? state : "";
    d_->category = err ? pgpool_error_category(err) : pgpool_code_name(code);
    d_->outcome_unknown = err ? pgpool_error_outcome_unknown(err) : false;
    d_->retry_safe = err ? pgpool_error_retry_safe(err) : false;
  }

  /// An error raised by the wrapper itself (no SQLSTATE, both flags false).
  Error(pgpool_code code, const std::string &message, std::string sqlstate = std::string())
      : std::runtime_error(std::string(pgpool_code_name(code)) + ": " + message),
        d_(std::make_shared<Detail>()) {
    d_->code = code;
    d_->message = message;
    d_->sqlstate = std::move(sqlstate);
    d_->category = pgpool_code_name(code);
  }

  /// The pgpool_code the call failed with (never PGPOOL_OK).
  pgpool_code code() const noexcept { return d_->code; }
  /// The library's message (without the category prefix of `what()`).
  const std::string &message() const noexcept { return d_->message; }
  /// The five-character SQLSTATE the server sent, or empty when there is none.
  const std::string &sqlstate() const noexcept { return d_->sqlstate; }
  /// The stable name of the code: "server", "timeout", "closed", ...
  const std::string &category() const noexcept { return d_->category; }
  /// True when the statement may have run although the call failed: do not blindly retry
  /// non-idempotent work.
  bool outcome_unknown() const noexcept { return d_->outcome_unknown; }
  /// True when running the same work again is safe and may succeed.
  bool retry_safe() const noexcept { return d_->retry_safe; }

 private:
  struct Detail {
    pgpool_code code = PGPOOL_OK;
    std::string message, sqlstate, category;
    bool outcome_unknown = false, retry_safe = false;
  };
  static std::string describe(pgpool_code code, const pgpool_error *err) {
    return std::string(pgpool_code_name(code)) + ": " +
           (err ? pgpool_error_message(err) : "(no detail from the library)");
  }
  std::shared_ptr<Detail> d_;
};

namespace detail {

/// Frees `err` and throws an Error for any code but PGPOOL_OK.
inline void check(pgpool_code rc, pgpool_error *err) {
  struct Guard {
    pgpool_error *e;
    ~Guard() { pgpool_error_free(e); }
  } guard{err};
  if (rc != PGPOOL_OK) throw Error(rc, err);
}

/// Calls `f(args..., &err)` and checks the result: the call is complete before its detail
/// object is read.
template <typename F, typename... A>
inline void call(F f, A... args) {
  pgpool_error *err = nullptr;
  pgpool_code rc = f(args..., &err);
  check(rc, err);
}

/// Runs a call whose failure a destructor must swallow: the detail object is freed.
template <typename F, typename... A>
inline void call_quietly(F f, A... args) noexcept {
  pgpool_error *err = nullptr;
  (void)f(args..., &err);
  pgpool_error_free(err);
}

inline int64_t ms(std::chrono::milliseconds d) noexcept { return static_cast<int64_t>(d.count()); }

struct ConfigFree {
  void operator()(pgpool_config *c) const noexcept { (void)pgpool_config_free(c); }
};
struct PoolFree {
  void operator()(pgpool_pool *p) const noexcept { (void)pgpool_pool_free(p); }
};
struct ConnRelease {
  void operator()(pgpool_conn *c) const noexcept { call_quietly(pgpool_conn_release, c); }
};
struct StmtFree {
  void operator()(pgpool_stmt *s) const noexcept { (void)pgpool_stmt_free(s); }
};
struct ParamsFree {
  void operator()(pgpool_params *p) const noexcept { (void)pgpool_params_free(p); }
};
struct NotificationFree {
  void operator()(pgpool_notification *n) const noexcept { (void)pgpool_notification_free(n); }
};

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

template <typename T>
struct is_system_time_point : std::false_type {};
template <typename D>
struct is_system_time_point<std::chrono::time_point<std::chrono::system_clock, D>>
    : std::true_type {};

template <typename T>
inline constexpr bool is_char_v =
    std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char16_t> ||
    std::is_same_v<T, char32_t>;

template <typename T>
inline constexpr bool dependent_false = false;

/// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
inline void civil_from_days(int64_t z, int64_t &y, unsigned &m, unsigned &d) noexcept {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

/// Microseconds since the Unix epoch as PostgreSQL timestamptz input text (UTC).
inline std::string timestamp_text(int64_t micros) {
  if (micros == std::numeric_limits<int64_t>::max()) return "infinity";
  if (micros == std::numeric_limits<int64_t>::min()) return "-infinity";
  const int64_t per_day = 86400LL * 1000000LL;
  int64_t days = micros / per_day, rest = micros % per_day;
  if (rest < 0) {
    rest += per_day;
    days -= 1;
  }
  int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  const int64_t secs = rest / 1000000, frac = rest % 1000000;
  char buf[192];
  const bool bc = y <= 0;  // year 0 is 1 BC
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02lld:%02lld:%02lld.%06lld+00%s",
                static_cast<long long>(bc ? 1 - y : y), m, d,
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60), static_cast<long long>(frac),
                bc ? " BC" : "");
  return buf;
}

}  // namespace detail

/// Binary data for a `bytea` parameter, or a view of a `bytea` value read from a Result
/// (then `data` points into the Result: valid until it is destroyed or reused). Does not own
/// the bytes.
struct Bytea {
  /// The first byte (may be NULL when `size` is 0).
  const uint8_t *data = nullptr;
  /// The number of bytes.
  size_t size = 0;
  /// The first byte.
  const uint8_t *begin() const noexcept { return data; }
  /// One past the last byte.
  const uint8_t *end() const noexcept { return data + size; }
  /// The byte at `i` (unchecked).
  uint8_t operator[](size_t i) const noexcept { return data[i]; }
};

/// A parameter in its type's text input form with the type's OID (as `PQexecParams` offers
/// for any type): `Typed{1700, "12.50"}` is a numeric. A nonzero OID declares the type in a
/// one-call statement (a Stmt declares its own types); 0 lets the server infer it.
struct Typed {
  /// The type's OID (`pg_type.oid`), or 0.
  uint32_t oid = 0;
  /// The value as text (copied when bound).
  std::string text;
};

/// A NUL-terminated string argument: a `const char *` or a `std::string` (not copied; it
/// must outlive the call it is passed to, which a temporary does).
class CStr {
 public:
  /// A C string (NULL is passed on, and the library reports PGPOOL_ERR_NULL_ARGUMENT).
  CStr(const char *s) noexcept : s_(s) {}  // NOLINT: implicit by design
  /// A std::string's characters.
  CStr(const std::string &s) noexcept : s_(s.c_str()) {}  // NOLINT: implicit by design
  /// The pointer passed to the library.
  const char *c_str() const noexcept { return s_; }

 private:
  const char *s_;
};

/// One pool event, as a Config::on_event handler sees it: a view of the library's
/// `pgpool_event` (see pgpool.h for every field). Valid only during the handler, like the
/// string_views it returns: copy what you keep.
class Event {
 public:
  /// Wraps the library's struct (valid for the duration of the callback).
  explicit Event(const pgpool_event &raw) noexcept : e_(&raw) {}
  /// What happened: PGPOOL_EVENT_CONNECT, _ACQUIRE, _RELEASE, _REMOVE, _ERROR,
  /// _LEAK_SUSPECTED, _RECLAIMED, _NOTICE (kinds are only added: ignore unknown ones).
  pgpool_event_kind kind() const noexcept { return static_cast<pgpool_event_kind>(e_->kind); }
  /// The kind's stable name ("connect", "acquire", ...).
  std::string_view kind_name() const noexcept { return e_->kind_name; }
  /// The pool's name (Config::name, the connection string's pool_name, or "default").
  std::string_view pool() const noexcept { return e_->pool; }
  /// The connection (0 for NOTICE and for an ERROR not on a connection).
  uint64_t conn_id() const noexcept { return e_->conn_id; }
  /// The session's server process (Conn::backend_pid); 0 when unknown.
  int32_t backend_pid() const noexcept { return e_->backend_pid; }
  /// Why a connection left (REMOVE, RECLAIMED); PGPOOL_CLOSE_NONE otherwise.
  pgpool_close_reason reason() const noexcept {
    return static_cast<pgpool_close_reason>(e_->reason);
  }
  /// The reason's stable name ("idle_timeout", "discarded", ...); empty otherwise.
  std::string_view reason_text() const noexcept { return e_->reason_text; }
  /// The connect's duration (CONNECT), the wait (ACQUIRE), the hold (RELEASE,
  /// LEAK_SUSPECTED, RECLAIMED), the connection's age (REMOVE); empty for the other kinds.
  std::optional<std::chrono::microseconds> duration() const noexcept {
    if (e_->duration_us < 0) return std::nullopt;
    return std::chrono::microseconds(e_->duration_us);
  }
  /// ERROR: the code the failure would have been returned with; PGPOOL_OK otherwise.
  pgpool_code error_code() const noexcept { return static_cast<pgpool_code>(e_->error_code); }
  /// ERROR and NOTICE: the message; empty otherwise.
  std::string_view message() const noexcept { return e_->message; }
  /// ERROR (when the server sent one) and NOTICE: the SQLSTATE; empty otherwise.
  std::string_view sqlstate() const noexcept { return e_->sqlstate; }
  /// LEAK_SUSPECTED and RECLAIMED: where the connection was acquired; empty otherwise.
  std::string_view site() const noexcept { return e_->site; }
  /// NOTICE: the severity ("WARNING", ...); empty otherwise.
  std::string_view severity() const noexcept { return e_->severity; }
  /// The library's struct.
  const pgpool_event &raw() const noexcept { return *e_; }

 private:
  const pgpool_event *e_;
};

/// The handler type of Config::on_event.
using EventHandler = std::function<void(const Event &)>;

namespace detail {

/// The C callback behind Config::on_event: an exception from the handler is caught and
/// dropped here, since it must not unwind into the library (whose thread it may be).
inline void event_trampoline(const pgpool_event *ev, void *user_data) noexcept {
  try {
    (*static_cast<const EventHandler *>(user_data))(Event(*ev));
  } catch (...) {
  }
}

/// Called by the library once no config or pool needs the handler any more.
inline void event_free(void *user_data) noexcept {
  delete static_cast<EventHandler *>(user_data);
}

}  // namespace detail

/// Pool options. Owns a `pgpool_config` handle (freed by the destructor). Setters are
/// chainable, on an lvalue (`cfg.max_size(4).min_idle(1)`) or a temporary
/// (`Pool pool(url, Config().max_size(4))`). A setter rejects only a value no option can
/// take (PGPOOL_ERR_INVALID_ARGUMENT); ranges are checked when a Pool is created from it
/// (PGPOOL_ERR_CONFIG names the option). The pool copies the config: it may be changed or
/// destroyed afterwards. Thread-safe (setters on one config are serialised by the library).
class Config {
 public:
  /// Every option at its default (max_size 10, acquire_timeout 30 s, ...).
  Config() {
    pgpool_config *raw = nullptr;
    detail::call(pgpool_config_new, &raw);
    c_.reset(raw);
  }
  /// Moves the handle; `other` becomes empty.
  Config(Config &&other) noexcept = default;
  /// Frees this handle, then takes `other`'s.
  Config &operator=(Config &&other) noexcept = default;
  Config(const Config &) = delete;
  Config &operator=(const Config &) = delete;
  /// Frees the handle.
  ~Config() = default;

  /// The handle (owned by this object), for the C API.
  pgpool_config *get() const noexcept { return c_.get(); }
  /// True unless moved from.
  explicit operator bool() const noexcept { return c_ != nullptr; }

  /// Most connections open at once (default 10; 1..=10000).
  Config &max_size(uint32_t v) & { return set(pgpool_config_set_max_size, v); }
  /// As above, on a temporary.
  Config &&max_size(uint32_t v) && { return std::move(max_size(v)); }
  /// Idle connections kept ready (default 0; at most max_idle).
  Config &min_idle(uint32_t v) & { return set(pgpool_config_set_min_idle, v); }
  /// As above, on a temporary.
  Config &&min_idle(uint32_t v) && { return std::move(min_idle(v)); }
  /// Idle connections kept at most (default: max_size).
  Config &max_idle(uint32_t v) & { return set(pgpool_config_set_max_idle, v); }
  /// As above, on a temporary.
  Config &&max_idle(uint32_t v) && { return std::move(max_idle(v)); }
  /// Close connections this old (default 30 min; negative: never).
  Config &max_lifetime(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_max_lifetime_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&max_lifetime(std::chrono::milliseconds v) && { return std::move(max_lifetime(v)); }
  /// Close idle connections after this long (default 10 min; negative: never).
  Config &idle_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_idle_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&idle_timeout(std::chrono::milliseconds v) && { return std::move(idle_timeout(v)); }
  /// Default wait of an acquire (default 30 s; must be > 0).
  Config &acquire_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_acquire_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&acquire_timeout(std::chrono::milliseconds v) && {
    return std::move(acquire_timeout(v));
  }
  /// Bound on one connection attempt (default 10 s; must be > 0).
  Config &connect_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_connect_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&connect_timeout(std::chrono::milliseconds v) && {
    return std::move(connect_timeout(v));
  }
  /// Retire a connection after this many checkouts (default 0: unlimited).
  Config &max_uses(uint64_t v) & { return set(pgpool_config_set_max_uses, v); }
  /// As above, on a temporary.
  Config &&max_uses(uint64_t v) && { return std::move(max_uses(v)); }
  /// Check a connection with a round trip before handing it out (default true).
  Config &validate_on_acquire(bool v) & { return set(pgpool_config_set_validate_on_acquire, v); }
  /// As above, on a temporary.
  Config &&validate_on_acquire(bool v) && { return std::move(validate_on_acquire(v)); }
  /// Skip that round trip for connections used this recently (default 500 ms; >= 0).
  Config &validation_skip_window(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_validation_skip_window_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&validation_skip_window(std::chrono::milliseconds v) && {
    return std::move(validation_skip_window(v));
  }
  /// Bound on a validation or keepalive round trip (default 5 s; must be > 0).
  Config &validation_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_validation_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&validation_timeout(std::chrono::milliseconds v) && {
    return std::move(validation_timeout(v));
  }
  /// How often idle connections are checked (default 60 s; negative: never).
  Config &keepalive_interval(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_keepalive_interval_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&keepalive_interval(std::chrono::milliseconds v) && {
    return std::move(keepalive_interval(v));
  }
  /// How often idle/lifetime limits, leak_threshold and max_checkout are enforced (default
  /// 1 s; at least 1 ms).
  Config &reaper_interval(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_reaper_interval_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&reaper_interval(std::chrono::milliseconds v) && {
    return std::move(reaper_interval(v));
  }
  /// Fail acquires at once (PGPOOL_ERR_OVERLOADED) when this many callers wait (default 0:
  /// unbounded).
  Config &max_waiters(uint64_t v) & { return set(pgpool_config_set_max_waiters, v); }
  /// As above, on a temporary.
  Config &&max_waiters(uint64_t v) && { return std::move(max_waiters(v)); }
  /// Default bound of a close waiting for connections in use (default 5 s; >= 0).
  Config &close_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_close_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&close_timeout(std::chrono::milliseconds v) && { return std::move(close_timeout(v)); }
  /// `statement_timeout` of every session (default and negative: the server's).
  Config &statement_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_statement_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&statement_timeout(std::chrono::milliseconds v) && {
    return std::move(statement_timeout(v));
  }
  /// Prepared statements cached per connection (default 256; 0: no cache).
  Config &statement_cache_capacity(uint64_t v) & {
    return set(pgpool_config_set_statement_cache_capacity, v);
  }
  /// As above, on a temporary.
  Config &&statement_cache_capacity(uint64_t v) && {
    return std::move(statement_cache_capacity(v));
  }
  /// `TCP_USER_TIMEOUT` of every socket (default 10 s; negative: leave the system's).
  Config &tcp_user_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_tcp_user_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&tcp_user_timeout(std::chrono::milliseconds v) && {
    return std::move(tcp_user_timeout(v));
  }
  /// TCP keepalive idle time of every socket (default 5 s; must be > 0).
  Config &tcp_keepalive_idle(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_tcp_keepalive_idle_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&tcp_keepalive_idle(std::chrono::milliseconds v) && {
    return std::move(tcp_keepalive_idle(v));
  }
  /// `application_name` of every session (default: the connection string's, else "pgpool";
  /// shorter than 64 bytes). Copied.
  Config &application_name(CStr v) & {
    return set(pgpool_config_set_application_name, v.c_str());
  }
  /// As above, on a temporary.
  Config &&application_name(CStr v) && { return std::move(application_name(v)); }
  /// Cancel every statement of a checked-out connection after this long; it then fails with
  /// PGPOOL_ERR_TIMEOUT, SQLSTATE 57014 (default and negative: unbounded).
  Config &query_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_query_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&query_timeout(std::chrono::milliseconds v) && { return std::move(query_timeout(v)); }
  /// Undo session state (SET, LISTEN, advisory locks, temporary tables) on every release,
  /// in one extra round trip (default false).
  Config &full_reset(bool v) & { return set(pgpool_config_set_full_reset, v); }
  /// As above, on a temporary.
  Config &&full_reset(bool v) && { return std::move(full_reset(v)); }
  /// For a transaction-pooling proxy such as PgBouncer: no named prepared statements, no
  /// session state assumed (default false).
  Config &transaction_pooling(bool v) & { return set(pgpool_config_set_transaction_pooling, v); }
  /// As above, on a temporary.
  Config &&transaction_pooling(bool v) && { return std::move(transaction_pooling(v)); }
  /// Connection attempts running at once, shared by warm-up, refill and growth on demand, so
  /// a crowd of callers cannot start a login storm (default 2; at least 1, else the Pool
  /// constructor throws PGPOOL_ERR_CONFIG; above max_size acts as max_size).
  Config &max_concurrent_connects(uint32_t v) & {
    return set(pgpool_config_set_max_concurrent_connects, v);
  }
  /// As above, on a temporary.
  Config &&max_concurrent_connects(uint32_t v) && {
    return std::move(max_concurrent_connects(v));
  }
  /// The breaker: after this many failed connects in a row with no connection open (or one
  /// permanent error such as a bad password) the pool is down, and an acquire that needs a
  /// new connection waits for one background probe at most, then throws PGPOOL_ERR_CONNECT
  /// ("database unavailable: ...", the cause's SQLSTATE kept) instead of waiting out its
  /// timeout (default 3; 0 switches the breaker off).
  Config &breaker_threshold(uint32_t v) & { return set(pgpool_config_set_breaker_threshold, v); }
  /// As above, on a temporary.
  Config &&breaker_threshold(uint32_t v) && { return std::move(breaker_threshold(v)); }
  /// The longest pause between connect attempts after failures (default 5 s; at least
  /// 10 ms, else the Pool constructor throws PGPOOL_ERR_CONFIG).
  Config &reconnect_backoff_max(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_reconnect_backoff_max_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&reconnect_backoff_max(std::chrono::milliseconds v) && {
    return std::move(reconnect_backoff_max(v));
  }
  /// A lease held longer is reported once as a suspected leak: logged (see set_log_callback)
  /// with where it was acquired (Pool::acquire_at, PGPOOL_LEASE) and counted in
  /// `Stats::leaks_suspected` (default and `never` (any negative value): off; at least 1 ms;
  /// checked every reaper_interval). Setting a positive value also makes Pool::acquire
  /// record its call site under C++20.
  Config &leak_threshold(std::chrono::milliseconds v) & {
    leak_on_ = v.count() > 0;
    return set(pgpool_config_set_leak_threshold_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&leak_threshold(std::chrono::milliseconds v) && { return std::move(leak_threshold(v)); }
  /// A lease held longer is taken back: its statement cancelled on the server, its socket
  /// shut down (the holder's next call throws PGPOOL_ERR_BROKEN, "reclaimed"; the Conn is
  /// released as usual), its slot freed for other callers. Default and `never` (any negative
  /// value): off; at least 1 ms; checked every reaper_interval. Like leak_threshold, a
  /// positive value makes Pool::acquire record its call site under C++20.
  Config &max_checkout(std::chrono::milliseconds v) & {
    checkout_on_ = v.count() > 0;
    return set(pgpool_config_set_max_checkout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&max_checkout(std::chrono::milliseconds v) && { return std::move(max_checkout(v)); }
  /// How long a prefer-standby lease's session that fell back to a primary is kept before
  /// it is closed as max_lifetime would close it, so that its replacement tries the
  /// standbys first. Default and `never` (any negative value): off, only max_lifetime.
  Config &fallback_lifetime(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_fallback_lifetime_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&fallback_lifetime(std::chrono::milliseconds v) && {
    return std::move(fallback_lifetime(v));
  }
  /// SQL run on every new session before the pool uses it (statements separated by `;`, one
  /// round trip); with full_reset, again after each reset. A failure fails the connect
  /// (permanent for SQLSTATE class 42). Empty: none (the default).
  Config &init_sql(CStr sql) & { return set(pgpool_config_set_init_sql, sql.c_str()); }
  /// As above, on a temporary.
  Config &&init_sql(CStr sql) && { return std::move(init_sql(sql)); }
  /// A session on a hot standby further behind its primary than this is not used: the
  /// connect refuses such a standby (prefer-standby falls back to the primary) and an open
  /// session found lagging is closed (`Stats::closed_replica_lag`). Default and `never`
  /// (any negative value): off; at least 1 ms.
  Config &max_replica_lag(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_max_replica_lag_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&max_replica_lag(std::chrono::milliseconds v) && {
    return std::move(max_replica_lag(v));
  }
  /// The bound on Pool::health() as a whole (default 2 s; must be > 0, else the Pool
  /// constructor throws PGPOOL_ERR_CONFIG).
  Config &health_timeout(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_health_timeout_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&health_timeout(std::chrono::milliseconds v) && { return std::move(health_timeout(v)); }
  /// The pool's name: the `pool` label of Pool::metrics() and the prefix of its log lines
  /// (default "default"; 1 to 63 letters, digits, '_', '-', '.', else the Pool constructor
  /// throws PGPOOL_ERR_CONFIG).
  Config &name(CStr v) & { return set(pgpool_config_set_name, v.c_str()); }
  /// As above, on a temporary.
  Config &&name(CStr v) && { return std::move(name(v)); }
  /// Keep the latency histograms of Stats (acquire_wait, connect_time, query_time,
  /// hold_time; default true).
  Config &histograms(bool v) & { return set(pgpool_config_set_histograms, v); }
  /// As above, on a temporary.
  Config &&histograms(bool v) && { return std::move(histograms(v)); }
  /// Log one line of gauges, counters and p99s at info level (see set_log_callback) this
  /// often (default and `never`: off; at least 1 ms).
  Config &stats_log_interval(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_stats_log_interval_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&stats_log_interval(std::chrono::milliseconds v) && {
    return std::move(stats_log_interval(v));
  }
  /// Log statements slower than this at warn level with their text (literals replaced by
  /// `?`), duration and rows, never their parameter values (default and `never`: off).
  Config &slow_query_threshold(std::chrono::milliseconds v) & {
    return set(pgpool_config_set_slow_query_threshold_ms, detail::ms(v));
  }
  /// As above, on a temporary.
  Config &&slow_query_threshold(std::chrono::milliseconds v) && {
    return std::move(slow_query_threshold(v));
  }
  /// Pool::health() reports the pool degraded while more than `n` callers wait (default 10;
  /// negative: never).
  Config &degraded_waiters(int64_t n) & { return set(pgpool_config_set_degraded_waiters, n); }
  /// As above, on a temporary.
  Config &&degraded_waiters(int64_t n) && { return std::move(degraded_waiters(n)); }
  /// Calls `handler` for every event of the pools made from this config (connect, acquire,
  /// release, remove, error, leak suspected, reclaimed, notice; see pgpool::Event). It runs
  /// on the thread where the event happened (a caller's or one of the pool's own), outside
  /// the pool's lock, possibly on several threads at once: keep it short and thread-safe.
  /// An exception it throws is caught and dropped. Inside it, calls that wait for a pool
  /// (Pool::acquire with a timeout, Pool::exec, Pool::health, Pool::wait_ready, a waiting
  /// close) throw PGPOOL_ERR_USAGE; try_acquire and stats work. The handler is copied and
  /// destroyed when this config and the last pool made from it are gone. An empty handler
  /// removes it. Pools made before keep theirs.
  Config &on_event(EventHandler handler) & {
    if (!handler) {
      detail::call(pgpool_config_set_event_callback, c_.get(), pgpool_event_fn(nullptr),
                   static_cast<void *>(nullptr), pgpool_free_fn(nullptr));
      return *this;
    }
    std::unique_ptr<EventHandler> owned(new EventHandler(std::move(handler)));
    pgpool_error *err = nullptr;
    pgpool_code rc = pgpool_config_set_event_callback(c_.get(), detail::event_trampoline,
                                                      owned.get(), detail::event_free, &err);
    // On success the library owns it (and calls detail::event_free); on failure it is ours.
    if (rc == PGPOOL_OK) (void)owned.release();
    detail::check(rc, err);
    return *this;
  }
  /// As above, on a temporary.
  Config &&on_event(EventHandler handler) && { return std::move(on_event(std::move(handler))); }
  /// Read the PGPOOL_* environment variables (PGPOOL_MAX_SIZE=20, ...; default true).
  Config &env(bool v) & { return set(pgpool_config_set_env, v); }
  /// As above, on a temporary.
  Config &&env(bool v) && { return std::move(env(v)); }
  /// Also read other tools' variables for pool options, below PGPOOL_* (DB_MAX_OPEN_CONNS,
  /// PG_POOL_MAX, ...; default false; no effect with env(false)).
  Config &env_aliases(bool v) & { return set(pgpool_config_set_env_aliases, v); }
  /// As above, on a temporary.
  Config &&env_aliases(bool v) && { return std::move(env_aliases(v)); }

  /// True when leak_threshold or max_checkout is on (last set to a positive value): pools
  /// made from this config then record call sites in Pool::acquire (C++20; see there).
  bool tracks_sites() const noexcept { return leak_on_ || checkout_on_; }

 private:
  template <typename F, typename V>
  Config &set(F f, V v) {
    detail::call(f, c_.get(), v);
    return *this;
  }
  std::unique_ptr<pgpool_config, detail::ConfigFree> c_;
  bool leak_on_ = false, checkout_on_ = false;
};

/// A parameter list (`pgpool_params`, freed by the destructor). Values are copied into it
/// when added; `clear()` keeps its memory for reuse. Used by one thread at a time.
///
/// C++ values map to the library's binders: `std::nullopt`/`nullptr` (and an empty
/// `std::optional`, or a NULL `const char *`) -> SQL NULL; `bool` -> bool; signed integers
/// -> int2/int4/int8 by size, unsigned ones -> the next wider (a `uint64_t` above INT64_MAX is
/// sent as text); `float` -> float4; `double` -> float8; `std::string_view`, `std::string`,
/// `const char *` -> text (the server parses it as the parameter's type); `Bytea` and
/// `std::vector<uint8_t>` -> bytea; `Typed` -> typed text;
/// `std::chrono::time_point<std::chrono::system_clock, D>` -> a UTC timestamp as text.
/// Character types (`char`, `wchar_t`, ...; `int8_t`/`uint8_t` are integers) and
/// `long double` are refused at compile time.
class Params {
 public:
  /// An empty list.
  Params() {
    pgpool_params *raw = nullptr;
    detail::call(pgpool_params_new, &raw);
    p_.reset(raw);
  }
  /// A list holding `args`.
  template <typename... Args, typename = std::enable_if_t<(sizeof...(Args) > 0)>>
  explicit Params(const Args &...args) : Params() {
    (add(args), ...);
  }
  /// Moves the handle; `other` becomes empty.
  Params(Params &&other) noexcept = default;
  /// Frees this handle, then takes `other`'s.
  Params &operator=(Params &&other) noexcept = default;
  Params(const Params &) = delete;
  Params &operator=(const Params &) = delete;
  /// Frees the handle.
  ~Params() = default;

  /// The handle (owned by this object), for the C API.
  pgpool_params *get() const noexcept { return p_.get(); }
  /// True unless moved from.
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Removes every parameter (memory is kept).
  Params &clear() {
    detail::call(pgpool_params_clear, p_.get());
    return *this;
  }
  /// Appends SQL NULL.
  Params &add_null() {
    detail::call(pgpool_params_add_null, p_.get());
    return *this;
  }
  /// Appends `v` as described in the class comment (throws on a library error, e.g. more
  /// than 65535 parameters or invalid UTF-8 text).
  template <typename T>
  Params &add(const T &v) {
    using U = std::decay_t<T>;
    pgpool_params *p = p_.get();
    if constexpr (std::is_same_v<U, std::nullopt_t> || std::is_same_v<U, std::nullptr_t>) {
      add_null();
    } else if constexpr (detail::is_optional<U>::value) {
      if (v.has_value())
        add(*v);
      else
        add_null();
    } else if constexpr (std::is_same_v<U, bool>) {
      detail::call(pgpool_params_add_bool, p, v);
    } else if constexpr (detail::is_char_v<U>) {
      static_assert(detail::dependent_false<T>,
                    "pgpool: bind a character as a string or an explicit integer");
    } else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
      if constexpr (sizeof(U) <= 2)
        detail::call(pgpool_params_add_int16, p, static_cast<int16_t>(v));
      else if constexpr (sizeof(U) <= 4)
        detail::call(pgpool_params_add_int32, p, static_cast<int32_t>(v));
      else
        detail::call(pgpool_params_add_int64, p, static_cast<int64_t>(v));
    } else if constexpr (std::is_integral_v<U>) {
      if constexpr (sizeof(U) < 2)
        detail::call(pgpool_params_add_int16, p, static_cast<int16_t>(v));
      else if constexpr (sizeof(U) < 4)
        detail::call(pgpool_params_add_int32, p, static_cast<int32_t>(v));
      else if constexpr (sizeof(U) < 8)
        detail::call(pgpool_params_add_int64, p, static_cast<int64_t>(v));
      else if (v <= static_cast<U>(std::numeric_limits<int64_t>::max()))
        detail::call(pgpool_params_add_int64, p, static_cast<int64_t>(v));
      else
        add(std::string_view(std::to_string(v)));
    } else if constexpr (std::is_same_v<U, float>) {
      detail::call(pgpool_params_add_float4, p, v);
    } else if constexpr (std::is_same_v<U, double>) {
      detail::call(pgpool_params_add_float8, p, v);
    } else if constexpr (std::is_same_v<U, const char *> || std::is_same_v<U, char *>) {
      if constexpr (std::is_array_v<T>)  // a string literal or char array: never NULL
        add(std::string_view(v));
      else if (v == nullptr)
        add_null();
      else
        add(std::string_view(v));
    } else if constexpr (std::is_same_v<U, std::string_view> || std::is_same_v<U, std::string>) {
      std::string_view s(v);
      detail::call(pgpool_params_add_text, p, s.data(), s.size());
    } else if constexpr (std::is_same_v<U, Bytea>) {
      detail::call(pgpool_params_add_bytea, p, v.data, v.size);
    } else if constexpr (std::is_same_v<U, std::vector<uint8_t>>) {
      detail::call(pgpool_params_add_bytea, p, v.data(), v.size());
    } else if constexpr (std::is_same_v<U, Typed>) {
      detail::call(pgpool_params_add_typed_text, p, v.oid, v.text.c_str());
    } else if constexpr (detail::is_system_time_point<U>::value) {
      using std::chrono::microseconds;
      const auto since = v.time_since_epoch();
      int64_t micros;
      if (v == U::max())
        micros = std::numeric_limits<int64_t>::max();
      else if (v == U::min())
        micros = std::numeric_limits<int64_t>::min();
      else
        micros = static_cast<int64_t>(
            std::chrono::floor<microseconds>(since).count());
      add(std::string_view(detail::timestamp_text(micros)));
    } else {
      static_assert(detail::dependent_false<T>, "pgpool: no binder for this parameter type");
    }
    return *this;
  }

 private:
  std::unique_ptr<pgpool_params, detail::ParamsFree> p_;
};

/// A prepared statement (`pgpool_stmt`, freed by the destructor): SQL text with `$1`, `$2`,
/// ... and optionally the OIDs of the first parameters' types (0: inferred). Not tied to a
/// connection: each session prepares it once on first use. Nothing is sent when it is made,
/// so syntax errors surface at the first execution. Read-only: may be used from several
/// threads at once.
class Stmt {
 public:
  /// A statement whose parameter types are all inferred.
  explicit Stmt(CStr sql) : Stmt(sql, nullptr, 0) {}
  /// A statement with declared types for its first parameters: `Stmt(sql, {20, 25})`.
  Stmt(CStr sql, std::initializer_list<uint32_t> types) : Stmt(sql, types.begin(), types.size()) {}
  /// As above, from a vector.
  Stmt(CStr sql, const std::vector<uint32_t> &types) : Stmt(sql, types.data(), types.size()) {}
  /// As above, from `n` OIDs at `types`.
  Stmt(CStr sql, const uint32_t *types, size_t n) {
    pgpool_stmt *raw = nullptr;
    detail::call(pgpool_stmt_new, sql.c_str(), n, n ? types : nullptr, &raw);
    s_.reset(raw);
  }
  /// Moves the handle; `other` becomes empty.
  Stmt(Stmt &&other) noexcept = default;
  /// Frees this handle, then takes `other`'s.
  Stmt &operator=(Stmt &&other) noexcept = default;
  Stmt(const Stmt &) = delete;
  Stmt &operator=(const Stmt &) = delete;
  /// Frees the handle (sessions that prepared it keep it in their cache).
  ~Stmt() = default;

  /// The handle (owned by this object), for the C API.
  pgpool_stmt *get() const noexcept { return s_.get(); }
  /// True unless moved from.
  explicit operator bool() const noexcept { return s_ != nullptr; }

 private:
  std::unique_ptr<pgpool_stmt, detail::StmtFree> s_;
};

class Result;

/// How a Result's value becomes a `T`; `Result::get<T>` uses it. Specialise it for types of
/// your own (a static `T get(const Result &, uint64_t row, uint32_t col)`).
template <typename T, typename = void>
struct FromValue;

/// A query result (`pgpool_result`, freed by the destructor). Values are decoded lazily, on
/// first use. A default-constructed Result is empty until an exec fills it; passing the same
/// Result to exec again reuses its memory (a loop then allocates nothing per query), which
/// invalidates every pointer and string_view read from it before.
///
/// Lifetime: pointers, `std::string_view`s and `Bytea`s read from it point into it and stay
/// valid until it is destroyed, moved from, or reused; they do not depend on the connection.
/// Thread safety: const members may be called from several threads at once; reuse (exec into
/// it) must not overlap with anything else on it.
class Result {
 public:
  /// An empty result (no handle): fill it with an exec.
  Result() noexcept = default;
  /// Takes ownership of a handle from the C API.
  explicit Result(pgpool_result *raw) noexcept : r_(raw) {}
  /// Moves the handle; `other` becomes empty.
  Result(Result &&other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
  /// Frees this handle, then takes `other`'s.
  Result &operator=(Result &&other) noexcept {
    if (this != &other) {
      (void)pgpool_result_free(r_);
      r_ = std::exchange(other.r_, nullptr);
    }
    return *this;
  }
  Result(const Result &) = delete;
  Result &operator=(const Result &) = delete;
  /// Frees the handle and every value read from it.
  ~Result() { (void)pgpool_result_free(r_); }

  /// The handle (owned by this object), for the C API.
  pgpool_result *get() const noexcept { return r_; }
  /// The slot an exec writes into (`inout_res`): NULL for a new result, else reused.
  pgpool_result **slot() noexcept { return &r_; }
  /// True once an exec has filled it (and not moved from).
  explicit operator bool() const noexcept { return r_ != nullptr; }

  /// Number of rows.
  uint64_t rows() const {
    uint64_t n = 0;
    detail::call(pgpool_result_nrows, r_, &n);
    return n;
  }
  /// Number of columns (known also when there are no rows).
  uint32_t columns() const {
    uint32_t n = 0;
    detail::call(pgpool_result_ncols, r_, &n);
    return n;
  }
  /// Rows the command affected (INSERT/UPDATE/DELETE counts; for SELECT the row count).
  uint64_t affected() const {
    uint64_t n = 0;
    detail::call(pgpool_result_affected_rows, r_, &n);
    return n;
  }
  /// Column `col`'s name (NUL-terminated; points into the Result).
  std::string_view column_name(uint32_t col) const {
    const char *s = nullptr;
    detail::call(pgpool_result_column_name, r_, col, &s);
    return s;
  }
  /// Column `col`'s type OID (23 int4, 25 text, ...).
  uint32_t column_type(uint32_t col) const {
    uint32_t oid = 0;
    detail::call(pgpool_result_column_type, r_, col, &oid);
    return oid;
  }
  /// Column `col`'s type name ("int4", "text", ...; points into the Result).
  std::string_view column_type_name(uint32_t col) const {
    const char *s = nullptr;
    detail::call(pgpool_result_column_type_name, r_, col, &s);
    return s;
  }
  /// The index of the first column named `name`; throws PGPOOL_ERR_OUT_OF_RANGE if none.
  uint32_t column_index(std::string_view name) const {
    const uint32_t n = columns();
    for (uint32_t c = 0; c < n; c++)
      if (column_name(c) == name) return c;
    throw Error(PGPOOL_ERR_OUT_OF_RANGE, "no column named \"" + std::string(name) + "\"");
  }
  /// True when the value at (`row`, `col`) is SQL NULL.
  bool is_null(uint64_t row, uint32_t col) const {
    bool null = false;
    detail::call(pgpool_result_is_null, r_, row, col, &null);
    return null;
  }
  /// The value at (`row`, `col`) as a `T`:
  /// - `bool`; any integer type (from int2/int4/int8/oid; a value outside `T`'s range throws
  ///   PGPOOL_ERR_TYPE_MISMATCH); `float`, `double` (also from integers and numeric);
  /// - `std::string_view` (no copy for text-like columns, PostgreSQL's text form for the
  ///   others; points into the Result), `std::string` (a copy);
  /// - `Bytea` (points into the Result), `std::vector<uint8_t>` (a copy) for bytea;
  /// - for timestamp/timestamptz: `std::chrono::microseconds` since the Unix epoch (UTC;
  ///   infinity is INT64_MAX, -infinity INT64_MIN), or any
  ///   `std::chrono::time_point<std::chrono::system_clock, D>` (infinities map to
  ///   `max()`/`min()`; a value `D` cannot hold throws PGPOOL_ERR_TYPE_MISMATCH);
  /// - `std::optional<T>` of any of these: `std::nullopt` for SQL NULL.
  /// Throws PGPOOL_ERR_NULL_VALUE for NULL (unless optional), PGPOOL_ERR_TYPE_MISMATCH for a
  /// column of another type, PGPOOL_ERR_OUT_OF_RANGE for a bad index.
  template <typename T>
  T get(uint64_t row, uint32_t col) const {
    return FromValue<T>::get(*this, row, col);
  }
  /// `get<T>(row, column_index(name))`.
  template <typename T>
  T get(uint64_t row, std::string_view name) const {
    return get<T>(row, column_index(name));
  }
  /// The value as text for every type (PostgreSQL's text form), `std::nullopt` for NULL.
  std::optional<std::string_view> text(uint64_t row, uint32_t col) const {
    const char *t = nullptr;
    size_t len = 0;
    bool null = false;
    detail::call(pgpool_result_value, r_, row, col, &t, &len, &null);
    if (null) return std::nullopt;
    return std::string_view(t, len);
  }

  /// One row of a Result: a view (a pointer and an index), valid while the Result is.
  class Row {
   public:
    /// The row at `index` of `res`.
    Row(const Result &res, uint64_t index) noexcept : res_(&res), index_(index) {}
    /// The row's index.
    uint64_t index() const noexcept { return index_; }
    /// `Result::get<T>(index(), col)`.
    template <typename T>
    T get(uint32_t col) const {
      return res_->get<T>(index_, col);
    }
    /// `Result::get<T>(index(), name)`.
    template <typename T>
    T get(std::string_view name) const {
      return res_->get<T>(index_, name);
    }
    /// `Result::is_null(index(), col)`.
    bool is_null(uint32_t col) const { return res_->is_null(index_, col); }

   private:
    const Result *res_;
    uint64_t index_;
  };

  /// An input iterator over the rows (`for (auto row : result)`).
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    using pointer = const Row *;
    using reference = Row;
    /// An iterator at row `index` of `res`.
    iterator(const Result &res, uint64_t index) noexcept : res_(&res), index_(index) {}
    /// The current row.
    Row operator*() const noexcept { return Row(*res_, index_); }
    /// Moves to the next row.
    iterator &operator++() noexcept {
      ++index_;
      return *this;
    }
    /// Moves to the next row, returning the previous position.
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++index_;
      return old;
    }
    /// Same position of the same Result.
    bool operator==(const iterator &o) const noexcept {
      return res_ == o.res_ && index_ == o.index_;
    }
    /// Not operator==.
    bool operator!=(const iterator &o) const noexcept { return !(*this == o); }

   private:
    const Result *res_;
    uint64_t index_;
  };
  /// The first row.
  iterator begin() const noexcept { return iterator(*this, 0); }
  /// One past the last row (throws like rows() for an empty Result).
  iterator end() const { return iterator(*this, rows()); }

 private:
  pgpool_result *r_ = nullptr;
};

/// `bool`.
template <>
struct FromValue<bool> {
  /// Reads a bool column.
  static bool get(const Result &r, uint64_t row, uint32_t col) {
    bool v = false;
    detail::call(pgpool_result_get_bool, r.get(), row, col, &v);
    return v;
  }
};

/// Integer types (not bool, not character types): range-checked.
template <typename T>
struct FromValue<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                     !detail::is_char_v<T>>> {
  /// Reads an int2/int4/int8/oid column.
  static T get(const Result &r, uint64_t row, uint32_t col) {
    int64_t v = 0;
    detail::call(pgpool_result_get_int64, r.get(), row, col, &v);
    bool fits;
    if constexpr (std::is_signed_v<T>)
      fits = v >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
             v <= static_cast<int64_t>(std::numeric_limits<T>::max());
    else
      fits = v >= 0 && static_cast<uint64_t>(v) <= std::numeric_limits<T>::max();
    if (!fits)
      throw Error(PGPOOL_ERR_TYPE_MISMATCH, "the value " + std::to_string(v) + " at row " +
                                                std::to_string(row) + ", column " +
                                                std::to_string(col) +
                                                " does not fit the requested integer type");
    return static_cast<T>(v);
  }
};

/// `double` and `float`.
template <typename T>
struct FromValue<T, std::enable_if_t<std::is_same_v<T, double> || std::is_same_v<T, float>>> {
  /// Reads a float4/float8/integer/numeric column.
  static T get(const Result &r, uint64_t row, uint32_t col) {
    double v = 0;
    detail::call(pgpool_result_get_double, r.get(), row, col, &v);
    return static_cast<T>(v);
  }
};

/// `std::string_view`: points into the Result.
template <>
struct FromValue<std::string_view> {
  /// Reads any non-NULL value as text.
  static std::string_view get(const Result &r, uint64_t row, uint32_t col) {
    const char *t = nullptr;
    size_t len = 0;
    detail::call(pgpool_result_get_text, r.get(), row, col, &t, &len);
    return std::string_view(t, len);
  }
};

/// `std::string`: a copy.
template <>
struct FromValue<std::string> {
  /// Reads any non-NULL value as text.
  static std::string get(const Result &r, uint64_t row, uint32_t col) {
    return std::string(FromValue<std::string_view>::get(r, row, col));
  }
};

/// `Bytea`: points into the Result.
template <>
struct FromValue<Bytea> {
  /// Reads a bytea column.
  static Bytea get(const Result &r, uint64_t row, uint32_t col) {
    Bytea b;
    detail::call(pgpool_result_get_bytea, r.get(), row, col, &b.data, &b.size);
    return b;
  }
};

/// `std::vector<uint8_t>`: a copy.
template <>
struct FromValue<std::vector<uint8_t>> {
  /// Reads a bytea column.
  static std::vector<uint8_t> get(const Result &r, uint64_t row, uint32_t col) {
    Bytea b = FromValue<Bytea>::get(r, row, col);
    return std::vector<uint8_t>(b.begin(), b.end());
  }
};

/// `std::chrono::microseconds` since the Unix epoch.
template <>
struct FromValue<std::chrono::microseconds> {
  /// Reads a timestamp/timestamptz column.
  static std::chrono::microseconds get(const Result &r, uint64_t row, uint32_t col) {
    int64_t v = 0;
    detail::call(pgpool_result_get_timestamp, r.get(), row, col, &v);
    return std::chrono::microseconds(v);
  }
};

/// `std::chrono::time_point<std::chrono::system_clock, D>`.
template <typename D>
struct FromValue<std::chrono::time_point<std::chrono::system_clock, D>> {
  /// The time point type.
  using TP = std::chrono::time_point<std::chrono::system_clock, D>;
  /// Reads a timestamp/timestamptz column.
  static TP get(const Result &r, uint64_t row, uint32_t col) {
    using std::chrono::microseconds;
    const int64_t v = FromValue<microseconds>::get(r, row, col).count();
    if (v == std::numeric_limits<int64_t>::max()) return TP::max();
    if (v == std::numeric_limits<int64_t>::min()) return TP::min();
    if constexpr (std::ratio_less_v<typename D::period, std::micro>) {
      // A finer duration: the conversion multiplies and may overflow.
      const auto hi = std::chrono::duration_cast<microseconds>(D::max()).count();
      const auto lo = std::chrono::duration_cast<microseconds>(D::min()).count();
      if (v > hi || v < lo)
        throw Error(PGPOOL_ERR_TYPE_MISMATCH,
                    "the timestamp at row " + std::to_string(row) + ", column " +
                        std::to_string(col) + " is outside the requested time_point's range");
    }
    return TP(std::chrono::floor<D>(microseconds(v)));
  }
};

/// `std::optional<T>`: `std::nullopt` for SQL NULL.
template <typename T>
struct FromValue<std::optional<T>> {
  /// Checks for NULL, then reads a `T`.
  static std::optional<T> get(const Result &r, uint64_t row, uint32_t col) {
    if (r.is_null(row, col)) return std::nullopt;
    return FromValue<T>::get(r, row, col);
  }
};

/// A notification (`NOTIFY channel, 'payload'`), copied out of the library's object (which is
/// freed at once). A plain value.
struct Notification {
  /// The channel name.
  std::string channel;
  /// The payload (empty if none was given).
  std::string payload;
  /// The notifying backend's process id.
  int32_t process_id = 0;
};

/// The session's transaction status after its last statement.
enum class TxStatus : int32_t {
  /// Not in a transaction.
  idle = 0,
  /// In a transaction.
  in_transaction = 1,
  /// In a failed transaction: statements are rejected until ROLLBACK.
  failed = 2,
};

/// A copyable token that cancels the statement running on one connection, from any thread.
/// It holds the connection's handle by value; handles are generation-checked, so a token used
/// after its Conn was released throws PGPOOL_ERR_INVALID_HANDLE instead of touching another
/// connection.
class CancelToken {
 public:
  /// A token for the connection handle `conn`.
  explicit CancelToken(pgpool_conn *conn) noexcept : c_(conn) {}
  /// Asks the server to cancel what runs on the connection (see Conn::cancel).
  void cancel() const { detail::call(pgpool_conn_cancel, c_); }

 private:
  pgpool_conn *c_;
};

class Conn;
class CopyIn;

/// A connection leased from a Pool (`pgpool_conn`). Move-only; the destructor gives it back
/// to the pool (`pgpool_conn_release`: an open transaction is rolled back first; errors are
/// swallowed). Outlives its Pool safely: the connection stays usable and closes when released.
///
/// Thread safety: may move between threads, but is used by one thread at a time (a
/// concurrent call fails with PGPOOL_ERR_BUSY) — except cancel(), which is made to be called
/// from another thread while this one waits in a statement (the Conn object must not be
/// moved or destroyed meanwhile; a CancelToken has no such constraint).
///
/// Variadic `exec(sql, args...)` binds `args` as Params documents into a list the Conn keeps
/// and clears for each call, so a loop allocates nothing for parameters; a single `Params`
/// argument is used as is.
class Conn {
 public:
  /// An empty lease.
  Conn() noexcept = default;
  /// Takes ownership of a handle from the C API (released by the destructor).
  explicit Conn(pgpool_conn *raw) noexcept : c_(raw) {}
  /// Moves the lease; `other` becomes empty.
  Conn(Conn &&other) noexcept = default;
  /// Releases this lease, then takes `other`'s.
  Conn &operator=(Conn &&other) noexcept = default;
  Conn(const Conn &) = delete;
  Conn &operator=(const Conn &) = delete;
  /// Gives the connection back to the pool; errors are swallowed.
  ~Conn() = default;

  /// The handle (owned by this object), for the C API.
  pgpool_conn *get() const noexcept { return c_.get(); }
  /// True while this object holds a lease.
  explicit operator bool() const noexcept { return c_ != nullptr; }

  /// Gives the connection back now (rolled back first if a transaction may be open); throws
  /// on failure. The Conn is empty afterwards, even when it throws.
  void release() {
    pgpool_conn *c = c_.release();
    detail::call(pgpool_conn_release, c);
  }
  /// Closes the connection instead of returning it (after a session change the next user
  /// must not inherit); the pool opens a replacement if it needs one. Non-blocking. The Conn
  /// is empty afterwards, even when it throws.
  void discard() {
    pgpool_conn *c = c_.release();
    detail::call(pgpool_conn_discard, c);
  }

  /// Runs `sql` with `args` (see the class comment) through the statement cache and returns
  /// its rows. Blocks for the round trip, bounded by the query timeout.
  template <typename... Args>
  Result exec(CStr sql, const Args &...args) {
    Result out;
    exec(out, sql, args...);
    return out;
  }
  /// As above, into `out`, reusing its memory (its earlier values become invalid; on failure
  /// it is left empty of rows). Returns `out`.
  template <typename... Args>
  Result &exec(Result &out, CStr sql, const Args &...args) {
    detail::call(pgpool_conn_exec, c_.get(), sql.c_str(), bind(args...), out.slot(),
                 static_cast<uint64_t *>(nullptr));
    return out;
  }
  /// Runs a prepared statement with `args` (its declared types apply) and returns its rows.
  template <typename... Args>
  Result exec(const Stmt &stmt, const Args &...args) {
    Result out;
    exec(out, stmt, args...);
    return out;
  }
  /// As above, into `out` (reused).
  template <typename... Args>
  Result &exec(Result &out, const Stmt &stmt, const Args &...args) {
    detail::call(pgpool_conn_exec_stmt, c_.get(), stmt.get(), bind(args...), out.slot(),
                 static_cast<uint64_t *>(nullptr));
    return out;
  }
  /// Runs a command with `args`, discarding any rows; returns the number of rows affected.
  template <typename... Args>
  uint64_t execute(CStr sql, const Args &...args) {
    uint64_t n = 0;
    detail::call(pgpool_conn_exec, c_.get(), sql.c_str(), bind(args...),
                 static_cast<pgpool_result **>(nullptr), &n);
    return n;
  }
  /// As above, for a prepared statement.
  template <typename... Args>
  uint64_t execute(const Stmt &stmt, const Args &...args) {
    uint64_t n = 0;
    detail::call(pgpool_conn_exec_stmt, c_.get(), stmt.get(), bind(args...),
                 static_cast<pgpool_result **>(nullptr), &n);
    return n;
  }
  /// Runs one or more `;`-separated statements with the simple protocol (no parameters, no
  /// rows). One round trip.
  void batch(CStr sql) { detail::call(pgpool_conn_batch, c_.get(), sql.c_str()); }

  /// `BEGIN` (prefer Transaction or transaction()).
  void begin() { detail::call(pgpool_conn_begin, c_.get()); }
  /// `COMMIT`. Beware: in a failed transaction the server answers COMMIT with a rollback
  /// and no error; Transaction::commit and transaction() check for that and throw.
  void commit() { detail::call(pgpool_conn_commit, c_.get()); }
  /// `ROLLBACK`.
  void rollback() { detail::call(pgpool_conn_rollback, c_.get()); }
  /// The transaction status the server reported after the last statement (no round trip).
  TxStatus transaction_status() const {
    int32_t s = 0;
    detail::call(pgpool_conn_transaction_status, c_.get(), &s);
    return static_cast<TxStatus>(s);
  }
  /// Runs `f(*this)` between BEGIN and COMMIT and returns what it returns. Commits when it
  /// returns normally; when it throws, rolls back and rethrows its exception. A statement
  /// that failed inside (even if `f` caught the exception) makes the COMMIT a rollback, which
  /// throws an Error with PGPOOL_ERR_SERVER and SQLSTATE 25P02. Throws PGPOOL_ERR_USAGE when
  /// a transaction is already open.
  template <typename F>
  auto transaction(F &&f) -> decltype(f(std::declval<Conn &>())) {
    using R = decltype(f(std::declval<Conn &>()));
    struct State {
      Conn *conn;
      F *f;
      std::exception_ptr error;
      std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value{};
    } st{this, &f, nullptr, {}};
    pgpool_tx_fn trampoline = [](pgpool_conn *, void *user) -> int32_t {
      State *s = static_cast<State *>(user);
      try {
        if constexpr (std::is_void_v<R>) {
          (*s->f)(*s->conn);
          s->value = true;
        } else {
          s->value.emplace((*s->f)(*s->conn));
        }
        return 0;
      } catch (...) {
        s->error = std::current_exception();  // must not unwind into the library
        return 1;
      }
    };
    pgpool_error *err = nullptr;
    pgpool_code rc =
        pgpool_conn_transaction(c_.get(), trampoline, &st, static_cast<int32_t *>(nullptr), &err);
    if (st.error) {
      pgpool_error_free(err);  // rolled back (or the rollback failed): the callback's error wins
      std::rethrow_exception(st.error);
    }
    detail::check(rc, err);
    if constexpr (!std::is_void_v<R>) return std::move(*st.value);
  }

  /// Bounds every following statement until release: a longer one is cancelled and fails
  /// with PGPOOL_ERR_TIMEOUT, SQLSTATE 57014. Zero: no limit; negative (default_timeout): the
  /// pool's `query_timeout`. Release restores the pool's value. Non-blocking.
  void set_query_timeout(std::chrono::milliseconds timeout) {
    detail::call(pgpool_conn_set_query_timeout, c_.get(), detail::ms(timeout));
  }
  /// Asks the server to cancel the statement running on this connection; that call then
  /// fails with PGPOOL_ERR_SERVER, SQLSTATE 57014, and the connection stays usable. The one
  /// member that may be called from another thread while this one is in a statement. A
  /// cancel when nothing runs is ignored. Blocks for one connection to the server (<= 5 s).
  void cancel() const { detail::call(pgpool_conn_cancel, c_.get()); }
  /// A token that can cancel this connection's statements from another thread.
  CancelToken cancel_token() const noexcept { return CancelToken(c_.get()); }
  /// The server process id of the session (`pg_backend_pid()`). Non-blocking.
  int32_t backend_pid() const {
    int32_t pid = 0;
    detail::call(pgpool_conn_backend_pid, c_.get(), &pid);
    return pid;
  }
  /// The connection's id within its pool: the `conn_id()` of the pool's events about it.
  uint64_t id() const {
    uint64_t id = 0;
    detail::call(pgpool_conn_id, c_.get(), &id);
    return id;
  }

  /// Starts `sql`, a `COPY ... FROM STDIN`, and returns its writer (see CopyIn).
  CopyIn copy_in(CStr sql);
  /// Runs `sql`, a `COPY ... FROM STDIN`, with all of `data` (in the COPY's format); returns
  /// the number of rows copied. On failure nothing is copied.
  uint64_t copy_in(CStr sql, std::string_view data);
  /// Runs `sql`, a `COPY ... TO STDOUT`, calling `sink(std::string_view chunk)` for each
  /// piece of data (chunks are not aligned to rows; each is valid only during the call);
  /// returns the number of rows copied. If `sink` throws, the rest of the data is read and
  /// dropped (so the connection is usable again) and the exception propagates.
  template <typename Sink>
  uint64_t copy_out(CStr sql, Sink &&sink) {
    detail::call(pgpool_conn_copy_out_begin, c_.get(), sql.c_str());
    std::array<char, 16384> buf;
    uint64_t rows = 0;
    for (;;) {
      size_t len = 0;
      detail::call(pgpool_conn_copy_out_read, c_.get(), static_cast<void *>(buf.data()),
                   buf.size(), &len, &rows);
      if (len == 0) return rows;
      try {
        sink(std::string_view(buf.data(), len));
      } catch (...) {
        for (;;) {  // drain, so the session leaves COPY mode
          pgpool_error *err = nullptr;
          pgpool_code rc = pgpool_conn_copy_out_read(c_.get(), buf.data(), buf.size(), &len,
                                                     nullptr, &err);
          pgpool_error_free(err);
          if (rc != PGPOOL_OK || len == 0) break;
        }
        throw;
      }
    }
  }
  /// Runs `sql`, a `COPY ... TO STDOUT`, and returns all of its data.
  std::string copy_out(CStr sql) {
    std::string out;
    copy_out(sql, [&out](std::string_view chunk) { out.append(chunk); });
    return out;
  }

  /// Waits up to `timeout` for a notification (after `LISTEN channel` on this connection):
  /// `std::nullopt` when none came (zero: only one already received; `forever` or negative:
  /// no limit). Notifications that arrived during other statements are returned first, in
  /// order. Other failures throw.
  std::optional<Notification> wait_notification(std::chrono::milliseconds timeout) {
    pgpool_notification *raw = nullptr;
    pgpool_error *err = nullptr;
    pgpool_code rc = pgpool_conn_wait_notification(c_.get(), detail::ms(timeout), &raw, &err);
    if (rc == PGPOOL_ERR_WOULD_BLOCK || rc == PGPOOL_ERR_TIMEOUT) {
      pgpool_error_free(err);
      return std::nullopt;
    }
    detail::check(rc, err);
    std::unique_ptr<pgpool_notification, detail::NotificationFree> n(raw);
    const char *channel = pgpool_notification_channel(n.get());
    const char *payload = pgpool_notification_payload(n.get());
    if (channel == nullptr || payload == nullptr)
      throw Error(PGPOOL_ERR_INVALID_HANDLE, "the library returned an invalid notification");
    return Notification{channel, payload, pgpool_notification_process_id(n.get())};
  }

 private:
  /// The parameter list for `args`: NULL for none, a given Params as is, else the scratch
  /// list refilled.
  template <typename... Args>
  const pgpool_params *bind(const Args &...args) {
    if constexpr (sizeof...(Args) == 0) {
      return nullptr;
    } else if constexpr (sizeof...(Args) == 1 &&
                         (std::is_same_v<std::decay_t<Args>, Params> && ...)) {
      return (args.get(), ...);
    } else {
      if (!scratch_)
        scratch_.emplace();
      else
        scratch_->clear();
      (scratch_->add(args), ...);
      return scratch_->get();
    }
  }

  friend class Pool;
  /// Holds a handle the library lends for a callback (an empty Conn only).
  void lend(pgpool_conn *raw) noexcept { c_.reset(raw); }
  /// Gives up the handle without releasing it (the end of the loan).
  void detach() noexcept { (void)c_.release(); }

  std::unique_ptr<pgpool_conn, detail::ConnRelease> c_;
  std::optional<Params> scratch_;
};

/// The writer of a `COPY ... FROM STDIN` started with Conn::copy_in. Move-only; refers to its
/// Conn (which must outlive it). `end()` completes the COPY; a writer destroyed without
/// `end()` or `abort()` (an exception propagating, say) aborts it, so nothing is copied and
/// the connection leaves COPY mode (errors swallowed).
class CopyIn {
 public:
  /// Starts `sql` on `conn`.
  CopyIn(Conn &conn, CStr sql) : conn_(&conn) {
    detail::call(pgpool_conn_copy_in_begin, conn.get(), sql.c_str());
  }
  /// Moves the COPY; `other` no longer ends or aborts it.
  CopyIn(CopyIn &&other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  /// Aborts this object's COPY if it is still open, then takes `other`'s.
  CopyIn &operator=(CopyIn &&other) noexcept {
    if (this != &other) {
      abort_quietly();
      conn_ = std::exchange(other.conn_, nullptr);
    }
    return *this;
  }
  CopyIn(const CopyIn &) = delete;
  CopyIn &operator=(const CopyIn &) = delete;
  /// Aborts the COPY unless it was ended or aborted; errors are swallowed.
  ~CopyIn() { abort_quietly(); }

  /// Sends data in the COPY's format (rows may span calls). Blocks only while the socket's
  /// send buffer is full.
  CopyIn &write(std::string_view data) {
    detail::call(pgpool_conn_copy_in_write, open(), static_cast<const void *>(data.data()),
                 data.size());
    return *this;
  }
  /// Ends the COPY and returns the number of rows copied (bad data: throws, nothing copied).
  uint64_t end() {
    pgpool_conn *c = open();
    conn_ = nullptr;
    uint64_t rows = 0;
    detail::call(pgpool_conn_copy_in_end, c, &rows);
    return rows;
  }
  /// Aborts the COPY with `reason`: nothing is copied.
  void abort(CStr reason = "aborted by the client") {
    pgpool_conn *c = open();
    conn_ = nullptr;
    detail::call(pgpool_conn_copy_in_abort, c, reason.c_str());
  }

 private:
  pgpool_conn *open() const {
    if (conn_ == nullptr) throw Error(PGPOOL_ERR_USAGE, "this COPY has already ended");
    return conn_->get();
  }
  void abort_quietly() noexcept {
    if (conn_ != nullptr)
      detail::call_quietly(pgpool_conn_copy_in_abort, conn_->get(),
                           "the COPY writer was destroyed");
    conn_ = nullptr;
  }
  Conn *conn_;
};

inline CopyIn Conn::copy_in(CStr sql) { return CopyIn(*this, sql); }

inline uint64_t Conn::copy_in(CStr sql, std::string_view data) {
  CopyIn w(*this, sql);
  w.write(data);
  return w.end();
}

/// A transaction on a Conn: `Transaction tx(conn); ... tx.commit();`. BEGIN runs in the
/// constructor; the destructor rolls back unless commit() or rollback() was called (also
/// while an exception propagates; errors there are swallowed, and the pool rolls back a
/// connection released with a transaction open anyway). Refers to its Conn, which must
/// outlive it. Move-only.
class Transaction {
 public:
  /// `BEGIN` on `conn`.
  explicit Transaction(Conn &conn) : conn_(&conn) { conn.begin(); }
  /// Moves the open transaction; `other` no longer ends it.
  Transaction(Transaction &&other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  Transaction &operator=(Transaction &&) = delete;
  Transaction(const Transaction &) = delete;
  Transaction &operator=(const Transaction &) = delete;
  /// Rolls back unless committed or rolled back; errors are swallowed.
  ~Transaction() {
    if (conn_ != nullptr) detail::call_quietly(pgpool_conn_rollback, conn_->get());
  }

  /// True until commit() or rollback().
  bool active() const noexcept { return conn_ != nullptr; }
  /// The connection.
  Conn &conn() const noexcept { return *conn_; }
  /// `COMMIT`. If a statement in the transaction failed, the server would turn the COMMIT
  /// into a rollback without an error; this rolls back and throws PGPOOL_ERR_SERVER with
  /// SQLSTATE 25P02 instead. The transaction is over afterwards, even when it throws.
  void commit() {
    Conn &c = *open();
    conn_ = nullptr;
    if (c.transaction_status() == TxStatus::failed) {
      c.rollback();
      throw Error(PGPOOL_ERR_SERVER,
                  "a statement in the transaction failed: rolled back, not committed", "25P02");
    }
    c.commit();
  }
  /// `ROLLBACK`. The transaction is over afterwards, even when it throws.
  void rollback() {
    Conn &c = *open();
    conn_ = nullptr;
    c.rollback();
  }

 private:
  Conn *open() const {
    if (conn_ == nullptr) throw Error(PGPOOL_ERR_USAGE, "this transaction has already ended");
    return conn_;
  }
  Conn *conn_;
};

/// A snapshot of a pool's gauges and counters (the C struct; see pgpool.h). Beyond the
/// gauges and close counters: `closed_reclaimed` (leases taken back: held past
/// max_checkout, or still out when a bounded close ran out), `closed_role_changed` (the
/// server stopped matching target_session_attrs: a standby promoted, a primary turned
/// read-only), `closed_replica_lag` (on a standby further behind its primary than
/// max_replica_lag), `leaks_suspected` (leases held
/// past leak_threshold), `health` (a pgpool_health_state: `health_state(stats)` gives the
/// enum class), `consecutive_connect_failures`, `since_connect_success_ms` and
/// `since_connect_failure_ms` (-1: never), `connectors` (connect attempts running), and the
/// latency histograms `acquire_wait`, `connect_time`, `query_time`, `hold_time` (each a
/// pgpool_histogram: count, sum_us, p50_us, p90_us, p99_us, max_us).
using Stats = pgpool_stats;

/// A pool's health (Health::state, health_state(Stats)).
enum class HealthState : int32_t {
  /// The last connect attempt (if any) succeeded.
  healthy = PGPOOL_HEALTHY,
  /// Recent connect attempts failed, but the breaker is not open (or connections are still
  /// open and serve callers).
  degraded = PGPOOL_DEGRADED,
  /// The breaker is open: connects keep failing and no connection is open; an acquire that
  /// needs a new connection throws PGPOOL_ERR_CONNECT after one probe at most.
  down = PGPOOL_DOWN,
};

/// "healthy", "degraded" or "down" ("unknown" for a value this header does not know).
inline std::string_view to_string(HealthState s) noexcept {
  switch (s) {
    case HealthState::healthy:
      return "healthy";
    case HealthState::degraded:
      return "degraded";
    case HealthState::down:
      return "down";
  }
  return "unknown";
}

/// The health state in a Stats snapshot.
inline HealthState health_state(const Stats &s) noexcept {
  return static_cast<HealthState>(s.health);
}

/// The result of Pool::health().
struct Health {
  /// True when the round trip succeeded.
  bool ok = false;
  /// Healthy; degraded (recent connect failures, more callers waiting than
  /// degraded_waiters, or a failed check); or down (the breaker is open).
  HealthState state = HealthState::healthy;
  /// Why `state` is not healthy, one phrase each (empty when healthy).
  std::vector<std::string> reasons;
  /// The configured maximum of open connections.
  uint32_t max_size = 0;
  /// Open, idle, leased connections and waiting callers.
  uint32_t open = 0, idle = 0, in_use = 0, waiting = 0;
  /// Connect attempts that failed in a row (0 after a success).
  uint32_t consecutive_connect_failures = 0;
  /// Time for acquire + round trip.
  std::chrono::microseconds latency{0};
  /// `current_database()` (empty on failure).
  std::string database;
  /// The server's `server_version` (empty on failure).
  std::string server_version;
  /// The server's `now()`, ISO 8601 in UTC (empty on failure).
  std::string server_time;
  /// Whether the server is a standby (unset on failure).
  std::optional<bool> in_recovery;
  /// On a standby, how far its replay is behind its primary (unset on a primary or on
  /// failure).
  std::optional<std::chrono::microseconds> replica_lag;
  /// Why the check failed (unset when ok).
  std::optional<Error> error;
};

/// A connection pool (`pgpool_pool`, freed by the destructor: the pool closes without
/// waiting when its last handle is freed; connections still leased stay usable and close
/// when released). Thread-safe: share one Pool by reference between threads. Move-only.
class Pool {
 public:
  /// A pool for `conninfo` (a URL `postgres://user:pass@host:port/db?opt=val` or a
  /// `key=value` string) with default options. Returns at once: connections open in the
  /// background or on demand. Throws PGPOOL_ERR_CONFIG for an unparsable string.
  explicit Pool(CStr conninfo) : Pool(conninfo, nullptr) {}
  /// As above, with the options in `cfg` (copied: it may be changed or destroyed after).
  /// Throws PGPOOL_ERR_CONFIG naming an out-of-range option.
  Pool(CStr conninfo, const Config &cfg) : Pool(conninfo, handle_of(cfg)) {
    record_sites_ = cfg.tracks_sites();
  }
  /// Moves the handle; `other` becomes empty.
  Pool(Pool &&other) noexcept = default;
  /// Frees this handle, then takes `other`'s.
  Pool &operator=(Pool &&other) noexcept = default;
  Pool(const Pool &) = delete;
  Pool &operator=(const Pool &) = delete;
  /// Frees the handle.
  ~Pool() = default;

  /// The handle (owned by this object), for the C API.
  pgpool_pool *get() const noexcept { return p_.get(); }
  /// True unless moved from.
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Waits up to `timeout` until `min_idle` connections are open (fail fast at start-up).
  /// Throws PGPOOL_ERR_CONNECT at once for a permanent error, PGPOOL_ERR_TIMEOUT otherwise.
  void wait_ready(std::chrono::milliseconds timeout) const {
    detail::call(pgpool_pool_wait_ready, p_.get(), detail::ms(timeout));
  }
#if PGPOOL_HPP_SOURCE_LOCATION
  /// Leases a connection, waiting up to `timeout` (default_timeout or negative: the pool's
  /// `acquire_timeout`; zero: only an idle one, else PGPOOL_ERR_WOULD_BLOCK). Throws
  /// PGPOOL_ERR_TIMEOUT (its message names the longest-held lease and where it was
  /// acquired), PGPOOL_ERR_CLOSED, PGPOOL_ERR_OVERLOADED, PGPOOL_ERR_CONNECT (a permanent
  /// connect error, or the breaker open: "database unavailable: ...").
  ///
  /// When the pool's Config turned on leak_threshold or max_checkout, the caller's file and
  /// line (`where`, filled in by the compiler) are recorded as acquire_at does; otherwise
  /// nothing is recorded (no allocation).
  Conn acquire(std::chrono::milliseconds timeout = default_timeout,
               std::source_location where = std::source_location::current()) const {
    if (!record_sites_) return lease(timeout, nullptr);
    char site[512];
    std::snprintf(site, sizeof site, "%s:%lu", where.file_name(),
                  static_cast<unsigned long>(where.line()));
    return lease(timeout, site);
  }
#else
  /// Leases a connection, waiting up to `timeout` (default_timeout or negative: the pool's
  /// `acquire_timeout`; zero: only an idle one, else PGPOOL_ERR_WOULD_BLOCK). Throws
  /// PGPOOL_ERR_TIMEOUT (its message names the longest-held lease and where it was
  /// acquired), PGPOOL_ERR_CLOSED, PGPOOL_ERR_OVERLOADED, PGPOOL_ERR_CONNECT (a permanent
  /// connect error, or the breaker open: "database unavailable: ...").
  ///
  /// Records no call site: before C++20 use acquire_at or PGPOOL_LEASE for that (with C++20's
  /// std::source_location this member records its caller itself).
  Conn acquire(std::chrono::milliseconds timeout = default_timeout) const {
    return lease(timeout, nullptr);
  }
#endif
  /// As acquire, recording `site` (copied; a call site such as "worker.cpp:42", a request
  /// name; NULL for none) as where the connection was acquired: leak reports
  /// (Config::leak_threshold), reclaim events (Config::max_checkout) and timeout messages
  /// name it. `PGPOOL_LEASE(pool)` passes this file and line; so does
  /// `pool.acquire_at(PGPOOL_SITE, timeout)`. Costs one small allocation in the library.
  Conn acquire_at(CStr site, std::chrono::milliseconds timeout = default_timeout) const {
    return lease(timeout, site.c_str());
  }
  /// Takes an idle connection without waiting: `std::nullopt` when none is idle (a connect is
  /// started if there is room). Other failures throw.
  std::optional<Conn> try_acquire() const {
    pgpool_conn *c = nullptr;
    pgpool_error *err = nullptr;
    pgpool_code rc = pgpool_pool_try_acquire(p_.get(), &c, &err);
    if (rc == PGPOOL_ERR_WOULD_BLOCK) {
      pgpool_error_free(err);
      return std::nullopt;
    }
    detail::check(rc, err);
    return std::optional<Conn>(std::in_place, c);
  }
  /// One call: leases a connection (waiting up to the pool's `acquire_timeout`), runs `sql`
  /// with `args` (as Conn::exec binds them; a fresh parameter list per call), gives it back.
  template <typename... Args>
  Result exec(CStr sql, const Args &...args) const {
    Result out;
    exec(out, sql, args...);
    return out;
  }
  /// As above, into `out` (reused).
  template <typename... Args>
  Result &exec(Result &out, CStr sql, const Args &...args) const {
    run(nullptr, sql.c_str(), out.slot(), nullptr, args...);
    return out;
  }
  /// As above, for a prepared statement.
  template <typename... Args>
  Result exec(const Stmt &stmt, const Args &...args) const {
    Result out;
    exec(out, stmt, args...);
    return out;
  }
  /// As above, for a prepared statement, into `out` (reused).
  template <typename... Args>
  Result &exec(Result &out, const Stmt &stmt, const Args &...args) const {
    run(stmt.get(), nullptr, out.slot(), nullptr, args...);
    return out;
  }
  /// One call for a command: returns the rows affected (rows discarded).
  template <typename... Args>
  uint64_t execute(CStr sql, const Args &...args) const {
    uint64_t n = 0;
    run(nullptr, sql.c_str(), nullptr, &n, args...);
    return n;
  }
  /// Runs `f(conn)` in a transaction on a connection of its own (leased waiting up to
  /// `timeout`, given back afterwards) and returns what `f` returns, like
  /// Conn::transaction: commits when `f` returns normally, rolls back when it throws. When an
  /// attempt fails in a way that is safe to retry, it runs again on a fresh connection after a
  /// jittered pause (10 ms doubling to 1 s), `max_attempts` attempts in all (0 counts as 1):
  /// - a serialization failure (40001) or deadlock (40P01), in COMMIT's error or thrown by a
  ///   statement inside `f` (a pgpool::Error from the Conn; the library judges the attempt by
  ///   the connection's last failed call, so let it propagate, or rethrow it);
  /// - a transient connect error, or a connection that broke before anything was committed.
  /// Never after an error whose outcome is unknown (a connection lost during COMMIT): that is
  /// thrown with `outcome_unknown()` set. An exception from `f` that is not a pgpool::Error
  /// is never retried: it is rethrown as is once the attempt is rolled back. When the
  /// attempts run out, the last failure is thrown: `f`'s own exception if it threw, else the
  /// library's error. `f` may run several times: keep effects outside the database out of it.
  /// `f` must not release, discard or move from the Conn it is given.
  ///
  /// The callback runs inside a call into the library; exceptions never cross it (they are
  /// caught, the attempt is rolled back, and they are rethrown here).
  template <typename F>
  auto transaction_retry(uint32_t max_attempts, F &&f,
                         std::chrono::milliseconds timeout = default_timeout) const
      -> decltype(f(std::declval<Conn &>())) {
    using R = decltype(f(std::declval<Conn &>()));
    struct State {
      F *f;
      Conn conn;  // the connection the library lends to each attempt
      std::exception_ptr error;
      bool foreign;  // `error` is not a pgpool::Error: never run `f` again
      std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value{};
    } st{&f, Conn(), nullptr, false, {}};
    pgpool_tx_fn trampoline = [](pgpool_conn *raw, void *user) noexcept -> int32_t {
      State *s = static_cast<State *>(user);
      s->error = nullptr;
      s->conn.lend(raw);  // never released here: the library releases it
      int32_t rc = 0;
      try {
        if constexpr (std::is_void_v<R>) {
          (*s->f)(s->conn);
          s->value = true;
        } else {
          s->value.emplace((*s->f)(s->conn));
        }
      } catch (const Error &) {
        s->error = std::current_exception();
        rc = 1;
      } catch (...) {
        // Not a database error: roll back and stop (a negative value tells the library).
        s->error = std::current_exception();
        s->foreign = true;
        rc = -1;
      }
      s->conn.detach();
      return rc;
    };
    pgpool_error *err = nullptr;
    pgpool_code rc = pgpool_pool_transaction_retry(p_.get(), detail::ms(timeout), max_attempts,
                                                   trampoline, &st,
                                                   static_cast<int32_t *>(nullptr), &err);
    if (st.error && (rc == PGPOOL_ERR_ROLLED_BACK || st.foreign)) {
      pgpool_error_free(err);  // `f` ended the last attempt: its exception wins
      std::rethrow_exception(st.error);
    }
    detail::check(rc, err);
    if constexpr (!std::is_void_v<R>) return std::move(*st.value);
  }
  /// A consistent snapshot of the gauges and counters. Non-blocking.
  Stats stats() const {
    Stats s{};
    s.size = sizeof s;
    detail::call(pgpool_pool_stats, p_.get(), &s);
    return s;
  }
  /// A health check: acquires a connection and asks the server for its database name,
  /// version and time; reports the pool's counts and health state too. An unhealthy pool is
  /// reported in the result (`ok` false, `error` set, `state` degraded or down), not thrown;
  /// misuse (an empty Pool) throws. Blocks up to the Config's `health_timeout` (2 s by
  /// default) as a whole.
  Health health() const {
    pgpool_health h{};
    h.size = sizeof h;
    pgpool_error *err = nullptr;
    pgpool_code rc = pgpool_pool_health(p_.get(), &h, &err);
    if (rc == PGPOOL_ERR_NULL_ARGUMENT || rc == PGPOOL_ERR_INVALID_HANDLE ||
        rc == PGPOOL_ERR_INVALID_ARGUMENT || rc == PGPOOL_ERR_PANIC)
      detail::check(rc, err);
    Health out;
    out.ok = rc == PGPOOL_OK && h.ok;
    out.state = static_cast<HealthState>(h.state);
    out.open = h.open;
    out.idle = h.idle;
    out.in_use = h.in_use;
    out.waiting = h.waiting;
    out.consecutive_connect_failures = h.consecutive_connect_failures;
    out.latency = std::chrono::microseconds(static_cast<int64_t>(h.latency_us));
    h.database[sizeof h.database - 1] = '\0';
    h.server_time[sizeof h.server_time - 1] = '\0';
    h.server_version[sizeof h.server_version - 1] = '\0';
    out.database = h.database;
    out.server_time = h.server_time;
    out.server_version = h.server_version;
    out.max_size = h.max_size;
    if (h.in_recovery >= 0) out.in_recovery = h.in_recovery == 1;
    if (h.replica_lag_us >= 0) out.replica_lag = std::chrono::microseconds(h.replica_lag_us);
    h.reasons[sizeof h.reasons - 1] = '\0';
    for (std::string_view rest = h.reasons; !rest.empty();) {
      size_t end = rest.find("; ");
      out.reasons.emplace_back(rest.substr(0, end));
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    }
    if (rc != PGPOOL_OK)
      out.error.emplace(rc, err);
    else if (!h.ok)
      out.error.emplace(PGPOOL_ERR_USAGE, "the health check reported failure without a code");
    pgpool_error_free(err);
    return out;
  }
  /// The pool's statistics as Prometheus text (exposition format 0.0.4): every gauge,
  /// counter and histogram, labelled with the Config's name. Non-blocking.
  std::string metrics() const {
    char *text = nullptr;
    detail::call(pgpool_pool_metrics, p_.get(), &text);
    std::unique_ptr<char, void (*)(char *)> owned(text, pgpool_string_free);
    return std::string(text);
  }
  /// A health check as one JSON object (the body of a /api/db/health endpoint: ok, pool,
  /// state, reasons, database, timestamp, serverVersion, latencyMs, poolSize, idleCount,
  /// inUseCount, waitingCount, ...). An unhealthy pool is described, not thrown. Blocks up
  /// to the Config's health_timeout.
  std::string health_json() const {
    char *json = nullptr;
    detail::call(pgpool_pool_health_json, p_.get(), &json);
    std::unique_ptr<char, void (*)(char *)> owned(json, pgpool_string_free);
    return std::string(json);
  }
  /// Closes the pool: new acquires fail with PGPOOL_ERR_CLOSED, queued callers wake with it,
  /// idle connections close, and the call waits up to `timeout` (default: the
  /// `close_timeout`) for leased ones to come back (less a tenth of it, at most 250 ms,
  /// kept for cancel requests); those still out then are reclaimed (their sockets shut down,
  /// their statements cancelled before close returns: a holder's call, even
  /// one running, fails with PGPOOL_ERR_BROKEN, "reclaimed"; `Stats::closed_reclaimed`
  /// counts them) and it throws PGPOOL_ERR_TIMEOUT, on time even with the server
  /// unreachable. A zero timeout reclaims nothing: it throws PGPOOL_ERR_WOULD_BLOCK while
  /// leases are out, and they close when released. Idempotent; stats() still work
  /// afterwards.
  void close(std::chrono::milliseconds timeout = default_timeout) const {
    detail::call(pgpool_pool_close, p_.get(), detail::ms(timeout));
  }

 private:
  friend class Registry;
  /// Takes ownership of a handle from pgpool_registry_get.
  explicit Pool(pgpool_pool *owned) noexcept { p_.reset(owned); }
  Pool(CStr conninfo, const pgpool_config *cfg) {
    pgpool_pool *raw = nullptr;
    detail::call(pgpool_pool_create, conninfo.c_str(), cfg, &raw);
    p_.reset(raw);
  }
  Conn lease(std::chrono::milliseconds timeout, const char *site) const {
    pgpool_conn *c = nullptr;
    if (site == nullptr)
      detail::call(pgpool_pool_acquire, p_.get(), detail::ms(timeout), &c);
    else
      detail::call(pgpool_pool_acquire_at, p_.get(), detail::ms(timeout), site, &c);
    return Conn(c);
  }
  static const pgpool_config *handle_of(const Config &cfg) {
    if (!cfg) throw Error(PGPOOL_ERR_NULL_ARGUMENT, "the Config was moved from");
    return cfg.get();
  }
  template <typename... Args>
  void run(const pgpool_stmt *stmt, const char *sql, pgpool_result **res, uint64_t *affected,
           const Args &...args) const {
    std::optional<Params> local;
    const pgpool_params *params = nullptr;
    if constexpr (sizeof...(Args) == 1 && (std::is_same_v<std::decay_t<Args>, Params> && ...)) {
      params = (args.get(), ...);
    } else if constexpr (sizeof...(Args) > 0) {
      local.emplace(args...);
      params = local->get();
    }
    // pgpool_pool_exec takes a non-const pool pointer although it is as thread-safe as the
    // other pool functions.
    detail::call(pgpool_pool_exec, p_.get(), int64_t{-1}, stmt, sql, params, res, affected);
  }
  std::unique_ptr<pgpool_pool, detail::PoolFree> p_;
  bool record_sites_ = false;
};

/// Named pools from a TOML file or string (see docs/operations/registry-and-shutdown.md):
/// opened together, looked up by name, closed together within one deadline. Move-only; the
/// destructor frees the handle (pools that no Pool from get() holds close without waiting:
/// call close_all() first for a bounded, complete close). Thread-safe.
class Registry {
 public:
  /// Reads the registry declared in the TOML file at `path`. Throws PGPOOL_ERR_CONFIG naming
  /// the file, the pool and the key.
  static Registry from_file(CStr path) {
    pgpool_registry *raw = nullptr;
    detail::call(pgpool_registry_from_file, path.c_str(), &raw);
    return Registry(raw);
  }
  /// Reads a registry from the text of a TOML file.
  static Registry from_toml(CStr toml) {
    pgpool_registry *raw = nullptr;
    detail::call(pgpool_registry_from_toml, toml.c_str(), &raw);
    return Registry(raw);
  }
  Registry(Registry &&other) noexcept = default;
  Registry &operator=(Registry &&other) noexcept = default;
  Registry(const Registry &) = delete;
  Registry &operator=(const Registry &) = delete;
  ~Registry() = default;

  /// The handle (owned by this object), for the C API.
  pgpool_registry *get_handle() const noexcept { return r_.get(); }

  /// Opens every pool and, for a positive `wait`, waits until each is ready, all within that
  /// one deadline. Throws PGPOOL_ERR_TIMEOUT (or PGPOOL_ERR_CONNECT) naming each pool that was
  /// not ready and its last connect error.
  void open_all(std::chrono::milliseconds wait = std::chrono::milliseconds{0}) const {
    detail::call(pgpool_registry_open_all, r_.get(), detail::ms(wait));
  }
  /// The statistics of every opened pool as one Prometheus text (format 0.0.4), a `pool`
  /// label per pool.
  std::string metrics() const {
    char *text = nullptr;
    detail::call(pgpool_registry_metrics, r_.get(), &text);
    std::unique_ptr<char, void (*)(char *)> owned(text, pgpool_string_free);
    return std::string(text);
  }
  /// A health check of every opened pool, in parallel, as one JSON object: `ok`, `state`
  /// (the worst pool's) and `pools` (each pool's Pool::health_json() object).
  std::string health_json() const {
    char *json = nullptr;
    detail::call(pgpool_registry_health_json, r_.get(), &json);
    std::unique_ptr<char, void (*)(char *)> owned(json, pgpool_string_free);
    return std::string(json);
  }
  /// The pools' names (a file's: sorted).
  std::vector<std::string> names() const {
    size_t n = 0;
    detail::call(pgpool_registry_count, r_.get(), &n);
    std::vector<std::string> out;
    out.reserve(n);
    for (size_t i = 0; i < n; i++) {
      const char *name = nullptr;
      detail::call(pgpool_registry_name, r_.get(), i, &name);
      out.emplace_back(name);
    }
    return out;
  }
  /// A Pool of the caller's own sharing the registry's pool `name` (opened if need be; it
  /// outlives the Registry). Throws PGPOOL_ERR_USAGE for an unknown name (the message lists
  /// the pools), PGPOOL_ERR_CLOSED after close_all for a pool that never opened.
  Pool get(CStr name) const {
    pgpool_pool *raw = nullptr;
    detail::call(pgpool_registry_get, r_.get(), name.c_str(), &raw);
    return Pool(raw);
  }
  /// Closes every pool at once within `deadline` (default_timeout: the longest close_timeout);
  /// returns how many connections still in use at the deadline were reclaimed. Never throws
  /// PGPOOL_ERR_TIMEOUT for those: the count says it.
  uint32_t close_all(std::chrono::milliseconds deadline = default_timeout) const {
    uint32_t reclaimed = 0;
    pgpool_error *err = nullptr;
    pgpool_code rc = pgpool_registry_close_all(r_.get(), detail::ms(deadline), &reclaimed, &err);
    if (rc == PGPOOL_ERR_TIMEOUT) {
      pgpool_error_free(err);
      return reclaimed;
    }
    detail::check(rc, err);
    return reclaimed;
  }

 private:
  struct Free {
    void operator()(pgpool_registry *r) const noexcept { (void)pgpool_registry_free(r); }
  };
  explicit Registry(pgpool_registry *raw) noexcept : r_(raw) {}
  std::unique_ptr<pgpool_registry, Free> r_;
};

/// Takes over SIGTERM and SIGINT (once per process): on the first, a shutdown is requested
/// and, when `registry` is given, its pools close within `deadline` counted from the signal;
/// a second signal during it ends the process at once (status 128 + signal).
inline void shutdown_on_signals(const Registry *registry,
                                std::chrono::milliseconds deadline = default_timeout) {
  detail::call(pgpool_shutdown_on_signals, registry ? registry->get_handle() : nullptr,
               detail::ms(deadline));
}
/// 0 until a shutdown was requested; then the signal's number (-1: request_shutdown()).
inline int32_t shutdown_requested() noexcept { return pgpool_shutdown_requested(); }
/// Requests the shutdown as a signal would. Throws PGPOOL_ERR_USAGE before shutdown_on_signals.
inline void request_shutdown() { detail::call(pgpool_shutdown_request); }
/// Waits (default: without bound) until the shutdown was requested and the pools are closed;
/// returns how many connections were reclaimed. Throws PGPOOL_ERR_TIMEOUT when not done in
/// time.
inline uint32_t wait_shutdown(std::chrono::milliseconds timeout = forever) {
  uint32_t reclaimed = 0;
  detail::call(pgpool_shutdown_wait, detail::ms(timeout), &reclaimed);
  return reclaimed;
}

/// Routes the library's log records at `max_level` or more severe (1 error ... 5 trace; 0 or
/// NULL `callback`: off) to `callback(level, message, user_data)`. The callback may run on
/// any thread, concurrently, and must not throw (mark it noexcept). Throws PGPOOL_ERR_USAGE
/// when the process already has a different Rust logger.
inline void set_log_callback(pgpool_log_fn callback, void *user_data, int32_t max_level) {
  detail::call(pgpool_log_set_callback, callback, user_data, max_level);
}

}  // namespace pgpool

#endif  // PGPOOL_HPP
