/* fork() with a pool in use: the child must neither write to nor close the parent's
 * sessions, nor wait for a lock a parent thread held at the fork; it can make a pool of its
 * own. The parent keeps working throughout, and its sessions come through unchanged.
 * At the fork, parent threads are also blocked inside the library waiting for a connection
 * (of a pool of one whose connection the main thread holds); the child then makes pools of
 * one of its own, one after the other, and has threads wait for each other on each, all
 * within a few seconds.
 *
 * Usage: fork URL quiet|busy [hooks]
 *   busy:  a worker thread hammers the pool while the process forks
 *   hooks: the library has the test hooks: a thread holds a handle table's lock at the fork */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static const char *url;
static char app[48];
static pgpool_pool *pool;
static int32_t parent_pids[3];

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t int_at(pgpool_result *res) {
  int64_t v = -1;
  EXPECT(PGPOOL_OK, pgpool_result_get_int64(res, 0, 0, &v, &err));
  return v;
}

/* `SELECT $1::int8 * 2` on `conn`, checked. */
static void doubled_on(pgpool_conn *conn, int64_t x) {
  char text[32];
  snprintf(text, sizeof text, "%lld", (long long)x);
  const char *params[] = {text};
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_conn_query(conn, "SELECT $1::int8 * 2", 1, params, &res, &err));
  CHECK(int_at(res) == 2 * x);
  pgpool_result_free(res);
}

static int32_t server_pid(pgpool_conn *conn) {
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_conn_query(conn, "SELECT pg_backend_pid()::int8", 0, NULL, &res, &err));
  int32_t pid = (int32_t)int_at(res);
  pgpool_result_free(res);
  int32_t reported = 0;
  EXPECT(PGPOOL_OK, pgpool_conn_backend_pid(conn, &reported, &err));
  CHECK(reported == pid);
  return pid;
}

/* --- the parent's worker: acquire, query with a value, check, release ----------------- */

static volatile int stop_worker = 0;
static long worker_rounds = 0;
static int worker_failures = 0;

static void *worker(void *arg) {
  (void)arg;
  pgpool_params *params = NULL;
  pgpool_result *res = NULL;
  if (pgpool_params_new(&params, NULL) != PGPOOL_OK) return NULL;
  for (long i = 0; !__atomic_load_n(&stop_worker, __ATOMIC_SEQ_CST); i++) {
    pgpool_error *e = NULL;
    pgpool_params_clear(params, NULL);
    pgpool_params_add_int64(params, i, NULL);
    int rc = pgpool_pool_exec(pool, 10000, NULL, "SELECT $1::int8 + 1", params, &res, NULL, &e);
    int64_t v = -1;
    if (rc == PGPOOL_OK) rc = pgpool_result_get_int64(res, 0, 0, &v, &e);
    if (rc != PGPOOL_OK || v != i + 1) {
      fprintf(stderr, "worker: round %ld: rc %d v %lld: %s\n", i, rc, (long long)v,
              e ? pgpool_error_message(e) : "");
      worker_failures++;
    }
    pgpool_error_free(e);
    /* Now and then a connection of its own, held for a few statements. */
    if (i % 16 == 0) {
      pgpool_conn *conn = NULL;
      if (pgpool_pool_acquire(pool, 10000, &conn, NULL) == PGPOOL_OK) {
        for (int k = 0; k < 3; k++) {
          pgpool_result *r = NULL;
          char text[32];
          snprintf(text, sizeof text, "%d", k);
          const char *p[] = {text};
          int64_t got = -1;
          if (pgpool_conn_query(conn, "SELECT $1::int8 * 3", 1, p, &r, NULL) != PGPOOL_OK ||
              pgpool_result_get_int64(r, 0, 0, &got, NULL) != PGPOOL_OK || got != 3 * k)
            worker_failures++;
          pgpool_result_free(r);
        }
        if (pgpool_conn_release(conn, NULL) != PGPOOL_OK) worker_failures++;
      } else {
        worker_failures++;
      }
    }
    worker_rounds++;
  }
  pgpool_result_free(res);
  pgpool_params_free(params);
  return NULL;
}

/* --- a parent thread in the middle of a statement at the fork ------------------------- */

static pgpool_conn *sleeping_conn;
static int sleeper_ok = 0;

