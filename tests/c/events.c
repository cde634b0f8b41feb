/* Pool events from C against a real server: connect / acquire / release carry the session's
 * backend pid (as pgpool_conn_backend_pid reports it) and the durations; a discard and a
 * pg_terminate_backend each give a REMOVE with its reason; a refused connect gives an ERROR
 * with its code; calls that wait for a pool are refused inside the callback while others
 * work; user_data is freed once, after the last pool let go of it. Then the environment
 * layer: PGPOOL_MAX_SIZE with pgpool_config_set_env on and off, the alias PG_POOL_MAX with
 * pgpool_config_set_env_aliases.
 *
 * Usage: events URL */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define MAX_EVENTS 256

struct rec {
  int32_t kind, backend_pid, reason, error_code;
  uint64_t conn_id;
  int64_t duration_us;
  uint32_t size;
  char pool[32], kind_name[32], reason_text[32], message[256], sqlstate[8], site[64];
};

struct sink {
  pthread_mutex_t lock;
  struct rec recs[MAX_EVENTS];
  int n;
  pgpool_pool *pool; /* set once created: the callback's re-entry checks use it */
  int reentry_checked, reentry_rc, stats_rc;
};

static struct sink sink = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0, NULL, 0, 0, 0};
static int freed = 0;
static pthread_mutex_t freed_lock = PTHREAD_MUTEX_INITIALIZER;

static void copy(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src); }

static void on_event(const pgpool_event *ev, void *user_data) {
  struct sink *s = user_data;
  pthread_mutex_lock(&s->lock);
  pgpool_pool *pool = s->pool;
  int check_reentry = pool != NULL && ev->kind == PGPOOL_EVENT_ACQUIRE && !s->reentry_checked;
  if (s->n < MAX_EVENTS) {
    struct rec *r = &s->recs[s->n++];
    r->size = ev->size;
    r->kind = ev->kind;
    r->backend_pid = ev->backend_pid;
    r->reason = ev->reason;
    r->error_code = ev->error_code;
    r->conn_id = ev->conn_id;
    r->duration_us = ev->duration_us;
    copy(r->pool, sizeof r->pool, ev->pool);
    copy(r->kind_name, sizeof r->kind_name, ev->kind_name);
    copy(r->reason_text, sizeof r->reason_text, ev->reason_text);
    copy(r->message, sizeof r->message, ev->message);
    copy(r->sqlstate, sizeof r->sqlstate, ev->sqlstate);
    copy(r->site, sizeof r->site, ev->site);
  }
  if (check_reentry) s->reentry_checked = 1;
  pthread_mutex_unlock(&s->lock);
  if (check_reentry) {
    /* Waiting for a connection from inside the callback is refused; stats work. */
    pgpool_conn *conn = NULL;
    pgpool_error *e = NULL;
    int rc = pgpool_pool_acquire(pool, 1000, &conn, &e);
    int msg_ok = e != NULL && strstr(pgpool_error_message(e), "event callback") != NULL;
    pgpool_error_free(e);
    pgpool_stats st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    int stats_rc = pgpool_pool_stats(pool, &st, NULL);
    int health_rc = pgpool_pool_wait_ready(pool, 1000, NULL);
    pthread_mutex_lock(&s->lock);
    s->reentry_rc = msg_ok && health_rc == PGPOOL_ERR_USAGE ? rc : -1;
    s->stats_rc = stats_rc;
    pthread_mutex_unlock(&s->lock);
  }
}

static void free_sink(void *user_data) {
  (void)user_data;
  pthread_mutex_lock(&freed_lock);
  freed++;
  pthread_mutex_unlock(&freed_lock);
}

