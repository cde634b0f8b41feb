/* The registry and shutdown functions of the C ABI, from C: every return code they list
 * that a program can provoke, ownership of the pool handles they give, and a real SIGTERM.
 * Usage: registry URL */
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

static char toml[4096];

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  pgpool_registry *reg = NULL;

  /* Loading: NULLs, invalid TOML, unknown keys, bad values, missing files. */
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_registry_from_toml(NULL, &reg, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_registry_from_toml("", NULL, &err));
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_registry_from_toml("[pools.a\n", &reg, &err));
  EXPECT_MSG("not valid TOML");
  EXPECT(PGPOOL_ERR_CONFIG,
         pgpool_registry_from_toml("[pools.a]\nurl = \"host=h\"\nmax_sise = 2\n", &reg, &err));
  EXPECT_MSG("unknown key \"max_sise\" in [pools.a] (did you mean max_size?)");
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_registry_from_toml(
                                "[pools.a]\nurl = \"host=h\"\nacquire_timeout = 5\n", &reg, &err));
  EXPECT_MSG("pools.a.acquire_timeout = 5");
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_registry_from_toml("[pools.a]\nmax_size = 2\n", &reg, &err));
  EXPECT_MSG("pools.a has no url");
  EXPECT(PGPOOL_ERR_CONFIG, pgpool_registry_from_file("/nonexistent/pools.toml", &reg, &err));
  EXPECT_MSG("/nonexistent/pools.toml");
  CHECK(reg == NULL);
  EXPECT_RC(PGPOOL_OK, pgpool_registry_free(NULL));

  snprintf(toml, sizeof toml,
           "[defaults]\napplication_name = \"c-registry-test\"\nacquire_timeout = \"3s\"\n"
           "[pools.b]\nurl = \"%s\"\nmax_size = 2\n"
           "[pools.a]\nurl = \"%s\"\nmin_idle = 1\nquery_timeout = \"1500ms\"\n",
           url, url);
  EXPECT(PGPOOL_OK, pgpool_registry_from_toml(toml, &reg, &err));
  size_t count = 0;
  EXPECT(PGPOOL_OK, pgpool_registry_count(reg, &count, &err));
  CHECK(count == 2);
  const char *name = NULL;
  EXPECT(PGPOOL_OK, pgpool_registry_name(reg, 0, &name, &err));
  CHECK(strcmp(name, "a") == 0);
  EXPECT(PGPOOL_ERR_OUT_OF_RANGE, pgpool_registry_name(reg, 2, &name, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_registry_count(reg, NULL, &err));

  EXPECT(PGPOOL_OK, pgpool_registry_open_all(reg, 10000, &err));
  char *metrics = NULL;
  EXPECT(PGPOOL_OK, pgpool_registry_metrics(reg, &metrics, &err));
  CHECK(strstr(metrics, "pgpool_max_connections{pool=\"a\"}") != NULL);
  CHECK(strstr(metrics, "pgpool_max_connections{pool=\"b\"}") != NULL);
  pgpool_string_free(metrics);
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_registry_metrics(reg, NULL, &err));
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_registry_metrics(NULL, &metrics, &err));
  char *health = NULL;
  EXPECT(PGPOOL_OK, pgpool_registry_health_json(reg, &health, &err));
  CHECK(strncmp(health, "{\"ok\":true,\"state\":\"healthy\",\"pools\":[{\"ok\":true,\"pool\":\"a\"", 52) == 0);
  CHECK(strstr(health, "\"pool\":\"b\"") != NULL);
  pgpool_string_free(health);
  EXPECT(PGPOOL_ERR_NULL_ARGUMENT, pgpool_registry_health_json(reg, NULL, &err));
  pgpool_pool *a = NULL, *a2 = NULL;
  EXPECT(PGPOOL_OK, pgpool_registry_get(reg, "a", &a, &err));
  EXPECT(PGPOOL_OK, pgpool_registry_get(reg, "a", &a2, &err));
  CHECK(a != a2); /* two handles of the caller's own, to one pool */
  EXPECT(PGPOOL_ERR_USAGE, pgpool_registry_get(reg, "zz", &a2, &err));
  EXPECT_MSG("its pools: a, b");
  EXPECT(PGPOOL_ERR_INVALID_UTF8, pgpool_registry_get(reg, "\xff", &a2, &err));
  int64_t acquire_ms = 0, query_ms = 0;
  EXPECT(PGPOOL_OK, pgpool_pool_timeouts(a, &acquire_ms, &query_ms, &err));
  CHECK(acquire_ms == 3000 && query_ms == 1500);
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_query(a, "SELECT 1", 0, NULL, &res, &err));
  pgpool_result_free(res);
  /* Freeing one handle leaves the pool open for the others and the registry. */
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(a2));
  res = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_query(a, "SELECT 1", 0, NULL, &res, &err));
  pgpool_result_free(res);

  /* close_all with a connection still held: reclaimed at the deadline. */
  pgpool_conn *held = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(a, -1, &held, &err));
  uint32_t reclaimed = 99;
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_registry_close_all(reg, 200, &reclaimed, &err));
  EXPECT_MSG("1 reclaimed");
  CHECK(reclaimed == 1);
  EXPECT(PGPOOL_OK, pgpool_conn_release(held, &err));
  pgpool_conn *c = NULL;
  EXPECT(PGPOOL_ERR_CLOSED, pgpool_pool_acquire(a, 100, &c, &err));
  EXPECT(PGPOOL_OK, pgpool_registry_close_all(reg, 1000, &reclaimed, &err));
  CHECK(reclaimed == 0);
  EXPECT_RC(PGPOOL_OK, pgpool_registry_free(reg));
  EXPECT_RC(PGPOOL_ERR_INVALID_HANDLE, pgpool_registry_free(reg));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_registry_get(reg, "a", &a2, &err));
  /* The pool handle outlives the registry: its calls fail cleanly. */
  EXPECT(PGPOOL_ERR_CLOSED, pgpool_pool_acquire(a, 100, &c, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(a));

  /* An unreachable pool: open_all names it and its last connect error. */
  snprintf(toml, sizeof toml,
           "[pools.up]\nurl = \"%s\"\n"
           "[pools.down]\nurl = \"host=127.0.0.1 port=1 user=nobody\"\nmin_idle = 1\n"
           "connect_timeout = \"200ms\"\n",
           url);
  EXPECT(PGPOOL_OK, pgpool_registry_from_toml(toml, &reg, &err));
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_registry_open_all(reg, 800, &err));
  EXPECT_MSG("1 of 2 pools not ready");
  EXPECT_MSG("down: ");
  EXPECT(PGPOOL_OK, pgpool_registry_close_all(reg, 1000, NULL, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_registry_free(reg));

  /* Shutdown: nothing before it is installed, then a real SIGTERM closes the pools. */
  CHECK(pgpool_shutdown_requested() == 0);
  EXPECT(PGPOOL_ERR_USAGE, pgpool_shutdown_request(&err));
  EXPECT(PGPOOL_ERR_USAGE, pgpool_shutdown_wait(0, NULL, &err));
  snprintf(toml, sizeof toml, "[pools.s]\nurl = \"%s\"\nmin_idle = 1\n", url);
  EXPECT(PGPOOL_OK, pgpool_registry_from_toml(toml, &reg, &err));
  EXPECT(PGPOOL_OK, pgpool_registry_open_all(reg, 10000, &err));
  pgpool_pool *s = NULL;
  EXPECT(PGPOOL_OK, pgpool_registry_get(reg, "s", &s, &err));
  EXPECT(PGPOOL_OK, pgpool_shutdown_on_signals(reg, 2000, &err));
  EXPECT(PGPOOL_OK, pgpool_shutdown_on_signals(NULL, -1, &err)); /* once per process */
  EXPECT_RC(PGPOOL_OK, pgpool_registry_free(reg)); /* the shutdown keeps the registry */
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_shutdown_on_signals(reg, 2000, &err));
  EXPECT(PGPOOL_ERR_WOULD_BLOCK, pgpool_shutdown_wait(0, NULL, &err));
  EXPECT(PGPOOL_ERR_TIMEOUT, pgpool_shutdown_wait(50, NULL, &err));
  CHECK(kill(getpid(), SIGTERM) == 0);
  EXPECT(PGPOOL_OK, pgpool_shutdown_wait(5000, &reclaimed, &err));
  CHECK(reclaimed == 0);
  CHECK(pgpool_shutdown_requested() == SIGTERM);
  EXPECT(PGPOOL_OK, pgpool_shutdown_request(&err)); /* idempotent */
  EXPECT(PGPOOL_ERR_CLOSED, pgpool_pool_acquire(s, 100, &c, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(s));
  pgpool_error_free(err);
  printf("REGISTRY OK (%d checks)\n", checks);
  return 0;
}
