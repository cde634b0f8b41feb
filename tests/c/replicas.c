/* A server that changes role under a read-write pool, from C: the server is fenced
 * (default_transaction_read_only turned on and the configuration reloaded); the held
 * session learns it with its next statement and is retired on release, counted in
 * `closed_role_changed` and reported as a REMOVE event with PGPOOL_CLOSE_ROLE_CHANGED; new
 * connects are refused with the reason; unfenced, the pool recovers by itself.
 *
 * Usage: replicas CONNINFO (a key=value string; target_session_attrs is added here) */
#include <time.h>
#include <unistd.h>

#include "check.h"

static struct removals role_changes = {PGPOOL_CLOSE_ROLE_CHANGED, PTHREAD_MUTEX_INITIALIZER, 0,
                                       {0}};

static void sql(pgpool_pool *pool, const char *text) {
  pgpool_conn *conn = NULL;
  uint64_t rows = 0;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 10000, &conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_execute(conn, text, 0, NULL, &rows, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
}

/* `SHOW default_transaction_read_only` on `conn`: 1 for on. */
static int read_only(pgpool_conn *conn) {
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_conn_query(conn, "SHOW default_transaction_read_only", 0, NULL, &res,
                                      &err));
  const char *text = NULL;
  size_t len = 0;
  bool is_null = true;
  EXPECT(PGPOOL_OK, pgpool_result_value(res, 0, 0, &text, &len, &is_null, &err));
  int on = strcmp(text, "on") == 0;
  pgpool_result_free(res);
  return on;
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: replicas CONNINFO\n");
    return 64;
  }
  char url[1024];
  snprintf(url, sizeof url, "%s target_session_attrs=read-write", argv[1]);

  pgpool_pool *admin = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(argv[1], NULL, &admin, &err));

  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 2, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_acquire_timeout_ms(cfg, 2000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_event_callback(cfg, count_removals, &role_changes, NULL, &err));
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  pgpool_config_free(cfg);

  pgpool_conn *conn = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, -1, &conn, &err));
  CHECK(!read_only(conn));

  /* Fence the server. ALTER SYSTEM cannot share a statement string with anything else. */
  sql(admin, "ALTER SYSTEM SET default_transaction_read_only = on");
  sql(admin, "SELECT pg_reload_conf()");
  int seen = 0;
  for (int i = 0; i < 500 && !seen; i++) {
    seen = read_only(conn); /* the reload reaches the session with a statement */
    if (!seen) pause_ms(10);
  }
  CHECK(seen);
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));

  pgpool_stats st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &st, &err));
  CHECK(st.size == sizeof st);
  CHECK(st.closed_role_changed == 1);
  CHECK(st.idle == 0);
  char text[32];
  CHECK(removals_seen(&role_changes, text) == 1);
  CHECK(strcmp(text, "role_changed") == 0);

  /* No read-write server: the acquire fails and says why. */
  int rc = pgpool_pool_acquire(pool, 2000, &conn, &err);
  CHECK(rc == PGPOOL_ERR_TIMEOUT || rc == PGPOOL_ERR_CONNECT);
  CHECK(err != NULL && strstr(pgpool_error_message(err), "read-only") != NULL);
  printf("refused: %s\n", pgpool_error_message(err));
  pgpool_error_free(err);
  err = NULL;

  /* Unfenced: the pool finds the server good again. */
  sql(admin, "ALTER SYSTEM RESET default_transaction_read_only");
  sql(admin, "SELECT pg_reload_conf()");
  int ok = 0;
  for (int i = 0; i < 200 && !ok; i++) {
    if (pgpool_pool_acquire(pool, 1000, &conn, &err) == PGPOOL_OK) {
      ok = !read_only(conn);
      EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
    }
    pgpool_error_free(err);
    err = NULL;
    if (!ok) pause_ms(50);
  }
  CHECK(ok);

  pgpool_pool_free(pool);
  pgpool_pool_free(admin);
  printf("REPLICAS OK: %d checks\n", checks);
  return 0;
}
