// Exercises every class and member of pgpool.hpp against a server, error paths included.
// Usage: hpp_test URL [panic]. Prints "HPP OK: N checks"; on the first failed check it
// prints which and exits 1. With "panic" (a library built with the test-hooks feature) it also
// checks that an injected panic inside the library becomes an Error.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include "pgpool.hpp"

using namespace std::chrono_literals;
using pgpool::Error;

static int checks = 0;

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "FAILED %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                                     \
    }                                                                                   \
    checks++;                                                                           \
  } while (0)

// Runs `expr`, which must throw a pgpool::Error with `code`; evaluates to that Error.
#define EXPECT_ERROR(code, expr) expect_error(__FILE__, __LINE__, #expr, code, [&] { (void)(expr); })

template <typename F>
static Error expect_error(const char *file, int line, const char *what, pgpool_code code, F f) {
  try {
    f();
  } catch (const Error &e) {
    if (e.code() != code) {
      std::fprintf(stderr, "FAILED %s:%d: %s threw %s (%s), expected %s\n", file, line, what,
                   pgpool_code_name(e.code()), e.what(), pgpool_code_name(code));
      std::exit(1);
    }
    if (e.category() != pgpool::code_name(code)) {
      std::fprintf(stderr, "FAILED %s:%d: %s: category %s for code %s\n", file, line, what,
                   e.category().c_str(), pgpool_code_name(code));
      std::exit(1);
    }
    checks++;
    return e;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "FAILED %s:%d: %s threw a non-pgpool exception: %s\n", file, line, what,
                 e.what());
    std::exit(1);
  }
  std::fprintf(stderr, "FAILED %s:%d: %s did not throw (expected %s)\n", file, line, what,
               pgpool_code_name(code));
  std::exit(1);
}

static void section(const char *name) { std::printf("-- %s\n", name); }

static_assert(!std::is_copy_constructible_v<pgpool::Config>);
static_assert(!std::is_copy_constructible_v<pgpool::Pool>);
static_assert(!std::is_copy_constructible_v<pgpool::Conn>);
static_assert(!std::is_copy_constructible_v<pgpool::Result>);
static_assert(!std::is_copy_constructible_v<pgpool::Stmt>);
static_assert(!std::is_copy_constructible_v<pgpool::Params>);
static_assert(!std::is_copy_constructible_v<pgpool::CopyIn>);
static_assert(!std::is_copy_constructible_v<pgpool::Transaction>);
static_assert(std::is_nothrow_move_constructible_v<pgpool::Config>);
static_assert(std::is_nothrow_move_assignable_v<pgpool::Config>);
static_assert(std::is_nothrow_move_constructible_v<pgpool::Pool>);
static_assert(std::is_nothrow_move_assignable_v<pgpool::Pool>);
static_assert(std::is_nothrow_move_constructible_v<pgpool::Conn>);
static_assert(std::is_nothrow_move_assignable_v<pgpool::Conn>);
static_assert(std::is_nothrow_move_constructible_v<pgpool::Result>);
static_assert(std::is_nothrow_move_assignable_v<pgpool::Result>);
static_assert(std::is_nothrow_move_constructible_v<pgpool::Stmt>);
static_assert(std::is_nothrow_move_assignable_v<pgpool::Stmt>);
static_assert(std::is_nothrow_move_constructible_v<pgpool::Params>);
static_assert(std::is_nothrow_move_assignable_v<pgpool::Params>);
static_assert(std::is_nothrow_move_constructible_v<pgpool::CopyIn>);
static_assert(std::is_nothrow_move_constructible_v<pgpool::Transaction>);
static_assert(std::is_nothrow_destructible_v<pgpool::Conn>);
static_assert(std::is_nothrow_destructible_v<pgpool::Transaction>);
static_assert(std::is_nothrow_copy_constructible_v<pgpool::Error>);
static_assert(std::is_base_of_v<std::runtime_error, pgpool::Error>);

static void version_and_errors() {
  section("version and Error");
  CHECK(pgpool::version() == PGPOOL_VERSION_STRING);
  CHECK(pgpool::code_name(PGPOOL_ERR_TIMEOUT) == "timeout");
  Error made(PGPOOL_ERR_TYPE_MISMATCH, "made here", "22003");
  CHECK(made.code() == PGPOOL_ERR_TYPE_MISMATCH && made.sqlstate() == "22003");
  CHECK(made.message() == "made here" && std::string(made.what()) == "type_mismatch: made here");
  CHECK(!made.retry_safe() && !made.outcome_unknown());
  Error copy = made;  // shares the detail
  CHECK(copy.sqlstate() == "22003" && copy.category() == "type_mismatch");
  Error no_detail(PGPOOL_ERR_BROKEN, static_cast<const pgpool_error *>(nullptr));
  CHECK(no_detail.code() == PGPOOL_ERR_BROKEN && no_detail.sqlstate().empty());
}

static void config(const std::string &url, bool panic) {
  section("Config");
  pgpool::Config cfg;
  CHECK(static_cast<bool>(cfg) && cfg.get() != nullptr);
  // Every setter, chained on an lvalue.
  cfg.max_size(3)
      .min_idle(1)
      .max_idle(3)
      .max_lifetime(30min)
      .idle_timeout(10min)
      .acquire_timeout(10s)
      .connect_timeout(5s)
      .max_uses(0)
      .validate_on_acquire(true)
      .validation_skip_window(500ms)
      .validation_timeout(5s)
      .keepalive_interval(60s)
      .reaper_interval(1s)
      .max_waiters(0)
      .close_timeout(5s)
      .statement_timeout(30s)
      .statement_cache_capacity(64)
      .tcp_user_timeout(10s)
      .tcp_keepalive_idle(5s)
      .application_name("hpp-test")
      .query_timeout(pgpool::default_timeout)
      .full_reset(false)
      .transaction_pooling(false)
      .max_concurrent_connects(2)
      .breaker_threshold(3)
      .reconnect_backoff_max(5s)
      .leak_threshold(pgpool::never)
      .max_checkout(pgpool::never)
      .health_timeout(2s);
  CHECK(!cfg.tracks_sites());
  cfg.leak_threshold(10min);
  CHECK(cfg.tracks_sites());
  cfg.max_checkout(1h).leak_threshold(pgpool::never);
  CHECK(cfg.tracks_sites());
  cfg.max_checkout(pgpool::never);
  CHECK(!cfg.tracks_sites());
  {
    pgpool::Pool pool(url, cfg);
    pool.wait_ready(10s);
    auto conn = pool.acquire();
    CHECK(conn.exec("SELECT current_setting('application_name')").get<std::string>(0, 0) ==
          "hpp-test");
    CHECK(conn.exec("SELECT current_setting('statement_timeout')").get<std::string>(0, 0) ==
          "30s");
  }
  // Chained on a temporary, moved into a variable.
  pgpool::Config tmp = pgpool::Config().max_size(2).application_name(std::string("hpp-tmp"));
  CHECK(static_cast<bool>(tmp));
  pgpool::Config moved = std::move(tmp);
  CHECK(!tmp && moved);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, tmp.max_size(1));
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, pgpool::Pool(url, tmp));
  tmp = std::move(moved);
  CHECK(tmp && !moved);
  // Values the setters or the pool reject.
  EXPECT_ERROR(PGPOOL_ERR_INVALID_UTF8, cfg.application_name("\xff"));
  Error e = EXPECT_ERROR(PGPOOL_ERR_CONFIG, pgpool::Pool(url, pgpool::Config().max_size(0)));
  CHECK(e.message().find("max_size") != std::string::npos);
  e = EXPECT_ERROR(PGPOOL_ERR_CONFIG,
                   pgpool::Pool(url, pgpool::Config().max_concurrent_connects(0)));
  CHECK(e.message().find("max_concurrent_connects") != std::string::npos);
  e = EXPECT_ERROR(PGPOOL_ERR_CONFIG, pgpool::Pool(url, pgpool::Config().health_timeout(0ms)));
  CHECK(e.message().find("health_timeout") != std::string::npos);
  e = EXPECT_ERROR(PGPOOL_ERR_CONFIG,
                   pgpool::Pool(url, pgpool::Config().reconnect_backoff_max(5ms)));
  CHECK(e.message().find("reconnect_backoff_max") != std::string::npos);
  EXPECT_ERROR(PGPOOL_ERR_INVALID_ARGUMENT, cfg.health_timeout(-1ms));
  EXPECT_ERROR(PGPOOL_ERR_CONFIG, pgpool::Pool("postgres://[bad", cfg));
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, pgpool::Pool(static_cast<const char *>(nullptr)));
  if (panic) {
    Error p = EXPECT_ERROR(PGPOOL_ERR_PANIC, cfg.application_name("pgpool-test-panic"));
    CHECK(!p.message().empty());
    cfg.application_name("hpp-after-panic");  // the config stays usable
  }
}

