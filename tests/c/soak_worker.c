/* The C side of the soak (tests/soak.rs): threads run queries checked for their values and
 * transactions that each insert one unique key into `soak`, for a bounded time, while the
 * Rust side injects faults. Failures that a fault explains (broken, timeout, connect, closed
 * sessions: SQLSTATE 57xxx / 08xxx) are counted, anything else fails the program. Each
 * transaction's outcome is printed for the Rust side to check against the table:
 *   C <key>  committed      F <key>  failed, known not committed      U <key>  outcome unknown
 *
 * Usage: soak_worker URL SECONDS FIRST_KEY [threads] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgpool.h"

static pgpool_pool *pool;
static double deadline;
static int64_t next_key;
static int unexplained = 0;
static long ops = 0, errors = 0;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* True when a fault explains the error; reports the rest. */
static int explained(int rc, pgpool_error *e, const char *what) {
  const char *state = e ? pgpool_error_sqlstate(e) : NULL;
  int ok = rc == PGPOOL_ERR_BROKEN || rc == PGPOOL_ERR_TIMEOUT || rc == PGPOOL_ERR_CONNECT ||
           rc == PGPOOL_ERR_WOULD_BLOCK ||
           (rc == PGPOOL_ERR_SERVER && state != NULL &&
            (strncmp(state, "57", 2) == 0 || strncmp(state, "08", 2) == 0));
  if (!ok) {
    fprintf(stderr, "%s: unexplained %s: %s\n", what, pgpool_code_name(rc),
            e ? pgpool_error_message(e) : "");
    __atomic_add_fetch(&unexplained, 1, __ATOMIC_SEQ_CST);
  }
  __atomic_add_fetch(&errors, 1, __ATOMIC_SEQ_CST);
  return ok;
}

static void report(char kind, int64_t key) {
  pthread_mutex_lock(&out_lock);
  printf("%c %lld\n", kind, (long long)key);
  pthread_mutex_unlock(&out_lock);
}

static void *worker(void *arg) {
  long id = (long)arg;
  unsigned seed = (unsigned)(id * 7919 + 17);
  char a[32], sql[128];
  while (now_s() < deadline) {
    pgpool_conn *conn = NULL;
    pgpool_error *e = NULL;
    int rc = PGPOOL_ACQUIRE(pool, 3000, &conn, &e);
    __atomic_add_fetch(&ops, 1, __ATOMIC_SEQ_CST);
    if (rc != PGPOOL_OK) {
      explained(rc, e, "acquire");
      pgpool_error_free(e);
      usleep(5000);
      continue;
    }
    if (rand_r(&seed) % 2 == 0) {
      long n = (long)(rand_r(&seed) % 1000000);
      snprintf(a, sizeof a, "%ld", n);
      const char *params[] = {a};
      pgpool_result *res = NULL;
      rc = pgpool_conn_query(conn, "SELECT $1::int8", 1, params, &res, &e);
      int64_t v = -1;
      if (rc == PGPOOL_OK) rc = pgpool_result_get_int64(res, 0, 0, &v, &e);
      if (rc == PGPOOL_OK && v != n) {
        fprintf(stderr, "thread %ld: wrong result %lld for %ld\n", id, (long long)v, n);
        __atomic_add_fetch(&unexplained, 1, __ATOMIC_SEQ_CST);
      } else if (rc != PGPOOL_OK) {
        explained(rc, e, "query");
      }
      pgpool_result_free(res);
    } else {
      int64_t key = __atomic_fetch_add(&next_key, 1, __ATOMIC_SEQ_CST);
      rc = pgpool_conn_begin(conn, &e);
      if (rc == PGPOOL_OK) {
        snprintf(sql, sizeof sql, "INSERT INTO soak VALUES (%lld, 'c')", (long long)key);
        uint64_t rows = 0;
        rc = pgpool_conn_execute(conn, sql, 0, NULL, &rows, &e);
        if (rc != PGPOOL_OK) {
          /* The statement failed or the session broke: roll back (or the pool will). */
          int outcome_unknown = e && pgpool_error_outcome_unknown(e);
          explained(rc, e, "insert");
          pgpool_error_free(e);
          e = NULL;
          pgpool_conn_rollback(conn, NULL);
          report(outcome_unknown ? 'U' : 'F', key);
          goto release;
        }
        rc = pgpool_conn_commit(conn, &e);
      }
      if (rc == PGPOOL_OK) {
        report('C', key);
      } else {
        int outcome_unknown = e && pgpool_error_outcome_unknown(e);
        explained(rc, e, "transaction");
        report(outcome_unknown ? 'U' : 'F', key);
      }
    }
  release:
    pgpool_error_free(e);
    pgpool_conn_release(conn, NULL);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s URL SECONDS FIRST_KEY [threads]\n", argv[0]);
    return 2;
  }
  int threads = argc > 4 ? atoi(argv[4]) : 2;
  deadline = now_s() + atof(argv[2]);
  next_key = atoll(argv[3]);
  pgpool_config *cfg = NULL;
  pgpool_config_new(&cfg, NULL);
  pgpool_config_set_max_size(cfg, 3, NULL);
  pgpool_config_set_acquire_timeout_ms(cfg, 3000, NULL);
  pgpool_config_set_connect_timeout_ms(cfg, 2000, NULL);
  pgpool_config_set_query_timeout_ms(cfg, 2000, NULL);
  pgpool_config_set_tcp_user_timeout_ms(cfg, 2000, NULL);
  pgpool_config_set_reconnect_backoff_max_ms(cfg, 500, NULL);
  pgpool_error *e = NULL;
  if (pgpool_pool_create(argv[1], cfg, &pool, &e) != PGPOOL_OK) {
    fprintf(stderr, "create: %s\n", pgpool_error_message(e));
    return 1;
  }
  pgpool_config_free(cfg);
  pthread_t t[16];
  if (threads > 16) threads = 16;
  for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  int rc = pgpool_pool_close(pool, 5000, &e);
  if (rc != PGPOOL_OK) {
    fprintf(stderr, "close: %s\n", pgpool_error_message(e));
    return 1;
  }
  pgpool_pool_free(pool);
  printf("SOAK WORKER OK: %ld operations, %ld explained errors, %d unexplained\n", ops, errors,
         unexplained);
  return unexplained == 0 ? 0 : 1;
}
