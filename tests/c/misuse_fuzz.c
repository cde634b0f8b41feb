/* Misuse fuzzing of the C ABI from several threads at once: bounded random sequences of calls
 * with NULL, stale (released or freed), made-up and wrong-type handles, invalid UTF-8,
 * wrong parameter counts, huge inputs, zero and negative sizes and NULL out-pointers, mixed
 * with valid calls (so stale handles of real objects exist). Every code a call returns must
 * be a known one (the test-hooks library also aborts when a function returns a code its
 * documentation does not list); a failure carries its detail object; nothing may crash,
 * leak or hit undefined behaviour (built with AddressSanitizer and UBSan).
 *
 * The program never breaks the API's memory contract itself: every buffer it passes is as
 * long as it says, and strings read back are read only from its own live objects. It frees
 * everything it made, so LeakSanitizer reports only memory the library itself lost. A call
 * that blocks for more than 8 s fails too.
 *
 * Usage: misuse_fuzz URL [seed|random] [seconds] [threads]
 * FUZZ_STATS=1 prints calls, successes and time per call site, and every call over 300 ms. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define LAST_CODE PGPOOL_ERR_FORKED
#define MAX_THREADS 16

static const char *url;
static pgpool_pool *shared_pool;
static double deadline_ms;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* --- handles of released or freed objects, shared by every thread -------------------------
 * A freed slot gets a new generation, so such a handle is never valid again: any thread may
 * use one and must get PGPOOL_ERR_INVALID_HANDLE. */

enum kind { K_CONFIG, K_POOL, K_CONN, K_STMT, K_PARAMS, K_RESULT, K_NOTE, K_ERROR, K_KINDS };
#define STALE_CAP 64
static uintptr_t stale[K_KINDS][STALE_CAP];
static unsigned stale_next[K_KINDS];

static void add_stale(int kind, const void *handle) {
  unsigned i = __atomic_fetch_add(&stale_next[kind], 1, __ATOMIC_RELAXED) % STALE_CAP;
  __atomic_store_n(&stale[kind][i], (uintptr_t)handle, __ATOMIC_RELAXED);
}

/* --- per-thread state ------------------------------------------------------------------- */

typedef struct {
  int id;
  uint64_t rng;
  /* The thread's own live objects (NULL when none): only these are read back. */
  pgpool_config *cfg;
  pgpool_pool *pool;
  pgpool_conn *conn[2];
  pgpool_stmt *stmt[2];
  pgpool_params *params[2];
  pgpool_result *res[3];
  pgpool_notification *note;
  const char *op; /* the call being checked, for failure messages */
  double started; /* when the current call began */
  long calls;
  long codes[LAST_CODE + 1];
  uint32_t types[65535]; /* parameter types for pgpool_stmt_new */
  struct {
    const char *op;
    long n, ok;
    double ms;
  } per_op[256]; /* calls per call site, for FUZZ_STATS=1 */
} T;

static uint64_t rnd(T *t) {
  /* xorshift64* */
  t->rng ^= t->rng >> 12;
  t->rng ^= t->rng << 25;
  t->rng ^= t->rng >> 27;
  return t->rng * 2685821657736338717ULL;
}

static int one_in(T *t, int n) { return rnd(t) % (uint64_t)n == 0; }

static void fail(T *t, const char *what, int rc, pgpool_error *e) {
  fprintf(stderr, "thread %d, call %ld (%s): %s: code %d (%s)%s%s\n", t->id, t->calls, t->op,
          what, rc, pgpool_code_name(rc), e ? ": " : "", e ? pgpool_error_message(e) : "");
  fflush(stderr);
  _exit(1);
}

/* A place for out_err: NULL now and then. */
static pgpool_error **err_arg(T *t, pgpool_error **e) {
  *e = NULL;
  return one_in(t, 5) ? NULL : e;
}

static int stats_wanted = 0;

/* Calls, successes and time per call site (printed with FUZZ_STATS=1, with every slow call). */
static void note_call(T *t, const char *op, int rc, double took, pgpool_error *e) {
  unsigned h = (unsigned)(((uintptr_t)op >> 3) % 256);
  for (unsigned k = 0; k < 256; k++, h = (h + 1) % 256) {
    if (t->per_op[h].op == NULL) t->per_op[h].op = op;
    if (t->per_op[h].op == op) {
      t->per_op[h].n++;
      t->per_op[h].ok += rc == PGPOOL_OK;
      t->per_op[h].ms += took;
      break;
    }
  }
  if (stats_wanted && took > 300)
    printf("slow: thread %d, call %ld, %.0f ms, code %d: %s: %s\n", t->id, t->calls, took, rc,
           op, e ? pgpool_error_message(e) : "");
}

/* Checks a returned code and its detail object, then frees the detail (sometimes keeping its
 * handle as a stale one). Returns rc. */
static int check(T *t, const char *op, int rc, pgpool_error **ep) {
  t->op = op;
  t->calls++;
  pgpool_error *e = ep ? *ep : NULL;
  if (rc < 0 || rc > LAST_CODE) fail(t, "unknown code", rc, NULL);
  if (strcmp(pgpool_code_name(rc), "unknown") == 0) fail(t, "unnamed code", rc, NULL);
  /* No fork here, and no injected panic: either would be a bug. */
  if (rc == PGPOOL_ERR_FORKED) fail(t, "forked without a fork", rc, e);
  if (rc == PGPOOL_ERR_PANIC) fail(t, "a panic inside the library", rc, e);
  t->codes[rc]++;
  double took = now_ms() - t->started;
  note_call(t, op, rc, took, e);
  /* The longest documented wait here is a cancel request's 5 s bound. */
  if (took > 8000) fail(t, "a call that blocked for more than 8 s", rc, e);
  if (ep != NULL) {
    if (rc == PGPOOL_OK && e != NULL) fail(t, "a detail object on success", rc, e);
    if (rc != PGPOOL_OK) {
      if (e == NULL) fail(t, "no detail object on failure", rc, NULL);
      if ((int)pgpool_error_code(e) != rc) fail(t, "the detail has another code", rc, e);
      if (strcmp(pgpool_error_category(e), pgpool_code_name(rc)) != 0)
        fail(t, "the detail has another category", rc, e);
      const char *m = pgpool_error_message(e);
      if (m == NULL || strlen(m) == 0) fail(t, "an empty message", rc, e);
      const char *state = pgpool_error_sqlstate(e);
      if (state != NULL && strlen(state) != 5) fail(t, "a bad SQLSTATE", rc, e);
      (void)pgpool_error_outcome_unknown(e);
      (void)pgpool_error_retry_safe(e);
      if (pgpool_error_free(e) != PGPOOL_OK) fail(t, "freeing the detail", rc, NULL);
      if (one_in(t, 8)) add_stale(K_ERROR, e);
    }
  }
  return rc;
}