static void values(pgpool::Conn &conn) {
  section("parameters and typed getters");
  const uint8_t blob[] = {0, 1, 255};
  std::vector<uint8_t> vec = {9, 8, 7, 6};
  std::optional<int32_t> none, some = 5;
  std::string owned = "owned";
  auto res = conn.exec(
      "SELECT $1::int2 AS a, $2::int4, $3::int8, $4::float4, $5::float8, $6::bool, $7::text, "
      "$8::text, $9::text, $10::bytea, $11::bytea, $12::int4, $13::int4, $14::int4, $15::int4, "
      "$16::numeric, $17::int8, $18::numeric, $19::int4, $20::int8",
      int16_t{-7}, int32_t{123456}, int64_t{1} << 40, 1.5f, 2.25, true, std::string_view("view"),
      "literal", owned, pgpool::Bytea{blob, sizeof blob}, vec, std::nullopt, nullptr, none, some,
      pgpool::Typed{1700, "12345678901234567890.125"}, uint32_t{4000000000u},
      uint64_t{18446744073709551615ull}, uint8_t{200}, static_cast<const char *>(nullptr));
  CHECK(res.rows() == 1 && res.columns() == 20 && res.affected() == 1);
  CHECK(res.column_name(0) == "a" && res.column_type(0) == 21 && res.column_type_name(0) == "int2");
  CHECK(res.column_index("a") == 0);
  EXPECT_ERROR(PGPOOL_ERR_OUT_OF_RANGE, res.column_index("nope"));
  CHECK(res.get<int16_t>(0, 0) == -7 && res.get<int>(0, 0) == -7);
  CHECK(res.get<int16_t>(0, "a") == -7);
  CHECK(res.get<int32_t>(0, 1) == 123456 && res.get<int64_t>(0, 1) == 123456);
  CHECK(res.get<int64_t>(0, 2) == (int64_t{1} << 40) && res.get<uint64_t>(0, 2) == (uint64_t{1} << 40));
  CHECK(res.get<float>(0, 3) == 1.5f && res.get<double>(0, 4) == 2.25);
  CHECK(res.get<double>(0, 1) == 123456.0);  // integers convert to double
  CHECK(res.get<bool>(0, 5));
  CHECK(res.get<std::string_view>(0, 6) == "view" && res.get<std::string>(0, 7) == "literal");
  CHECK(res.get<std::string>(0, 8) == "owned");
  pgpool::Bytea b = res.get<pgpool::Bytea>(0, 9);
  CHECK(b.size == 3 && b[0] == 0 && b[1] == 1 && b[2] == 255);
  CHECK(res.get<std::vector<uint8_t>>(0, 10) == vec);
  for (uint32_t c = 11; c <= 13; c++) {
    CHECK(res.is_null(0, c));
    CHECK(!res.get<std::optional<int32_t>>(0, c).has_value());
    CHECK(!res.text(0, c).has_value());
    EXPECT_ERROR(PGPOOL_ERR_NULL_VALUE, res.get<int32_t>(0, c));
  }
  CHECK(res.get<std::optional<int32_t>>(0, 14) == 5);
  CHECK(res.get<std::optional<std::string>>(0, 6) == std::string("view"));
  CHECK(res.get<std::string_view>(0, 15) == "12345678901234567890.125");
  CHECK(*res.text(0, 15) == "12345678901234567890.125");
  CHECK(res.get<uint32_t>(0, 16) == 4000000000u);
  CHECK(res.get<std::string>(0, 17) == "18446744073709551615");  // sent as text
  CHECK(res.get<int32_t>(0, 18) == 200);
  CHECK(res.is_null(0, 19));
  CHECK(res.get<std::string>(0, 1) == "123456");  // text form of any type
  // Type and range errors.
  EXPECT_ERROR(PGPOOL_ERR_TYPE_MISMATCH, res.get<int8_t>(0, 1));  // 123456 does not fit
  EXPECT_ERROR(PGPOOL_ERR_TYPE_MISMATCH, res.get<int32_t>(0, 2));
  EXPECT_ERROR(PGPOOL_ERR_TYPE_MISMATCH, res.get<uint16_t>(0, 0));  // negative
  EXPECT_ERROR(PGPOOL_ERR_TYPE_MISMATCH, res.get<bool>(0, 1));
  EXPECT_ERROR(PGPOOL_ERR_TYPE_MISMATCH, res.get<pgpool::Bytea>(0, 6));
  EXPECT_ERROR(PGPOOL_ERR_TYPE_MISMATCH, res.get<std::chrono::microseconds>(0, 1));
  EXPECT_ERROR(PGPOOL_ERR_TYPE_MISMATCH, res.get<int64_t>(0, 6));
  EXPECT_ERROR(PGPOOL_ERR_OUT_OF_RANGE, res.get<int32_t>(1, 0));
  EXPECT_ERROR(PGPOOL_ERR_OUT_OF_RANGE, res.get<int32_t>(0, 99));
  EXPECT_ERROR(PGPOOL_ERR_OUT_OF_RANGE, res.column_name(99));
  EXPECT_ERROR(PGPOOL_ERR_OUT_OF_RANGE, res.column_type(99));
  EXPECT_ERROR(PGPOOL_ERR_OUT_OF_RANGE, res.is_null(5, 0));
  // Binder failures: a value that does not fit its parameter, a wrong count, bad UTF-8.
  Error e = EXPECT_ERROR(PGPOOL_ERR_USAGE, conn.exec("SELECT $1::int2", int64_t{70000}));
  CHECK(e.message().find("$1") != std::string::npos);
  EXPECT_ERROR(PGPOOL_ERR_INVALID_ARGUMENT, conn.exec("SELECT $1::int4, $2::int4", 1));
  EXPECT_ERROR(PGPOOL_ERR_INVALID_UTF8, conn.exec("SELECT $1::text", "\xff"));
  // Server errors keep their SQLSTATE.
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.exec("SELEC 1"));
  CHECK(e.sqlstate() == "42601" && e.category() == "server" && !e.retry_safe());
  CHECK(std::string(e.what()).rfind("server: ", 0) == 0);
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.exec("SELECT $1::int4", "abc"));
  CHECK(e.sqlstate() == "22P02");
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.exec("SELECT 1/0"));
  CHECK(e.sqlstate() == "22012");
  // A Params list built by hand, bound as is.
  pgpool::Params p;
  p.add(41).add("x").add_null().add(false);
  auto r2 = conn.exec("SELECT $1::int4 + 1, $2::text, $3::int4, $4::bool", p);
  CHECK(r2.get<int>(0, 0) == 42 && r2.get<std::string>(0, 1) == "x" && r2.is_null(0, 2) &&
        !r2.get<bool>(0, 3));
  p.clear().add(1);
  CHECK(conn.exec("SELECT $1::int4", p).get<int>(0, 0) == 1);
  pgpool::Params q(int64_t{5}, std::string("five"));
  CHECK(conn.exec("SELECT $1::int8, $2::text", q).get<std::string>(0, 1) == "five");
  pgpool::Params moved = std::move(q);
  CHECK(!q && moved);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, q.add(1));
  // Commands.
  conn.batch("CREATE TEMP TABLE hpp_values (id int PRIMARY KEY, v text); "
             "INSERT INTO hpp_values VALUES (1, 'one'), (2, 'two')");
  CHECK(conn.execute("UPDATE hpp_values SET v = upper(v) WHERE id >= $1", 1) == 2);
  CHECK(conn.exec("DELETE FROM hpp_values WHERE id = $1", 2).affected() == 1);
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.execute("INSERT INTO hpp_values VALUES (1, 'dup')"));
  CHECK(e.sqlstate() == "23505");
  EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.batch("NOT SQL"));
}

