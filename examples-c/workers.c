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
struct transfer {
  int from, to, amount;
};

/* The body of one transfer, run by pgpool_conn_transaction between BEGIN and COMMIT:
 * typed parameters, sent in binary; returning nonzero rolls back. */
static int32_t move_money(pgpool_conn *conn, void *arg) {
  const struct transfer *t = arg;
  /* Lock rows in id order so concurrent transfers cannot deadlock. */
  int first = t->from < t->to ? t->from : t->to, second = t->from < t->to ? t->to : t->from;
  int ids[2] = {first, second};
  pgpool_params *params = NULL;
  int32_t rc = pgpool_params_new(&params, NULL);
  for (int i = 0; i < 2 && rc == PGPOOL_OK; i++) {
    int64_t delta = ids[i] == t->from ? -t->amount : t->amount;
    pgpool_params_clear(params, NULL);
    pgpool_params_add_int64(params, delta, NULL);
    pgpool_params_add_int32(params, ids[i], NULL);
    rc = pgpool_conn_exec(conn, "UPDATE c_accounts SET balance = balance + $1 WHERE id = $2",
                          params, NULL, NULL, NULL);
  }
  pgpool_params_free(params);
  return rc;
}

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < transfers; i++) {
    pgpool_conn *conn = NULL;
    pgpool_error *err = NULL;
    int rc = pgpool_pool_acquire(pool, 5000, &conn, &err);
    if (report("acquire", rc, err) != PGPOOL_OK) continue;
    struct transfer t = {(int)(rand_r(&seed) % 10) + 1, 0, (int)(rand_r(&seed) % 50) + 1};
    t.to = t.from % 10 + 1 + (int)(rand_r(&seed) % 9);
    if (t.to > 10) t.to -= 10;
    rc = pgpool_conn_transaction(conn, move_money, &t, NULL, &err);
    report("transfer", rc, err);
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