static int freed_count(void) {
  pthread_mutex_lock(&freed_lock);
  int n = freed;
  pthread_mutex_unlock(&freed_lock);
  return n;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The index of the first event of `kind` (and `conn_id` unless 0) at or after `from`, or
 * -1; waits up to 5 s for it (background events arrive a moment later). */
static int find(int from, int32_t kind, uint64_t conn_id) {
  for (int tries = 0; tries < 500; tries++) {
    pthread_mutex_lock(&sink.lock);
    for (int i = from; i < sink.n; i++) {
      if (sink.recs[i].kind == kind && (conn_id == 0 || sink.recs[i].conn_id == conn_id)) {
        pthread_mutex_unlock(&sink.lock);
        return i;
      }
    }
    pthread_mutex_unlock(&sink.lock);
    sleep_ms(10);
  }
  return -1;
}

static int count(void) {
  pthread_mutex_lock(&sink.lock);
  int n = sink.n;
  pthread_mutex_unlock(&sink.lock);
  return n;
}

static struct rec at(int i) {
  pthread_mutex_lock(&sink.lock);
  struct rec r = sink.recs[i];
  pthread_mutex_unlock(&sink.lock);
  return r;
}

static pgpool_config *event_config(const char *app) {
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_name(cfg, "evtest", &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 2, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, app, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_validation_skip_window_ms(cfg, 0, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_event_callback(cfg, on_event, &sink, free_sink, &err));
  return cfg;
}

static int32_t pid_of(pgpool_conn *conn) {
  int32_t pid = 0;
  EXPECT(PGPOOL_OK, pgpool_conn_backend_pid(conn, &pid, &err));
  CHECK(pid > 0);
  return pid;
}

/* Whether the server still has a session with this pid. */
static int alive(pgpool_pool *admin, int32_t pid) {
  char text[16];
  snprintf(text, sizeof text, "%d", pid);
  const char *params[1] = {text};
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_query(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int",
                                      1, params, &res, &err));
  int64_t n = -1;
  EXPECT(PGPOOL_OK, pgpool_result_get_int64(res, 0, 0, &n, &err));
  pgpool_result_free(res);
  return n > 0;
}

static void events_from_a_real_server(const char *url) {
  char app[64];
  snprintf(app, sizeof app, "c-events-%d", (int)getpid());
  pgpool_config *cfg = event_config(app);
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  pgpool_config_free(cfg);
  CHECK(freed_count() == 0); /* the pool still holds the callback */

  /* connect, acquire, release: one session, its pid everywhere. */
  pgpool_conn *conn = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, -1, &conn, &err));
  int32_t pid = pid_of(conn);
  uint64_t conn_id = 0;
  EXPECT(PGPOOL_OK, pgpool_conn_id(conn, &conn_id, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  int c = find(0, PGPOOL_EVENT_CONNECT, 0);
  CHECK(c >= 0);
  struct rec connect = at(c);
  CHECK(connect.size == sizeof(pgpool_event));
  CHECK(connect.backend_pid == pid && connect.conn_id == 1 && connect.duration_us > 0);
  CHECK(conn_id == connect.conn_id); /* pgpool_conn_id names the events' connection */
  CHECK(strcmp(connect.pool, "evtest") == 0 && strcmp(connect.kind_name, "connect") == 0);
  CHECK(connect.reason == PGPOOL_CLOSE_NONE && connect.reason_text[0] == '\0');
  CHECK(connect.error_code == PGPOOL_OK && connect.message[0] == '\0');
  int a = find(c, PGPOOL_EVENT_ACQUIRE, 1);
  CHECK(a > c);
  CHECK(at(a).backend_pid == pid && at(a).duration_us >= 0);
  int r = find(a, PGPOOL_EVENT_RELEASE, 1);
  CHECK(r > a);
  CHECK(at(r).backend_pid == pid && at(r).duration_us >= 0);

  /* Set the pool for the callback's re-entry checks, then acquire once more. */
  pthread_mutex_lock(&sink.lock);
  sink.pool = pool;
  pthread_mutex_unlock(&sink.lock);
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, -1, &conn, &err));
  pthread_mutex_lock(&sink.lock);
  CHECK(sink.reentry_checked && sink.reentry_rc == PGPOOL_ERR_USAGE);
  CHECK(sink.stats_rc == PGPOOL_OK);
  pthread_mutex_unlock(&sink.lock);

  /* A discard: REMOVE, reason "discarded", the same pid, the connection's age. */
  CHECK(pid_of(conn) == pid);
  sleep_ms(40);
  int before = count();
  EXPECT(PGPOOL_OK, pgpool_conn_discard(conn, &err));
  int d = find(before, PGPOOL_EVENT_REMOVE, 1);
  CHECK(d >= 0);
  CHECK(at(d).reason == PGPOOL_CLOSE_DISCARDED && strcmp(at(d).reason_text, "discarded") == 0);
  CHECK(at(d).backend_pid == pid && at(d).duration_us >= 30000);

  /* pg_terminate_backend on an idle session: the next acquire's check finds it dead
   * (ERROR naming the connection, REMOVE "failed_validation") and opens another. */
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, -1, &conn, &err));
  int32_t victim = pid_of(conn);
  CHECK(victim != pid);
  before = count();
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  uint64_t victim_id = at(find(before, PGPOOL_EVENT_RELEASE, 0)).conn_id;
  pgpool_pool *admin = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, NULL, &admin, &err));
  char text[16];
  snprintf(text, sizeof text, "%d", victim);
  const char *params[1] = {text};
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK,
         pgpool_pool_query(admin, "SELECT pg_terminate_backend($1::int)", 1, params, &res, &err));
  pgpool_result_free(res);
  for (int i = 0; i < 500 && alive(admin, victim); i++) sleep_ms(10);
  CHECK(!alive(admin, victim));
  before = count();
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, -1, &conn, &err));
  int32_t fresh = pid_of(conn);
  CHECK(fresh != victim);
  int e = find(before, PGPOOL_EVENT_ERROR, victim_id);
  CHECK(e >= 0);
  CHECK(at(e).backend_pid == victim && at(e).error_code == PGPOOL_ERR_BROKEN);
  CHECK(strcmp(at(e).sqlstate, "57P01") == 0 && at(e).message[0] != '\0');
  int t = find(e, PGPOOL_EVENT_REMOVE, victim_id);
  CHECK(t > e);
  CHECK(at(t).reason == PGPOOL_CLOSE_FAILED_VALIDATION && at(t).backend_pid == victim);
  CHECK(strcmp(at(t).reason_text, "failed_validation") == 0);
  int n = find(t, PGPOOL_EVENT_CONNECT, 0);
  CHECK(n > t && at(n).backend_pid == fresh);
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));

  /* Closing removes the rest ("pool_closed"); the last reference frees user_data once. */
  pthread_mutex_lock(&sink.lock);
  sink.pool = NULL;
  pthread_mutex_unlock(&sink.lock);
  before = count();
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, -1, &err));
  int p = find(before, PGPOOL_EVENT_REMOVE, 0);
  CHECK(p >= 0 && at(p).reason == PGPOOL_CLOSE_POOL_CLOSED && at(p).backend_pid == fresh);
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  for (int i = 0; i < 500 && freed_count() == 0; i++) sleep_ms(10);
  CHECK(freed_count() == 1);
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(admin));
  printf("events: %d from a real server, pids %d %d %d\n", count(), pid, victim, fresh);
}

