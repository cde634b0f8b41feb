/* N pthread workers share one pgpool pool and run parameterised queries in transactions
 * (a toy bank: transfers between accounts), then the pool's stats are printed.
 *
 * Usage: workers [URL] [workers] [transfers per worker]; URL defaults to $DATABASE_URL. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgpool.h"

static pgpool_pool *pool;
static int transfers = 200;

/* Prints the failure and frees the detail object. */
static int report(const char *what, int rc, pgpool_error *err) {
  if (rc != PGPOOL_OK) {
    const char *state = pgpool_error_sqlstate(err);
    fprintf(stderr, "%s failed: [%s] %s%s%s\n", what, pgpool_code_name(rc),
            pgpool_error_message(err), state ? " SQLSTATE " : "", state ? state : "");
  }
  pgpool_error_free(err);
  return rc;
}

/* README:BEGIN c */
/* One transfer in a transaction; returns a pgpool_code. */
static int transfer(pgpool_conn *conn, int from, int to, int amount) {
  char a[16], f[16], t[16];
  snprintf(a, sizeof a, "%d", amount);
  snprintf(f, sizeof f, "%d", from);
  snprintf(t, sizeof t, "%d", to);
  const char *debit[] = {a, f};
  const char *credit[] = {a, t};
  pgpool_error *err = NULL;
  uint64_t rows = 0;
  /* Lock rows in id order so concurrent transfers cannot deadlock. */
  const char *sql_debit = "UPDATE c_accounts SET balance = balance - $1 WHERE id = $2";
  const char *sql_credit = "UPDATE c_accounts SET balance = balance + $1 WHERE id = $2";
  int debit_first = from < to;
  int rc = pgpool_conn_begin(conn, &err);
  if (rc == PGPOOL_OK)
    rc = pgpool_conn_execute(conn, debit_first ? sql_debit : sql_credit, 2,
                             debit_first ? debit : credit, &rows, &err);
  if (rc == PGPOOL_OK)
    rc = pgpool_conn_execute(conn, debit_first ? sql_credit : sql_debit, 2,
                             debit_first ? credit : debit, &rows, &err);
  if (rc == PGPOOL_OK) rc = pgpool_conn_commit(conn, &err);
  if (rc != PGPOOL_OK) {
    report("transfer", rc, err);
    pgpool_conn_rollback(conn, NULL);
    return rc;
  }
  return PGPOOL_OK;
}

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < transfers; i++) {
    pgpool_conn *conn = NULL;
    pgpool_error *err = NULL;
    int rc = pgpool_pool_acquire(pool, 5000, &conn, &err);
    if (report("acquire", rc, err) != PGPOOL_OK) continue;
    int from = (int)(rand_r(&seed) % 10) + 1, to = from % 10 + 1 + (int)(rand_r(&seed) % 9);
    if (to > 10) to -= 10;
    transfer(conn, from, to, (int)(rand_r(&seed) % 50) + 1);
    pgpool_conn_release(conn, NULL);
  }
  return NULL;
}
/* README:END c */

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : getenv("DATABASE_URL");
  int n = argc > 2 ? atoi(argv[2]) : 8;
  if (argc > 3) transfers = atoi(argv[3]);
  if (url == NULL || n < 1) {
    fprintf(stderr, "usage: %s URL [workers] [transfers] (or set DATABASE_URL)\n", argv[0]);
    return 2;
  }
  printf("libpgpool %s (header %s), %d workers x %d transfers\n", pgpool_version(),
         PGPOOL_VERSION_STRING, n, transfers);

  pgpool_config *cfg = NULL;
  pgpool_error *err = NULL;
  if (report("config", pgpool_config_new(&cfg, &err), err)) return 1;
  pgpool_config_set_max_size(cfg, 4, NULL);
  pgpool_config_set_application_name(cfg, "pgpool-c-example", NULL);
  int rc = pgpool_pool_create(url, cfg, &pool, &err);
  pgpool_config_free(cfg);
  if (report("pool create", rc, err)) return 1;

  pgpool_result *res = NULL;
  pgpool_conn *conn = NULL;
  if (report("acquire", pgpool_pool_acquire(pool, 5000, &conn, &err), err)) return 1;
  rc = pgpool_conn_batch(conn,
                         "DROP TABLE IF EXISTS c_accounts; "
                         "CREATE TABLE c_accounts (id int PRIMARY KEY, balance bigint NOT NULL); "
                         "INSERT INTO c_accounts SELECT g, 1000 FROM generate_series(1, 10) g",
                         &err);
  pgpool_conn_release(conn, NULL);
  if (report("setup", rc, err)) return 1;

  pthread_t *threads = calloc((size_t)n, sizeof *threads);
  for (int i = 0; i < n; i++) pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(i + 1));
  for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
  free(threads);

  rc = pgpool_pool_query(pool, "SELECT sum(balance)::int8, count(*) FROM c_accounts", 0, NULL,
                         &res, &err);
  if (report("total", rc, err)) return 1;
  int64_t total = 0, accounts = 0;
  pgpool_result_get_int64(res, 0, 0, &total, NULL);
  pgpool_result_get_int64(res, 0, 1, &accounts, NULL);
  pgpool_result_free(res);
  printf("total balance %lld over %lld accounts (%s)\n", (long long)total, (long long)accounts,
         total == 10000 ? "conserved" : "NOT CONSERVED");

  pgpool_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.size = sizeof stats;
  if (report("stats", pgpool_pool_stats(pool, &stats, &err), err)) return 1;
  printf("stats: max_size %u, open %u, idle %u, acquires %llu, waited %llu (%llu us), "
         "connections created %llu\n",
         stats.max_size, stats.open, stats.idle, (unsigned long long)stats.acquires,
         (unsigned long long)stats.wait_count, (unsigned long long)stats.wait_duration_us,
         (unsigned long long)stats.connections_created);
  if (pgpool_pool_acquire(pool, 5000, &conn, NULL) == PGPOOL_OK) {
    pgpool_conn_batch(conn, "DROP TABLE c_accounts", NULL);
    pgpool_conn_release(conn, NULL);
  }
  report("close", pgpool_pool_close(pool, 5000, &err), err);
  pgpool_pool_free(pool);
  return total == 10000 ? 0 : 1;
}
