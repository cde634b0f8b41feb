/* The reliability features from C: leak reports naming the call site (PGPOOL_ACQUIRE),
 * max_checkout reclaiming a connection stuck in a statement, the health state and its
 * counters, the breaker against a server that refuses, a bounded close with a statement
 * running, and pgpool_pool_transaction_retry on a serialization conflict.
 *
 * Usage: reliability URL  (a live server; a refused address is derived from nothing: port 1) */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char leak_line[512];

static void on_log(int32_t level, const char *message, void *user_data) {
  (void)level;
  (void)user_data;
  pthread_mutex_lock(&log_lock);
  if (strstr(message, "possible leak") != NULL && leak_line[0] == '\0') {
    snprintf(leak_line, sizeof leak_line, "%s", message);
  }
  pthread_mutex_unlock(&log_lock);
}

/* A holder stuck in a long statement; records what the call returned and when. */
struct holder {
  pgpool_pool *pool;
  int rc;
  char message[256];
  double took_ms;
};

static void *hold_sleeping(void *arg) {
  struct holder *h = arg;
  pgpool_conn *conn = NULL;
  pgpool_error *e = NULL;
  if (PGPOOL_ACQUIRE(h->pool, -1, &conn, &e) != PGPOOL_OK) {
    h->rc = -1;
    snprintf(h->message, sizeof h->message, "acquire: %s", pgpool_error_message(e));
    pgpool_error_free(e);
    return NULL;
  }
  double start = now_ms();
  h->rc = pgpool_conn_exec(conn, "SELECT pg_sleep(20)", NULL, NULL, NULL, &e);
  h->took_ms = now_ms() - start;
  snprintf(h->message, sizeof h->message, "%s", e ? pgpool_error_message(e) : "");
  pgpool_error_free(e);
  pgpool_conn_release(conn, NULL);
  return NULL;
}

static void leaks_and_reclaim(const char *url) {
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_leak_threshold_ms(cfg, 50, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_checkout_ms(cfg, 400, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_reaper_interval_ms(cfg, 50, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_concurrent_connects(cfg, 1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_health_timeout_ms(cfg, 2000, &err));
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  pgpool_config_free(cfg);

  pgpool_health h;
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  EXPECT(PGPOOL_OK, pgpool_pool_health(pool, &h, &err));
  CHECK(h.ok && h.state == PGPOOL_HEALTHY && h.server_version[0] != '\0');
  CHECK(h.size == sizeof h);

  /* A connection held past leak_threshold: reported once, naming this file and line. */
  pgpool_conn *conn = NULL;
  int line = __LINE__ + 1;
  EXPECT(PGPOOL_OK, PGPOOL_ACQUIRE(pool, -1, &conn, &err));
  for (int i = 0; i < 200 && stats_of(pool).leaks_suspected == 0; i++) usleep(10000);
  CHECK(stats_of(pool).leaks_suspected == 1);
  char site[64];
  snprintf(site, sizeof site, "reliability.c:%d", line);
  pthread_mutex_lock(&log_lock);
  int named = strstr(leak_line, site) != NULL;
  pthread_mutex_unlock(&log_lock);
  if (!named) {
    fprintf(stderr, "leak report \"%s\" lacks \"%s\"\n", leak_line, site);
    exit(1);
  }
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));

  /* A holder stuck in a statement is reclaimed after max_checkout: the only slot comes back
   * to another caller, the holder's call fails with BROKEN, "reclaimed". */
  struct holder stuck = {pool, 0, "", 0};
  pthread_t t;
  pthread_create(&t, NULL, hold_sleeping, &stuck);
  usleep(100000);
  double start = now_ms();
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 5000, &conn, &err));
  double waited = now_ms() - start;
  EXPECT(PGPOOL_OK, pgpool_conn_exec(conn, "SELECT 1", NULL, NULL, NULL, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  pthread_join(t, NULL);
  if (stuck.rc != PGPOOL_ERR_BROKEN || strstr(stuck.message, "reclaimed") == NULL ||
      stuck.took_ms > 3000) {
    fprintf(stderr, "holder: rc %d after %.0f ms: %s\n", stuck.rc, stuck.took_ms,
            stuck.message);
    exit(1);
  }
  pgpool_stats s = stats_of(pool);
  CHECK(s.closed_reclaimed == 1);
  CHECK(s.health == PGPOOL_HEALTHY && s.consecutive_connect_failures == 0);
  CHECK(s.since_connect_success_ms >= 0 && s.since_connect_failure_ms == -1);
  printf("measured: C holder reclaimed after %.0f ms; the slot served another caller after "
         "%.0f ms (max_checkout 400 ms)\n",
         stuck.took_ms, waited);
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, 1000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
}

static void breaker(void) {
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_breaker_threshold(cfg, 3, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_acquire_timeout_ms(cfg, 10000, &err));
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK,
         pgpool_pool_create("host=127.0.0.1 port=1 user=u dbname=d connect_timeout=2", cfg,
                            &pool, &err));
  pgpool_config_free(cfg);
  pgpool_conn *conn = NULL;
  double start = now_ms();
  EXPECT(PGPOOL_ERR_CONNECT, pgpool_pool_acquire(pool, -1, &conn, &err));
  double took = now_ms() - start;
  EXPECT_MSG("database unavailable");
  CHECK(took < 2000);
  pgpool_stats s = stats_of(pool);
  CHECK(s.health == PGPOOL_DOWN && s.consecutive_connect_failures >= 3);
  CHECK(s.since_connect_failure_ms >= 0 && s.since_connect_success_ms == -1);
  /* A zero-timeout acquire fails at once with the cause too. */
  EXPECT(PGPOOL_ERR_CONNECT, pgpool_pool_try_acquire(pool, &conn, &err));
  pgpool_health h;
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  EXPECT(PGPOOL_ERR_CONNECT, pgpool_pool_health(pool, &h, &err));
  CHECK(!h.ok && h.state == PGPOOL_DOWN);
  printf("measured: C acquire against a refusing server failed after %.0f ms (timeout 10 s)\n",
         took);
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
}