static void *sleeper(void *arg) {
  (void)arg;
  pgpool_result *res = NULL;
  if (pgpool_conn_query(sleeping_conn, "SELECT 5::int8 FROM pg_sleep(1.5)", 0, NULL, &res,
                        NULL) == PGPOOL_OK) {
    int64_t v = -1;
    sleeper_ok = pgpool_result_get_int64(res, 0, 0, &v, NULL) == PGPOOL_OK && v == 5;
  }
  pgpool_result_free(res);
  return NULL;
}

/* --- a parent thread inside a handle table's critical section at the fork (test hooks) -- */

static void *table_holder(void *arg) {
  (void)arg;
  pgpool_stmt *stmt = NULL;
  if (pgpool_stmt_new("pgpool-test-hold-table-lock", 0, NULL, &stmt, NULL) == PGPOOL_OK)
    pgpool_stmt_free(stmt);
  return NULL;
}

/* --- parent threads blocked in an acquire at the fork ---------------------------------- */

/* Threads with the stack size of the library's own (Rust's default, 2 MiB): glibc hands a
 * thread the child starts the stack (and the thread-local storage) of a parent thread that
 * does not exist in the child, so the child's threads, and its pools' threads, run on the
 * very memory the blocked threads were waiting on. A library that kept its waiting threads
 * in a process-wide table (parking_lot does) would find them there in the child, linked
 * into that reused memory: with parking_lot, more than half of the runs of this program
 * hang or abort. */
#define WAITERS 3
#define THREAD_STACK (2u * 1024 * 1024)

static pgpool_pool *one; /* the parent's pool of one */
static int waiter_ok[WAITERS];

static void spawn(pthread_t *thread, void *(*f)(void *), intptr_t arg) {
  pthread_attr_t attr;
  CHECK(pthread_attr_init(&attr) == 0);
  CHECK(pthread_attr_setstacksize(&attr, THREAD_STACK) == 0);
  CHECK(pthread_create(thread, &attr, f, (void *)arg) == 0);
  pthread_attr_destroy(&attr);
}

/* `SELECT $1::int8 * 2` on `conn`, unchecked (for threads: the check macros are not
 * thread-safe). */
static int doubled_quietly(pgpool_conn *conn, int64_t x) {
  char text[32];
  snprintf(text, sizeof text, "%lld", (long long)x);
  const char *p[] = {text};
  pgpool_result *r = NULL;
  int64_t v = -1;
  int ok = pgpool_conn_query(conn, "SELECT $1::int8 * 2", 1, p, &r, NULL) == PGPOOL_OK &&
           pgpool_result_get_int64(r, 0, 0, &v, NULL) == PGPOOL_OK && v == 2 * x;
  pgpool_result_free(r);
  return ok;
}

static void *blocked_waiter(void *arg) {
  int i = (int)(intptr_t)arg;
  pgpool_conn *conn = NULL;
  pgpool_error *e = NULL;
  int rc = pgpool_pool_acquire(one, 20000, &conn, &e);
  if (rc != PGPOOL_OK) {
    fprintf(stderr, "blocked waiter %d: rc %d: %s\n", i, rc, e ? pgpool_error_message(e) : "");
    pgpool_error_free(e);
    return NULL;
  }
  waiter_ok[i] = doubled_quietly(conn, i) && pgpool_conn_release(conn, NULL) == PGPOOL_OK;
  return NULL;
}

/* --- the child's threads on pools of one of its own ----------------------------------- */

#define CHILD_POOLS 10
#define CHILD_ROUNDS 10

static pgpool_pool *child_one;
static int child_done = 0;
static int child_failures = 0;

