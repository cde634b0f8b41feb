// C++17 over libpgpool: handles in std::unique_ptr with the library's free functions,
// failures as exceptions carrying the code, SQLSTATE and retry flags.
//
// Usage: raii [URL]; URL defaults to $DATABASE_URL.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pgpool.h"

namespace pg {

// A failed pgpool call.
class Error : public std::runtime_error {
 public:
  Error(pgpool_code code, pgpool_error *err)
      : std::runtime_error(std::string(pgpool_code_name(code)) + ": " + pgpool_error_message(err)),
        code_(code),
        sqlstate_(pgpool_error_sqlstate(err) ? pgpool_error_sqlstate(err) : ""),
        retry_safe_(pgpool_error_retry_safe(err)),
        outcome_unknown_(pgpool_error_outcome_unknown(err)) {}
  pgpool_code code() const { return code_; }
  const std::string &sqlstate() const { return sqlstate_; }
  bool retry_safe() const { return retry_safe_; }
  bool outcome_unknown() const { return outcome_unknown_; }

 private:
  pgpool_code code_;
  std::string sqlstate_;
  bool retry_safe_, outcome_unknown_;
};

// Throws on failure; the detail object is freed either way.
inline void check(pgpool_code rc, pgpool_error *err) {
  std::unique_ptr<pgpool_error, decltype(&pgpool_error_free)> guard(err, pgpool_error_free);
  if (rc != PGPOOL_OK) throw Error(rc, err);
}

// Evaluates the call before reading its detail object (argument order is unspecified).
#define check_call(call, e) \
  do {                      \
    pgpool_code rc_ = call; \
    check(rc_, e);          \
  } while (0)

struct ConnDeleter {
  void operator()(pgpool_conn *c) const { pgpool_conn_release(c, nullptr); }
};
using ConfigPtr = std::unique_ptr<pgpool_config, decltype(&pgpool_config_free)>;
using PoolPtr = std::unique_ptr<pgpool_pool, decltype(&pgpool_pool_free)>;
using ConnPtr = std::unique_ptr<pgpool_conn, ConnDeleter>;
using ResultPtr = std::unique_ptr<pgpool_result, decltype(&pgpool_result_free)>;

class Result {
 public:
  explicit Result(pgpool_result *r) : r_(r, pgpool_result_free) {}
  uint64_t rows() const {
    uint64_t n = 0;
    pgpool_error *e = nullptr;
    check_call(pgpool_result_nrows(r_.get(), &n, &e), e);
    return n;
  }
  std::string text(uint64_t row, uint32_t col) const {
    const char *t = nullptr;
    size_t len = 0;
    bool null = false;
    pgpool_error *e = nullptr;
    check_call(pgpool_result_value(r_.get(), row, col, &t, &len, &null, &e), e);
    return null ? std::string("NULL") : std::string(t, len);
  }
  int64_t int64(uint64_t row, uint32_t col) const {
    int64_t v = 0;
    pgpool_error *e = nullptr;
    check_call(pgpool_result_get_int64(r_.get(), row, col, &v, &e), e);
    return v;
  }

 private:
  ResultPtr r_;
};

class Conn {
 public:
  explicit Conn(pgpool_conn *c) : c_(c) {}
  Result query(const std::string &sql, const std::vector<const char *> &params = {}) {
    pgpool_result *r = nullptr;
    pgpool_error *e = nullptr;
    check_call(pgpool_conn_query(c_.get(), sql.c_str(), params.size(), params.data(), &r, &e), e);
    return Result(r);
  }
  uint64_t execute(const std::string &sql, const std::vector<const char *> &params = {}) {
    uint64_t n = 0;
    pgpool_error *e = nullptr;
    check_call(pgpool_conn_execute(c_.get(), sql.c_str(), params.size(), params.data(), &n, &e), e);
    return n;
  }
  // Runs f in a transaction: commit on return, rollback on exception.
  template <typename F>
  void transaction(F f) {
    pgpool_error *e = nullptr;
    check_call(pgpool_conn_begin(c_.get(), &e), e);
    try {
      f(*this);
    } catch (...) {
      pgpool_conn_rollback(c_.get(), nullptr);
      throw;
    }
    check_call(pgpool_conn_commit(c_.get(), &e), e);
  }