static void a_refused_connect_is_an_error_event(void) {
  pthread_mutex_lock(&sink.lock);
  sink.n = 0;
  pthread_mutex_unlock(&sink.lock);
  pgpool_config *cfg = event_config("c-events-refused");
  EXPECT(PGPOOL_OK, pgpool_config_set_connect_timeout_ms(cfg, 2000, &err));
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK,
         pgpool_pool_create("postgres://nobody@127.0.0.1:1/none", cfg, &pool, &err));
  pgpool_config_free(cfg);
  pgpool_conn *conn = NULL;
  int rc = pgpool_pool_acquire(pool, 3000, &conn, &err);
  CHECK(rc == PGPOOL_ERR_CONNECT || rc == PGPOOL_ERR_TIMEOUT);
  int e = find(0, PGPOOL_EVENT_ERROR, 0);
  CHECK(e >= 0);
  struct rec ev = at(e);
  CHECK(ev.error_code == PGPOOL_ERR_CONNECT && ev.conn_id == 0 && ev.backend_pid == 0);
  CHECK(ev.message[0] != '\0' && strcmp(ev.kind_name, "error") == 0);
  CHECK(ev.duration_us == -1 && strcmp(ev.pool, "evtest") == 0);
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  for (int i = 0; i < 500 && freed_count() < 2; i++) sleep_ms(10);
  CHECK(freed_count() == 2);
  printf("refused connect: %s\n", ev.message);
}