#define CALL(expr) (t->started = now_ms(), check(t, #expr, (int)(expr), ep))
#define CALL_NO_ERR(expr) (t->started = now_ms(), check(t, #expr, (int)(expr), NULL))

/* --- argument pickers ------------------------------------------------------------------- */

static const uint8_t tags[] = {0xE5, 0xC0, 0xC1, 0x57, 0x4E, 0x9A, 0x90, 0x5E};

/* A number that is no live handle: anything random, a known tag with generation 0 (never
 * issued), a known tag with an index no table reaches, or a small integer. */
static void *made_up(T *t) {
  uint64_t v;
  switch (rnd(t) % 4) {
  case 0: v = rnd(t); break;
  case 1: v = ((uint64_t)tags[rnd(t) % 8] << 56) | ((rnd(t) & 0xFFFF) << 32); break;
  case 2:
    v = ((uint64_t)tags[rnd(t) % 8] << 56) | ((uint64_t)(0xFFF000 + rnd(t) % 0x1000) << 32) |
        (rnd(t) & 0xFFFFFFFF);
    break;
  default: v = 1 + rnd(t) % 4096; break;
  }
  return (void *)(uintptr_t)v;
}

static void *stale_of(T *t, int kind) {
  unsigned n = __atomic_load_n(&stale_next[kind], __ATOMIC_RELAXED);
  if (n == 0) return made_up(t);
  unsigned i = (unsigned)(rnd(t) % (n < STALE_CAP ? n : STALE_CAP));
  uintptr_t h = __atomic_load_n(&stale[kind][i], __ATOMIC_RELAXED);
  return h ? (void *)h : made_up(t);
}

/* One of the thread's own live objects of any kind but `kind` (or a stale one). */
static void *other_kind(T *t, int kind) {
  void *own[] = {t->cfg,    t->pool,      t->conn[0],   t->stmt[0],
                 t->res[0], t->params[0], t->note,      t->conn[1]};
  int kinds[] = {K_CONFIG, K_POOL, K_CONN, K_STMT, K_RESULT, K_PARAMS, K_NOTE, K_CONN};
  for (int tries = 0; tries < 4; tries++) {
    int i = (int)(rnd(t) % 8);
    if (kinds[i] != kind && own[i] != NULL) return own[i];
  }
  int k = (int)(rnd(t) % K_KINDS);
  return stale_of(t, k == kind ? (k + 1) % K_KINDS : k);
}

/* A handle argument of `kind`: mostly `own` (one of the thread's live objects, or NULL),
 * else NULL, stale, made-up or of another kind. */
static void *handle_arg(T *t, int kind, void *own) {
  switch (rnd(t) % 12) {
  case 0: return NULL;
  case 1:
  case 2: return stale_of(t, kind);
  case 3: return made_up(t);
  case 4: return other_kind(t, kind);
  default: return own;
  }
}

static pgpool_conn *own_conn(T *t) { return t->conn[rnd(t) % 2]; }
static pgpool_result *own_res(T *t) { return t->res[rnd(t) % 3]; }

/* The pool to use: the shared one, the thread's own, or a bad handle. */
static pgpool_pool *pool_arg(T *t) {
  return handle_arg(t, K_POOL, (t->pool && one_in(t, 3)) ? t->pool : shared_pool);
}

static char *big_sql, *big_bad_sql, *big_text, *big_bad_text;
#define BIG (2u << 20)

static const char *sql_arg(T *t);

static const char *good_sql(T *t) {
  static const char *good[] = {
      "SELECT 1::int8 AS i, 'x'::text AS t, NULL::int4 AS n, now() AS ts, true AS b, "
      "1.5::float8 AS f, '\\x01ff'::bytea AS y, 12.5::numeric AS m, '{1}'::int4[] AS a",
      "SELECT g, g::text || 'x' FROM generate_series(1, 5) g",
      "SELECT NULL::int4, NULL::text",
      "SELECT 42::int2, 4.5::float4, 'infinity'::timestamptz",
  };
  return good[rnd(t) % 4];
}

/* SQL for a call with `n` parameters: valid and without parameters now and then. */
static const char *sql_for(T *t, size_t n) {
  return n == 0 && one_in(t, 2) ? good_sql(t) : sql_arg(t);
}

static const char *sql_arg(T *t) {
  switch (rnd(t) % 20) {
  case 0: return NULL;
  case 1: return "";
  case 2: return "SELECT '\xff\xfe'";
  case 3: return "SELECT 'caf\xc3'";
  case 4: return "SELEC garbage";
  case 5: return "SELECT $1::int8";
  case 6: return "SELECT $1::text, $2::int4";
  case 7: return one_in(t, 8) ? (one_in(t, 2) ? big_sql : big_bad_sql) : "SELECT 2";
  case 8: return "COPY (SELECT 1) TO STDOUT";
  case 9: return "COPY fuzz_missing FROM STDIN";
  case 10: return "SELECT 1/0";
  case 11: return "BEGIN";
  case 12: return "ROLLBACK";
  case 13: return "SELECT 1; SELECT 2";
  case 14: return "SELECT NULL::int4, NULL::text";
  case 15: return "SELECT repeat('x', 100000)";
  default:
    return "SELECT 1::int8 AS i, 'x'::text AS t, NULL::int4 AS n, now() AS ts, true AS b, "
           "1.5::float8 AS f, '\\x01ff'::bytea AS y, 12.5::numeric AS m, '{1}'::int4[] AS a";
  }
}

