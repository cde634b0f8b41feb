/* max_replica_lag from C, on a real primary and its streaming standby: the standby's replay
 * is paused while the primary writes, so the standby falls behind. An idle standby session
 * is retired by the keepalive (`closed_replica_lag`, a REMOVE event with
 * PGPOOL_CLOSE_REPLICA_LAG); a new connect refuses the standby and says why; prefer-standby
 * takes the primary instead; a negative setting turns the check off. Replay is resumed at
 * the end.
 *
 * Usage: replica_lag STANDBY_CONNINFO PRIMARY_CONNINFO (key=value strings) */
#include <time.h>

#include "check.h"

static struct removals lag_removals = {PGPOOL_CLOSE_REPLICA_LAG, PTHREAD_MUTEX_INITIALIZER, 0,
                                       {0}};

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Runs `text` on a connection of `pool`; returns the first value of its first row (static
 * buffer) or "" when it has none. */
static const char *value(pgpool_pool *pool, const char *text) {
  static char out[64];
  pgpool_conn *conn = NULL;
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 10000, &conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_query(conn, text, 0, NULL, &res, &err));
  out[0] = '\0';
  uint64_t rows = 0;
  EXPECT(PGPOOL_OK, pgpool_result_nrows(res, &rows, &err));
  if (rows > 0) {
    const char *v = NULL;
    size_t len = 0;
    bool is_null = true;
    EXPECT(PGPOOL_OK, pgpool_result_value(res, 0, 0, &v, &len, &is_null, &err));
    if (!is_null) snprintf(out, sizeof out, "%.*s", (int)len, v);
  }
  pgpool_result_free(res);
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  return out;
}

