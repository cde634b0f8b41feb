/* Assertion helpers shared by the C test programs. */
#ifndef PGPOOL_TEST_CHECK_H
#define PGPOOL_TEST_CHECK_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgpool.h"

static pgpool_error *err = NULL;
static int checks = 0;

/* Runs `expr` (which passes &err as its out_err), expects `expected`; on failure a detail
 * object with the same code must be present. */
#define EXPECT(expected, expr)                                                              \
  do {                                                                                      \
    pgpool_error_free(err);                                                                 \
    err = NULL;                                                                             \
    int rc_ = (int)(expr);                                                                  \
    if (rc_ != (int)(expected)) {                                                           \
      fprintf(stderr, "%s:%d: %s -> %d (%s), expected %s: %s\n", __FILE__, __LINE__, #expr, \
              rc_, pgpool_code_name(rc_), pgpool_code_name((int)(expected)),                \
              err ? pgpool_error_message(err) : "(no detail)");                             \
      exit(1);                                                                              \
    }                                                                                       \
    if (rc_ != 0 && (err == NULL || (int)pgpool_error_code(err) != rc_)) {                  \
      fprintf(stderr, "%s:%d: %s: missing or wrong detail object\n", __FILE__, __LINE__,    \
              #expr);                                                                       \
      exit(1);                                                                              \
    }                                                                                       \
    if (rc_ == 0 && err != NULL) {                                                          \
      fprintf(stderr, "%s:%d: %s: detail object on success\n", __FILE__, __LINE__, #expr);  \
      exit(1);                                                                              \
    }                                                                                       \
    checks++;                                                                               \
  } while (0)

/* For functions without an out_err argument. */
#define EXPECT_RC(expected, expr)                                                          \
  do {                                                                                     \
    int rc_ = (int)(expr);                                                                 \
    if (rc_ != (int)(expected)) {                                                          \
      fprintf(stderr, "%s:%d: %s -> %d (%s), expected %s\n", __FILE__, __LINE__, #expr,   \
              rc_, pgpool_code_name(rc_), pgpool_code_name((int)(expected)));              \
      exit(1);                                                                             \
    }                                                                                      \
    checks++;                                                                              \
  } while (0)

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
      exit(1);                                                                       \
    }                                                                                \
    checks++;                                                                        \
  } while (0)

/* The last error's message contains `needle`. */
#define EXPECT_MSG(needle)                                                                  \
  do {                                                                                      \
    const char *m_ = pgpool_error_message(err);                                             \
    if (strstr(m_, (needle)) == NULL) {                                                     \
      fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, m_,      \
              (needle));                                                                    \
      exit(1);                                                                              \
    }                                                                                       \
    checks++;                                                                               \
  } while (0)

/* A snapshot of `pool`'s stats (the size-led struct filled in full). */
static inline pgpool_stats stats_of(pgpool_pool *pool) {
  pgpool_stats s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  EXPECT(PGPOOL_OK, pgpool_pool_stats(pool, &s, &err));
  return s;
}

/* Counts the REMOVE events of one close reason: pass `&removals` as the event callback's
 * user data and `count_removals` as the callback; read with `removals_seen`. */
struct removals {
  int reason; /* a PGPOOL_CLOSE_* value */
  pthread_mutex_t lock;
  int count;
  char text[32]; /* the last one's reason_text */
};

static inline void count_removals(const pgpool_event *ev, void *user_data) {
  struct removals *r = user_data;
  if (ev->kind != PGPOOL_EVENT_REMOVE || ev->reason != r->reason) return;
  pthread_mutex_lock(&r->lock);
  r->count++;
  snprintf(r->text, sizeof r->text, "%s", ev->reason_text);
  pthread_mutex_unlock(&r->lock);
}

/* How many were counted; copies the last reason_text into `text` (32 bytes). */
static inline int removals_seen(struct removals *r, char *text) {
  pthread_mutex_lock(&r->lock);
  int n = r->count;
  memcpy(text, r->text, sizeof r->text);
  pthread_mutex_unlock(&r->lock);
  return n;
}

#endif