static void timestamps(pgpool::Conn &conn) {
  section("timestamps");
  using namespace std::chrono;
  auto res = conn.exec(
      "SELECT '2000-01-01 00:00:01+00'::timestamptz, 'infinity'::timestamptz, "
      "'-infinity'::timestamp, '1969-12-31 23:59:59.5'::timestamp, '0044-03-15 12:00:00 BC'"
      "::timestamptz, '2500-01-01 00:00:00+00'::timestamptz, NULL::timestamptz");
  CHECK(res.get<microseconds>(0, 0).count() == 946684801000000LL);
  auto tp = res.get<system_clock::time_point>(0, 0);
  CHECK(duration_cast<seconds>(tp.time_since_epoch()).count() == 946684801);
  CHECK(res.get<system_clock::time_point>(0, 1) == system_clock::time_point::max());
  CHECK(res.get<microseconds>(0, 1).count() == INT64_MAX);
  CHECK(res.get<system_clock::time_point>(0, 2) == system_clock::time_point::min());
  CHECK(res.get<microseconds>(0, 3).count() == -500000);
  auto secs = res.get<time_point<system_clock, seconds>>(0, 3);
  CHECK(secs.time_since_epoch().count() == -1);  // floored
  // Year 2500 does not fit a nanosecond time_point; it does in microseconds.
  if (std::ratio_less_v<system_clock::period, std::micro>)
    EXPECT_ERROR(PGPOOL_ERR_TYPE_MISMATCH, res.get<system_clock::time_point>(0, 5));
  auto far = res.get<time_point<system_clock, microseconds>>(0, 5);
  CHECK(far.time_since_epoch().count() == 16725225600000000LL);
  CHECK(!res.get<std::optional<system_clock::time_point>>(0, 6).has_value());
  // Time points bind as UTC timestamps, also before 1970 and BC.
  const int64_t bc = res.get<microseconds>(0, 4).count();
  auto back = conn.exec("SELECT $1::timestamptz, $2::timestamptz, $3::timestamptz, "
                        "$4::timestamptz, $5::timestamp",
                        tp, time_point<system_clock, microseconds>(microseconds(-500000)),
                        time_point<system_clock, microseconds>(microseconds(bc)),
                        system_clock::time_point::max(), time_point<system_clock, seconds>(seconds(86399)));
  CHECK(back.get<microseconds>(0, 0).count() == 946684801000000LL);
  CHECK(back.get<microseconds>(0, 1).count() == -500000);
  CHECK(back.get<microseconds>(0, 2).count() == bc);
  CHECK(back.get<microseconds>(0, 3).count() == INT64_MAX);
  CHECK(back.get<std::string>(0, 4) == "1970-01-01 23:59:59");
}

static void iteration_and_reuse(pgpool::Pool &pool, pgpool::Conn &conn) {
  section("rows, statements, result reuse");
  auto res = conn.exec("SELECT g AS n, 'row ' || g AS label FROM generate_series(1, 5) g");
  int64_t sum = 0;
  uint64_t expected = 0;
  for (auto row : res) {
    CHECK(row.index() == expected++);
    sum += row.get<int64_t>(0);
    CHECK(row.get<std::string>("label") == "row " + std::to_string(row.get<int>(0)));
    CHECK(!row.is_null(1));
  }
  CHECK(sum == 15 && expected == 5);
  auto it = res.begin();
  CHECK((*it).get<int>(0) == 1);
  it++;
  ++it;
  CHECK((*it).get<int>(0) == 3 && it != res.end());
  auto empty_rows = conn.exec("SELECT 1 WHERE false");
  CHECK(empty_rows.begin() == empty_rows.end() && empty_rows.columns() == 1);
  // A prepared statement; a Result reused in a loop of 1000 queries keeps its handle.
  pgpool::Stmt stmt("SELECT $1 * 2 AS doubled", {20});
  pgpool::Result reused;
  CHECK(!reused);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, reused.rows());
  pgpool_result *first = nullptr;
  for (int64_t n = 0; n < 1000; n++) {
    conn.exec(reused, stmt, n);
    if (n == 0) first = reused.get();
    CHECK(reused.get() == first);
    CHECK(reused.get<int64_t>(0, 0) == 2 * n);
  }
  CHECK(reused.column_name(0) == "doubled" && reused.column_type(0) == 20);
  for (int n = 0; n < 10; n++) {
    CHECK(conn.exec(reused, "SELECT $1::int4 + 1", n).get<int>(0, 0) == n + 1);
    CHECK(reused.get() == first);
  }
  // A failed exec leaves a reused result empty of rows.
  EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.exec(reused, "SELEC"));
  CHECK(reused.get() == first && reused.rows() == 0);
  CHECK(conn.exec(stmt, int64_t{21}).get<int64_t>(0, 0) == 42);
  CHECK(conn.execute(stmt, int64_t{1}) == 1);
  pgpool::Stmt untyped(std::string("SELECT $1::text || '!'"));
  CHECK(conn.exec(untyped, "hi").get<std::string>(0, 0) == "hi!");
  pgpool::Stmt vec_typed("SELECT $1", std::vector<uint32_t>{25});
  CHECK(conn.exec(vec_typed, "t").get<std::string>(0, 0) == "t");
  pgpool::Stmt bad("SELEC $1");
  CHECK(EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.exec(bad, 1)).sqlstate() == "42601");
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, pgpool::Stmt(static_cast<const char *>(nullptr)));
  pgpool::Stmt moved = std::move(bad);
  CHECK(!bad && moved);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, conn.exec(bad));
  // Values stay valid after the connection is gone, until the Result is destroyed.
  pgpool::Result kept;
  std::string_view big;
  {
    auto other = pool.acquire();
    kept = other.exec("SELECT repeat('x', 100000)");
    big = kept.get<std::string_view>(0, 0);
    other.discard();
    CHECK(!other);
  }
  CHECK(big.size() == 100000 && big.front() == 'x' && big.back() == 'x');
  // Results move; the source becomes empty.
  pgpool::Result taken = std::move(kept);
  CHECK(!kept && taken && taken.get<std::string_view>(0, 0).size() == 100000);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, kept.get<int>(0, 0));
  kept = std::move(taken);
  CHECK(kept && !taken);
  // One-call pool exec.
  pgpool::Result pr;
  pool.exec(pr, stmt, int64_t{4});
  CHECK(pr.get<int64_t>(0, 0) == 8);
  CHECK(pool.exec("SELECT $1::text", "p").get<std::string>(0, 0) == "p");
  CHECK(pool.exec(stmt, int64_t{5}).get<int64_t>(0, 0) == 10);
  CHECK(pool.exec(pr, "SELECT 7").get<int>(0, 0) == 7);
  pgpool::Params pp(3);
  CHECK(pool.exec("SELECT $1::int4", pp).get<int>(0, 0) == 3);
  CHECK(pool.execute("SELECT 1") == 1);
  CHECK(EXPECT_ERROR(PGPOOL_ERR_SERVER, pool.exec("SELEC")).sqlstate() == "42601");
}

struct Boom : std::runtime_error {
  Boom() : std::runtime_error("boom") {}
};

static int64_t count(pgpool::Conn &conn) {
  return conn.exec("SELECT count(*) FROM hpp_tx").get<int64_t>(0, 0);
}