/* Text parameters: the array always holds at least `*n` entries (65535 at most); counts the
 * library must refuse before reading the array go with a short one. */
static const char *many[65535];
static const char *const *params_arg(T *t, size_t *n, const char **small) {
  small[0] = "1";
  if (one_in(t, 3)) {
    /* A valid pair now and then, so that real results (and then stale ones) exist. */
    *n = 0;
    return NULL;
  }
  small[1] = one_in(t, 4) ? "\xff" : (one_in(t, 3) ? NULL : "2");
  small[2] = one_in(t, 20) ? big_text : (one_in(t, 20) ? big_bad_text : "x");
  switch (rnd(t) % 10) {
  case 0: *n = 0; return one_in(t, 2) ? NULL : small;
  case 1: *n = 2; return NULL;
  case 2: *n = 65536; return small;
  case 3: *n = SIZE_MAX; return small;
  case 4: *n = 65535; return many;
  default: *n = 1 + rnd(t) % 3; return small;
  }
}

static int64_t ms_arg(T *t) {
  static const int64_t v[] = {-5, -1, 0, 1, 5, 50, 1000, INT64_MAX, INT64_MIN, 2147483648LL};
  return v[rnd(t) % 10];
}

static void *out_or_null(T *t, void *out) { return one_in(t, 6) ? NULL : out; }

/* --- keeping the thread's own objects --------------------------------------------------- */

static void drop_result(T *t, pgpool_result *res) {
  if (res == NULL) return;
  if (pgpool_result_free(res) != PGPOOL_OK) fail(t, "freeing an own result", -1, NULL);
  add_stale(K_RESULT, res);
}

static void keep_result(T *t, pgpool_result *res) {
  if (res == NULL) return;
  int i = (int)(rnd(t) % 3);
  drop_result(t, t->res[i]);
  t->res[i] = res;
}

static void drop_conn(T *t, int i) {
  if (t->conn[i] == NULL) return;
  if (pgpool_conn_release(t->conn[i], NULL) != PGPOOL_OK) fail(t, "releasing own", -1, NULL);
  add_stale(K_CONN, t->conn[i]);
  t->conn[i] = NULL;
}

static void keep_conn(T *t, pgpool_conn *conn) {
  int i = (int)(rnd(t) % 2);
  drop_conn(t, i);
  t->conn[i] = conn;
}

/* After a call that ends an object: forget it when it was one of ours. */
static void forget_if_own(T *t, int kind, void *handle, int rc) {
  if (rc != PGPOOL_OK || handle == NULL) return;
  void **slots[3] = {NULL, NULL, NULL};
  switch (kind) {
  case K_CONFIG: slots[0] = (void **)&t->cfg; break;
  case K_POOL: slots[0] = (void **)&t->pool; break;
  case K_CONN: slots[0] = (void **)&t->conn[0]; slots[1] = (void **)&t->conn[1]; break;
  case K_STMT: slots[0] = (void **)&t->stmt[0]; slots[1] = (void **)&t->stmt[1]; break;
  case K_PARAMS: slots[0] = (void **)&t->params[0]; slots[1] = (void **)&t->params[1]; break;
  case K_RESULT:
    for (int i = 0; i < 3; i++) slots[i] = (void **)&t->res[i];
    break;
  case K_NOTE: slots[0] = (void **)&t->note; break;
  }
  for (int i = 0; i < 3; i++)
    if (slots[i] && *slots[i] == handle) *slots[i] = NULL;
  add_stale(kind, handle);
}

static int own_result(T *t, const pgpool_result *res) {
  return res != NULL && (res == t->res[0] || res == t->res[1] || res == t->res[2]);
}

/* --- the calls -------------------------------------------------------------------------- */

static int set_config(T *t, pgpool_config *cfg, pgpool_error **ep) {
  static const uint32_t u32s[] = {0, 1, 2, 3, 10001, UINT32_MAX};
  static const uint64_t u64s[] = {0, 1, 2, 1000, UINT64_MAX};
  uint32_t u = u32s[rnd(t) % 6];
  uint64_t w = u64s[rnd(t) % 5];
  int64_t ms = ms_arg(t);
  bool b = one_in(t, 2);
  switch (rnd(t) % 25) {
  case 0: return CALL(pgpool_config_set_max_size(cfg, u, ep));
  case 1: return CALL(pgpool_config_set_min_idle(cfg, u % 3, ep));
  case 2: return CALL(pgpool_config_set_max_idle(cfg, u, ep));
  case 3: return CALL(pgpool_config_set_max_lifetime_ms(cfg, ms, ep));
  case 4: return CALL(pgpool_config_set_idle_timeout_ms(cfg, ms, ep));
  case 5: return CALL(pgpool_config_set_acquire_timeout_ms(cfg, ms, ep));
  case 6: return CALL(pgpool_config_set_connect_timeout_ms(cfg, ms, ep));
  case 7: return CALL(pgpool_config_set_max_uses(cfg, w, ep));
  case 8: return CALL(pgpool_config_set_validate_on_acquire(cfg, b, ep));
  case 9: return CALL(pgpool_config_set_validation_skip_window_ms(cfg, ms, ep));
  case 10: return CALL(pgpool_config_set_validation_timeout_ms(cfg, ms, ep));
  case 11: return CALL(pgpool_config_set_keepalive_interval_ms(cfg, ms, ep));
  case 12: return CALL(pgpool_config_set_reaper_interval_ms(cfg, ms, ep));
  case 13: return CALL(pgpool_config_set_max_waiters(cfg, w, ep));
  case 14: return CALL(pgpool_config_set_close_timeout_ms(cfg, ms, ep));
  case 15: return CALL(pgpool_config_set_statement_timeout_ms(cfg, ms, ep));
  case 16: return CALL(pgpool_config_set_statement_cache_capacity(cfg, w, ep));
  case 17: return CALL(pgpool_config_set_tcp_user_timeout_ms(cfg, ms, ep));
  case 18: return CALL(pgpool_config_set_tcp_keepalive_idle_ms(cfg, ms, ep));
  case 19: return CALL(pgpool_config_set_query_timeout_ms(cfg, ms, ep));
  case 20: return CALL(pgpool_config_set_full_reset(cfg, b, ep));
  case 21: return CALL(pgpool_config_set_transaction_pooling(cfg, b, ep));
  case 22: return CALL(pgpool_config_set_application_name(cfg, big_text, ep));
  case 23: return CALL(pgpool_config_set_application_name(cfg, "bad\xff", ep));
  default:
    return CALL(pgpool_config_set_application_name(cfg, one_in(t, 4) ? NULL : "fuzz", ep));
  }
}