static void bounded_close(const char *url) {
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, NULL, &pool, &err));
  struct holder busy = {pool, 0, "", 0};
  pthread_t t;
  pthread_create(&t, NULL, hold_sleeping, &busy);
  for (int i = 0; i < 300 && stats_of(pool).in_use == 0; i++) usleep(10000);
  usleep(100000);
  double start = now_ms();
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_pool_close(pool, 300, &err));
  double took = now_ms() - start;
  EXPECT_MSG("reclaimed");
  CHECK(took < 1000);
  pthread_join(t, NULL);
  CHECK(busy.rc == PGPOOL_ERR_BROKEN && busy.took_ms < 3000);
  CHECK(stats_of(pool).closed_reclaimed == 1);
  printf("measured: C close(300 ms) with a statement running returned after %.0f ms\n", took);
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
}

/* Two transactions that read the count and insert: under SERIALIZABLE one of them fails
 * (40001) when both first attempts overlap; the retry commits it. */
struct tx_ctx {
  pthread_barrier_t *barrier;
  int who;
  int runs;
  const char *table;
};

static int32_t write_skew(pgpool_conn *conn, void *user_data) {
  struct tx_ctx *ctx = user_data;
  ctx->runs++;
  pgpool_error *e = NULL;
  char sql[256];
  if (pgpool_conn_exec(conn, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", NULL, NULL, NULL,
                       &e) != PGPOOL_OK) {
    pgpool_error_free(e);
    return 1;
  }
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", ctx->table);
  if (pgpool_conn_exec(conn, sql, NULL, NULL, NULL, &e) != PGPOOL_OK) {
    pgpool_error_free(e);
    return 1;
  }
  snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (%d)", ctx->table, ctx->who);
  if (pgpool_conn_exec(conn, sql, NULL, NULL, NULL, &e) != PGPOOL_OK) {
    pgpool_error_free(e);
    return 1;
  }
  if (ctx->runs == 1) pthread_barrier_wait(ctx->barrier);
  return 0;
}

