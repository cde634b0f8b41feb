/* Many threads hammer one small pool: acquire, parameterised query, check, release.
 * Usage: stress URL [threads] [iterations per thread] */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

static pgpool_pool *pool;
static int iterations = 2000;
static int failures = 0;

static void *worker(void *arg) {
  long id = (long)arg;
  char a[32], b[32];
  for (int i = 0; i < iterations; i++) {
    pgpool_conn *conn = NULL;
    pgpool_result *res = NULL;
    pgpool_error *e = NULL;
    int rc = pgpool_pool_acquire(pool, 30000, &conn, &e);
    if (rc != PGPOOL_OK) {
      fprintf(stderr, "thread %ld: acquire: %s\n", id, pgpool_error_message(e));
      pgpool_error_free(e);
      __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
      continue;
    }
    snprintf(a, sizeof a, "%ld", id);
    snprintf(b, sizeof b, "%d", i);
    const char *params[] = {a, b};
    rc = pgpool_conn_query(conn, "SELECT $1::int8 * 100000 + $2::int8", 2, params, &res, &e);
    int64_t v = -1;
    if (rc == PGPOOL_OK) rc = pgpool_result_get_int64(res, 0, 0, &v, &e);
    if (rc != PGPOOL_OK || v != id * 100000 + i) {
      fprintf(stderr, "thread %ld: query: rc %d v %lld: %s\n", id, rc, (long long)v,
              e ? pgpool_error_message(e) : "");
      __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    }
    pgpool_error_free(e);
    pgpool_result_free(res);
    if (pgpool_conn_release(conn, NULL) != PGPOOL_OK) __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL [threads] [iterations]\n", argv[0]);
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 32;
  if (argc > 3) iterations = atoi(argv[3]);
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 8, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, "c-stress", &err));
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
  CHECK(stats.open <= 8 && stats.in_use == 0);
  CHECK(stats.acquires == (uint64_t)threads * (uint64_t)iterations);
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, 5000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  if (failures != 0) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("STRESS OK: %d threads x %d cycles, %llu acquires, %llu waited, %llu connections\n",
         threads, iterations, (unsigned long long)stats.acquires,
         (unsigned long long)stats.wait_count, (unsigned long long)stats.connections_created);
  return 0;
}