static int32_t tx_callback(pgpool_conn *conn, void *user_data) {
  T *t = user_data;
  pgpool_error *e, **ep = err_arg(t, &e);
  pgpool_result *res = NULL;
  CALL(pgpool_conn_query(conn, one_in(t, 3) ? "SELECT 1/0" : "SELECT 1", 0, NULL,
                         out_or_null(t, &res), ep));
  drop_result(t, res);
  return (int32_t)(rnd(t) % 3);
}

static long log_lines = 0;
static void log_callback(int32_t level, const char *message, void *user_data) {
  (void)user_data;
  if (level >= 1 && level <= 5 && message != NULL && strlen(message) < (1u << 24))
    __atomic_add_fetch(&log_lines, 1, __ATOMIC_RELAXED);
}

static void read_result(T *t, pgpool_error **ep) {
  pgpool_result *res = handle_arg(t, K_RESULT, own_res(t));
  int own = own_result(t, res);
  static const uint64_t rows[] = {0, 0, 0, 1, 2, UINT64_MAX};
  static const uint32_t cols[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, UINT32_MAX};
  uint64_t row = rows[rnd(t) % 6];
  uint32_t col = cols[rnd(t) % 11];
  uint64_t u = 0;
  uint32_t u32 = 0;
  int64_t i = 0;
  double d = 0;
  bool b = false;
  const char *text = NULL;
  const uint8_t *data = NULL;
  size_t len = 0;
  int rc;
  switch (rnd(t) % 14) {
  case 0: CALL(pgpool_result_nrows(res, out_or_null(t, &u), ep)); break;
  case 1: CALL(pgpool_result_ncols(res, out_or_null(t, &u32), ep)); break;
  case 2: CALL(pgpool_result_affected_rows(res, out_or_null(t, &u), ep)); break;
  case 3:
    rc = CALL(pgpool_result_column_name(res, col, out_or_null(t, &text), ep));
    if (rc == PGPOOL_OK && own && text && strlen(text) > 63) fail(t, "a long name", rc, NULL);
    break;
  case 4: CALL(pgpool_result_column_type(res, col, out_or_null(t, &u32), ep)); break;
  case 5:
    rc = CALL(pgpool_result_column_type_name(res, col, out_or_null(t, &text), ep));
    if (rc == PGPOOL_OK && own && text) (void)strlen(text);
    break;
  case 6: CALL(pgpool_result_is_null(res, row, col, out_or_null(t, &b), ep)); break;
  case 7:
    rc = CALL(pgpool_result_value(res, row, col, out_or_null(t, &text), out_or_null(t, &len),
                                  out_or_null(t, &b), ep));
    if (rc == PGPOOL_OK && own && text && text[len] != '\0') fail(t, "unterminated", rc, NULL);
    break;
  case 8:
    rc = CALL(pgpool_result_get_text(res, row, col, out_or_null(t, &text),
                                     out_or_null(t, &len), ep));
    if (rc == PGPOOL_OK && own && text && len > 0 && (text[0] == '\0' || text[len - 1] == 0))
      fail(t, "a text with a NUL", rc, NULL);
    break;
  case 9:
    rc = CALL(pgpool_result_get_bytea(res, row, col, out_or_null(t, &data),
                                      out_or_null(t, &len), ep));
    if (rc == PGPOOL_OK && own && data && len > 0) (void)(data[0] + data[len - 1]);
    break;
  case 10: CALL(pgpool_result_get_int64(res, row, col, out_or_null(t, &i), ep)); break;
  case 11: CALL(pgpool_result_get_double(res, row, col, out_or_null(t, &d), ep)); break;
  case 12: CALL(pgpool_result_get_bool(res, row, col, out_or_null(t, &b), ep)); break;
  default: CALL(pgpool_result_get_timestamp(res, row, col, out_or_null(t, &i), ep)); break;
  }
}

static void add_param(T *t, pgpool_params *p, pgpool_error **ep) {
  static const uint32_t oids[] = {0, 16, 20, 23, 25, 1700, 3802, 999999, UINT32_MAX};
  static const uint8_t blob[4] = {0, 1, 2, 255};
  switch (rnd(t) % 14) {
  case 0: CALL(pgpool_params_add_null(p, ep)); break;
  case 1: CALL(pgpool_params_add_bool(p, one_in(t, 2), ep)); break;
  case 2: CALL(pgpool_params_add_int16(p, (int16_t)rnd(t), ep)); break;
  case 3: CALL(pgpool_params_add_int32(p, (int32_t)rnd(t), ep)); break;
  case 4: CALL(pgpool_params_add_int64(p, (int64_t)rnd(t), ep)); break;
  case 5: CALL(pgpool_params_add_float4(p, (float)(int32_t)rnd(t) / 7.0f, ep)); break;
  case 6: CALL(pgpool_params_add_float8(p, one_in(t, 3) ? (double)INFINITY : 2.5, ep)); break;
  case 7: CALL(pgpool_params_add_text(p, "abc", rnd(t) % 4, ep)); break;
  case 8: CALL(pgpool_params_add_text(p, one_in(t, 2) ? NULL : "\xff\xfe", rnd(t) % 3, ep)); break;
  case 9: CALL(pgpool_params_add_text(p, "x", SIZE_MAX, ep)); break;
  case 10:
    if (one_in(t, 8))
      CALL(pgpool_params_add_text(p, one_in(t, 2) ? big_text : big_bad_text, BIG, ep));
    break;
  case 11: CALL(pgpool_params_add_bytea(p, one_in(t, 3) ? NULL : blob, rnd(t) % 5, ep)); break;
  case 12: CALL(pgpool_params_add_bytea(p, blob, SIZE_MAX, ep)); break;
  default:
    CALL(pgpool_params_add_typed_text(p, oids[rnd(t) % 9],
                                      one_in(t, 4) ? NULL : (one_in(t, 3) ? "\xc3" : "42"), ep));
    break;
  }
}