/* Fails with a serialization failure, then returns `ctx->who` (1: give up, -1: stop). */
static int32_t forced_conflict(pgpool_conn *conn, void *user_data) {
  struct tx_ctx *ctx = user_data;
  ctx->runs++;
  pgpool_error *e = NULL;
  int rc = pgpool_conn_exec(conn,
                            "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; "
                            "END $$",
                            NULL, NULL, NULL, &e);
  pgpool_error_free(e);
  return rc == PGPOOL_ERR_SERVER ? ctx->who : 0;
}

struct tx_thread {
  pgpool_pool *pool;
  struct tx_ctx ctx;
  int rc;
};

static void *run_tx(void *arg) {
  struct tx_thread *t = arg;
  int32_t result = -1;
  t->rc = pgpool_pool_transaction_retry(t->pool, -1, 5, write_skew, &t->ctx, &result, NULL);
  return NULL;
}

static void retry(const char *url) {
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, NULL, &pool, &err));
  char table[32], sql[256];
  snprintf(table, sizeof table, "c_retry_%d", (int)getpid());
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s; CREATE TABLE %s (who int)", table,
           table);
  pgpool_conn *conn = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, -1, &conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, sql, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, 2);
  struct tx_thread a = {pool, {&barrier, 1, 0, table}, -1};
  struct tx_thread b = {pool, {&barrier, 2, 0, table}, -1};
  pthread_t ta, tb;
  pthread_create(&ta, NULL, run_tx, &a);
  pthread_create(&tb, NULL, run_tx, &b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  CHECK(a.rc == PGPOOL_OK && b.rc == PGPOOL_OK);
  CHECK(a.ctx.runs + b.ctx.runs == 3);
  pgpool_result *res = NULL;
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
  EXPECT(PGPOOL_OK, pgpool_pool_exec(pool, -1, NULL, sql, NULL, &res, NULL, &err));
  int64_t n = 0;
  EXPECT(PGPOOL_OK, pgpool_result_get_int64(res, 0, 0, &n, &err));
  CHECK(n == 2);
  pgpool_result_free(res);
  /* A callback that gives up for its own reasons (no retryable error) is not retried. */
  struct tx_ctx never = {&barrier, 3, 0, "no_such_table_here"};
  int32_t result = 0;
  EXPECT(PGPOOL_ERR_ROLLED_BACK,
         pgpool_pool_transaction_retry(pool, -1, 5, write_skew, &never, &result, &err));
  CHECK(never.runs == 1 && result == 1);
  /* A serialization failure is retried up to max_attempts; a negative return stops it. */
  struct tx_ctx retried = {&barrier, 1, 0, table};
  EXPECT(PGPOOL_ERR_ROLLED_BACK,
         pgpool_pool_transaction_retry(pool, -1, 3, forced_conflict, &retried, &result, &err));
  CHECK(retried.runs == 3 && result == 1);
  struct tx_ctx stopped = {&barrier, -1, 0, table};
  EXPECT(PGPOOL_ERR_ROLLED_BACK,
         pgpool_pool_transaction_retry(pool, -1, 3, forced_conflict, &stopped, &result, &err));
  CHECK(stopped.runs == 1 && result == -1);
  snprintf(sql, sizeof sql, "DROP TABLE %s", table);
  EXPECT(PGPOOL_OK, pgpool_pool_exec(pool, -1, NULL, sql, NULL, NULL, NULL, &err));
  pthread_barrier_destroy(&barrier);
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  EXPECT(PGPOOL_OK, pgpool_log_set_callback(on_log, NULL, PGPOOL_LOG_WARN, &err));
  leaks_and_reclaim(argv[1]);
  breaker();
  bounded_close(argv[1]);
  retry(argv[1]);
  pgpool_error_free(err);
  printf("RELIABILITY OK: %d checks\n", checks);
  return 0;
}
