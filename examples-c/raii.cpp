// C++17 over libpgpool through pgpool.hpp, the header-only wrapper shipped beside pgpool.h:
// move-only RAII handles, failures as pgpool::Error exceptions carrying the code, SQLSTATE and
// retry flags, typed parameters and getters, transactions that roll back on an exception and
// retry what is safe to retry, leases named by their call site.
//
// Usage: raii [URL]; URL defaults to $DATABASE_URL.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "pgpool.hpp"

using namespace std::chrono_literals;

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : std::getenv("DATABASE_URL");
  if (url == nullptr) {
    std::cerr << "usage: " << argv[0] << " URL (or set DATABASE_URL)\n";
    return 2;
  }
  try {
    // README:BEGIN cpp
    // A lease held over 10 s is logged with the line that took it (PGPOOL_LEASE); one held
    // over a minute is taken back; after 3 failed connects in a row acquires fail at once.
    pgpool::Pool pool(url, pgpool::Config()
                               .max_size(4)
                               .application_name("pgpool-cpp-example")
                               .leak_threshold(10s)
                               .max_checkout(1min)
                               .breaker_threshold(3));
    {
      auto conn = PGPOOL_LEASE(pool);
      conn.execute("DROP TABLE IF EXISTS cpp_events");
      conn.execute("CREATE TABLE cpp_events (id serial PRIMARY KEY, worker int, note text)");
    }
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; w++) {
      workers.emplace_back([&pool, w] {
        for (int i = 0; i < 25; i++) {
          // A transaction on a connection of its own, run again (on a fresh one) after a
          // serialization failure or deadlock, never after an unknown outcome.
          pool.transaction_retry(3, [&](pgpool::Conn &tx) {
            tx.execute("INSERT INTO cpp_events (worker, note) VALUES ($1, $2)", w,
                       "event " + std::to_string(i));
          }, 5s);
        }
      });
    }
    for (auto &t : workers) t.join();
    auto conn = pool.acquire();
    auto res = conn.exec("SELECT count(*), count(DISTINCT worker) FROM cpp_events");
    std::cout << "events " << res.get<int64_t>(0, 0) << " from " << res.get<int64_t>(0, 1)
              << " workers\n";
    // A failing transaction rolls back and surfaces as an exception with the SQLSTATE.
    try {
      pgpool::Transaction tx(conn);
      conn.execute("INSERT INTO cpp_events (worker, note) VALUES (99, 'lost')");
      conn.execute("INSERT INTO cpp_events (id, worker) VALUES (1, 0)");  // duplicate key
      tx.commit();
    } catch (const pgpool::Error &e) {
      std::cout << "rolled back (" << e.what() << "): SQLSTATE " << e.sqlstate() << ", retry safe "
                << (e.retry_safe() ? "yes" : "no") << "\n";
    }
    std::cout << "after rollback: "
              << conn.exec("SELECT count(*) FROM cpp_events").get<int64_t>(0, 0) << " events\n";
    // README:END cpp
    conn.execute("DROP TABLE cpp_events");
    conn.release();
    auto s = pool.stats();
    std::cout << "stats: acquires " << s.acquires << ", open " << s.open << ", created "
              << s.connections_created << "\n";
    // README:BEGIN cpp-ops
    // Latency histograms, Prometheus text for /metrics, the health check as JSON.
    std::cout << "hold time p99 " << s.hold_time.p99_us << " us over " << s.hold_time.count
              << " leases\n";
    std::string metrics = pool.metrics();
    std::cout << "metrics: " << metrics.size() << " bytes\n";
    pgpool::Health h = pool.health();
    std::cout << "health: " << pgpool::to_string(h.state) << ", " << h.reasons.size()
              << " reasons; " << pool.health_json().substr(0, 10) << "...\n";
    // README:END cpp-ops
  } catch (const pgpool::Error &e) {
    std::cerr << "pgpool error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
