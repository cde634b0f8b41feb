/* A program that closes its pool with a statement still running and exits at once: the
 * close reclaims the connection and has its cancel request reach the server before it
 * returns, so nothing is left running there (the server does not notice a gone client while
 * a statement runs).
 *
 * Usage: close_exit CONNINFO APPLICATION_NAME */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static pgpool_pool *pool;
static volatile int started = 0;

static void *hold(void *arg) {
  (void)arg;
  pgpool_conn *conn = NULL;
  pgpool_error *e = NULL;
  if (pgpool_pool_acquire(pool, 10000, &conn, &e) != PGPOOL_OK) {
    fprintf(stderr, "acquire: %s\n", e ? pgpool_error_message(e) : "");
    _exit(1);
  }
  uint64_t rows = 0;
  __atomic_store_n(&started, 1, __ATOMIC_SEQ_CST);
  int rc = pgpool_conn_execute(conn, "SELECT pg_sleep(60)", 0, NULL, &rows, &e);
  printf("held statement: rc %d (%s)\n", rc, pgpool_code_name(rc));
  fflush(stdout);
  pgpool_error_free(e);
  pgpool_conn_release(conn, NULL);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: close_exit CONNINFO APPLICATION_NAME\n");
    return 64;
  }
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, argv[2], &err));
  EXPECT(PGPOOL_OK, pgpool_pool_create(argv[1], cfg, &pool, &err));
  pgpool_config_free(cfg);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, hold, NULL) == 0);
  while (!__atomic_load_n(&started, __ATOMIC_SEQ_CST)) usleep(1000);
  usleep(300 * 1000); /* the statement is running on the server */
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_pool_close(pool, 500, &err));
  clock_gettime(CLOCK_MONOTONIC, &b);
  long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  printf("CLOSED in %ld ms\n", ms);
  fflush(stdout);
  _exit(ms <= 500 + 300 ? 0 : 2); /* no join, no free: as a program that exits at once */
}
