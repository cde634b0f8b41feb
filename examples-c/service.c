/* A service with named pools from a TOML file that shuts down cleanly on SIGTERM / SIGINT:
 * every pool is opened and waited for, worker threads run queries on every pool until a
 * signal, then every pool closes within 5 s and a summary is printed; the exit status is 0.
 * A second signal during the shutdown ends the process at once (status 128 + signal).
 *
 * Usage: service pools.toml [workers per pool]
 *
 * pools.toml (see docs/operations/registry-and-shutdown.md):
 *   [defaults]
 *   acquire_timeout = "5s"
 *   [pools.primary]
 *   url_env = "DATABASE_URL"
 *   max_size = 8
 *   min_idle = 2                                                                         */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pgpool.h"

#define MAX_WORKERS 64

static long queries[MAX_WORKERS];

/* Prints the failure and frees the detail object. */
static int report(const char *what, int rc, pgpool_error *err) {
  if (rc != PGPOOL_OK)
    fprintf(stderr, "%s failed: [%s] %s\n", what, pgpool_code_name(rc), pgpool_error_message(err));
  pgpool_error_free(err);
  return rc;
}

struct worker {
  pgpool_pool *pool;
  long *count;
};

/* README:BEGIN registry-c-worker */
static void *work(void *arg) {
  struct worker *w = arg;
  /* Stop taking work once a shutdown was requested. */
  while (!pgpool_shutdown_requested()) {
    pgpool_result *res = NULL;
    pgpool_error *err = NULL;
    int rc = pgpool_pool_query(w->pool, "SELECT pg_sleep(0.01)", 0, NULL, &res, &err);
    pgpool_result_free(res);
    if (rc == PGPOOL_ERR_CLOSED) { /* the pools are closing: the shutdown began */
      pgpool_error_free(err);
      break;
    }
    if (report("query", rc, err) == PGPOOL_OK) (*w->count)++;
  }
  return NULL;
}
/* README:END registry-c-worker */

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s pools.toml [workers per pool]\n", argv[0]);
    return 2;
  }
  int per_pool = argc > 2 ? atoi(argv[2]) : 2;
  pgpool_error *err = NULL;

  /* README:BEGIN registry-c */
  pgpool_registry *reg = NULL;
  if (report("loading the pools", pgpool_registry_from_file(argv[1], &reg, &err), err)) return 2;
  /* Open every pool and wait up to 10 s until each is ready: fail fast when one is down. */
  err = NULL;
  if (report("opening the pools", pgpool_registry_open_all(reg, 10000, &err), err)) {
    pgpool_registry_close_all(reg, 1000, NULL, NULL);
    pgpool_registry_free(reg);
    return 1;
  }
  /* On SIGTERM / SIGINT: stop accepting work, close every pool within 5 s. */
  err = NULL;
  if (report("installing the signal handling", pgpool_shutdown_on_signals(reg, 5000, &err), err))
    return 1;
  /* README:END registry-c */

  size_t npools = 0;
  pgpool_registry_count(reg, &npools, NULL);
  pgpool_pool *pools[16];
  struct worker workers[MAX_WORKERS];
  pthread_t threads[MAX_WORKERS];
  int nthreads = 0;
  for (size_t i = 0; i < npools && i < 16; i++) {
    const char *name = NULL;
    pgpool_registry_name(reg, i, &name, NULL);
    err = NULL;
    /* A handle of our own to the registry's pool, freed with pgpool_pool_free. */
    if (report("get", pgpool_registry_get(reg, name, &pools[i], &err), err)) return 1;
    for (int k = 0; k < per_pool && nthreads < MAX_WORKERS; k++) {
      workers[nthreads] = (struct worker){pools[i], &queries[nthreads]};
      pthread_create(&threads[nthreads], NULL, work, &workers[nthreads]);
      nthreads++;
    }
  }
  printf("ready: %zu pools, %d workers\n", npools, nthreads);
  fflush(stdout);

  /* README:BEGIN registry-c-wait */
  uint32_t reclaimed = 0;
  err = NULL;
  report("waiting for the shutdown", pgpool_shutdown_wait(-1, &reclaimed, &err), err);
  printf("signal %d: pools closed, %u connections reclaimed\n", pgpool_shutdown_requested(),
         reclaimed);
  /* README:END registry-c-wait */

  long total = 0;
  for (int k = 0; k < nthreads; k++) {
    pthread_join(threads[k], NULL);
    total += queries[k];
  }
  for (size_t i = 0; i < npools && i < 16; i++) pgpool_pool_free(pools[i]);
  pgpool_registry_free(reg);
  printf("%ld queries; shutdown clean\n", total);
  return 0;
}