static void transactions(pgpool::Conn &conn) {
  section("transactions");
  conn.batch("CREATE TEMP TABLE hpp_tx (x int PRIMARY KEY)");
  CHECK(conn.transaction_status() == pgpool::TxStatus::idle);
  {
    pgpool::Transaction tx(conn);
    CHECK(tx.active() && &tx.conn() == &conn);
    CHECK(conn.transaction_status() == pgpool::TxStatus::in_transaction);
    conn.execute("INSERT INTO hpp_tx VALUES (1)");
    tx.commit();
    CHECK(!tx.active());
    EXPECT_ERROR(PGPOOL_ERR_USAGE, tx.commit());
  }
  CHECK(count(conn) == 1);
  // An exception leaving the scope rolls back.
  try {
    pgpool::Transaction tx(conn);
    conn.execute("INSERT INTO hpp_tx VALUES (2)");
    throw Boom();
  } catch (const Boom &) {
  }
  CHECK(conn.transaction_status() == pgpool::TxStatus::idle && count(conn) == 1);
  // A server error leaving the scope rolls back too.
  try {
    pgpool::Transaction tx(conn);
    conn.execute("INSERT INTO hpp_tx VALUES (3)");
    conn.execute("INSERT INTO hpp_tx VALUES (1)");  // duplicate key
    tx.commit();
    CHECK(false);
  } catch (const Error &e) {
    CHECK(e.sqlstate() == "23505");
  }
  CHECK(conn.transaction_status() == pgpool::TxStatus::idle && count(conn) == 1);
  // Explicit rollback; a moved transaction is ended once.
  {
    pgpool::Transaction tx(conn);
    conn.execute("INSERT INTO hpp_tx VALUES (4)");
    pgpool::Transaction moved = std::move(tx);
    CHECK(!tx.active() && moved.active());
    moved.rollback();
    EXPECT_ERROR(PGPOOL_ERR_USAGE, moved.rollback());
  }
  CHECK(count(conn) == 1);
  // A failed statement caught inside: commit must not pretend it committed.
  {
    pgpool::Transaction tx(conn);
    conn.execute("INSERT INTO hpp_tx VALUES (5)");
    EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.execute("INSERT INTO hpp_tx VALUES (1/0)"));
    CHECK(conn.transaction_status() == pgpool::TxStatus::failed);
    Error e = EXPECT_ERROR(PGPOOL_ERR_SERVER, tx.commit());
    CHECK(e.sqlstate() == "25P02");
  }
  CHECK(conn.transaction_status() == pgpool::TxStatus::idle && count(conn) == 1);
  // The callback form: commit on return, with the callback's value.
  int calls = 0;
  int got = conn.transaction([&](pgpool::Conn &c) {
    calls++;
    CHECK(&c == &conn);
    c.execute("INSERT INTO hpp_tx VALUES ($1), ($2)", 10, 11);
    return 7;
  });
  CHECK(got == 7 && calls == 1 && count(conn) == 3);
  conn.transaction([](pgpool::Conn &c) { c.execute("INSERT INTO hpp_tx VALUES (12)"); });
  CHECK(count(conn) == 4);
  // An exception rolls back and is rethrown as is.
  bool caught = false;
  try {
    conn.transaction([](pgpool::Conn &c) {
      c.execute("INSERT INTO hpp_tx VALUES (13)");
      throw Boom();
    });
  } catch (const Boom &) {
    caught = true;
  }
  CHECK(caught && count(conn) == 4 && conn.transaction_status() == pgpool::TxStatus::idle);
  Error e = EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.transaction([](pgpool::Conn &c) {
    c.execute("INSERT INTO hpp_tx VALUES (14)");
    c.execute("INSERT INTO hpp_tx VALUES (10)");  // duplicate key
  }));
  CHECK(e.sqlstate() == "23505" && count(conn) == 4);
  // An error swallowed inside still prevents the commit.
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.transaction([](pgpool::Conn &c) {
    c.execute("INSERT INTO hpp_tx VALUES (15)");
    try {
      c.execute("SELECT 1/0");
    } catch (const Error &) {
    }
  }));
  CHECK(e.sqlstate() == "25P02" && count(conn) == 4);
  // No nesting.
  {
    pgpool::Transaction tx(conn);
    EXPECT_ERROR(PGPOOL_ERR_USAGE, conn.transaction([](pgpool::Conn &) {}));
  }
  // Raw begin/commit/rollback.
  conn.begin();
  conn.execute("INSERT INTO hpp_tx VALUES (20)");
  conn.rollback();
  conn.begin();
  conn.execute("INSERT INTO hpp_tx VALUES (21)");
  conn.commit();
  CHECK(count(conn) == 5);
}

static void copy(pgpool::Conn &conn) {
  section("COPY");
  conn.batch("CREATE TEMP TABLE hpp_copy (id int, name text)");
  {
    auto w = conn.copy_in("COPY hpp_copy FROM STDIN");
    EXPECT_ERROR(PGPOOL_ERR_USAGE, conn.exec("SELECT 1"));  // mid-COPY
    for (int i = 0; i < 10000; i++) w.write(std::to_string(i) + "\tname " + std::to_string(i) + "\n");
    CHECK(w.end() == 10000);
    EXPECT_ERROR(PGPOOL_ERR_USAGE, w.write("x"));
  }
  CHECK(conn.copy_in("COPY hpp_copy FROM STDIN", "10000\tlast\n10001\tlast\n") == 2);
  // A writer destroyed without end() aborts: nothing copied, the connection usable.
  try {
    auto w = conn.copy_in("COPY hpp_copy FROM STDIN");
    w.write("1\tlost\n");
    throw Boom();
  } catch (const Boom &) {
  }
  {
    auto w = conn.copy_in(std::string("COPY hpp_copy FROM STDIN"));
    w.write("2\tlost\n");
    pgpool::CopyIn moved = std::move(w);
    EXPECT_ERROR(PGPOOL_ERR_USAGE, w.end());
    moved.abort("changed my mind");
  }
  CHECK(EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.copy_in("COPY hpp_copy FROM STDIN", "x\ty\n")).sqlstate() ==
        "22P02");
  EXPECT_ERROR(PGPOOL_ERR_USAGE, conn.copy_in("SELECT 1"));
  CHECK(conn.exec("SELECT count(*) FROM hpp_copy").get<int64_t>(0, 0) == 10002);
  // Out: chunks through a sink, or all of it.
  size_t lines = 0, bytes = 0, chunks = 0;
  uint64_t rows = conn.copy_out("COPY (SELECT * FROM hpp_copy ORDER BY id) TO STDOUT",
                                [&](std::string_view chunk) {
                                  chunks++;
                                  bytes += chunk.size();
                                  lines += static_cast<size_t>(std::count(chunk.begin(), chunk.end(), '\n'));
                                });
  CHECK(rows == 10002 && lines == 10002 && bytes > 100000 && chunks > 1);
  std::string all = conn.copy_out("COPY (SELECT id FROM hpp_copy WHERE id < 3 ORDER BY id) TO STDOUT");
  CHECK(all == "0\n1\n2\n");
  // A sink that throws: the rest is drained and the connection stays usable.
  bool caught = false;
  try {
    conn.copy_out("COPY hpp_copy TO STDOUT", [](std::string_view) { throw Boom(); });
  } catch (const Boom &) {
    caught = true;
  }
  CHECK(caught && conn.exec("SELECT 1").get<int>(0, 0) == 1);
  EXPECT_ERROR(PGPOOL_ERR_USAGE, conn.copy_out("SELECT 1"));
  CHECK(conn.transaction_status() == pgpool::TxStatus::idle);
}

static void notifications(pgpool::Pool &pool, pgpool::Conn &conn) {
  section("LISTEN/NOTIFY");
  // A channel of this process's own: the suite runs several builds of this program at once.
  const std::string channel = "hpp_jobs_" + std::to_string(getpid());
  conn.batch("LISTEN " + channel);
  CHECK(!conn.wait_notification(0ms).has_value());
  auto start = std::chrono::steady_clock::now();
  CHECK(!conn.wait_notification(100ms).has_value());
  CHECK(std::chrono::steady_clock::now() - start >= 90ms);
  pool.execute("NOTIFY " + channel + ", 'job 7'");
  pool.execute("SELECT pg_notify($1, $2)", channel, "job 8");
  auto n = conn.wait_notification(5s);
  CHECK(n.has_value() && n->channel == channel && n->payload == "job 7" && n->process_id > 0);
  n = conn.wait_notification(pgpool::forever);
  CHECK(n.has_value() && n->payload == "job 8");
  // From another thread while this one waits without limit.
  std::thread notifier([&pool, &channel] {
    std::this_thread::sleep_for(100ms);
    pool.execute("NOTIFY " + channel);
  });
  n = conn.wait_notification(pgpool::forever);
  notifier.join();
  CHECK(n.has_value() && n->payload.empty());
  conn.batch("UNLISTEN *");
}

