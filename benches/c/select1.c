/*
 * Benchmark driver for the C ABI: THREADS threads share one pool of POOL connections and
 * repeat acquire, `SELECT $1::int4` with a text parameter (through the statement cache),
 * release, for SECONDS. Prints `queries=N seconds=S` and writes each query's latency in
 * nanoseconds, one per line, to LATENCY_FILE ("-": latencies are not taken).
 *
 * With QUERIES, each thread instead runs exactly QUERIES queries (SECONDS is ignored): the
 * fixed-work mode scripts/profile.sh uses.
 *
 * Usage: select1 CONNINFO THREADS POOL SECONDS LATENCY_FILE [QUERIES]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgpool.h"

#define MAX_SAMPLES (4u << 20)

static atomic_int phase; /* 1: measure, 2: stop */
static struct pgpool_pool *pool;
static size_t per_thread_cap;
static uint64_t fixed_queries; /* 0: run for SECONDS */
static int record_latency = 1;

struct worker {
    pthread_t tid;
    uint64_t queries;
    uint32_t *lat_ns;
    size_t n_lat;
    int failed;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, pgpool_code code, struct pgpool_error *err) {
    fprintf(stderr, "%s: %s: %s\n", what, pgpool_code_name(code),
            err ? pgpool_error_message(err) : "");
    pgpool_error_free(err);
    exit(1);
}

static struct pgpool_stmt *stmt;

/* One acquire + `SELECT $1::int4` + release in one library call, with this thread's
 * parameter list and result reused across queries (no allocation per query). */
static int one_query(void) {
    static _Thread_local struct pgpool_params *params;
    static _Thread_local struct pgpool_result *res;
    struct pgpool_error *err = NULL;
    pgpool_code rc = PGPOOL_OK;
    if (params == NULL) {
        rc = pgpool_params_new(&params, &err);
        if (rc == PGPOOL_OK) rc = pgpool_params_add_int32(params, 1, &err);
    }
    if (rc == PGPOOL_OK) rc = pgpool_pool_exec(pool, -1, stmt, NULL, params, &res, NULL, &err);
    int64_t v = 0;
    if (rc == PGPOOL_OK) rc = pgpool_result_get_int64(res, 0, 0, &v, &err);
    if (rc != PGPOOL_OK || v != 1) {
        fprintf(stderr, "query: %s\n", err ? pgpool_error_message(err) : "wrong value");
        pgpool_error_free(err);
        return -1;
    }
    return 0;
}

static void *work(void *arg) {
    struct worker *w = arg;
    if (fixed_queries > 0) {
        for (uint64_t i = 0; i < fixed_queries; i++) {
            if (one_query() != 0) {
                w->failed = 1;
                return NULL;
            }
            w->queries++;
        }
        return NULL;
    }
    while (atomic_load_explicit(&phase, memory_order_relaxed) == 1) {
        if (!record_latency) {
            if (one_query() != 0) {
                w->failed = 1;
                return NULL;
            }
            w->queries++;
            continue;
        }
        uint64_t t0 = now_ns();
        if (one_query() != 0) {
            w->failed = 1;
            return NULL;
        }
        uint64_t dt = now_ns() - t0;
        if (w->n_lat < per_thread_cap) {
            w->lat_ns[w->n_lat++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
        }
        w->queries++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s CONNINFO THREADS POOL SECONDS LATENCY_FILE [QUERIES]\n",
                argv[0]);
        return 2;
    }
    record_latency = strcmp(argv[5], "-") != 0;
    if (argc == 7) {
        fixed_queries = strtoull(argv[6], NULL, 10);
        if (fixed_queries == 0) {
            fprintf(stderr, "bad QUERIES\n");
            return 2;
        }
    }
    int threads = atoi(argv[2]);
    int size = atoi(argv[3]);
    double seconds = atof(argv[4]);
    if (threads < 1 || size < 1 || (seconds <= 0 && fixed_queries == 0)) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    struct pgpool_config *cfg = NULL;
    struct pgpool_error *err = NULL;
    pgpool_code rc = pgpool_config_new(&cfg, &err);
    if (rc != PGPOOL_OK) die("config", rc, err);
    if ((rc = pgpool_config_set_max_size(cfg, (uint32_t)size, &err)) != PGPOOL_OK)
        die("max_size", rc, err);
    if ((rc = pgpool_config_set_min_idle(cfg, (uint32_t)size, &err)) != PGPOOL_OK)
        die("min_idle", rc, err);
    if ((rc = pgpool_pool_create(argv[1], cfg, &pool, &err)) != PGPOOL_OK)
        die("pool_create", rc, err);
    pgpool_config_free(cfg);
    if ((rc = pgpool_stmt_new("SELECT $1::int4", 0, NULL, &stmt, &err)) != PGPOOL_OK)
        die("stmt", rc, err);
    if ((rc = pgpool_pool_wait_ready(pool, 60000, &err)) != PGPOOL_OK)
        die("wait_ready", rc, err);

    per_thread_cap = record_latency ? MAX_SAMPLES / (size_t)threads : 0;
    /* The window opens now: thread start-up counts against us, not for us. */
    uint64_t t0 = now_ns();
    atomic_store(&phase, 1);
    struct worker *ws = calloc((size_t)threads, sizeof *ws);
    for (int i = 0; i < threads; i++) {
        if (record_latency) {
            ws[i].lat_ns = malloc(per_thread_cap * sizeof(uint32_t));
        }
        if ((record_latency && !ws[i].lat_ns) ||
            pthread_create(&ws[i].tid, NULL, work, &ws[i]) != 0) {
            fprintf(stderr, "cannot start thread %d\n", i);
            return 1;
        }
    }
    if (fixed_queries == 0) {
        struct timespec sl = {(time_t)seconds,
                              (long)((seconds - (double)(time_t)seconds) * 1e9)};
        nanosleep(&sl, NULL);
        atomic_store(&phase, 2);
    }
    double elapsed = (double)(now_ns() - t0) / 1e9;

    uint64_t total = 0;
    int failed = 0;
    FILE *out = NULL;
    if (record_latency && !(out = fopen(argv[5], "w"))) {
        perror(argv[5]);
        return 1;
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(ws[i].tid, NULL);
        total += ws[i].queries;
        failed |= ws[i].failed;
        for (size_t k = 0; k < ws[i].n_lat; k++) fprintf(out, "%u\n", ws[i].lat_ns[k]);
        free(ws[i].lat_ns);
    }
    if (fixed_queries > 0) {
        elapsed = (double)(now_ns() - t0) / 1e9;
    }
    if (out) {
        fclose(out);
    }
    free(ws);
    pgpool_pool_close(pool, 5000, NULL);
    pgpool_pool_free(pool);
    if (failed) return 1;
    printf("queries=%llu seconds=%.6f\n", (unsigned long long)total, elapsed);
    return 0;
}