static void *child_contender(void *arg) {
  int i = (int)(intptr_t)arg;
  for (int k = 0; k < CHILD_ROUNDS; k++) {
    pgpool_conn *conn = NULL;
    pgpool_error *e = NULL;
    int rc = pgpool_pool_acquire(child_one, 5000, &conn, &e);
    if (rc != PGPOOL_OK) {
      fprintf(stderr, "child thread %d: acquire: rc %d: %s\n", i, rc,
              e ? pgpool_error_message(e) : "");
      pgpool_error_free(e);
      __atomic_add_fetch(&child_failures, 1, __ATOMIC_SEQ_CST);
      continue;
    }
    /* Held a little, so the others wait in the library meanwhile. */
    sleep_ms(2);
    int ok = doubled_quietly(conn, i * 100 + k);
    ok = pgpool_conn_release(conn, NULL) == PGPOOL_OK && ok;
    if (!ok) __atomic_add_fetch(&child_failures, 1, __ATOMIC_SEQ_CST);
  }
  __atomic_add_fetch(&child_done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* CHILD_POOLS pools of one of the child's own in turn (from the parent's config of the pool
 * of one), each with WAITERS new threads waiting for its connection in turn: all done within
 * 5 s, or the child fails. Returns the number of acquires. */
static long child_contention(pgpool_config *one_cfg) {
  char name[64];
  snprintf(name, sizeof name, "%s-child-one", app);
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(one_cfg, name, &err));
  double deadline = now_ms() + 5000;
  long acquires = 0;
  for (int round = 0; round < CHILD_POOLS; round++) {
    EXPECT(PGPOOL_OK, pgpool_pool_create(url, one_cfg, &child_one, &err));
    EXPECT(PGPOOL_OK, pgpool_pool_wait_ready(child_one, 5000, &err));
    __atomic_store_n(&child_done, 0, __ATOMIC_SEQ_CST);
    pthread_t threads[WAITERS];
    for (int i = 0; i < WAITERS; i++) spawn(&threads[i], child_contender, i);
    while (__atomic_load_n(&child_done, __ATOMIC_SEQ_CST) < WAITERS) {
      if (now_ms() > deadline) {
        fprintf(stderr, "child: pool %d of %d: %d of %d threads done at 5 s: hung\n",
                round + 1, CHILD_POOLS, __atomic_load_n(&child_done, __ATOMIC_SEQ_CST),
                WAITERS);
        fflush(stderr);
        _exit(3);
      }
      sleep_ms(5);
    }
    for (int i = 0; i < WAITERS; i++) pthread_join(threads[i], NULL);
    CHECK(child_failures == 0);
    pgpool_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    EXPECT(PGPOOL_OK, pgpool_pool_stats(child_one, &stats, &err));
    CHECK(stats.in_use == 0 && stats.waiting == 0);
    CHECK(stats.acquires == WAITERS * CHILD_ROUNDS);
    acquires += (long)stats.acquires;
    EXPECT(PGPOOL_OK, pgpool_pool_close(child_one, 5000, &err));
    EXPECT_RC(PGPOOL_OK, pgpool_pool_free(child_one));
  }
  return acquires;
}

/* --- the child ------------------------------------------------------------------------- */

static void expect_forked_detail(void) {
  CHECK(strcmp(pgpool_error_category(err), "forked") == 0);
  EXPECT_MSG("fork()");
}

