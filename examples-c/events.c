/* Pool events as structs: a callback counts and prints what the pool does (connects,
 * acquires, releases, removals, errors) with each session's backend pid and the durations,
 * while the main thread runs a few queries and discards one connection.
 *
 * Usage: events [URL]; URL defaults to $DATABASE_URL. */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgpool.h"

static int check(const char *what, pgpool_code rc, pgpool_error *err) {
  if (rc != PGPOOL_OK) {
    fprintf(stderr, "%s failed: [%s] %s\n", what, pgpool_code_name(rc),
            pgpool_error_message(err));
    pgpool_error_free(err);
    exit(1);
  }
  return 0;
}

/* README:BEGIN events-c */
/* Runs on the thread where the event happened (a caller's or one of the pool's), outside
 * the pool's lock: keep it short. The struct and its strings live only during the call. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counts[16];

static void on_event(const pgpool_event *ev, void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&lock);
  if (ev->kind >= 0 && ev->kind < 16) counts[ev->kind]++;
  pthread_mutex_unlock(&lock);
  switch (ev->kind) {
  case PGPOOL_EVENT_CONNECT:
    printf("[%s] connect: conn %" PRIu64 ", backend pid %d, in %" PRId64 " us\n", ev->pool,
           ev->conn_id, ev->backend_pid, ev->duration_us);
    break;
  case PGPOOL_EVENT_REMOVE:
    printf("[%s] remove: conn %" PRIu64 ", backend pid %d (%s)\n", ev->pool, ev->conn_id,
           ev->backend_pid, ev->reason_text);
    break;
  case PGPOOL_EVENT_ERROR:
    printf("[%s] error: %s (%s)\n", ev->pool, ev->message, pgpool_code_name(ev->error_code));
    break;
  default: /* ACQUIRE, RELEASE, LEAK_SUSPECTED, RECLAIMED, NOTICE, and kinds added later */
    break;
  }
}

static pgpool_pool *make_pool(const char *url) {
  pgpool_config *cfg = NULL;
  pgpool_pool *pool = NULL;
  pgpool_error *err = NULL;
  check("config", pgpool_config_new(&cfg, &err), err);
  check("name", pgpool_config_set_name(cfg, "orders", &err), err);
  check("max_size", pgpool_config_set_max_size(cfg, 2, &err), err);
  /* NULL user_data, so nothing to free (else pass a function that frees it). */
  check("callback", pgpool_config_set_event_callback(cfg, on_event, NULL, NULL, &err), err);
  check("pool", pgpool_pool_create(url, cfg, &pool, &err), err);
  pgpool_config_free(cfg); /* the pool keeps its copy, callback included */
  return pool;
}
/* README:END events-c */

int main(int argc, char **argv) {
  const char *url = argc > 1 ? argv[1] : getenv("DATABASE_URL");
  if (url == NULL) {
    fprintf(stderr, "usage: events URL (or set DATABASE_URL)\n");
    return 2;
  }
  pgpool_pool *pool = make_pool(url);
  pgpool_error *err = NULL;
  for (int i = 0; i < 3; i++) {
    pgpool_conn *conn = NULL;
    check("acquire", pgpool_pool_acquire(pool, -1, &conn, &err), err);
    check("exec", pgpool_conn_exec(conn, "SELECT 1", NULL, NULL, NULL, &err), err);
    if (i == 2) {
      check("discard", pgpool_conn_discard(conn, &err), err);
    } else {
      check("release", pgpool_conn_release(conn, &err), err);
    }
  }
  /* README:BEGIN ops-c */
  pgpool_stats stats = {.size = sizeof stats};
  check("stats", pgpool_pool_stats(pool, &stats, &err), err);
  printf("query time: n=%" PRIu64 " p50=%" PRIu64 "us p99=%" PRIu64 "us max=%" PRIu64 "us\n",
         stats.query_time.count, stats.query_time.p50_us, stats.query_time.p99_us,
         stats.query_time.max_us);
  char *text = NULL; /* Prometheus text: serve it at /metrics */
  check("metrics", pgpool_pool_metrics(pool, &text, &err), err);
  printf("metrics: %zu bytes, %s\n", strlen(text),
         strstr(text, "pgpool_acquires_total{pool=\"orders\"} 3") ? "3 acquires" : "?");
  pgpool_string_free(text);
  char *json = NULL; /* the body of a /api/db/health endpoint */
  check("health", pgpool_pool_health_json(pool, &json, &err), err);
  printf("health: %.60s...\n", json);
  pgpool_string_free(json);
  /* README:END ops-c */
  check("close", pgpool_pool_close(pool, -1, &err), err);
  pgpool_pool_free(pool);
  pthread_mutex_lock(&lock);
  printf("events: %ld connect, %ld acquire, %ld release, %ld remove, %ld error\n",
         counts[PGPOOL_EVENT_CONNECT], counts[PGPOOL_EVENT_ACQUIRE],
         counts[PGPOOL_EVENT_RELEASE], counts[PGPOOL_EVENT_REMOVE], counts[PGPOOL_EVENT_ERROR]);
  pthread_mutex_unlock(&lock);
  return 0;
}
