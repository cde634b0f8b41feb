// Helpers that bundle several library calls into one cgo crossing (gp.c).
#ifndef PGPOOL_GO_GP_H
#define PGPOOL_GO_GP_H
#include <stdlib.h>
#include "pgpool.h"

// One decoded value of a result row. kind: 0 NULL, 1 integer (i), 2 float (f), 3 bool (i),
// 4 text (p, n), 5 bytea (p, n), 6 timestamp in microseconds (i), 7 getter error (code).
typedef struct {
	int64_t i;
	double f;
	const char *p;
	size_t n;
	int32_t kind;
	int32_t code;
} gp_cell;

typedef struct {
	uint64_t nrows;
	uint64_t affected;
	uint32_t ncols;
	uint32_t described;
	uint32_t prefetched;
	uint32_t reserved;
} gp_meta;

typedef struct {
	const char *message;
	const char *sqlstate;
	const char *category;
	int32_t code;
	int32_t outcome_unknown;
	int32_t retry_safe;
} gp_errinfo;

void gp_error_info(const pgpool_error *e, gp_errinfo *out);
pgpool_code gp_bind(pgpool_params *params, const unsigned char *buf, size_t len,
                           pgpool_error **err);
void gp_fetch_row(const pgpool_result *res, uint64_t row, uint32_t ncols,
                         const uint32_t *types, gp_cell *cells);
void gp_describe(const pgpool_result *res, gp_meta *meta, uint32_t *types,
                        uint32_t maxcols, gp_cell *cells);
pgpool_code gp_pool_exec(pgpool_pool *pool, int64_t timeout_ms, const char *sql,
                                pgpool_params *params, const unsigned char *buf, size_t len,
                                pgpool_result **res, gp_meta *meta, uint32_t *types,
                                uint32_t maxcols, gp_cell *cells, pgpool_error **err);
pgpool_code gp_conn_exec(pgpool_conn *conn, int64_t query_timeout_ms, const char *sql,
                                pgpool_params *params, const unsigned char *buf, size_t len,
                                pgpool_result **res, gp_meta *meta, uint32_t *types,
                                uint32_t maxcols, gp_cell *cells, pgpool_error **err);
void gp_column_names(const pgpool_result *res, uint32_t ncols, const char **out);
pgpool_code gp_commit(pgpool_conn *conn, int32_t *failed, pgpool_error **err);
pgpool_code gp_log_install(int32_t max_level, pgpool_error **err);
pgpool_code gp_event_install(pgpool_config *cfg, uintptr_t handle, pgpool_error **err);

#endif