static void callback_setter_errors(void) {
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT,
         pgpool_config_set_event_callback(NULL, on_event, &sink, free_sink, &err));
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  /* Replacing a callback lets go of the first one's user_data; NULL removes it. */
  int before = freed_count();
  EXPECT(PGPOOL_OK, pgpool_config_set_event_callback(cfg, on_event, &sink, free_sink, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_event_callback(cfg, NULL, NULL, NULL, &err));
  CHECK(freed_count() == before + 1);
  EXPECT(PGPOOL_OK, pgpool_config_set_env(cfg, false, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_env_aliases(cfg, true, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_config_free(cfg));
  /* A failed registration leaves user_data to the caller. */
  EXPECT(PGPOOL_ERR_INVALID_HANDLE,
         pgpool_config_set_event_callback(cfg, on_event, &sink, free_sink, &err));
  CHECK(freed_count() == before + 1);
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_config_set_env(cfg, true, &err));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_config_set_env_aliases(cfg, true, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_config_set_env(NULL, true, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_config_set_env_aliases(NULL, true, &err));
}

/* max_size of a pool made with these environment switches (-1: leave the default). */
static uint32_t max_size_with(const char *url, int env, int aliases) {
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  if (env >= 0) EXPECT(PGPOOL_OK, pgpool_config_set_env(cfg, env != 0, &err));
  if (aliases >= 0) EXPECT(PGPOOL_OK, pgpool_config_set_env_aliases(cfg, aliases != 0, &err));
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  pgpool_config_free(cfg);
  pgpool_stats st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &st, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  return st.max_size;
}

static void the_environment_layer_can_be_switched(const char *url) {
  CHECK(setenv("PGPOOL_MAX_SIZE", "3", 1) == 0);
  CHECK(max_size_with(url, -1, -1) == 3);
  CHECK(max_size_with(url, 1, -1) == 3);
  CHECK(max_size_with(url, 0, -1) == 10);
  /* A PGPOOL_ variable naming no option is an error only while the layer is read. */
  CHECK(setenv("PGPOOL_MAX_SIZ", "3", 1) == 0);
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create(url, NULL, &pool, &err));
  EXPECT_MSG("PGPOOL_MAX_SIZ");
  CHECK(max_size_with(url, 0, -1) == 10);
  CHECK(unsetenv("PGPOOL_MAX_SIZ") == 0);
  CHECK(unsetenv("PGPOOL_MAX_SIZE") == 0);
  /* node-postgres's PG_POOL_MAX only when the aliases are asked for, below PGPOOL_*. */
  CHECK(setenv("PG_POOL_MAX", "4", 1) == 0);
  CHECK(max_size_with(url, -1, -1) == 10);
  CHECK(max_size_with(url, -1, 1) == 4);
  CHECK(max_size_with(url, 0, 1) == 10);
  CHECK(setenv("PGPOOL_MAX_SIZE", "5", 1) == 0);
  CHECK(max_size_with(url, -1, 1) == 5);
  CHECK(unsetenv("PGPOOL_MAX_SIZE") == 0);
  /* Go database/sql's DB_MAX_OPEN_CONNS likewise. */
  CHECK(unsetenv("PG_POOL_MAX") == 0);
  CHECK(setenv("DB_MAX_OPEN_CONNS", "6", 1) == 0);
  CHECK(max_size_with(url, -1, 0) == 10);
  CHECK(max_size_with(url, -1, 1) == 6);
  CHECK(unsetenv("DB_MAX_OPEN_CONNS") == 0);
  printf("environment: PGPOOL_MAX_SIZE on/off, PG_POOL_MAX and DB_MAX_OPEN_CONNS as aliases\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: events URL\n");
    return 2;
  }
  events_from_a_real_server(argv[1]);
  a_refused_connect_is_an_error_event();
  callback_setter_errors();
  the_environment_layer_can_be_switched(argv[1]);
  pgpool_error_free(err);
  printf("EVENTS OK (%d checks)\n", checks);
  return 0;
}
