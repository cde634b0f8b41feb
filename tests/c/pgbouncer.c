/* The C ABI through PgBouncer in transaction mode: transaction_pooling on, threads running
 * typed parameter queries and short transactions over a pool larger than PgBouncer's.
 * Usage: pgbouncer URL [threads] [iterations per thread] */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

static pgpool_pool *pool;
static int iterations = 100;
static int failures = 0;

static void fail(long id, const char *what, int rc, pgpool_error *e) {
  fprintf(stderr, "thread %ld: %s: rc %d: %s\n", id, what, rc, e ? pgpool_error_message(e) : "");
  __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
}

static void *worker(void *arg) {
  long id = (long)arg;
  pgpool_params *p = NULL;
  pgpool_error *e = NULL;
  if (pgpool_params_new(&p, &e) != PGPOOL_OK) {
    fail(id, "params", -1, e);
    pgpool_error_free(e);
    return NULL;
  }
  for (int i = 0; i < iterations; i++) {
    pgpool_conn *conn = NULL;
    pgpool_result *res = NULL;
    int rc = pgpool_pool_acquire(pool, 30000, &conn, &e);
    if (rc != PGPOOL_OK) {
      fail(id, "acquire", rc, e);
      pgpool_error_free(e);
      e = NULL;
      continue;
    }
    /* A typed statement outside a transaction: PgBouncer may run it on any server. */
    pgpool_params_clear(p, NULL);
    pgpool_params_add_int32(p, (int32_t)id, NULL);
    pgpool_params_add_int64(p, i, NULL);
    pgpool_params_add_text(p, "bouncer", 7, NULL);
    rc = pgpool_conn_exec(conn, "SELECT $1::int4 * 100000 + $2::int8, $3::text || '!'", p, &res,
                          NULL, &e);
    int64_t v = -1;
    const char *text = NULL;
    size_t len = 0;
    if (rc == PGPOOL_OK) rc = pgpool_result_get_int64(res, 0, 0, &v, &e);
    if (rc == PGPOOL_OK) rc = pgpool_result_get_text(res, 0, 1, &text, &len, &e);
    if (rc != PGPOOL_OK || v != id * 100000 + i || len != 8 || memcmp(text, "bouncer!", 8) != 0)
      fail(id, "typed query", rc, e);
    pgpool_error_free(e);
    e = NULL;
    uint64_t rows = 0;
    /* A transaction: both statements on the one server PgBouncer assigned for it. */
    rc = pgpool_conn_execute(conn, "BEGIN", 0, NULL, &rows, &e);
    pgpool_params_clear(p, NULL);
    pgpool_params_add_int32(p, i, NULL);
    if (rc == PGPOOL_OK)
      rc = pgpool_conn_exec(conn, "SELECT set_config('pgpool.t', $1::int4::text, true)", p, &res,
                            NULL, &e);
    if (rc == PGPOOL_OK)
      rc = pgpool_conn_exec(conn, "SELECT current_setting('pgpool.t')::int8 + 1", NULL, &res,
                            NULL, &e);
    int64_t got = -1;
    if (rc == PGPOOL_OK) rc = pgpool_result_get_int64(res, 0, 0, &got, &e);
    if (rc == PGPOOL_OK) rc = pgpool_conn_execute(conn, "COMMIT", 0, NULL, &rows, &e);
    if (rc != PGPOOL_OK || got != i + 1) fail(id, "transaction", rc, e);
    pgpool_error_free(e);
    e = NULL;
    pgpool_result_free(res);
    if (pgpool_conn_release(conn, NULL) != PGPOOL_OK) fail(id, "release", -1, NULL);
  }
  pgpool_params_free(p);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL [threads] [iterations]\n", argv[0]);
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 4;
  if (argc > 3) iterations = atoi(argv[3]);
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 4, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_transaction_pooling(cfg, true, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, "c-pgbouncer", &err));
  EXPECT(PGPOOL_OK, pgpool_pool_create(argv[1], cfg, &pool, &err));
  pgpool_config_free(cfg);
  pthread_t *tids = calloc((size_t)threads, sizeof *tids);
  for (long t = 0; t < threads; t++) pthread_create(&tids[t], NULL, worker, (void *)t);
  for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  free(tids);
  pgpool_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.size = sizeof stats;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &stats, &err));
  CHECK(stats.in_use == 0);
  CHECK(stats.acquires == (uint64_t)threads * (uint64_t)iterations);
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, 5000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  if (failures != 0) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("PGBOUNCER OK: %d threads x %d cycles, %llu connections\n", threads, iterations,
         (unsigned long long)stats.connections_created);
  return 0;
}
