/* Exercises every exported function and every documented error path of libpgpool.
 * Usage: api URL [panic]   ("panic" when the library was built with the test-hooks feature) */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

static const char *url;

static pgpool_result *query(pgpool_conn *conn, const char *sql, size_t n, const char **params) {
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_conn_query(conn, sql, n, params, &res, &err));
  return res;
}

static const char *text_at(pgpool_result *res, uint64_t row, uint32_t col) {
  const char *text = NULL;
  size_t len = 0;
  bool is_null = true;
  EXPECT(PGPOOL_OK, pgpool_result_value(res, row, col, &text, &len, &is_null, &err));
  CHECK(!is_null && text != NULL && strlen(text) == len);
  return text;
}

static void config_paths(void) {
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_config_new(NULL, &err));
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 4, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_min_idle(cfg, 1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_idle(cfg, 4, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_lifetime_ms(cfg, -1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_idle_timeout_ms(cfg, 60000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_acquire_timeout_ms(cfg, 5000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_connect_timeout_ms(cfg, 5000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_uses(cfg, 0, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_validate_on_acquire(cfg, true, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_validation_skip_window_ms(cfg, 500, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_validation_timeout_ms(cfg, 2000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_keepalive_interval_ms(cfg, 30000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_reaper_interval_ms(cfg, 500, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_waiters(cfg, 0, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_close_timeout_ms(cfg, 2000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_statement_timeout_ms(cfg, 10000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_query_timeout_ms(cfg, -1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_full_reset(cfg, false, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_transaction_pooling(cfg, false, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_config_set_full_reset(NULL, true, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_statement_cache_capacity(cfg, 64, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_tcp_user_timeout_ms(cfg, 5000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_tcp_keepalive_idle_ms(cfg, 5000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, "c-api-test", &err));
  /* NULL handle, NULL string, invalid UTF-8, value no option can take. */
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_config_set_max_size(NULL, 4, &err));
  EXPECT_MSG("cfg");
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_config_set_application_name(cfg, NULL, &err));
  EXPECT(PGPOOL_ERR_INVALID_UTF8, pgpool_config_set_application_name(cfg, "bad\xff\xfe", &err));
  EXPECT(PGPOOL_ERR_INVALID_ARGUMENT, pgpool_config_set_acquire_timeout_ms(cfg, -5, &err));
  EXPECT_MSG("acquire_timeout_ms");
  /* Range errors surface at create, naming the option. */
  pgpool_pool *pool = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_set_min_idle(cfg, 9, &err));
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create(url, cfg, &pool, &err));
  EXPECT_MSG("min_idle");
  CHECK(pool == NULL);
  EXPECT(PGPOOL_OK, pgpool_config_set_min_idle(cfg, 1, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_create(NULL, cfg, &pool, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_create(url, cfg, NULL, &err));
  EXPECT(PGPOOL_ERR_INVALID_UTF8, pgpool_pool_create("host=\xff", cfg, &pool, &err));
  /* Settings that every connect would reject are refused at create time, naming the option. */
  EXPECT(PGPOOL_OK, pgpool_config_set_statement_timeout_ms(cfg, 2147483648LL, &err));
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create(url, cfg, &pool, &err));
  EXPECT_MSG("statement_timeout");
  EXPECT(PGPOOL_OK, pgpool_config_set_statement_timeout_ms(cfg, 10000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_tcp_user_timeout_ms(cfg, 2147483648LL, &err));
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create(url, cfg, &pool, &err));
  EXPECT_MSG("tcp_user_timeout");
  EXPECT(PGPOOL_OK, pgpool_config_set_tcp_user_timeout_ms(cfg, 10000, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_tcp_keepalive_idle_ms(cfg, 999, &err));
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create(url, cfg, &pool, &err));
  EXPECT_MSG("tcp_keepalive_idle");
  EXPECT(PGPOOL_OK, pgpool_config_set_tcp_keepalive_idle_ms(cfg, 4294967296LL, &err));
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create(url, cfg, &pool, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_tcp_keepalive_idle_ms(cfg, 5000, &err));
  CHECK(pool == NULL);
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create("postgres://[nope", cfg, &pool, &err));
  EXPECT_MSG("conninfo");
  /* init_sql runs on every new session; a failing one fails the connect, naming it. */
  {
    pgpool_config *init_cfg = NULL;
    pgpool_pool *init_pool = NULL;
    pgpool_conn *c = NULL;
    pgpool_result *res = NULL;
    const char *v = NULL;
    size_t len = 0;
    bool is_null = true;
    EXPECT(PGPOOL_OK, pgpool_config_new(&init_cfg, &err));
    EXPECT(PGPOOL_ERR_INVALID_UTF8, pgpool_config_set_init_sql(init_cfg, "bad\xff", &err));
    EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_config_set_init_sql(NULL, "SELECT 1", &err));
    EXPECT(PGPOOL_OK,
           pgpool_config_set_init_sql(init_cfg, "SET search_path TO c_init, public", &err));
    EXPECT(PGPOOL_OK, pgpool_pool_create(url, init_cfg, &init_pool, &err));
    EXPECT(PGPOOL_OK, pgpool_pool_acquire(init_pool, 10000, &c, &err));
    EXPECT(PGPOOL_OK, pgpool_conn_query(c, "SHOW search_path", 0, NULL, &res, &err));
    EXPECT(PGPOOL_OK, pgpool_result_value(res, 0, 0, &v, &len, &is_null, &err));
    CHECK(!is_null && strcmp(v, "c_init, public") == 0);
    pgpool_result_free(res);
    EXPECT(PGPOOL_OK, pgpool_conn_release(c, &err));
    EXPECT_RC(PGPOOL_OK, pgpool_pool_free(init_pool));
    EXPECT(PGPOOL_OK, pgpool_config_set_init_sql(init_cfg, "SELEC 1", &err));
    EXPECT(PGPOOL_OK, pgpool_pool_create(url, init_cfg, &init_pool, &err));
    int rc = pgpool_pool_acquire(init_pool, 3000, &c, &err);
    CHECK(rc == PGPOOL_ERR_CONNECT);
    EXPECT_MSG("init_sql failed");
    pgpool_error_free(err);
    err = NULL;
    EXPECT_RC(PGPOOL_OK, pgpool_pool_free(init_pool));
    pgpool_config_free(init_cfg);
  }
  /* Pool keys in the connection string: read, outranked by a setter, unknown ones refused. */
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_pool_create("host=localhost pool_max_sise=3", cfg, &pool, &err));
  EXPECT_MSG("pool_max_sise");
  CHECK(pool == NULL);
  {
    char keyed_url[2048];
    bool is_uri = strncmp(url, "postgres", 8) == 0;
    snprintf(keyed_url, sizeof keyed_url, "%s%spool_max_size=3%spool_acquire_timeout=5s", url,
             !is_uri ? " " : strchr(url, '?') ? "&" : "?", is_uri ? "&" : " ");
    pgpool_config *plain = NULL;
    pgpool_pool *keyed = NULL;
    pgpool_stats keyed_stats;
    EXPECT(PGPOOL_OK, pgpool_config_new(&plain, &err));
    EXPECT(PGPOOL_OK, pgpool_pool_create(keyed_url, plain, &keyed, &err));
    memset(&keyed_stats, 0, sizeof keyed_stats);
    keyed_stats.size = sizeof keyed_stats;
    EXPECT(PGPOOL_OK, pgpool_pool_stats(keyed, &keyed_stats, &err));
    CHECK(keyed_stats.max_size == 3);
    EXPECT_RC(PGPOOL_OK, pgpool_pool_free(keyed));
    keyed = NULL;
    EXPECT(PGPOOL_OK, pgpool_pool_create(keyed_url, cfg, &keyed, &err)); /* max_size 4 set */
    keyed_stats.size = sizeof keyed_stats;
    EXPECT(PGPOOL_OK, pgpool_pool_stats(keyed, &keyed_stats, &err));
    CHECK(keyed_stats.max_size == 4);
    EXPECT_RC(PGPOOL_OK, pgpool_pool_free(keyed));
    EXPECT_RC(PGPOOL_OK, pgpool_config_free(plain));
  }
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_wait_ready(pool, 10000, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_wait_ready(pool, -1, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_wait_ready(pool, 0, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_wait_ready(NULL, 10, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  EXPECT_RC(PGPOOL_OK, pgpool_config_free(cfg));
  EXPECT_RC(PGPOOL_ERR_INVALID_HANDLE, pgpool_config_free(cfg));
  EXPECT_RC(PGPOOL_OK, pgpool_config_free(NULL));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_config_set_max_size(cfg, 4, &err));
  EXPECT_MSG("already released");
}

/* Every value rendered by the library equals the server's own text output. */
static void rendering(pgpool_conn *conn) {
  static const char *exprs[] = {
      "true", "false", "42::int2", "'-2147483648'::int4", "9223372036854775807::int8",
      "12345.678900::numeric", "-0.0001::numeric", "0::numeric(10,3)", "'NaN'::numeric",
      "123456789012345678901234567890.123456789::numeric", "0.1::float8", "1e20::float8",
      "1.25e-5::float8", "'-Infinity'::float8", "0.1::float4", "1234567::float4",
      "'text'::text", "'ab'::char(4)", "'vc'::varchar", "'nm'::name", "'x'::\"char\"",
      "'\\xdeadbeef'::bytea", "''::bytea", "'2024-02-29'::date", "'0044-03-15 BC'::date",
      "'infinity'::date", "'12:34:56.789'::time", "'23:59:59+05:30'::timetz",
      "'2024-02-29 12:34:56.5'::timestamp", "'2024-02-29 12:34:56+00'::timestamptz",
      "'1 year 2 mons 3 days 04:05:06.25'::interval", "'-1 day +02:00'::interval",
      "'00:00:00'::interval", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
      "'{\"a\": [1, 2]}'::json", "'{\"b\": 1, \"a\": null}'::jsonb", "'{1,NULL,3}'::int[]",
      "'{\"a b\",c,\"\",\"NULL\",\"q\\\"\"}'::text[]", "'{{1,2},{3,4}}'::int[]",
      "'[0:1]={5,6}'::int[]", "'{}'::int[]", "ARRAY['2024-01-01'::date]", "26::oid",
      "ARRAY[1.5::numeric, NULL]",
  };
  pgpool_result *res;
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, "SET TimeZone = 'UTC'", &err));
  for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s, format('%%s', %s)", exprs[i], exprs[i]);
    res = query(conn, sql, 0, NULL);
    const char *mine = text_at(res, 0, 0);
    const char *theirs = text_at(res, 0, 1);
    if (strcmp(mine, theirs) != 0) {
      fprintf(stderr, "rendering %s: library \"%s\", server \"%s\"\n", exprs[i], mine, theirs);
      exit(1);
    }
    EXPECT_RC(PGPOOL_OK, pgpool_result_free(res));
  }
  /* An unsupported type is a clear error naming it. */
  res = query(conn, "SELECT point(1, 2)", 0, NULL);
  const char *text;
  size_t len;
  bool is_null;
  EXPECT(PGPOOL_ERR_UNSUPPORTED_TYPE, pgpool_result_value(res, 0, 0, &text, &len, &is_null, &err));
  EXPECT_MSG("point");
  EXPECT_RC(PGPOOL_OK, pgpool_result_free(res));
}

/* The query form reports the command's affected rows, not just the rows it returned. */
static void affected_rows_of_query_form(pgpool_conn *conn) {
  uint64_t rows = 99, affected = 0;
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, "CREATE TEMP TABLE aff (x int); "
                                            "INSERT INTO aff SELECT generate_series(1, 5)", &err));
  pgpool_result *res = query(conn, "UPDATE aff SET x = x + 1 WHERE x > 2", 0, NULL);
  EXPECT(PGPOOL_OK, pgpool_result_nrows(res, &rows, &err));
  CHECK(rows == 0);
  EXPECT(PGPOOL_OK, pgpool_result_affected_rows(res, &affected, &err));
  CHECK(affected == 3);
  EXPECT_RC(PGPOOL_OK, pgpool_result_free(res));
  res = query(conn, "DELETE FROM aff WHERE x < 3 RETURNING x", 0, NULL);
  EXPECT(PGPOOL_OK, pgpool_result_nrows(res, &rows, &err));
  CHECK(rows == 2);
  EXPECT(PGPOOL_OK, pgpool_result_affected_rows(res, &affected, &err));
  CHECK(affected == 2);
  EXPECT_RC(PGPOOL_OK, pgpool_result_free(res));
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, "DROP TABLE aff", &err));
}

static void result_paths(pgpool_conn *conn) {
  const char *params[] = {"41", NULL, "2.5"};
  pgpool_result *res = query(conn, "SELECT $1::int8 + 1 AS n, $2::text AS t, $3::float8 AS d, "
                                   "true AS b, 'x'::text AS s, NULL::float8 AS z", 3, params);
  uint64_t rows = 0, affected = 0;
  uint32_t cols = 0, oid = 0;
  const char *name = NULL, *text = NULL;
  size_t len = 0;
  bool is_null = false, b = false;
  int64_t n = 0;
  double d = 0;
  EXPECT(PGPOOL_OK, pgpool_result_nrows(res, &rows, &err));
  CHECK(rows == 1);
  EXPECT(PGPOOL_OK, pgpool_result_ncols(res, &cols, &err));
  CHECK(cols == 6);
  EXPECT(PGPOOL_OK, pgpool_result_affected_rows(res, &affected, &err));
  CHECK(affected == 1);
  EXPECT(PGPOOL_OK, pgpool_result_column_name(res, 0, &name, &err));
  CHECK(strcmp(name, "n") == 0);
  EXPECT(PGPOOL_OK, pgpool_result_column_type(res, 0, &oid, &err));
  CHECK(oid == 20);
  EXPECT(PGPOOL_OK, pgpool_result_column_type_name(res, 1, &name, &err));
  CHECK(strcmp(name, "text") == 0);
  EXPECT(PGPOOL_OK, pgpool_result_get_int64(res, 0, 0, &n, &err));
  CHECK(n == 42);
  EXPECT(PGPOOL_OK, pgpool_result_is_null(res, 0, 1, &is_null, &err));
  CHECK(is_null);
  EXPECT(PGPOOL_OK, pgpool_result_value(res, 0, 1, &text, &len, &is_null, &err));
  CHECK(is_null && text == NULL && len == 0);
  EXPECT(PGPOOL_OK, pgpool_result_get_double(res, 0, 2, &d, &err));
  CHECK(d == 2.5);
  EXPECT(PGPOOL_OK, pgpool_result_get_double(res, 0, 0, &d, &err));
  CHECK(d == 42.0);
  EXPECT(PGPOOL_OK, pgpool_result_get_bool(res, 0, 3, &b, &err));
  CHECK(b);
  CHECK(strcmp(text_at(res, 0, 4), "x") == 0);
  /* Out of range, type mismatch, NULL value. */
  EXPECT(PGPOOL_ERR_OUT_OF_RANGE, pgpool_result_value(res, 1, 0, &text, &len, &is_null, &err));
  EXPECT_MSG("row 1");
  EXPECT(PGPOOL_ERR_OUT_OF_RANGE, pgpool_result_get_int64(res, 0, 6, &n, &err));
  EXPECT(PGPOOL_ERR_OUT_OF_RANGE, pgpool_result_column_name(res, 9, &name, &err));
  EXPECT(PGPOOL_ERR_OUT_OF_RANGE, pgpool_result_column_type(res, 9, &oid, &err));
  EXPECT(PGPOOL_ERR_OUT_OF_RANGE, pgpool_result_column_type_name(res, 9, &name, &err));
  EXPECT(PGPOOL_ERR_OUT_OF_RANGE, pgpool_result_is_null(res, 7, 0, &is_null, &err));
  EXPECT(PGPOOL_ERR_TYPE_MISMATCH, pgpool_result_get_int64(res, 0, 4, &n, &err));
  EXPECT_MSG("text");
  EXPECT(PGPOOL_ERR_TYPE_MISMATCH, pgpool_result_get_bool(res, 0, 0, &b, &err));
  EXPECT(PGPOOL_ERR_TYPE_MISMATCH, pgpool_result_get_double(res, 0, 4, &d, &err));
  EXPECT(PGPOOL_ERR_NULL_VALUE, pgpool_result_get_double(res, 0, 5, &d, &err));
  /* NULL for each pointer argument. */
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_nrows(NULL, &rows, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_nrows(res, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_ncols(res, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_affected_rows(NULL, &affected, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_column_name(res, 0, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_column_type(NULL, 0, &oid, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_column_type_name(res, 0, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_is_null(res, 0, 0, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_value(res, 0, 0, NULL, &len, &is_null, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_value(res, 0, 0, &text, NULL, &is_null, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_value(res, 0, 0, &text, &len, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_get_int64(res, 0, 0, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_get_double(NULL, 0, 0, &d, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_result_get_bool(res, 0, 0, NULL, &err));
  /* A handle of another type is rejected, never dereferenced. */
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_conn_batch((pgpool_conn *)res, "SELECT 1", &err));
  /* Double free and use after free. */
  EXPECT_RC(PGPOOL_OK, pgpool_result_free(res));
  EXPECT_RC(PGPOOL_ERR_INVALID_HANDLE, pgpool_result_free(res));
  EXPECT_RC(PGPOOL_OK, pgpool_result_free(NULL));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_result_nrows(res, &rows, &err));
  /* A result with no rows still knows its columns. */
  res = query(conn, "SELECT 1 AS a, 2 AS b WHERE false", 0, NULL);
  EXPECT(PGPOOL_OK, pgpool_result_ncols(res, &cols, &err));
  CHECK(cols == 2);
  EXPECT(PGPOOL_OK, pgpool_result_nrows(res, &rows, &err));
  CHECK(rows == 0);
  pgpool_result_free(res);
}

static void statement_paths(pgpool_pool *pool, pgpool_conn *conn) {
  pgpool_result *res = NULL;
  uint64_t rows = 0;
  const char *one[] = {"1"};
  /* Bad SQL: SQLSTATE reported. */
  EXPECT(PGPOOL_ERR_SERVER, pgpool_conn_query(conn, "SELEC 1", 0, NULL, &res, &err));
  CHECK(strcmp(pgpool_error_sqlstate(err), "42601") == 0);
  CHECK(strcmp(pgpool_error_category(err), "server") == 0);
  CHECK(!pgpool_error_outcome_unknown(err) && !pgpool_error_retry_safe(err));
  /* Wrong parameter count. */
  EXPECT(PGPOOL_ERR_INVALID_ARGUMENT, pgpool_conn_query(conn, "SELECT $1::int", 0, NULL, &res, &err));
  EXPECT_MSG("1 parameter");
  EXPECT(PGPOOL_ERR_INVALID_ARGUMENT, pgpool_conn_execute(conn, "SELECT $1::int, $2::int", 1, one, &rows, &err));
  /* Values the server rejects: out of range, wrong type. */
  const char *big[] = {"70000"};
  EXPECT(PGPOOL_ERR_SERVER, pgpool_conn_query(conn, "SELECT $1::int2", 1, big, &res, &err));
  CHECK(strcmp(pgpool_error_sqlstate(err), "22003") == 0);
  const char *word[] = {"abc"};
  EXPECT(PGPOOL_ERR_SERVER, pgpool_conn_query(conn, "SELECT $1::int", 1, word, &res, &err));
  CHECK(strcmp(pgpool_error_sqlstate(err), "22P02") == 0);
  /* Invalid UTF-8 and NULL arguments. */
  const char *bad[] = {"\xc3\x28"};
  EXPECT(PGPOOL_ERR_INVALID_UTF8, pgpool_conn_query(conn, "SELECT $1::text", 1, bad, &res, &err));
  EXPECT_MSG("$1");
  EXPECT(PGPOOL_ERR_INVALID_UTF8, pgpool_conn_query(conn, "SELECT '\xff'", 0, NULL, &res, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_query(conn, NULL, 0, NULL, &res, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_query(conn, "SELECT $1::int", 1, NULL, &res, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_query(conn, "SELECT 1", 0, NULL, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_query(NULL, "SELECT 1", 0, NULL, &res, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_execute(conn, "SELECT 1", 0, NULL, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_execute(NULL, "SELECT 1", 0, NULL, &rows, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_execute(conn, NULL, 0, NULL, &rows, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_batch(conn, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_batch(NULL, "SELECT 1", &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_begin(NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_commit(NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_rollback(NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_backend_pid(NULL, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_id(NULL, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_id(conn, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_release(NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_discard(NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_query(NULL, "SELECT 1", 0, NULL, &res, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_query(pool, NULL, 0, NULL, &res, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_query(pool, "SELECT 1", 0, NULL, NULL, &err));
  /* The connection is still fine after all that; errors without out_err still return codes. */
  CHECK(pgpool_conn_query(conn, "SELEC", 0, NULL, &res, NULL) == PGPOOL_ERR_SERVER);
  /* Commands, batches and transactions. */
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, "CREATE TEMP TABLE t (a int); INSERT INTO t VALUES (1), (2)", &err));
  EXPECT(PGPOOL_ERR_SERVER, pgpool_conn_batch(conn, "INSERT INTO nope VALUES (1)", &err));
  CHECK(strcmp(pgpool_error_sqlstate(err), "42P01") == 0);
  EXPECT(PGPOOL_OK, pgpool_conn_execute(conn, "UPDATE t SET a = a + $1::int", 1, one, &rows, &err));
  CHECK(rows == 2);
  EXPECT(PGPOOL_OK, pgpool_conn_begin(conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_execute(conn, "INSERT INTO t VALUES ($1::int)", 1, one, &rows, &err));
  CHECK(rows == 1);
  EXPECT(PGPOOL_OK, pgpool_conn_rollback(conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_begin(conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_execute(conn, "INSERT INTO t VALUES ($1::int)", 1, one, &rows, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_commit(conn, &err));
  res = query(conn, "SELECT count(*) FROM t", 0, NULL);
  int64_t count = 0;
  EXPECT(PGPOOL_OK, pgpool_result_get_int64(res, 0, 0, &count, &err));
  CHECK(count == 3);
  pgpool_result_free(res);
  int32_t pid = 0;
  EXPECT(PGPOOL_OK, pgpool_conn_backend_pid(conn, &pid, &err));
  CHECK(pid > 0);
  uint64_t conn_id = 0;
  EXPECT(PGPOOL_OK, pgpool_conn_id(conn, &conn_id, &err));
  CHECK(conn_id >= 1);
  /* Exact transaction status from the server, and the per-call query timeout. */
  int32_t status = -1;
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_transaction_status(conn, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_transaction_status(NULL, &status, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_transaction_status(conn, &status, &err));
  CHECK(status == 0);
  EXPECT(PGPOOL_OK, pgpool_conn_begin(conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_transaction_status(conn, &status, &err));
  CHECK(status == 1);
  EXPECT(PGPOOL_ERR_SERVER, pgpool_conn_batch(conn, "SELECT 1/0", &err));
  EXPECT(PGPOOL_OK, pgpool_conn_transaction_status(conn, &status, &err));
  CHECK(status == 2);
  EXPECT(PGPOOL_OK, pgpool_conn_rollback(conn, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_conn_set_query_timeout(NULL, 100, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_set_query_timeout(conn, 200, &err));
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_conn_batch(conn, "SELECT pg_sleep(10)", &err));
  CHECK(strcmp(pgpool_error_sqlstate(err), "57014") == 0);
  CHECK(!pgpool_error_outcome_unknown(err));
  int32_t same = 0;
  EXPECT(PGPOOL_OK, pgpool_conn_backend_pid(conn, &same, &err));
  CHECK(same == pid);
  EXPECT(PGPOOL_OK, pgpool_conn_set_query_timeout(conn, 0, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, "SELECT pg_sleep(0.3)", &err));
  EXPECT(PGPOOL_OK, pgpool_conn_set_query_timeout(conn, -1, &err));
  /* DEALLOCATE ALL / DISCARD ALL behind the statement cache's back cost nothing. */
  EXPECT(PGPOOL_OK, pgpool_conn_execute(conn, "SELECT $1::int", 1, one, &rows, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, "DEALLOCATE ALL", &err));
  EXPECT(PGPOOL_OK, pgpool_conn_execute(conn, "SELECT $1::int", 1, one, &rows, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, "DISCARD ALL", &err));
  EXPECT(PGPOOL_OK, pgpool_conn_execute(conn, "SELECT $1::int", 1, one, &rows, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_batch(conn, "CREATE TEMP TABLE t (a int); INSERT INTO t VALUES (1)", &err));
  /* One-shot pool query. */
  EXPECT(PGPOOL_OK, pgpool_pool_query(pool, "SELECT $1::int * 2", 1, one, &res, &err));
  EXPECT(PGPOOL_OK, pgpool_result_get_int64(res, 0, 0, &count, &err));
  CHECK(count == 2);
  pgpool_result_free(res);
}

struct sleeper {
  pgpool_conn *conn;
  int rc;
};

static void *sleep_on(void *arg) {
  struct sleeper *s = arg;
  s->rc = pgpool_conn_batch(s->conn, "SELECT pg_sleep(0.6)", NULL);
  return NULL;
}

static int log_lines = 0;
static void on_log(int32_t level, const char *message, void *user_data) {
  (void)user_data;
  if (level >= 1 && level <= 5 && message != NULL) __atomic_add_fetch(&log_lines, 1, __ATOMIC_SEQ_CST);
}

static void handle_paths(pgpool_pool *pool) {
  pgpool_conn *conn = NULL, *other = NULL;
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_acquire(NULL, 1000, &conn, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_acquire(pool, 1000, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_try_acquire(NULL, &conn, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_try_acquire(pool, NULL, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, -1, &conn, &err));
  /* The pool has max_size 2: hold both, then try/acquire fail in the documented ways. */
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 5000, &other, &err));
  pgpool_conn *third = NULL;
  EXPECT(PGPOOL_ERR_WOULD_BLOCK, pgpool_pool_try_acquire(pool, &third, &err));
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_pool_acquire(pool, 100, &third, &err));
  CHECK(pgpool_error_retry_safe(err) && !pgpool_error_outcome_unknown(err));
  CHECK(strcmp(pgpool_error_category(err), "timeout") == 0);
  CHECK(pgpool_error_sqlstate(err) == NULL);
  /* Two threads on one connection handle: the second is told, not corrupted. */
  struct sleeper s = {conn, -1};
  pthread_t t;
  pthread_create(&t, NULL, sleep_on, &s);
  usleep(200 * 1000);
  EXPECT(PGPOOL_ERR_BUSY, pgpool_conn_query(conn, "SELECT 1", 0, NULL, &res, &err));
  pthread_join(t, NULL);
  CHECK(s.rc == PGPOOL_OK);
  /* Discard, release, then double release and use after release. */
  EXPECT(PGPOOL_OK, pgpool_conn_discard(other, &err));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_conn_discard(other, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 5000, &third, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(third, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_conn_release(conn, &err));
  EXPECT_MSG("pgpool_conn");
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_conn_query(conn, "SELECT 1", 0, NULL, &res, &err));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_conn_begin(conn, &err));
  /* Log callback. */
  EXPECT(PGPOOL_OK, pgpool_log_set_callback(on_log, NULL, 5, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 5000, &conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  EXPECT(PGPOOL_OK, pgpool_log_set_callback(NULL, NULL, 0, &err));
  CHECK(__atomic_load_n(&log_lines, __ATOMIC_SEQ_CST) > 0);
  /* A connection killed by the server: broken, outcome unknown, not retry-safe. */
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 5000, &conn, &err));
  int32_t pid = 0;
  EXPECT(PGPOOL_OK, pgpool_conn_backend_pid(conn, &pid, &err));
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", (int)pid);
  EXPECT(PGPOOL_OK, pgpool_pool_query(pool, sql, 0, NULL, &res, &err));
  pgpool_result_free(res);
  usleep(100 * 1000);
  int rc = pgpool_conn_query(conn, "SELECT 1", 0, NULL, &res, &err);
  CHECK(rc == PGPOOL_ERR_BROKEN || rc == PGPOOL_ERR_SERVER);
  if (rc == PGPOOL_ERR_BROKEN) CHECK(pgpool_error_outcome_unknown(err) && !pgpool_error_retry_safe(err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
}

struct waiter {
  pgpool_pool *pool;
  int rc;
};

static void *wait_for_conn(void *arg) {
  struct waiter *w = arg;
  pgpool_conn *conn = NULL;
  w->rc = pgpool_pool_acquire(w->pool, 1500, &conn, NULL);
  if (w->rc == PGPOOL_OK) pgpool_conn_release(conn, NULL);
  return NULL;
}

/* max_waiters: with one caller already queued, the next is refused at once. */
static void overload_paths(void) {
  pgpool_config *cfg = NULL;
  pgpool_pool *pool = NULL;
  pgpool_conn *held = NULL, *conn = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_waiters(cfg, 1, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  pgpool_config_free(cfg);
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 5000, &held, &err));
  struct waiter w = {pool, -1};
  pthread_t t;
  pthread_create(&t, NULL, wait_for_conn, &w);
  usleep(300 * 1000);
  EXPECT(PGPOOL_ERR_OVERLOADED, pgpool_pool_acquire(pool, 1000, &conn, &err));
  CHECK(pgpool_error_retry_safe(err) && strcmp(pgpool_error_category(err), "overloaded") == 0);
  pthread_join(t, NULL);
  CHECK(w.rc == PGPOOL_ERR_TIMEOUT);
  EXPECT(PGPOOL_OK, pgpool_conn_release(held, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, 1000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
}

static void error_object_paths(void) {
  CHECK(pgpool_error_code(NULL) == PGPOOL_OK); /* no error object: no error */
  CHECK(pgpool_error_message(NULL) != NULL);
  CHECK(pgpool_error_sqlstate(NULL) == NULL);
  CHECK(strcmp(pgpool_error_category(NULL), "invalid_handle") == 0);
  CHECK(!pgpool_error_outcome_unknown(NULL) && !pgpool_error_retry_safe(NULL));
  EXPECT_RC(PGPOOL_OK, pgpool_error_free(NULL));
  pgpool_config *cfg = NULL;
  pgpool_error *e = NULL;
  CHECK(pgpool_config_new(NULL, &e) == PGPOOL_ERR_NULL_ARGUMENT && e != NULL);
  CHECK(strcmp(pgpool_error_category(e), "null_argument") == 0);
  EXPECT_RC(PGPOOL_OK, pgpool_error_free(e));
  EXPECT_RC(PGPOOL_ERR_INVALID_HANDLE, pgpool_error_free(e));
  CHECK(pgpool_error_code(e) == PGPOOL_ERR_INVALID_HANDLE);
  CHECK(strstr(pgpool_error_message(e), "invalid") != NULL);
  CHECK(pgpool_config_new(&cfg, NULL) == PGPOOL_OK);
  pgpool_config_free(cfg);
  CHECK(strcmp(pgpool_code_name(PGPOOL_OK), "ok") == 0);
  CHECK(strcmp(pgpool_code_name(PGPOOL_ERR_BUSY), "busy") == 0);
  CHECK(strcmp(pgpool_code_name(PGPOOL_ERR_FORKED), "forked") == 0);
  CHECK(strcmp(pgpool_code_name(12345), "unknown") == 0);
  CHECK(strcmp(pgpool_version(), PGPOOL_VERSION_STRING) == 0);
}

static void panic_paths(pgpool_pool *pool) {
  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_ERR_PANIC, pgpool_config_set_application_name(cfg, "pgpool-test-panic", &err));
  EXPECT_MSG("injected test panic");
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 2, &err));
  pgpool_config_free(cfg);
  pgpool_conn *conn = NULL;
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 5000, &conn, &err));
  EXPECT(PGPOOL_ERR_PANIC, pgpool_conn_query(conn, "pgpool-test-panic", 0, NULL, &res, &err));
  res = query(conn, "SELECT 1", 0, NULL); /* the connection and the pool stay usable */
  pgpool_result_free(res);
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
}

static void close_paths(pgpool_pool *pool) {
  pgpool_stats stats;
  pgpool_health health;
  pgpool_conn *conn = NULL, *held = NULL;
  pgpool_result *res = NULL;
  memset(&stats, 0, sizeof stats);
  EXPECT(PGPOOL_ERR_INVALID_ARGUMENT, pgpool_pool_stats(pool, &stats, &err));
  EXPECT_MSG("sizeof");
  /* An older, smaller struct: the library fills what it has room for and says so. */
  memset(&stats, 0xAB, sizeof stats);
  stats.size = 16;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &stats, &err));
  CHECK(stats.size == 16 && stats.max_size == 2);
  CHECK(((unsigned char *)&stats)[16] == 0xAB); /* beyond its size: untouched */
  /* A newer, larger one: filled up to the library's own size. */
  struct { pgpool_stats s; char extra[32]; } bigger;
  memset(&bigger, 0, sizeof bigger);
  bigger.s.size = sizeof bigger;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &bigger.s, &err));
  CHECK(bigger.s.size == sizeof(pgpool_stats));
  stats.size = sizeof stats;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &stats, &err));
  CHECK(stats.size == sizeof stats && stats.max_size == 2 && stats.acquires > 0);
  CHECK(stats.connections_created > 0 && stats.closed_discarded >= 1);
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_stats(pool, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_stats(NULL, &stats, &err));
  memset(&health, 0, sizeof health);
  EXPECT(PGPOOL_ERR_INVALID_ARGUMENT, pgpool_pool_health(pool, &health, &err));
  health.size = sizeof health;
  EXPECT(PGPOOL_OK, pgpool_pool_health(pool, &health, &err));
  CHECK(health.ok && strlen(health.database) > 0 && strlen(health.server_time) > 0);
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_health(pool, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_health(NULL, &health, &err));
  /* Close with a connection held: bounded, reports the timeout; release still works. */
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 5000, &held, &err));
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_pool_close(pool, 100, &err));
  EXPECT(PGPOOL_ERR_CLOSED, pgpool_pool_acquire(pool, 1000, &conn, &err));
  CHECK(strcmp(pgpool_error_category(err), "closed") == 0);
  EXPECT(PGPOOL_ERR_CLOSED, pgpool_pool_try_acquire(pool, &conn, &err));
  EXPECT(PGPOOL_ERR_CLOSED, pgpool_pool_query(pool, "SELECT 1", 0, NULL, &res, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(held, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, 2000, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, -1, &err));
  EXPECT(PGPOOL_ERR_CLOSED, pgpool_pool_health(pool, &health, &err));
  CHECK(!health.ok);
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &stats, &err));
  CHECK(stats.open == 0);
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_pool_close(NULL, 0, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  EXPECT_RC(PGPOOL_ERR_INVALID_HANDLE, pgpool_pool_free(pool));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(NULL));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_pool_acquire(pool, 10, &conn, &err));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL [panic]\n", argv[0]);
    return 2;
  }
  url = argv[1];
  int with_panic = argc > 2 && strcmp(argv[2], "panic") == 0;
  error_object_paths();
  config_paths();
  overload_paths();

  pgpool_config *cfg = NULL;
  pgpool_pool *pool = NULL;
  pgpool_conn *conn = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 2, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, "c-api-test", &err));
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));
  pgpool_config_free(cfg);
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 10000, &conn, &err));
  rendering(conn);
  result_paths(conn);
  affected_rows_of_query_form(conn);
  statement_paths(pool, conn);
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  handle_paths(pool);
  if (with_panic) panic_paths(pool);
  close_paths(pool);
  pgpool_error_free(err);
  err = NULL;
  printf("ALL OK: %d checks%s\n", checks, with_panic ? " (with injected panics)" : "");
  return 0;
}