static pgpool_pool *pool_of(const char *conninfo, const char *attrs, int64_t max_lag_ms,
                            int keepalive, int64_t fallback_ms) {
  char url[2048];
  snprintf(url, sizeof url, "%s target_session_attrs=%s", conninfo, attrs);
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 2, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_acquire_timeout_ms(cfg, 3000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_replica_lag_ms(cfg, max_lag_ms, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_fallback_lifetime_ms(cfg, fallback_ms, &err));
  if (keepalive) {
    EXPECT(PGPOOL_OK, pgpool_config_set_min_idle(cfg, 1, &err));
    EXPECT(PGPOOL_OK, pgpool_config_set_keepalive_interval_ms(cfg, 200, &err));
    EXPECT(PGPOOL_OK, pgpool_config_set_event_callback(cfg, count_removals, &lag_removals, NULL, &err));
  }
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  pgpool_config_free(cfg);
  return pool;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: replica_lag STANDBY_CONNINFO PRIMARY_CONNINFO\n");
    return 64;
  }
  const char *standby = argv[1], *primary = argv[2];
  char both[4096];
  /* Two hosts in one key=value string: the standby first. */
  {
    int sp = 0, pp = 0;
    const char *s = strstr(standby, "port="), *p = strstr(primary, "port=");
    CHECK(s != NULL && p != NULL && sscanf(s, "port=%d", &sp) == 1 &&
          sscanf(p, "port=%d", &pp) == 1);
    snprintf(both, sizeof both,
             "host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=postgres", sp, pp);
  }

  pgpool_pool *on_standby = NULL, *on_primary = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(standby, NULL, &on_standby, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_create(primary, NULL, &on_primary, &err));
  value(on_primary, "CREATE TABLE IF NOT EXISTS lag_c (n int4)");

  pgpool_pool *watched = pool_of(standby, "standby", 1000, 1, -1);
  for (int i = 0; i < 400 && stats_of(watched).idle < 1; i++) pause_ms(25);
  CHECK(stats_of(watched).idle == 1);
  CHECK(strcmp(value(watched, "SELECT pg_catalog.pg_is_in_recovery()"), "t") == 0);

  /* The standby falls behind: replay paused, the primary writes on. */
  value(on_standby, "SELECT pg_catalog.pg_wal_replay_pause()::text");
  double behind = 0;
  for (int i = 0; i < 200 && behind <= 1.2; i++) {
    value(on_primary, "INSERT INTO lag_c VALUES (1)");
    behind = atof(value(on_standby,
                        "SELECT CASE WHEN pg_catalog.pg_last_wal_receive_lsn() = "
                        "pg_catalog.pg_last_wal_replay_lsn() THEN 0 ELSE EXTRACT(EPOCH FROM "
                        "pg_catalog.clock_timestamp() - "
                        "pg_catalog.pg_last_xact_replay_timestamp()) END"));
    if (behind <= 1.2) pause_ms(100);
  }
  CHECK(behind > 1.2);
  printf("standby behind: %.1f s\n", behind);

  /* The keepalive retires the idle session. */
  for (int i = 0; i < 400 && stats_of(watched).closed_replica_lag < 1; i++) pause_ms(25);
  pgpool_stats st = stats_of(watched);
  CHECK(st.size == sizeof st);
  CHECK(st.closed_replica_lag >= 1);
  char text[32];
  CHECK(removals_seen(&lag_removals, text) >= 1);
  CHECK(strcmp(text, "replica_lag") == 0);

  /* A new connect refuses the standby, and says why. */
  pgpool_pool *fresh = pool_of(standby, "standby", 1000, 0, -1);
  pgpool_conn *conn = NULL;
  int rc = pgpool_pool_acquire(fresh, 3000, &conn, &err);
  CHECK(rc == PGPOOL_ERR_CONNECT || rc == PGPOOL_ERR_TIMEOUT);
  CHECK(err != NULL && strstr(pgpool_error_message(err), "behind its primary") != NULL);
  printf("refused: %s\n", pgpool_error_message(err));
  pgpool_error_free(err);
  err = NULL;

  /* prefer-standby takes the primary; a negative limit is no limit. */
  pgpool_pool *reads = pool_of(both, "prefer-standby", 1000, 0, 200);
  CHECK(strcmp(value(reads, "SELECT pg_catalog.pg_is_in_recovery()"), "f") == 0);
  pgpool_pool *any_lag = pool_of(standby, "standby", -1, 0, -1);
  CHECK(strcmp(value(any_lag, "SELECT pg_catalog.pg_is_in_recovery()"), "t") == 0);
  CHECK(stats_of(any_lag).closed_replica_lag == 0);

  /* Health says which kind of server each pool is on, and how far behind a standby is. */
  pgpool_health h;
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  EXPECT(PGPOOL_OK, pgpool_pool_health(any_lag, &h, &err));
  CHECK(h.size == sizeof h && h.ok && h.in_recovery == 1 && h.replica_lag_us > 1000000);
  printf("health on the standby: in_recovery=%d replica_lag_us=%lld\n", h.in_recovery,
         (long long)h.replica_lag_us);
  memset(&h, 0, sizeof h);
  h.size = sizeof h;
  EXPECT(PGPOOL_OK, pgpool_pool_health(on_primary, &h, &err));
  CHECK(h.ok && h.in_recovery == 0 && h.replica_lag_us == -1);

  value(on_standby, "SELECT pg_catalog.pg_wal_replay_resume()::text");
  /* Caught up again, the standby takes the reads back: the prefer-standby session on the
   * primary is closed after fallback_lifetime_ms, and its replacement reaches the standby. */
  int back = 0;
  for (int i = 0; i < 200 && !back; i++) {
    pause_ms(50);
    back = strcmp(value(reads, "SELECT pg_catalog.pg_is_in_recovery()"), "t") == 0;
  }
  CHECK(back);
  CHECK(stats_of(reads).closed_lifetime >= 1);
  pgpool_pool_free(any_lag);
  pgpool_pool_free(reads);
  pgpool_pool_free(fresh);
  pgpool_pool_free(watched);
  pgpool_pool_free(on_primary);
  pgpool_pool_free(on_standby);
  printf("REPLICA LAG OK: %d checks\n", checks);
  return 0;
}