static void cancel_and_timeouts(pgpool::Pool &pool, pgpool::Conn &conn) {
  section("cancel and timeouts");
  int32_t pid = conn.backend_pid();
  CHECK(pid > 0 && conn.exec("SELECT pg_backend_pid()").get<int32_t>(0, 0) == pid);
  CHECK(conn.id() >= 1);
  std::atomic<bool> cancelled{false};
  std::thread watchdog([&] {
    std::this_thread::sleep_for(200ms);
    conn.cancel();  // from another thread, while the owner waits in the statement
    cancelled = true;
  });
  auto start = std::chrono::steady_clock::now();
  Error e = EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.exec("SELECT pg_sleep(10)"));
  watchdog.join();
  CHECK(e.sqlstate() == "57014" && cancelled);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(conn.exec("SELECT 1").get<int>(0, 0) == 1);
  // A token works the same; nothing running: ignored.
  pgpool::CancelToken token = conn.cancel_token();
  std::thread t2([token] {
    std::this_thread::sleep_for(200ms);
    token.cancel();
  });
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, conn.execute("SELECT pg_sleep(10)"));
  t2.join();
  CHECK(e.sqlstate() == "57014");
  conn.cancel();
  CHECK(conn.exec("SELECT 2").get<int>(0, 0) == 2);
  // The query timeout of this lease.
  conn.set_query_timeout(100ms);
  e = EXPECT_ERROR(PGPOOL_ERR_TIMEOUT, conn.exec("SELECT pg_sleep(5)"));
  CHECK(e.sqlstate() == "57014");
  CHECK(conn.exec("SELECT 3").get<int>(0, 0) == 3);
  conn.set_query_timeout(0ms);
  conn.set_query_timeout(pgpool::default_timeout);
  CHECK(conn.exec("SELECT pg_sleep(0.2)").rows() == 1);
  // A token that outlives its lease is refused, never used on another connection.
  pgpool::CancelToken stale = [&pool] {
    auto c = pool.acquire();
    return c.cancel_token();
  }();
  EXPECT_ERROR(PGPOOL_ERR_INVALID_HANDLE, stale.cancel());
}

static void pool_and_leases(const std::string &url) {
  section("Pool and Conn leases");
  pgpool::Pool pool(url, pgpool::Config().max_size(2).application_name("hpp-leases"));
  CHECK(static_cast<bool>(pool) && pool.get() != nullptr);
  auto a = pool.acquire();
  auto b = pool.acquire(5s);
  CHECK(a && b && a.backend_pid() != b.backend_pid());
  EXPECT_ERROR(PGPOOL_ERR_WOULD_BLOCK, pool.acquire(0ms));
  auto start = std::chrono::steady_clock::now();
  Error e = EXPECT_ERROR(PGPOOL_ERR_TIMEOUT, pool.acquire(50ms));
  CHECK(std::chrono::steady_clock::now() - start >= 40ms && !e.message().empty());
  CHECK(!pool.try_acquire().has_value());
  pgpool::Stats s = pool.stats();
  CHECK(s.max_size == 2 && s.in_use == 2 && s.acquire_timeouts >= 1);
  // Moving a lease moves ownership; the moved-from Conn is empty and refuses use.
  pgpool::Conn moved = std::move(a);
  CHECK(!a && moved);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, a.exec("SELECT 1"));
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, a.backend_pid());
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, a.release());
  CHECK(pool.stats().in_use == 2);
  // Move-assigning over a lease gives the old one back.
  moved = std::move(b);
  CHECK(pool.stats().in_use == 1 && !b);
  {
    auto c = pool.try_acquire();
    CHECK(c.has_value() && c->exec("SELECT 1").get<int>(0, 0) == 1);
  }
  CHECK(pool.stats().in_use == 1);
  moved.release();
  CHECK(!moved && pool.stats().in_use == 0);
  // Session state: discard closes instead of returning.
  uint64_t discarded = pool.stats().closed_discarded;
  {
    auto c = pool.acquire();
    c.batch("SET search_path TO pg_catalog");
    c.discard();
    EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, c.discard());
  }
  CHECK(pool.stats().closed_discarded == discarded + 1);
  // A lease released with a transaction open is rolled back before reuse.
  {
    auto c = pool.acquire();
    c.begin();
  }
  {
    auto c = pool.acquire();
    CHECK(c.transaction_status() == pgpool::TxStatus::idle);
  }
  // Health.
  pgpool::Health h = pool.health();
  CHECK(h.ok && !h.error && !h.database.empty() && !h.server_time.empty() && h.open >= 1);
  CHECK(h.latency.count() > 0);
  CHECK(h.state == pgpool::HealthState::healthy && pgpool::to_string(h.state) == "healthy");
  CHECK(!h.server_version.empty() && h.consecutive_connect_failures == 0 && h.in_use == 0);
  {
    auto held = pool.acquire();
    CHECK(pool.health().in_use == 1);
  }
  s = pool.stats();
  CHECK(pgpool::health_state(s) == pgpool::HealthState::healthy && s.health == PGPOOL_HEALTHY);
  CHECK(s.consecutive_connect_failures == 0 && s.since_connect_success_ms >= 0 &&
        s.since_connect_failure_ms == -1 && s.closed_reclaimed == 0 && s.leaks_suspected == 0);
  CHECK(s.connectors <= 2 && s.size == sizeof(pgpool::Stats));
  // Several threads share one Pool.
  std::vector<std::thread> threads;
  std::atomic<int> sum{0};
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&pool, &sum, t] {
      try {
        for (int i = 0; i < 25; i++) {
          {
            auto c = pool.acquire(10s);
            sum += c.exec("SELECT $1::int4", t).get<int>(0, 0);
          }
          sum += pool.exec("SELECT 1").get<int>(0, 0);
        }
      } catch (const Error &e) {
        std::fprintf(stderr, "FAILED: thread %d: %s\n", t, e.what());
        std::exit(1);
      }
    });
  for (auto &t : threads) t.join();
  CHECK(sum == 25 * (0 + 1 + 2 + 3) + 100);
  // Pools move; a lease outlives its pool.
  pgpool::Pool other = std::move(pool);
  CHECK(!pool && other);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, pool.stats());
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, pool.acquire());
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, pool.health());
  auto held = other.acquire();
  // Close: waits for the lease, times out while it is held, and takes it back then.
  EXPECT_ERROR(PGPOOL_ERR_TIMEOUT, other.close(50ms));
  EXPECT_ERROR(PGPOOL_ERR_CLOSED, other.acquire());
  EXPECT_ERROR(PGPOOL_ERR_CLOSED, other.exec("SELECT 1"));
  pgpool::Health closed = other.health();
  CHECK(!closed.ok && closed.error.has_value() && closed.error->code() == PGPOOL_ERR_CLOSED);
  Error reclaimed = EXPECT_ERROR(PGPOOL_ERR_BROKEN, held.exec("SELECT 1"));
  CHECK(reclaimed.message().find("reclaimed") != std::string::npos);
  held.release();
  CHECK(other.stats().closed_reclaimed == 1);
  // Freeing a pool (not closing it with a deadline) leaves a lease usable until released.
  pgpool::Pool freed(url, pgpool::Config().max_size(1));
  auto kept = freed.acquire();
  {
    pgpool::Pool gone = std::move(freed);
  }  // freed while `kept` is out
  CHECK(kept.exec("SELECT 2").get<int>(0, 0) == 2);
  kept.release();
  // A pool that cannot connect.
  pgpool::Pool bad("postgres://nobody@127.0.0.1:1/none",
                   pgpool::Config().min_idle(1).acquire_timeout(200ms).connect_timeout(100ms));
  e = EXPECT_ERROR(PGPOOL_ERR_TIMEOUT, bad.wait_ready(300ms));
  pgpool::Health unhealthy = bad.health();
  CHECK(!unhealthy.ok && unhealthy.error.has_value() && unhealthy.database.empty());
  bad.close();
}

static std::atomic<int> log_records{0};

static void count_log(int32_t level, const char *message, void *user) noexcept {
  (void)level;
  (void)message;
  static_cast<std::atomic<int> *>(user)->fetch_add(1);
}

static void logging(const std::string &url) {
  section("log callback");
  pgpool::set_log_callback(count_log, &log_records, 5);
  {
    pgpool::Pool pool(url, pgpool::Config().max_size(1));
    pool.exec("SELECT 1");
  }
  pgpool::set_log_callback(nullptr, nullptr, 0);
  CHECK(log_records.load() > 0);
}

// Reliability: leak reports naming the call site, reclaim after max_checkout, the breaker,
// a bounded close reclaiming a running statement, transaction_retry.

static std::mutex log_lock;
static std::vector<std::string> warnings;

static void keep_warnings(int32_t level, const char *message, void *) noexcept {
  if (level > PGPOOL_LOG_WARN) return;
  try {
    std::lock_guard<std::mutex> g(log_lock);
    warnings.emplace_back(message);
  } catch (...) {
  }
}