/* 65535 parameters, then one more (refused). */
static void fill_params(T *t, pgpool_params *p, pgpool_error **ep) {
  int rc = PGPOOL_OK;
  for (int i = 0; i < 65535 && rc == PGPOOL_OK; i++) rc = CALL(pgpool_params_add_int32(p, i, ep));
  CALL(pgpool_params_add_null(p, ep));
}

static void one_call(T *t) {
  pgpool_error *e, **ep = err_arg(t, &e);
  pgpool_conn *conn = NULL;
  pgpool_result *res = NULL;
  size_t n = 0;
  const char *small[3];
  const char *const *tparams;
  int rc, i;
  char buf[256];
  switch (rnd(t) % 48) {
  /* configs */
  case 0: {
    pgpool_config *cfg = NULL;
    rc = CALL(pgpool_config_new(out_or_null(t, &cfg), ep));
    if (rc == PGPOOL_OK && cfg) {
      if (t->cfg) forget_if_own(t, K_CONFIG, t->cfg, pgpool_config_free(t->cfg));
      t->cfg = cfg;
    }
    break;
  }
  case 1:
  case 2: set_config(t, handle_arg(t, K_CONFIG, t->cfg), ep); break;
  case 3: {
    pgpool_config *cfg = handle_arg(t, K_CONFIG, t->cfg);
    forget_if_own(t, K_CONFIG, cfg, CALL_NO_ERR(pgpool_config_free(cfg)));
    break;
  }
  /* pools */
  case 4: {
    /* Any arguments; a pool made is freed at once. */
    static const char *bad[] = {"host=\xff\xfe", "postgres://%%%", "", "port=notanumber",
                                "sslmode=bogus host=localhost"};
    const char *conninfo = one_in(t, 3) ? url : (one_in(t, 8) ? big_text : bad[rnd(t) % 5]);
    if (one_in(t, 10)) conninfo = NULL;
    pgpool_pool *p = NULL;
    rc = CALL(pgpool_pool_create(conninfo, handle_arg(t, K_CONFIG, t->cfg), out_or_null(t, &p),
                                 ep));
    if (rc == PGPOOL_OK && p) {
      if (pgpool_pool_free(p) != PGPOOL_OK) fail(t, "freeing a new pool", -1, NULL);
      add_stale(K_POOL, p);
    }
    break;
  }
  case 5: {
    /* The thread's own pool, from its config with bounded waits. */
    if (t->pool != NULL || t->cfg == NULL || !one_in(t, 3)) break;
    pgpool_config_set_max_size(t->cfg, 3, NULL);
    pgpool_config_set_min_idle(t->cfg, 0, NULL);
    pgpool_config_set_acquire_timeout_ms(t->cfg, 200, NULL);
    pgpool_config_set_connect_timeout_ms(t->cfg, 2000, NULL);
    pgpool_config_set_close_timeout_ms(t->cfg, 100, NULL);
    pgpool_config_set_application_name(t->cfg, "fuzz-own", NULL);
    CALL(pgpool_pool_create(url, t->cfg, &t->pool, ep));
    break;
  }
  case 6:
  case 7: {
    static const int64_t timeouts[] = {0, 0, 20, 100};
    pgpool_pool *p = pool_arg(t);
    int64_t timeout = (p == shared_pool && one_in(t, 4)) ? -1 : timeouts[rnd(t) % 4];
    rc = CALL(pgpool_pool_acquire(p, timeout, out_or_null(t, &conn), ep));
    if (rc == PGPOOL_OK && conn) keep_conn(t, conn);
    break;
  }
  case 8:
    rc = CALL(pgpool_pool_try_acquire(pool_arg(t), out_or_null(t, &conn), ep));
    if (rc == PGPOOL_OK && conn) keep_conn(t, conn);
    break;
  case 9:
    tparams = params_arg(t, &n, small);
    rc = CALL(pgpool_pool_query(pool_arg(t), sql_for(t, n), n, tparams, out_or_null(t, &res), ep));
    if (rc == PGPOOL_OK) keep_result(t, res);
    break;
  case 10: {
    pgpool_result *reuse = one_in(t, 2) ? NULL : handle_arg(t, K_RESULT, own_res(t));
    pgpool_result *before = reuse;
    pgpool_pool *p = pool_arg(t);
    int64_t timeout = (p == shared_pool && one_in(t, 3)) ? -1 : (int64_t)(rnd(t) % 50);
    uint64_t affected = 0;
    rc = CALL(pgpool_pool_exec(p, timeout,
                               one_in(t, 3) ? handle_arg(t, K_STMT, t->stmt[rnd(t) % 2]) : NULL,
                               sql_arg(t), handle_arg(t, K_PARAMS, t->params[rnd(t) % 2]),
                               one_in(t, 4) ? NULL : &reuse, out_or_null(t, &affected), ep));
    if (rc == PGPOOL_OK && before == NULL && reuse != NULL) keep_result(t, reuse);
    break;
  }
  case 11: {
    union {
      pgpool_stats s;
      char room[512];
    } out;
    memset(&out, 0, sizeof out);
    static const uint32_t sizes[] = {0, 4, 7, 8, 12, sizeof(pgpool_stats), 512};
    out.s.size = sizes[rnd(t) % 7];
    rc = CALL(pgpool_pool_stats(pool_arg(t), out_or_null(t, &out.s), ep));
    if (rc == PGPOOL_OK && out.s.size > sizeof(pgpool_stats)) fail(t, "filled too much", rc, 0);
    break;
  }
  case 12: {
    if (!one_in(t, 4)) break;
    union {
      pgpool_health h;
      char room[512];
    } out;
    memset(&out, 0, sizeof out);
    out.h.size = one_in(t, 3) ? 3 : (one_in(t, 2) ? 8 : sizeof(pgpool_health));
    rc = CALL(pgpool_pool_health(pool_arg(t), out_or_null(t, &out.h), ep));
    if (out.h.size >= sizeof(pgpool_health) && strnlen(out.h.database, 64) == 64)
      fail(t, "an unterminated database name", rc, NULL);
    break;
  }
  case 13: CALL(pgpool_pool_wait_ready(pool_arg(t), (int64_t)(rnd(t) % 3) * 5, ep)); break;
  case 14: {
    /* Connections of the pool stay usable after it is closed or freed. */
    pgpool_pool *p = handle_arg(t, K_POOL, t->pool);
    CALL(pgpool_pool_close(p, (int64_t)(rnd(t) % 3) * 50 - 50, ep));
    if (p == t->pool && p != NULL && one_in(t, 2))
      forget_if_own(t, K_POOL, p, CALL_NO_ERR(pgpool_pool_free(p)));
    break;
  }
  case 15: {
    pgpool_pool *p = handle_arg(t, K_POOL, t->pool);
    forget_if_own(t, K_POOL, p, CALL_NO_ERR(pgpool_pool_free(p)));
    break;
  }
  /* connections */
  case 16:
  case 17:
    tparams = params_arg(t, &n, small);
    rc = CALL(pgpool_conn_query(handle_arg(t, K_CONN, own_conn(t)), sql_for(t, n), n, tparams,
                                out_or_null(t, &res), ep));
    if (rc == PGPOOL_OK) keep_result(t, res);
    break;
  case 18: {
    uint64_t rows = 0;
    tparams = params_arg(t, &n, small);
    CALL(pgpool_conn_execute(handle_arg(t, K_CONN, own_conn(t)), sql_for(t, n), n, tparams,
                             out_or_null(t, &rows), ep));
    break;
  }
  case 19: CALL(pgpool_conn_batch(handle_arg(t, K_CONN, own_conn(t)), sql_arg(t), ep)); break;
  case 20:
    switch (rnd(t) % 3) {
    case 0: CALL(pgpool_conn_begin(handle_arg(t, K_CONN, own_conn(t)), ep)); break;
    case 1: CALL(pgpool_conn_commit(handle_arg(t, K_CONN, own_conn(t)), ep)); break;
    default: CALL(pgpool_conn_rollback(handle_arg(t, K_CONN, own_conn(t)), ep)); break;
    }
    break;
  case 21: {
    int32_t v = 0;
    uint64_t id = 0;
    if (one_in(t, 3))
      CALL(pgpool_conn_backend_pid(handle_arg(t, K_CONN, own_conn(t)), out_or_null(t, &v), ep));
    else if (one_in(t, 2))
      CALL(pgpool_conn_id(handle_arg(t, K_CONN, own_conn(t)), out_or_null(t, &id), ep));
    else
      CALL(pgpool_conn_transaction_status(handle_arg(t, K_CONN, own_conn(t)),
                                          out_or_null(t, &v), ep));
    break;
  }
  case 22:
    CALL(pgpool_conn_set_query_timeout(handle_arg(t, K_CONN, own_conn(t)), ms_arg(t), ep));
    break;
  case 23: {
    int32_t cb = 0;
    CALL(pgpool_conn_transaction(handle_arg(t, K_CONN, own_conn(t)),
                                 one_in(t, 5) ? NULL : tx_callback, t, out_or_null(t, &cb), ep));
    break;
  }
  case 24:
    if (one_in(t, 4)) CALL(pgpool_conn_cancel(handle_arg(t, K_CONN, own_conn(t)), ep));
    break;
  case 25:
  case 26: {
    pgpool_conn *c = handle_arg(t, K_CONN, own_conn(t));
    if (one_in(t, 2))
      forget_if_own(t, K_CONN, c, CALL(pgpool_conn_release(c, ep)));
    else
      forget_if_own(t, K_CONN, c, CALL(pgpool_conn_discard(c, ep)));
    break;
  }
  /* COPY */
  case 27: {
    pgpool_conn *c = handle_arg(t, K_CONN, own_conn(t));
    if (one_in(t, 2)) {
      pgpool_conn_batch(c, "CREATE TEMP TABLE IF NOT EXISTS fuzz_copy (a text, b int)", NULL);
      CALL(pgpool_conn_copy_in_begin(c, one_in(t, 4) ? sql_arg(t) : "COPY fuzz_copy FROM STDIN",
                                     ep));
    } else {
      CALL(pgpool_conn_copy_out_begin(c, one_in(t, 4) ? sql_arg(t)
                                                      : "COPY (SELECT g, 'r' || g FROM "
                                                        "generate_series(1, 50) g) TO STDOUT",
                                      ep));
    }
    break;
  }
  case 28: {
    static const char rows[] = "a\t1\nb\t2\nbroken row\n\xff\t3\n";
    size_t len = one_in(t, 6) ? SIZE_MAX : rnd(t) % sizeof rows;
    CALL(pgpool_conn_copy_in_write(handle_arg(t, K_CONN, own_conn(t)),
                                   one_in(t, 6) ? NULL : rows, len, ep));
    break;
  }
  case 29:
    if (one_in(t, 2)) {
      uint64_t rows = 0;
      CALL(pgpool_conn_copy_in_end(handle_arg(t, K_CONN, own_conn(t)), out_or_null(t, &rows),
                                   ep));
    } else {
      CALL(pgpool_conn_copy_in_abort(handle_arg(t, K_CONN, own_conn(t)),
                                     one_in(t, 2) ? NULL : (one_in(t, 2) ? "why" : "\xff"), ep));
    }
    break;
  case 30: {
    size_t len = 0;
    uint64_t rows = 0;
    static const size_t caps[] = {0, 1, 7, sizeof buf};
    CALL(pgpool_conn_copy_out_read(handle_arg(t, K_CONN, own_conn(t)), out_or_null(t, buf),
                                   caps[rnd(t) % 4], out_or_null(t, &len), out_or_null(t, &rows),
                                   ep));
    break;
  }
  /* notifications */
  case 31: {
    pgpool_conn *c = own_conn(t);
    if (c && one_in(t, 2)) {
      snprintf(buf, sizeof buf, "LISTEN fuzz_%d_%d; NOTIFY fuzz_%d_%d, 'payload %ld'", t->id,
               getpid(), t->id, getpid(), t->calls);
      CALL(pgpool_conn_batch(c, buf, ep));
    } else {
      pgpool_notification *note = NULL;
      rc = CALL(pgpool_conn_wait_notification(handle_arg(t, K_CONN, c), (int64_t)(rnd(t) % 3),
                                              out_or_null(t, &note), ep));
      if (rc == PGPOOL_OK && note) {
        if (t->note) forget_if_own(t, K_NOTE, t->note, pgpool_notification_free(t->note));
        t->note = note;
        if (strncmp(pgpool_notification_channel(note), "fuzz_", 5) != 0 ||
            strncmp(pgpool_notification_payload(note), "payload", 7) != 0 ||
            pgpool_notification_process_id(note) <= 0)
          fail(t, "a wrong notification", rc, NULL);
      }
    }
    break;
  }
  case 32: {
    pgpool_notification *note = handle_arg(t, K_NOTE, t->note);
    const char *ch = pgpool_notification_channel(note);
    const char *pl = pgpool_notification_payload(note);
    int32_t pid = pgpool_notification_process_id(note);
    t->op = "pgpool_notification_* getters";
    if ((ch == NULL) != (pl == NULL) || (ch == NULL && pid != 0))
      fail(t, "inconsistent notification getters", 0, NULL);
    if (note == t->note && note != NULL) (void)(strlen(ch) + strlen(pl));
    forget_if_own(t, K_NOTE, note,
                  one_in(t, 2) ? CALL_NO_ERR(pgpool_notification_free(note)) : -1);
    break;
  }
  /* typed execution */
  case 33:
  case 34: {
    pgpool_result *reuse = one_in(t, 2) ? NULL : handle_arg(t, K_RESULT, own_res(t));
    pgpool_result *before = reuse;
    uint64_t affected = 0;
    pgpool_conn *c = handle_arg(t, K_CONN, own_conn(t));
    pgpool_params *p = one_in(t, 3) ? NULL : handle_arg(t, K_PARAMS, t->params[rnd(t) % 2]);
    if (one_in(t, 2))
      rc = CALL(pgpool_conn_exec(c, sql_arg(t), p, one_in(t, 4) ? NULL : &reuse,
                                 out_or_null(t, &affected), ep));
    else
      rc = CALL(pgpool_conn_exec_stmt(c, handle_arg(t, K_STMT, t->stmt[rnd(t) % 2]), p,
                                      one_in(t, 4) ? NULL : &reuse, out_or_null(t, &affected),
                                      ep));
    if (rc == PGPOOL_OK && before == NULL && reuse != NULL) keep_result(t, reuse);
    break;
  }
  case 35: {
    static const size_t counts[] = {0, 1, 2, 3, 65535, 65536, SIZE_MAX};
    size_t count = counts[rnd(t) % 7];
    pgpool_stmt *stmt = NULL;
    t->types[rnd(t) % 3] = (uint32_t)(one_in(t, 2) ? 20 : rnd(t));
    rc = CALL(pgpool_stmt_new(sql_arg(t), count, one_in(t, 5) ? NULL : t->types,
                              out_or_null(t, &stmt), ep));
    if (rc == PGPOOL_OK && stmt) {
      i = (int)(rnd(t) % 2);
      if (t->stmt[i]) forget_if_own(t, K_STMT, t->stmt[i], pgpool_stmt_free(t->stmt[i]));
      t->stmt[i] = stmt;
    }
    break;
  }
  case 36: {
    pgpool_stmt *stmt = handle_arg(t, K_STMT, t->stmt[rnd(t) % 2]);
    forget_if_own(t, K_STMT, stmt, CALL_NO_ERR(pgpool_stmt_free(stmt)));
    break;
  }
  /* parameter lists */
  case 37: {
    pgpool_params *p = NULL;
    rc = CALL(pgpool_params_new(out_or_null(t, &p), ep));
    if (rc == PGPOOL_OK && p) {
      i = (int)(rnd(t) % 2);
      if (t->params[i])
        forget_if_own(t, K_PARAMS, t->params[i], pgpool_params_free(t->params[i]));
      t->params[i] = p;
    }
    break;
  }
  case 38:
  case 39: add_param(t, handle_arg(t, K_PARAMS, t->params[rnd(t) % 2]), ep); break;
  case 40:
    if (one_in(t, 30))
      fill_params(t, handle_arg(t, K_PARAMS, t->params[rnd(t) % 2]), ep);
    else
      CALL(pgpool_params_clear(handle_arg(t, K_PARAMS, t->params[rnd(t) % 2]), ep));
    break;
  case 41: {
    pgpool_params *p = handle_arg(t, K_PARAMS, t->params[rnd(t) % 2]);
    forget_if_own(t, K_PARAMS, p, CALL_NO_ERR(pgpool_params_free(p)));
    break;
  }
  /* results */
  case 42:
  case 43: read_result(t, ep); break;
  case 44: {
    pgpool_result *r = handle_arg(t, K_RESULT, own_res(t));
    forget_if_own(t, K_RESULT, r, CALL_NO_ERR(pgpool_result_free(r)));
    break;
  }
  /* errors, codes, version, log */
  case 45: {
    pgpool_error *bad = handle_arg(t, K_ERROR, NULL);
    t->op = "pgpool_error_* on a bad handle";
    if (bad != NULL && pgpool_error_code(bad) != PGPOOL_ERR_INVALID_HANDLE)
      fail(t, "a bad error handle's code", (int)pgpool_error_code(bad), NULL);
    if (pgpool_error_message(bad) == NULL || pgpool_error_category(bad) == NULL)
      fail(t, "a NULL string", 0, NULL);
    (void)strlen(pgpool_error_message(bad));
    if (pgpool_error_sqlstate(bad) != NULL || pgpool_error_outcome_unknown(bad) ||
        pgpool_error_retry_safe(bad))
      fail(t, "a bad error handle with details", 0, NULL);
    CALL_NO_ERR(pgpool_error_free(bad));
    break;
  }
  case 46: {
    int32_t code = one_in(t, 2) ? (int32_t)(rnd(t) % 30) - 5 : (int32_t)rnd(t);
    const char *name = pgpool_code_name(code);
    t->op = "pgpool_code_name";
    if (name == NULL || (code >= 0 && code <= LAST_CODE) != (strcmp(name, "unknown") != 0))
      fail(t, "a code's name", code, NULL);
    if (strcmp(pgpool_version(), PGPOOL_VERSION_STRING) != 0) fail(t, "the version", 0, NULL);
    break;
  }
  default:
    if (one_in(t, 10))
      CALL(pgpool_log_set_callback(one_in(t, 2) ? log_callback : NULL, NULL,
                                   (int32_t)(rnd(t) % 8) - 1, ep));
    break;
  }
}