static void child(pgpool_config *cfg, pgpool_config *one_cfg, pgpool_conn *held,
                  pgpool_conn *one_held, pgpool_stmt *stmt, pgpool_params *parent_params,
                  pgpool_result *parent_result, int hooks) {
  alarm(15);
  double start = now_ms();
  /* The parent's pool: refused, without touching its lock. */
  pgpool_conn *conn = NULL;
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_acquire(pool, 1000, &conn, &err));
  expect_forked_detail();
  CHECK(conn == NULL);
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_try_acquire(pool, &conn, &err));
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_query(pool, "SELECT 1", 0, NULL, &res, &err));
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_exec(pool, -1, stmt, NULL, NULL, &res, NULL, &err));
  CHECK(res == NULL);
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_wait_ready(pool, 0, &err));
  pgpool_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.size = sizeof stats;
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_stats(pool, &stats, &err));
  pgpool_health health;
  memset(&health, 0, sizeof health);
  health.size = sizeof health;
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_health(pool, &health, &err));
  /* The pool of one that parent threads were waiting on at the fork: refused too. */
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_acquire(one, 1000, &conn, &err));
  EXPECT(PGPOOL_ERR_FORKED, pgpool_pool_stats(one, &stats, &err));
  /* The parent's sessions: refused, nothing sent (not even a cancel request). */
  EXPECT(PGPOOL_ERR_FORKED, pgpool_conn_query(held, "SELECT 1", 0, NULL, &res, &err));
  expect_forked_detail();
  EXPECT(PGPOOL_ERR_FORKED, pgpool_conn_batch(held, "ROLLBACK", &err));
  EXPECT(PGPOOL_ERR_FORKED, pgpool_conn_exec_stmt(held, stmt, NULL, &res, NULL, &err));
  int32_t pid = 0;
  EXPECT(PGPOOL_ERR_FORKED, pgpool_conn_backend_pid(held, &pid, &err));
  int32_t status = -1;
  EXPECT(PGPOOL_ERR_FORKED, pgpool_conn_transaction_status(held, &status, &err));
  EXPECT(PGPOOL_ERR_FORKED, pgpool_conn_cancel(sleeping_conn, &err));
  /* Not PGPOOL_ERR_BUSY: a parent thread is running a statement on it right now. */
  EXPECT(PGPOOL_ERR_FORKED, pgpool_conn_query(sleeping_conn, "SELECT 1", 0, NULL, &res, &err));
  /* The parent's result and parameter list: refused; freeing them forgets them. */
  uint64_t rows = 0;
  EXPECT(PGPOOL_ERR_FORKED, pgpool_result_nrows(parent_result, &rows, &err));
  EXPECT(PGPOOL_ERR_FORKED, pgpool_params_add_int64(parent_params, 1, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_result_free(parent_result));
  EXPECT_RC(PGPOOL_ERR_INVALID_HANDLE, pgpool_result_free(parent_result));
  EXPECT_RC(PGPOOL_OK, pgpool_params_free(parent_params));
  /* Releasing what the parent holds succeeds at once: forgotten, not reset or closed. The
   * sleeping connection's lock is held by a parent thread that does not exist here. */
  double t = now_ms();
  EXPECT(PGPOOL_OK, pgpool_conn_release(held, &err));
  EXPECT(PGPOOL_ERR_INVALID_HANDLE, pgpool_conn_release(held, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_discard(sleeping_conn, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(one_held, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, 5000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  EXPECT_RC(PGPOOL_ERR_INVALID_HANDLE, pgpool_pool_free(pool));
  EXPECT(PGPOOL_OK, pgpool_pool_close(one, 5000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(one));
  double ended = now_ms() - t;
  CHECK(ended < 200);
  /* The tables work (one was locked by a parent thread at the fork, with the hooks). */
  pgpool_stmt *own = NULL;
  EXPECT(PGPOOL_OK, pgpool_stmt_new("SELECT $1::int8 + 100", 0, NULL, &own, &err));
  /* A pool of the child's own, from the parent's config, with the parent's statement. */
  char child_app[64];
  snprintf(child_app, sizeof child_app, "%s-child", app);
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, child_app, &err));
  pgpool_pool *mine = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &mine, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(mine, 10000, &conn, &err));
  int32_t my_pid = server_pid(conn);
  for (int i = 0; i < 3; i++) CHECK(my_pid != parent_pids[i]);
  doubled_on(conn, 21);
  pgpool_params *params = NULL;
  EXPECT(PGPOOL_OK, pgpool_params_new(&params, &err));
  EXPECT(PGPOOL_OK, pgpool_params_add_int64(params, 50, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_exec_stmt(conn, stmt, params, &res, NULL, &err));
  CHECK(int_at(res) == 100);
  EXPECT(PGPOOL_OK, pgpool_conn_exec_stmt(conn, own, params, &res, NULL, &err));
  CHECK(int_at(res) == 150);
  EXPECT(PGPOOL_OK, pgpool_conn_release(conn, &err));
  for (int i = 0; i < 20; i++) {
    EXPECT(PGPOOL_OK, pgpool_params_clear(params, &err));
    EXPECT(PGPOOL_OK, pgpool_params_add_int64(params, i, &err));
    EXPECT(PGPOOL_OK, pgpool_pool_exec(mine, -1, stmt, NULL, params, &res, NULL, &err));
    CHECK(int_at(res) == 2 * i);
  }
  pgpool_result_free(res);
  pgpool_params_free(params);
  pgpool_stmt_free(own);
  EXPECT(PGPOOL_OK, pgpool_pool_close(mine, 5000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(mine));
  /* Threads of its own waiting for each other in the library, where the parent's threads
   * were waiting at the fork. */
  double contention = now_ms();
  long turns = child_contention(one_cfg);
  contention = now_ms() - contention;
  pgpool_error_free(err);
  printf("child: %d checks, the parent's handles ended in %.1f ms, %s, %ld turns of %d "
         "threads on %d pools of one in %.0f ms, %.0f ms in all\n",
         checks, ended, hooks ? "with a table lock held at the fork" : "no hooks", turns,
         WAITERS, CHILD_POOLS, contention, now_ms() - start);
  fflush(stdout);
  exit(0);
}

/* --- the parent ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s URL quiet|busy [hooks]\n", argv[0]);
    return 2;
  }
  url = argv[1];
  int busy = strcmp(argv[2], "busy") == 0;
  int hooks = argc > 3 && strcmp(argv[3], "hooks") == 0;
  alarm(60);
  snprintf(app, sizeof app, "c-fork-%ld-%s", (long)getpid(), busy ? "busy" : "quiet");

  pgpool_config *cfg = NULL;
  EXPECT(PGPOOL_OK, pgpool_config_new(&cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(cfg, 8, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(cfg, app, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, cfg, &pool, &err));

  /* Three sessions: one held across the fork inside an open transaction (a reset by the
   * child would roll it back), two idle in the pool (a close by the child would end them). */
  pgpool_conn *held = NULL, *a = NULL, *b = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 10000, &held, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 10000, &a, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 10000, &b, &err));
  parent_pids[0] = server_pid(held);
  parent_pids[1] = server_pid(a);
  parent_pids[2] = server_pid(b);
  doubled_on(a, 1);
  doubled_on(b, 2);
  EXPECT(PGPOOL_OK, pgpool_conn_release(a, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_release(b, &err));
  EXPECT(PGPOOL_OK, pgpool_conn_batch(held,
                                      "BEGIN; CREATE TEMP TABLE fork_t (x int8); "
                                      "INSERT INTO fork_t VALUES (7)",
                                      &err));
  /* A fourth session that a parent thread uses at the moment of the fork. */
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 10000, &sleeping_conn, &err));
  /* Objects of other kinds made before the fork. */
  pgpool_stmt *stmt = NULL;
  EXPECT(PGPOOL_OK, pgpool_stmt_new("SELECT $1::int8 * 2", 0, NULL, &stmt, &err));
  pgpool_params *parent_params = NULL;
  EXPECT(PGPOOL_OK, pgpool_params_new(&parent_params, &err));
  pgpool_result *parent_result = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_query(pool, "SELECT 1", 0, NULL, &parent_result, &err));
  /* A pool of one: the main thread holds its connection, WAITERS threads wait for it. */
  pgpool_config *one_cfg = NULL;
  char one_app[64];
  snprintf(one_app, sizeof one_app, "%s-one", app);
  EXPECT(PGPOOL_OK, pgpool_config_new(&one_cfg, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_max_size(one_cfg, 1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_min_idle(one_cfg, 1, &err));
  EXPECT(PGPOOL_OK, pgpool_config_set_application_name(one_cfg, one_app, &err));
  EXPECT(PGPOOL_OK, pgpool_pool_create(url, one_cfg, &one, &err));
  pgpool_conn *one_held = NULL;
  EXPECT(PGPOOL_OK, pgpool_pool_acquire(one, 10000, &one_held, &err));
  pthread_t waiter_threads[WAITERS];
  for (int i = 0; i < WAITERS; i++) spawn(&waiter_threads[i], blocked_waiter, i);

  pthread_t worker_thread, sleeper_thread, holder_thread;
  if (busy) pthread_create(&worker_thread, NULL, worker, NULL);
  pthread_create(&sleeper_thread, NULL, sleeper, NULL);
  if (hooks) pthread_create(&holder_thread, NULL, table_holder, NULL);
  sleep_ms(150);
  /* Every waiter is blocked inside the library, waiting for the one connection. */
  pgpool_stats one_stats;
  double waiting_by = now_ms() + 5000;
  for (;;) {
    memset(&one_stats, 0, sizeof one_stats);
    one_stats.size = sizeof one_stats;
    EXPECT(PGPOOL_OK, pgpool_pool_stats(one, &one_stats, &err));
    if (one_stats.waiting == WAITERS) break;
    CHECK(now_ms() < waiting_by);
    sleep_ms(5);
  }

  fflush(stdout);
  fflush(stderr);
  double fork_start = now_ms();
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) child(cfg, one_cfg, held, one_held, stmt, parent_params, parent_result, hooks);
  double fork_wait = now_ms() - fork_start;
  /* The parent's waiters get the one connection in turn. */
  EXPECT(PGPOOL_OK, pgpool_conn_release(one_held, &err));

  /* The parent goes on while the child runs: its held session (still in its transaction)
   * and fresh ones from the pool. */
  long rounds = 0;
  int status = 0;
  double deadline = now_ms() + 20000;
  for (;;) {
    pgpool_result *res = NULL;
    EXPECT(PGPOOL_OK, pgpool_conn_query(held, "SELECT x FROM fork_t", 0, NULL, &res, &err));
    CHECK(int_at(res) == 7);
    pgpool_result_free(res);
    doubled_on(held, rounds);
    pgpool_conn *fresh = NULL;
    EXPECT(PGPOOL_OK, pgpool_pool_acquire(pool, 10000, &fresh, &err));
    doubled_on(fresh, rounds + 1000);
    EXPECT(PGPOOL_OK, pgpool_conn_release(fresh, &err));
    rounds++;
    pid_t done = waitpid(pid, &status, WNOHANG);
    CHECK(done >= 0);
    if (done == pid) break;
    if (now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fprintf(stderr, "the child did not finish in 20 s\n");
      return 1;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "the child failed: status %d\n", status);
    return 1;
  }
  /* With the hooks, fork() waited for the other thread to leave the table. */
  if (hooks) CHECK(fork_wait > 100);

  /* The child is gone: the parent's sessions are the ones it had, alive and in the state it
   * left them. The held one is still inside its transaction. */
  int32_t tx = -1;
  EXPECT(PGPOOL_OK, pgpool_conn_transaction_status(held, &tx, &err));
  CHECK(tx == 1);
  CHECK(server_pid(held) == parent_pids[0]);
  pgpool_result *res = NULL;
  EXPECT(PGPOOL_OK, pgpool_conn_query(held, "SELECT count(*) FROM fork_t WHERE x = 7", 0, NULL,
                                      &res, &err));
  CHECK(int_at(res) == 1);
  pgpool_result_free(res);
  EXPECT(PGPOOL_OK, pgpool_conn_commit(held, &err));
  pthread_join(sleeper_thread, NULL);
  CHECK(sleeper_ok);
  for (int i = 0; i < WAITERS; i++) {
    pthread_join(waiter_threads[i], NULL);
    CHECK(waiter_ok[i]);
  }
  EXPECT(PGPOOL_OK, pgpool_pool_close(one, 5000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(one));
  pgpool_config_free(one_cfg);
  if (hooks) pthread_join(holder_thread, NULL);
  doubled_on(sleeping_conn, 3);
  EXPECT(PGPOOL_OK, pgpool_conn_release(sleeping_conn, &err));
  if (busy) {
    __atomic_store_n(&stop_worker, 1, __ATOMIC_SEQ_CST);
    pthread_join(worker_thread, NULL);
    CHECK(worker_failures == 0);
    CHECK(worker_rounds > 0);
  }
  /* The server still has all three sessions, under the parent's application name. */
  char pids[64];
  snprintf(pids, sizeof pids, "{%d,%d,%d}", parent_pids[0], parent_pids[1], parent_pids[2]);
  const char *params[] = {pids, app};
  EXPECT(PGPOOL_OK, pgpool_conn_query(held,
                                      "SELECT count(*) FROM pg_stat_activity "
                                      "WHERE pid = ANY($1::int4[]) AND application_name = $2",
                                      2, params, &res, &err));
  CHECK(int_at(res) == 3);
  pgpool_result_free(res);
  EXPECT(PGPOOL_OK, pgpool_conn_release(held, &err));
  /* And the two idle ones come back out of the pool and work. */
  pgpool_conn *idle[8];
  int n = 0, seen = 0;
  while (n < 8 && pgpool_pool_try_acquire(pool, &idle[n], NULL) == PGPOOL_OK) {
    int32_t p = server_pid(idle[n]);
    if (p == parent_pids[1] || p == parent_pids[2]) seen++;
    doubled_on(idle[n], n);
    n++;
  }
  CHECK(seen == 2);
  for (int i = 0; i < n; i++) EXPECT(PGPOOL_OK, pgpool_conn_release(idle[i], &err));
  /* The parent's own result and parameter list are still its own. */
  uint64_t rows = 0;
  EXPECT(PGPOOL_OK, pgpool_result_nrows(parent_result, &rows, &err));
  CHECK(rows == 1);
  EXPECT(PGPOOL_OK, pgpool_params_add_int64(parent_params, 1, &err));
  pgpool_result_free(parent_result);
  pgpool_params_free(parent_params);
  pgpool_stmt_free(stmt);
  pgpool_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.size = sizeof stats;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &stats, &err));
  CHECK(stats.in_use == 0);
  EXPECT(PGPOOL_OK, pgpool_pool_close(pool, 5000, &err));
  EXPECT_RC(PGPOOL_OK, pgpool_pool_free(pool));
  pgpool_config_free(cfg);
  pgpool_error_free(err);
  printf("FORK OK (%s%s): %d checks, %ld parent rounds while the child ran, %ld worker "
         "rounds, fork() took %.1f ms\n",
         busy ? "busy" : "quiet", hooks ? ", hooks" : "", checks, rounds, worker_rounds,
         fork_wait);
  return 0;
}