// The first warning containing both `what` and `site`, waiting up to 5 s for it.
static std::string warning_with(const std::string &what, const std::string &site) {
  for (int i = 0; i < 500; i++) {
    {
      std::lock_guard<std::mutex> g(log_lock);
      for (const auto &w : warnings)
        if (w.find(what) != std::string::npos && w.find(site) != std::string::npos) return w;
    }
    std::this_thread::sleep_for(10ms);
  }
  return std::string();
}

static std::string here(int line) { return "hpp_test.cpp:" + std::to_string(line); }

template <typename F>
static bool eventually(F f) {
  for (int i = 0; i < 500; i++) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

static double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

static void leaks_and_reclaim(const std::string &url) {
  section("leak reports and reclaim");
  pgpool::set_log_callback(keep_warnings, nullptr, PGPOOL_LOG_WARN);
  {
    pgpool::Pool pool(url, pgpool::Config()
                               .max_size(1)
                               .leak_threshold(50ms)
                               .reaper_interval(20ms)
                               .application_name("hpp-leaks"));
    // A lease held past leak_threshold: reported once, naming this line.
    int line = __LINE__ + 1;
    auto leased = PGPOOL_LEASE(pool);
    CHECK(eventually([&] { return pool.stats().leaks_suspected == 1; }));
    std::string w = warning_with("possible leak", here(line));
    CHECK(!w.empty());
    // A timed-out acquire names the longest-held lease and where it was acquired.
    Error e = EXPECT_ERROR(PGPOOL_ERR_TIMEOUT, pool.acquire(30ms));
    CHECK(e.message().find("acquired at ") != std::string::npos &&
          e.message().find(here(line)) != std::string::npos);
    leased.release();
    // acquire_at with a label of one's own, and with a timeout.
    auto labelled = pool.acquire_at("report job", 5s);
    CHECK(eventually([&] { return pool.stats().leaks_suspected == 2; }));
    CHECK(!warning_with("possible leak", "acquired at report job").empty());
    labelled.release();
    line = __LINE__ + 1;
    auto plain = pool.acquire();
    CHECK(eventually([&] { return pool.stats().leaks_suspected == 3; }));
#if PGPOOL_HPP_SOURCE_LOCATION
    // C++20: a plain acquire() records its caller.
    CHECK(!warning_with("possible leak", here(line)).empty());
    std::printf("call sites: std::source_location\n");
#else
    CHECK(!warning_with("possible leak", "acquired at").empty());
    std::printf("call sites: acquire_at and PGPOOL_LEASE only\n");
#endif
    plain.release();
  }
  {
    // Without leak_threshold or max_checkout nothing is recorded, and nothing reported.
    pgpool::Pool pool(url, pgpool::Config().max_size(1).reaper_interval(20ms));
    auto c = pool.acquire();
    std::this_thread::sleep_for(100ms);
    CHECK(pool.stats().leaks_suspected == 0);
  }
  {
    // A lease held past max_checkout is taken back: its slot serves another caller, its next
    // call throws BROKEN, "reclaimed".
    pgpool::Pool pool(url, pgpool::Config()
                               .max_size(1)
                               .max_checkout(300ms)
                               .reaper_interval(20ms)
                               .application_name("hpp-reclaim"));
    int line = __LINE__ + 1;
    auto stuck = PGPOOL_LEASE(pool);
    CHECK(stuck.exec("SELECT 1").get<int>(0, 0) == 1);
    auto start = std::chrono::steady_clock::now();
    auto other = pool.acquire(5s);  // waits for the reclaim
    const double waited = ms_since(start);
    CHECK(other.exec("SELECT 2").get<int>(0, 0) == 2 && waited < 3000);
    Error e = EXPECT_ERROR(PGPOOL_ERR_BROKEN, stuck.exec("SELECT 1"));
    CHECK(e.message().find("reclaimed") != std::string::npos);
    CHECK(!warning_with("reclaimed", here(line)).empty());
    stuck.release();
    other.release();
    CHECK(pool.stats().closed_reclaimed == 1);
    // A lease stuck in a statement is reclaimed too, the statement cut short.
    Error in_statement(PGPOOL_OK, static_cast<const pgpool_error *>(nullptr));
    double took = 0;
    std::thread holder([&] {
      auto c = pool.acquire();
      auto t = std::chrono::steady_clock::now();
      try {
        c.exec("SELECT pg_sleep(20)");
      } catch (const Error &err) {
        in_statement = err;
      }
      took = ms_since(t);
    });
    holder.join();
    CHECK(in_statement.code() == PGPOOL_ERR_BROKEN && took < 3000);
    CHECK(in_statement.message().find("reclaimed") != std::string::npos);
    CHECK(pool.stats().closed_reclaimed == 2 && pool.exec("SELECT 3").get<int>(0, 0) == 3);
    std::printf("measured: C++ lease reclaimed after %.0f ms in a statement, a waiter served "
                "after %.0f ms (max_checkout 300 ms)\n",
                took, waited);
  }
  pgpool::set_log_callback(nullptr, nullptr, 0);
}

static void breaker() {
  section("breaker");
  pgpool::Pool pool("postgres://nobody@127.0.0.1:1/none", pgpool::Config()
                                                              .breaker_threshold(3)
                                                              .acquire_timeout(10s)
                                                              .connect_timeout(2s));
  auto start = std::chrono::steady_clock::now();
  Error e = EXPECT_ERROR(PGPOOL_ERR_CONNECT, pool.acquire());
  const double took = ms_since(start);
  CHECK(e.message().find("database unavailable") != std::string::npos && took < 2000);
  pgpool::Stats s = pool.stats();
  CHECK(s.health == PGPOOL_DOWN && pgpool::health_state(s) == pgpool::HealthState::down);
  CHECK(s.consecutive_connect_failures >= 3 && s.connect_errors >= 3);
  CHECK(s.since_connect_failure_ms >= 0 && s.since_connect_success_ms == -1);
  // Down: every way in fails at once with the cause.
  start = std::chrono::steady_clock::now();
  EXPECT_ERROR(PGPOOL_ERR_CONNECT, pool.acquire_at("breaker test"));
  EXPECT_ERROR(PGPOOL_ERR_CONNECT, pool.try_acquire());
  EXPECT_ERROR(PGPOOL_ERR_CONNECT, pool.exec("SELECT 1"));
  EXPECT_ERROR(PGPOOL_ERR_CONNECT, pool.transaction_retry(3, [](pgpool::Conn &) {}));
  CHECK(ms_since(start) < 8000);
  pgpool::Health h = pool.health();
  CHECK(!h.ok && h.state == pgpool::HealthState::down && pgpool::to_string(h.state) == "down");
  CHECK(h.error.has_value() && h.error->code() == PGPOOL_ERR_CONNECT);
  CHECK(h.consecutive_connect_failures >= 3 && h.server_version.empty());
  // Switched off, the same pool waits out its timeout instead.
  pgpool::Pool patient("postgres://nobody@127.0.0.1:1/none", pgpool::Config()
                                                                 .breaker_threshold(0)
                                                                 .acquire_timeout(300ms)
                                                                 .connect_timeout(100ms));
  start = std::chrono::steady_clock::now();
  EXPECT_ERROR(PGPOOL_ERR_TIMEOUT, patient.acquire());
  CHECK(ms_since(start) >= 250);
  CHECK(pgpool::health_state(patient.stats()) != pgpool::HealthState::down);
  std::printf("measured: C++ acquire against a refusing server failed after %.0f ms "
              "(timeout 10 s)\n",
              took);
}

static void bounded_close(const std::string &url) {
  section("bounded close");
  pgpool::Pool pool(url, pgpool::Config().max_size(2));
  std::atomic<bool> running{false};
  Error in_statement(PGPOOL_OK, static_cast<const pgpool_error *>(nullptr));
  std::thread holder([&] {
    auto c = pool.acquire();
    running = true;
    try {
      c.exec("SELECT pg_sleep(20)");
    } catch (const Error &err) {
      in_statement = err;
    }
  });
  CHECK(eventually([&] { return running.load(); }));
  std::this_thread::sleep_for(100ms);
  auto start = std::chrono::steady_clock::now();
  Error e = EXPECT_ERROR(PGPOOL_ERR_TIMEOUT, pool.close(300ms));
  const double took = ms_since(start);
  CHECK(e.message().find("reclaimed") != std::string::npos && took < 1000);
  holder.join();
  CHECK(in_statement.code() == PGPOOL_ERR_BROKEN);
  CHECK(pool.stats().closed_reclaimed == 1 && pool.stats().in_use == 0);
  EXPECT_ERROR(PGPOOL_ERR_CLOSED, pool.acquire());
  // A zero timeout reclaims nothing.
  pgpool::Pool other(url, pgpool::Config().max_size(1));
  auto kept = other.acquire();
  EXPECT_ERROR(PGPOOL_ERR_WOULD_BLOCK, other.close(0ms));
  CHECK(kept.exec("SELECT 1").get<int>(0, 0) == 1);
  kept.release();
  CHECK(other.stats().closed_reclaimed == 0);
  std::printf("measured: C++ close(300 ms) with a statement running returned after %.0f ms\n",
              took);
}

// Two threads meet here once (C++17 has no std::barrier); false after 10 s alone.
class Meet {
 public:
  bool arrive() {
    std::unique_lock<std::mutex> l(m_);
    if (++n_ >= 2) {
      cv_.notify_all();
      return true;
    }
    return cv_.wait_for(l, 10s, [this] { return n_ >= 2; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int n_ = 0;
};

static void transaction_retry(const std::string &url) {
  section("transaction_retry");
  pgpool::Pool pool(url, pgpool::Config().max_size(4));
  const std::string table = "hpp_retry_" + std::to_string(getpid());
  pool.acquire().batch("DROP TABLE IF EXISTS " + table + "; CREATE TABLE " + table + " (who int)");
  // Write skew under SERIALIZABLE: both read the count and insert; with both first attempts
  // overlapping one commit fails with 40001, and its retry commits.
  Meet meet;
  std::atomic<bool> met{true};
  int runs[2] = {0, 0}, got[2] = {0, 0};
  std::string failure[2];
  auto worker = [&](int who) {
    try {
      got[who] = pool.transaction_retry(5, [&](pgpool::Conn &c) {
        runs[who]++;
        c.batch("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
        c.exec("SELECT count(*) FROM " + table);
        c.execute("INSERT INTO " + table + " VALUES ($1)", who);
        if (runs[who] == 1 && !meet.arrive()) met = false;
        return who + 10;
      });
    } catch (const std::exception &e) {
      failure[who] = e.what();
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  if (!failure[0].empty() || !failure[1].empty())
    std::fprintf(stderr, "retry failures: '%s' '%s'\n", failure[0].c_str(), failure[1].c_str());
  CHECK(met && failure[0].empty() && failure[1].empty());
  CHECK(got[0] == 10 && got[1] == 11 && runs[0] + runs[1] == 3);
  CHECK(pool.exec("SELECT count(*) FROM " + table).get<int64_t>(0, 0) == 2);
  std::printf("transaction_retry: attempts %d and %d\n", runs[0], runs[1]);

  // A statement failing with 40001 inside f is retried, f's Error rethrown when the attempts
  // run out; a success on a later attempt commits once.
  int n = 0;
  const std::string fail_40001 = "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$";
  Error e = EXPECT_ERROR(PGPOOL_ERR_SERVER, pool.transaction_retry(3, [&](pgpool::Conn &c) {
    n++;
    c.execute("INSERT INTO " + table + " VALUES (100)");
    c.batch(fail_40001);
  }));
  CHECK(e.sqlstate() == "40001" && n == 3);
  n = 0;
  std::string v = pool.transaction_retry(3, [&](pgpool::Conn &c) {
    n++;
    c.execute("INSERT INTO " + table + " VALUES (200)");
    if (n == 1) c.batch(fail_40001);
    return std::string("done");
  });
  CHECK(v == "done" && n == 2);
  // A 40P01 too; void callbacks; 0 attempts count as 1.
  n = 0;
  pool.transaction_retry(2, [&](pgpool::Conn &c) {
    if (++n == 1) c.batch("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$");
  });
  CHECK(n == 2);
  n = 0;
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, pool.transaction_retry(0, [&](pgpool::Conn &c) {
    n++;
    c.batch(fail_40001);
  }));
  CHECK(n == 1 && e.sqlstate() == "40001");
  // Not retried: a database error that is not a conflict, an exception of f's own (even one
  // thrown after swallowing a conflict), a failed statement swallowed by f with another cause.
  n = 0;
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, pool.transaction_retry(5, [&](pgpool::Conn &c) {
    n++;
    c.execute("INSERT INTO no_such_table_here VALUES (1)");
  }));
  CHECK(e.sqlstate() == "42P01" && n == 1);
  n = 0;
  bool caught = false;
  try {
    pool.transaction_retry(5, [&](pgpool::Conn &c) -> int {
      n++;
      c.execute("INSERT INTO " + table + " VALUES (300)");
      throw Boom();
    });
  } catch (const Boom &) {
    caught = true;
  }
  CHECK(caught && n == 1);
  n = 0;
  caught = false;
  try {
    pool.transaction_retry(5, [&](pgpool::Conn &c) {
      n++;
      try {
        c.batch(fail_40001);
      } catch (const Error &) {
      }
      throw Boom();
    });
  } catch (const Boom &) {
    caught = true;
  }
  CHECK(caught && n == 1);
  n = 0;
  e = EXPECT_ERROR(PGPOOL_ERR_SERVER, pool.transaction_retry(5, [&](pgpool::Conn &c) {
    n++;
    try {
      c.execute("SELECT 1/0");
    } catch (const Error &) {
    }
  }));
  CHECK(e.sqlstate() == "25P02" && n == 1);
  // A conflict swallowed by f still dooms the COMMIT, and the library retries that.
  n = 0;
  pool.transaction_retry(3, [&](pgpool::Conn &c) {
    if (++n > 1) return;
    try {
      c.batch(fail_40001);
    } catch (const Error &) {
    }
  });
  CHECK(n == 2);
  // Nothing of the failed attempts was committed: 2 writers + one row of 200.
  CHECK(pool.exec("SELECT count(*) FROM " + table).get<int64_t>(0, 0) == 3);
  CHECK(pool.stats().in_use == 0);
  pool.execute("DROP TABLE " + table);
  // An empty Pool.
  pgpool::Pool gone = std::move(pool);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, pool.transaction_retry(1, [](pgpool::Conn &) {}));
}

static void observability(const std::string &url) {
  section("histograms, metrics, health JSON");
  using namespace std::chrono_literals;
  pgpool::Pool pool(url, pgpool::Config()
                             .max_size(1)
                             .name("hpp")
                             .degraded_waiters(0)
                             .health_timeout(300ms)
                             .slow_query_threshold(1s)
                             .max_replica_lag(5s) // a primary: never measured
                             .fallback_lifetime(1min) // no prefer-standby: never used
                             .init_sql("SET search_path TO hpp_init, public")
                             .stats_log_interval(1min));
  CHECK(pool.exec("SHOW search_path").get<std::string>(0, 0) == "hpp_init, public");
  for (int i = 0; i < 4; i++) pool.acquire().exec("SELECT 1");
  pool.acquire().exec("SELECT pg_sleep(0.02)");
  pgpool::Stats s = pool.stats();
  CHECK(s.query_time.count == 6 && s.hold_time.count == 6 && s.acquire_wait.count == s.acquires);
  CHECK(s.query_time.max_us >= 20000 && s.query_time.p50_us <= s.query_time.p99_us);
  CHECK(s.connect_time.count == s.connections_created);
  std::string text = pool.metrics();
  CHECK(text.find("pgpool_query_duration_seconds_count{pool=\"hpp\"} 6\n") != std::string::npos);
  CHECK(s.closed_replica_lag == 0 &&
        text.find("pgpool_connections_closed_total{pool=\"hpp\",reason=\"replica_lag\"} 0\n") !=
            std::string::npos);
  std::string json = pool.health_json();
  CHECK(json.rfind("{\"ok\":true,\"pool\":\"hpp\",\"state\":\"healthy\"", 0) == 0);
  {
    auto held = pool.acquire();
    std::thread waiter([&] { pool.acquire(); });
    for (int i = 0; i < 300 && pool.stats().waiting == 0; i++)
      std::this_thread::sleep_for(10ms);
    pgpool::Health h = pool.health();
    CHECK(h.state == pgpool::HealthState::degraded && h.max_size == 1 && !h.reasons.empty());
    CHECK(h.reasons[0].find("callers waiting") != std::string::npos);
    held.release();
    waiter.join();
  }
  pgpool::Health primary = pool.health(); // the test server is no standby
  CHECK(primary.ok && primary.in_recovery == std::optional<bool>(false) && !primary.replica_lag);
  pgpool::Pool quiet(url, pgpool::Config().histograms(false));
  quiet.acquire().exec("SELECT 1");
  CHECK(quiet.stats().query_time.count == 0);
  EXPECT_ERROR(PGPOOL_ERR_CONFIG, pgpool::Pool(url, pgpool::Config().name("no spaces")));
  pgpool::Pool gone = std::move(quiet);
  EXPECT_ERROR(PGPOOL_ERR_NULL_ARGUMENT, quiet.metrics());
}

// Named pools: a Registry from TOML, get() by name (a Pool of the caller's own that outlives
// the Registry), close_all() reclaiming a held lease at the deadline.
static void registry(const std::string &url) {
  EXPECT_ERROR(PGPOOL_ERR_CONFIG, pgpool::Registry::from_toml("[pools.a]\nmax_size = 2\n"));
  EXPECT_ERROR(PGPOOL_ERR_CONFIG, pgpool::Registry::from_file("/nonexistent/pools.toml"));
  auto reg = pgpool::Registry::from_toml(
      "[defaults]\napplication_name = \"hpp-registry\"\n[pools.main]\nurl = \"" + url +
      "\"\nmax_size = 2\nmin_idle = 1\n[pools.other]\nurl = \"" + url + "\"\n");
  reg.open_all(std::chrono::milliseconds{10000});
  CHECK((reg.names() == std::vector<std::string>{"main", "other"}));
  CHECK(reg.metrics().find("pgpool_max_connections{pool=\"main\"} 2\n") != std::string::npos);
  CHECK(reg.health_json().rfind("{\"ok\":true,\"state\":\"healthy\",\"pools\":[", 0) == 0);
  pgpool::Pool main = reg.get("main");
  CHECK(main.stats().max_size == 2);
  CHECK(main.exec("SELECT 5").get<int64_t>(0, 0) == 5);
  pgpool::Error e = EXPECT_ERROR(PGPOOL_ERR_USAGE, reg.get("nope"));
  CHECK(std::string(e.what()).find("main, other") != std::string::npos);
  auto lease = main.acquire();
  CHECK(reg.close_all(std::chrono::milliseconds{200}) == 1);
  lease.release();
  CHECK(reg.close_all() == 0);
  EXPECT_ERROR(PGPOOL_ERR_CLOSED, main.acquire(std::chrono::milliseconds{100}));
  CHECK(pgpool::shutdown_requested() == 0);
  EXPECT_ERROR(PGPOOL_ERR_USAGE, pgpool::request_shutdown());
}

// Events: a handler sees connect / acquire / release / remove with the session's pid; calls
// that wait for a pool throw PGPOOL_ERR_USAGE inside it; its exceptions stay inside; it is
// destroyed with the last config and pool. Then the environment switches.

struct SeenEvent {
  pgpool_event_kind kind;
  uint64_t conn_id;
  int32_t pid;
  std::string pool, reason;
  bool timed;
};

struct EventLog {
  std::mutex m;
  std::vector<SeenEvent> list;
  std::atomic<pgpool::Pool *> target{nullptr};
  std::atomic<int> refused{0};
  std::vector<SeenEvent> copy() {
    std::lock_guard<std::mutex> g(m);
    return list;
  }
};

static void events(const std::string &url) {
  section("events");
  auto log = std::make_shared<EventLog>();
  int32_t first = 0, second = 0;
  {
    pgpool::Config cfg;
    cfg.max_size(1).application_name("hpp-events").on_event([log](const pgpool::Event &e) {
      {
        std::lock_guard<std::mutex> g(log->m);
        log->list.push_back({e.kind(), e.conn_id(), e.backend_pid(), std::string(e.pool()),
                             std::string(e.reason_text()), e.duration().has_value()});
      }
      pgpool::Pool *target = log->target.load();
      if (e.kind() == PGPOOL_EVENT_ACQUIRE && target != nullptr) {
        try {
          (void)target->acquire(1s);
        } catch (const Error &err) {
          if (err.code() == PGPOOL_ERR_USAGE) log->refused++;
        }
        (void)target->stats();  // allowed
      }
      if (e.kind() == PGPOOL_EVENT_RELEASE) throw std::runtime_error("caught by the wrapper");
    });
    CHECK(pgpool_config_set_name(cfg.get(), "hppev", nullptr) == PGPOOL_OK);
    CHECK(log.use_count() == 2);
    pgpool::Pool pool(url, cfg);
    {
      auto c = pool.acquire();
      first = c.backend_pid();
    }
    log->target = &pool;
    {
      auto c = pool.acquire();
      CHECK(c.backend_pid() == first);
      log->target = nullptr;
      c.discard();
    }
    {
      auto c = pool.acquire();
      second = c.backend_pid();
    }
    pool.close();
    CHECK(log->refused.load() == 1);
    // The config can drop its handler; the pool keeps its own.
    cfg.on_event(nullptr);
  }
  auto seen = log->copy();
  std::vector<std::string> kinds;
  for (const auto &e : seen) kinds.push_back(std::to_string(e.kind) + ":" + e.reason);
  const std::vector<std::string> expected = {"1:", "2:", "3:", "2:", "4:discarded",
                                             "1:", "2:", "3:", "4:pool_closed"};
  CHECK(kinds == expected);
  CHECK(seen[0].pid == first && seen[1].pid == first && seen[2].pid == first);
  CHECK(seen[4].pid == first && seen[4].conn_id == 1 && seen[4].timed); // REMOVE: the age
  CHECK(seen[5].pid == second && seen[8].pid == second && seen[5].conn_id == 2);
  CHECK(seen[0].pool == "hppev" && seen[0].timed && seen[1].timed);
  // Config and pool are gone: the library destroyed its copy of the handler.
  for (int i = 0; i < 500 && log.use_count() > 1; i++) std::this_thread::sleep_for(10ms);
  CHECK(log.use_count() == 1);

  section("environment switches");
  CHECK(setenv("PGPOOL_MAX_SIZE", "3", 1) == 0);
  CHECK(pgpool::Pool(url, pgpool::Config()).stats().max_size == 3);
  CHECK(pgpool::Pool(url, pgpool::Config().env(false)).stats().max_size == 10);
  CHECK(unsetenv("PGPOOL_MAX_SIZE") == 0);
  CHECK(setenv("PG_POOL_MAX", "4", 1) == 0);
  CHECK(pgpool::Pool(url, pgpool::Config()).stats().max_size == 10);
  CHECK(pgpool::Pool(url, pgpool::Config().env_aliases(true)).stats().max_size == 4);
  CHECK(pgpool::Pool(url, pgpool::Config().env(false).env_aliases(true)).stats().max_size == 10);
  CHECK(unsetenv("PG_POOL_MAX") == 0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s URL [panic]\n", argv[0]);
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string url = argv[1];
  const bool panic = argc > 2 && std::strcmp(argv[2], "panic") == 0;
  try {
    version_and_errors();
    config(url, panic);
    {
      pgpool::Pool pool(url, pgpool::Config().max_size(3).application_name("hpp-test"));
      auto conn = pool.acquire();
      values(conn);
      timestamps(conn);
      iteration_and_reuse(pool, conn);
      transactions(conn);
      copy(conn);
      notifications(pool, conn);
      cancel_and_timeouts(pool, conn);
      conn.release();
      pool.close();
      CHECK(pool.stats().open == 0);
    }
    pool_and_leases(url);
    leaks_and_reclaim(url);
    breaker();
    bounded_close(url);
    transaction_retry(url);
    observability(url);
    events(url);
    logging(url);
    registry(url);
  } catch (const Error &e) {
    std::fprintf(stderr, "FAILED: unexpected pgpool::Error %s (SQLSTATE '%s')\n", e.what(),
                 e.sqlstate().c_str());
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "FAILED: unexpected exception %s\n", e.what());
    return 1;
  }
  std::printf("HPP OK: %d checks\n", checks);
  return 0;
}
