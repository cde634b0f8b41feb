/* A program built against an installed libpgpool (tests/install.rs), with nothing but the
 * flags `pkg-config --cflags --libs pgpool` gives: creates a pool from the URL in argv[1],
 * acquires a connection, runs SELECT 1, prints the value and the library version, and frees
 * everything. Exits non-zero, naming the failing call, on any error.
 *
 * Usage: installed URL */
#include <stdio.h>
#include <string.h>

#include <pgpool.h>

static int fail(const char *what, int rc, pgpool_error *err) {
  fprintf(stderr, "%s failed: [%s] %s\n", what, pgpool_code_name(rc),
          err ? pgpool_error_message(err) : "(no detail)");
  pgpool_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  if (strcmp(pgpool_version(), PGPOOL_VERSION_STRING) != 0) {
    fprintf(stderr, "library %s, header %s\n", pgpool_version(), PGPOOL_VERSION_STRING);
    return 1;
  }

  pgpool_error *err = NULL;
  pgpool_config *cfg = NULL;
  int rc = pgpool_config_new(&cfg, &err);
  if (rc != PGPOOL_OK) return fail("pgpool_config_new", rc, err);
  rc = pgpool_config_set_max_size(cfg, 2, &err);
  if (rc != PGPOOL_OK) return fail("pgpool_config_set_max_size", rc, err);

  pgpool_pool *pool = NULL;
  rc = pgpool_pool_create(argv[1], cfg, &pool, &err);
  pgpool_config_free(cfg);
  if (rc != PGPOOL_OK) return fail("pgpool_pool_create", rc, err);

  pgpool_conn *conn = NULL;
  rc = pgpool_pool_acquire(pool, 10000, &conn, &err);
  if (rc != PGPOOL_OK) return fail("pgpool_pool_acquire", rc, err);

  pgpool_result *res = NULL;
  rc = pgpool_conn_query(conn, "SELECT 1", 0, NULL, &res, &err);
  if (rc != PGPOOL_OK) return fail("pgpool_conn_query", rc, err);
  int64_t value = 0;
  rc = pgpool_result_get_int64(res, 0, 0, &value, &err);
  if (rc != PGPOOL_OK) return fail("pgpool_result_get_int64", rc, err);
  printf("SELECT 1 = %lld (libpgpool %s)\n", (long long)value, pgpool_version());

  pgpool_result_free(res);
  rc = pgpool_conn_release(conn, &err);
  if (rc != PGPOOL_OK) return fail("pgpool_conn_release", rc, err);
  rc = pgpool_pool_close(pool, 5000, &err);
  if (rc != PGPOOL_OK) return fail("pgpool_pool_close", rc, err);
  pgpool_pool_free(pool);
  return 0;
}