 private:
  ConnPtr c_;  // released to the pool by the destructor
};

class Pool {
 public:
  Pool(const std::string &url, uint32_t max_size) : p_(nullptr, pgpool_pool_free) {
    pgpool_config *raw = nullptr;
    pgpool_error *e = nullptr;
    check_call(pgpool_config_new(&raw, &e), e);
    ConfigPtr cfg(raw, pgpool_config_free);
    check_call(pgpool_config_set_max_size(cfg.get(), max_size, &e), e);
    check_call(pgpool_config_set_application_name(cfg.get(), "pgpool-cpp-example", &e), e);
    pgpool_pool *pool = nullptr;
    check_call(pgpool_pool_create(url.c_str(), cfg.get(), &pool, &e), e);
    p_.reset(pool);
  }
  Conn acquire(int64_t timeout_ms = -1) {
    pgpool_conn *c = nullptr;
    pgpool_error *e = nullptr;
    check_call(pgpool_pool_acquire(p_.get(), timeout_ms, &c, &e), e);
    return Conn(c);
  }
  pgpool_stats stats() {
    pgpool_stats s{};
    s.size = sizeof s;
    pgpool_error *e = nullptr;
    check_call(pgpool_pool_stats(p_.get(), &s, &e), e);
    return s;
  }

 private:
  PoolPtr p_;
};

}  // namespace pg

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : std::getenv("DATABASE_URL");
  if (url == nullptr) {
    std::cerr << "usage: " << argv[0] << " URL (or set DATABASE_URL)\n";
    return 2;
  }
  try {
    // README:BEGIN cpp
    pg::Pool pool(url, 4);
    {
      auto conn = pool.acquire();
      conn.execute("DROP TABLE IF EXISTS cpp_events");
      conn.execute("CREATE TABLE cpp_events (id serial PRIMARY KEY, worker int, note text)");
    }
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; w++) {
      workers.emplace_back([&pool, w] {
        for (int i = 0; i < 25; i++) {
          auto conn = pool.acquire(5000);
          std::string worker = std::to_string(w), note = "event " + std::to_string(i);
          conn.transaction([&](pg::Conn &tx) {
            tx.execute("INSERT INTO cpp_events (worker, note) VALUES ($1, $2)",
                       {worker.c_str(), note.c_str()});
          });
        }
      });
    }
    for (auto &t : workers) t.join();
    auto conn = pool.acquire();
    auto res = conn.query("SELECT count(*), count(DISTINCT worker) FROM cpp_events");
    std::cout << "events " << res.int64(0, 0) << " from " << res.int64(0, 1) << " workers\n";
    // A failing transaction rolls back and surfaces as an exception with the SQLSTATE.
    try {
      conn.transaction([](pg::Conn &tx) {
        tx.execute("INSERT INTO cpp_events (worker, note) VALUES (99, 'lost')");
        tx.execute("INSERT INTO cpp_events (id, worker) VALUES (1, 0)");  // duplicate key
      });
    } catch (const pg::Error &e) {
      std::cout << "rolled back (" << e.what() << "): SQLSTATE " << e.sqlstate() << ", retry safe "
                << (e.retry_safe() ? "yes" : "no") << "\n";
    }
    std::cout << "after rollback: " << conn.query("SELECT count(*) FROM cpp_events").text(0, 0)
              << " events\n";
    // README:END cpp
    conn.execute("DROP TABLE cpp_events");
    auto s = pool.stats();
    std::cout << "stats: acquires " << s.acquires << ", open " << s.open << ", created "
              << s.connections_created << "\n";
  } catch (const pg::Error &e) {
    std::cerr << "pgpool error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
