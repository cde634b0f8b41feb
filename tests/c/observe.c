/* Operations from C: latency histograms in pgpool_stats, the Prometheus text, the health
 * check's reasons and JSON, and the log lines for statements and stats (through the log
 * callback). Usage: observe URL */
#include <pthread.h>
#include <unistd.h>

#include "check.h"

/* The callback runs on the pool's threads and the callers': counters under a mutex. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int stats_lines = 0;
static int slow_lines = 0;
static int leaked_secret = 0;

static int read_counter(const int *counter) {
  pthread_mutex_lock(&lock);
  int value = *counter;
  pthread_mutex_unlock(&lock);
  return value;
}

static void on_log(int32_t level, const char *message, void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&lock);
  if (strstr(message, "secret-value") != NULL) leaked_secret = 1;
  if (level == PGPOOL_LOG_INFO && strncmp(message, "pool observe: ", 14) == 0) stats_lines++;
  if (level == PGPOOL_LOG_WARN && strstr(message, "pool observe: slow query") != NULL &&
      strstr(message, "pg_sleep(?)") != NULL) {
    slow_lines++;
  }
  pthread_mutex_unlock(&lock);
}

static void histogram_is_ordered(const pgpool_histogram *h) {
  CHECK(h->p50_us <= h->p90_us && h->p90_us <= h->p99_us && h->p99_us <= h->max_us);
}

struct waiter {
  pgpool_pool *pool;
  int rc;
};

static void *wait_for_conn(void *arg) {
  struct waiter *w = arg;
  pgpool_conn *c = NULL;
  w->rc = pgpool_pool_acquire(w->pool, 3000, &c, NULL);
  if (w->rc == PGPOOL_OK) w->rc = pgpool_conn_release(c, NULL);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: observe URL\n");
    return 2;
  }
  const char *url = argv[1];
  EXPECT(PGPOOL_OK, pgpool_log_set_callback(on_log, NULL, PGPOOL_LOG_DEBUG, &err));

  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_name(cfg, "observe", &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_stats_log_interval_ms(cfg, 100, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_slow_query_threshold_ms(cfg, 30, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_degraded_waiters(cfg, 0, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_health_timeout_ms(cfg, 300, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_config_set_name(cfg, NULL, &err));

  /* A name that is not a label value fails at create, naming the option. */
  pgpool_config *bad = NULL;
  pgpool_pool *none = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&bad, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_name(bad, "has space", &err));
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create(url, bad, &none, &err));
  CHECK(strstr(pgpool_error_message(err), "name") != NULL);
  pgpool_config_free(bad);

  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  pgpool_config_free(cfg);

  for (int i = 0; i < 20; i++) {
    pgpool_result *res = NULL;
    EXPECT(PGPOOL_OK, pgpool_pool_query(pool, "SELECT 'secret-value'", 0, NULL, &res, &err));
    pgpool_result_free(res);
  }
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_query(pool, "SELECT pg_sleep(0.05)", 0, NULL, &res, &err));
  pgpool_result_free(res);

  pgpool_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.size = sizeof stats;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &stats, &err));
  CHECK(stats.acquire_wait.count == stats.acquires && stats.acquires == 21);
  CHECK(stats.query_time.count == 21 && stats.hold_time.count == 21);
  CHECK(stats.connect_time.count == stats.connections_created && stats.connect_time.p50_us > 0);
  CHECK(stats.query_time.max_us >= 50000 && stats.query_time.p50_us < 50000);
  CHECK(stats.query_time.sum_us >= 50000);
  histogram_is_ordered(&stats.acquire_wait);
  histogram_is_ordered(&stats.connect_time);
  histogram_is_ordered(&stats.query_time);
  histogram_is_ordered(&stats.hold_time);

  /* Prometheus text, labelled with the pool's name. */
  char *text = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_metrics(pool, &text, &err));
  CHECK(strstr(text, "# TYPE pgpool_query_duration_seconds histogram\n") != NULL);
  CHECK(strstr(text, "pgpool_query_duration_seconds_count{pool=\"observe\"} 21\n") != NULL);
  CHECK(strstr(text, "pgpool_acquires_total{pool=\"observe\"} 21\n") != NULL);
  CHECK(strstr(text, "pgpool_max_connections{pool=\"observe\"} 1\n") != NULL);
  pgpool_string_free(text);
  pgpool_string_free(NULL);
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_metrics(pool, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_metrics(NULL, &text, &err));

  /* Healthy: no reasons, JSON with the seeds' fields. */
  char *json = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_health_json(pool, &json, &err));
  CHECK(strncmp(json, "{\"ok\":true,\"pool\":\"observe\",\"state\":\"healthy\",\"reasons\":[]",
                57) == 0);
  CHECK(strstr(json, "\"poolSize\":1") != NULL && strstr(json, "\"waitingCount\":0") != NULL);
  free(json); /* malloc'd: plain free() is fine too */

  /* One caller waiting with degraded_waiters = 0: degraded, and the reason says why. */
  pgpool_conn *held = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 1000, &held, &err));
  struct waiter w = {pool, -1};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, wait_for_conn, &w) == 0);
  for (int i = 0; i < 300; i++) {
    EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &stats, &err));
    if (stats.waiting >= 1) break;
    usleep(10000);
  }
  CHECK(stats.waiting >= 1);
  pgpool_health health;
  memset(&health, 0, sizeof health);
  health.size = sizeof health;
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_pool_health(pool, &health, &err));
  CHECK(health.state == PGPOOL_DEGRADED && health.max_size == 1);
  CHECK(strstr(health.reasons, "callers waiting") != NULL);
  EXPECT(PGPOOL_OK, pgpool_pool_health_json(pool, &json, &err));
  CHECK(strstr(json, "\"state\":\"degraded\"") != NULL);
  CHECK(strstr(json, "callers waiting") != NULL);
  pgpool_string_free(json);
  EXPECT(PGPOOL_OK, pgpool_conn_release(held, &err));
  CHECK(pthread_join(t, NULL) == 0 && w.rc == PGPOOL_OK);

  /* The stats line arrives every 100 ms; the slow statement was warned about once. */
  for (int i = 0; i < 300 && read_counter(&stats_lines) < 2; i++) usleep(10000);
  CHECK(read_counter(&stats_lines) >= 2);
  CHECK(read_counter(&slow_lines) == 1);
  CHECK(read_counter(&leaked_secret) == 0);

  /* Histograms off: the stats' histograms stay zero. */
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_histograms(cfg, false, &err));
  pgpool_pool *quiet = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &quiet, &err));
  pgpool_config_free(cfg);
  EXPECT(PGPOOL_OK, pgpool_pool_query(quiet, "SELECT 1", 0, NULL, &res, &err));
  pgpool_result_free(res);
  EXPECT(PGPOOL_OK, pgpool_pool_stats(quiet, &stats, &err));
  CHECK(stats.acquires == 1 && stats.query_time.count == 0 && stats.acquire_wait.count == 0);
  EXPECT(PGPOOL_OK, pgpool_pool_close(quiet, 1000, &err));
  pgpool_pool_free(quiet);

  EXPECT(PGPOOL_OK, pgpool_log_set_callback(NULL, NULL, PGPOOL_LOG_OFF, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, 1000, &err));
  pgpool_pool_free(pool);
  printf("OBSERVE OK: %d checks\n", checks);
  return 0;
}