static void *run(void *arg) {
  T *t = arg;
  while (now_ms() < deadline_ms) one_call(t);
  /* Everything the thread still owns goes back, so the leak check sees none of it. */
  for (int i = 0; i < 2; i++) drop_conn(t, i);
  for (int i = 0; i < 3; i++) drop_result(t, t->res[i]);
  for (int i = 0; i < 2; i++) {
    if (pgpool_stmt_free(t->stmt[i]) != PGPOOL_OK) fail(t, "stmt_free at the end", -1, NULL);
    if (pgpool_params_free(t->params[i]) != PGPOOL_OK) fail(t, "params_free at the end", -1, 0);
  }
  if (pgpool_notification_free(t->note) != PGPOOL_OK) fail(t, "notification_free", -1, NULL);
  if (t->pool) {
    pgpool_pool_close(t->pool, 1000, NULL);
    if (pgpool_pool_free(t->pool) != PGPOOL_OK) fail(t, "pool_free at the end", -1, NULL);
  }
  if (pgpool_config_free(t->cfg) != PGPOOL_OK) fail(t, "config_free at the end", -1, NULL);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL [seed] [seconds] [threads]\n", argv[0]);
    return 2;
  }
  url = argv[1];
  uint64_t seed = argc > 2 && strcmp(argv[2], "random") != 0
                      ? strtoull(argv[2], NULL, 0)
                      : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  double seconds = argc > 3 ? atof(argv[3]) : 10;
  int threads = argc > 4 ? atoi(argv[4]) : 4;
  if (threads < 1 || threads > MAX_THREADS) threads = 4;
  stats_wanted = getenv("FUZZ_STATS") != NULL;
  printf("seed %llu, %d threads, %.1f s\n", (unsigned long long)seed, threads, seconds);
  fflush(stdout);

  big_sql = malloc(BIG + 64);
  big_bad_sql = malloc(BIG + 64);
  big_text = malloc(BIG + 1);
  big_bad_text = malloc(BIG + 1);
  CHECK(big_sql && big_bad_sql && big_text && big_bad_text);
  memset(big_text, 'a', BIG);
  big_text[BIG] = '\0';
  memcpy(big_bad_text, big_text, BIG + 1);
  big_bad_text[BIG - 1] = '\xff';
  snprintf(big_sql, BIG + 64, "SELECT length('%s')", big_text);
  snprintf(big_bad_sql, BIG + 64, "SELECT length('%s')", big_bad_text);
  for (size_t i = 0; i < 65535; i++) many[i] = i % 97 == 0 ? NULL : "7";

  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 12, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_acquire_timeout_ms(cfg, 2000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_statement_timeout_ms(cfg, 5000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, "c-misuse-fuzz", &err));
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &shared_pool, &err));
  EXPECT(PGPOOL_OK, pgpool_config_free(cfg));

  static T state[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  deadline_ms = now_ms() + seconds * 1000;
  for (int i = 0; i < threads; i++) {
    state[i].id = i;
    state[i].rng = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 0xBF58476D1CE4E5B9ULL + 1;
    if (state[i].rng == 0) state[i].rng = 1;
    pthread_create(&tids[i], NULL, run, &state[i]);
  }
  long calls = 0, codes[LAST_CODE + 1] = {0};
  for (int i = 0; i < threads; i++) {
    pthread_join(tids[i], NULL);
    calls += state[i].calls;
    for (int c = 0; c <= LAST_CODE; c++) codes[c] += state[i].codes[c];
  }
  /* The shared pool survived it all. */
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_query(shared_pool, "SELECT 41 + 1", 0, NULL, &res, &err));
  const char *text = NULL;
  size_t len = 0;
  bool is_null = true;
  EXPECT(PGPOOL_OK, pgpool_result_value(res, 0, 0, &text, &len, &is_null, &err));
  CHECK(!is_null && strcmp(text, "42") == 0);
  pgpool_result_free(res);
  EXPECT(PGPOOL_OK, pgpool_log_set_callback(NULL, NULL, 0, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_close(shared_pool, 5000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(shared_pool));
  free(big_sql);
  free(big_bad_sql);
  free(big_text);
  free(big_bad_text);
  if (stats_wanted)
    for (int i = 0; i < threads; i++)
      for (int h = 0; h < 256; h++)
        if (state[i].per_op[h].op)
          printf("thread %d: %7ld calls, %7ld ok, %7.0f ms: %.70s\n", i, state[i].per_op[h].n,
                 state[i].per_op[h].ok, state[i].per_op[h].ms, state[i].per_op[h].op);
  printf("codes:");
  for (int c = 0; c <= LAST_CODE; c++)
    if (codes[c]) printf(" %s %ld", pgpool_code_name(c), codes[c]);
  printf("\nFUZZ OK: seed %llu, %ld calls in %d threads, %ld log lines\n",
         (unsigned long long)seed, calls, threads, log_lines);
  return 0;
}
