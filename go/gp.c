#include <string.h>
#include "gp.h"
#include "_cgo_export.h"

void gp_error_info(const pgpool_error *e, gp_errinfo *out) {
	out->code = pgpool_error_code(e);
	out->message = pgpool_error_message(e);
	out->sqlstate = pgpool_error_sqlstate(e);
	out->category = pgpool_error_category(e);
	out->outcome_unknown = pgpool_error_outcome_unknown(e);
	out->retry_safe = pgpool_error_retry_safe(e);
}

// Parameters arrive as one byte buffer: a tag, then the value (see params.go).
pgpool_code gp_bind(pgpool_params *params, const unsigned char *buf, size_t len,
                           pgpool_error **err) {
	pgpool_code rc = pgpool_params_clear(params, err);
	size_t off = 0;
	while (rc == PGPOOL_OK && off < len) {
		unsigned char tag = buf[off++];
		switch (tag) {
		case 0:
			rc = pgpool_params_add_null(params, err);
			break;
		case 1:
			rc = pgpool_params_add_bool(params, buf[off++] != 0, err);
			break;
		case 2: {
			int16_t v;
			memcpy(&v, buf + off, 2);
			off += 2;
			rc = pgpool_params_add_int16(params, v, err);
			break;
		}
		case 3: {
			int32_t v;
			memcpy(&v, buf + off, 4);
			off += 4;
			rc = pgpool_params_add_int32(params, v, err);
			break;
		}
		case 4: {
			int64_t v;
			memcpy(&v, buf + off, 8);
			off += 8;
			rc = pgpool_params_add_int64(params, v, err);
			break;
		}
		case 5: {
			float v;
			memcpy(&v, buf + off, 4);
			off += 4;
			rc = pgpool_params_add_float4(params, v, err);
			break;
		}
		case 6: {
			double v;
			memcpy(&v, buf + off, 8);
			off += 8;
			rc = pgpool_params_add_float8(params, v, err);
			break;
		}
		case 7:
		case 8: {
			uint32_t n;
			memcpy(&n, buf + off, 4);
			off += 4;
			if (tag == 7)
				rc = pgpool_params_add_text(params, (const char *)buf + off, n, err);
			else
				rc = pgpool_params_add_bytea(params, buf + off, n, err);
			off += n;
			break;
		}
		case 9: {
			uint32_t oid, n;
			memcpy(&oid, buf + off, 4);
			memcpy(&n, buf + off + 4, 4);
			off += 8;
			rc = pgpool_params_add_typed_text(params, oid, (const char *)buf + off, err);
			off += n;
			break;
		}
		default:
			return PGPOOL_ERR_INVALID_ARGUMENT;
		}
	}
	return rc;
}

void gp_fetch_row(const pgpool_result *res, uint64_t row, uint32_t ncols,
                         const uint32_t *types, gp_cell *cells) {
	for (uint32_t c = 0; c < ncols; c++) {
		gp_cell *cell = &cells[c];
		pgpool_code rc;
		cell->code = 0;
		switch (types[c]) {
		case 16: {
			bool b = false;
			rc = pgpool_result_get_bool(res, row, c, &b, NULL);
			cell->i = b;
			cell->kind = 3;
			break;
		}
		case 20:
		case 21:
		case 23:
		case 26:
			rc = pgpool_result_get_int64(res, row, c, &cell->i, NULL);
			cell->kind = 1;
			break;
		case 700:
		case 701:
			rc = pgpool_result_get_double(res, row, c, &cell->f, NULL);
			cell->kind = 2;
			break;
		case 17: {
			const uint8_t *p = NULL;
			rc = pgpool_result_get_bytea(res, row, c, &p, &cell->n, NULL);
			cell->p = (const char *)p;
			cell->kind = 5;
			break;
		}
		case 1114:
		case 1184:
			rc = pgpool_result_get_timestamp(res, row, c, &cell->i, NULL);
			cell->kind = 6;
			break;
		default:
			rc = pgpool_result_get_text(res, row, c, &cell->p, &cell->n, NULL);
			cell->kind = 4;
			break;
		}
		if (rc == PGPOOL_ERR_NULL_VALUE) {
			cell->kind = 0;
		} else if (rc != PGPOOL_OK) {
			cell->kind = 7;
			cell->code = rc;
		}
	}
}

// Row and column counts, column types (when they fit in maxcols) and the first row.
void gp_describe(const pgpool_result *res, gp_meta *meta, uint32_t *types,
                        uint32_t maxcols, gp_cell *cells) {
	meta->nrows = 0;
	meta->ncols = 0;
	meta->described = 0;
	meta->prefetched = 0;
	pgpool_result_nrows(res, &meta->nrows, NULL);
	pgpool_result_ncols(res, &meta->ncols, NULL);
	if (meta->ncols > maxcols)
		return;
	for (uint32_t c = 0; c < meta->ncols; c++)
		pgpool_result_column_type(res, c, &types[c], NULL);
	meta->described = 1;
	if (meta->nrows > 0) {
		gp_fetch_row(res, 0, meta->ncols, types, cells);
		meta->prefetched = 1;
	}
}

// Bind, acquire, run, release and describe: one crossing for a pool-level query.
pgpool_code gp_pool_exec(pgpool_pool *pool, int64_t timeout_ms, const char *sql,
                                pgpool_params *params, const unsigned char *buf, size_t len,
                                pgpool_result **res, gp_meta *meta, uint32_t *types,
                                uint32_t maxcols, gp_cell *cells, pgpool_error **err) {
	pgpool_code rc = gp_bind(params, buf, len, err);
	if (rc != PGPOOL_OK)
		return rc;
	rc = pgpool_pool_exec(pool, timeout_ms, NULL, sql, params, res, &meta->affected, err);
	if (rc == PGPOOL_OK && res != NULL)
		gp_describe(*res, meta, types, maxcols, cells);
	return rc;
}

// Set the query timeout, bind, run and describe on a held connection: one crossing.
pgpool_code gp_conn_exec(pgpool_conn *conn, int64_t query_timeout_ms, const char *sql,
                                pgpool_params *params, const unsigned char *buf, size_t len,
                                pgpool_result **res, gp_meta *meta, uint32_t *types,
                                uint32_t maxcols, gp_cell *cells, pgpool_error **err) {
	pgpool_code rc = pgpool_conn_set_query_timeout(conn, query_timeout_ms, err);
	if (rc != PGPOOL_OK)
		return rc;
	rc = gp_bind(params, buf, len, err);
	if (rc != PGPOOL_OK)
		return rc;
	rc = pgpool_conn_exec(conn, sql, params, res, &meta->affected, err);
	if (rc == PGPOOL_OK && res != NULL)
		gp_describe(*res, meta, types, maxcols, cells);
	return rc;
}

void gp_column_names(const pgpool_result *res, uint32_t ncols, const char **out) {
	for (uint32_t c = 0; c < ncols; c++) {
		out[c] = NULL;
		pgpool_result_column_name(res, c, &out[c], NULL);
	}
}

// COMMIT, unless the transaction failed: then ROLLBACK and report it (*failed = 1).
pgpool_code gp_commit(pgpool_conn *conn, int32_t *failed, pgpool_error **err) {
	int32_t status = 0;
	*failed = 0;
	pgpool_code rc = pgpool_conn_transaction_status(conn, &status, err);
	if (rc != PGPOOL_OK)
		return rc;
	if (status == 2) {
		*failed = 1;
		return pgpool_conn_rollback(conn, err);
	}
	return pgpool_conn_commit(conn, err);
}

// The log callback: hands each record to the Go function SetLogger installed (log.go).
static void gp_log(int32_t level, const char *message, void *user_data) {
	(void)user_data;
	pgpoolGoLog(level, (char *)message);
}

pgpool_code gp_log_install(int32_t max_level, pgpool_error **err) {
	return pgpool_log_set_callback(gp_log, NULL, max_level, err);
}

// The event callback: hands each event to the Go function of the cgo.Handle passed as
// user_data (events.go); the library frees that handle through gp_event_free.
static void gp_event(const pgpool_event *ev, void *user_data) {
	pgpoolGoEvent((pgpool_event *)ev, (uintptr_t)user_data);
}

static void gp_event_free(void *user_data) {
	pgpoolGoEventFree((uintptr_t)user_data);
}

pgpool_code gp_event_install(pgpool_config *cfg, uintptr_t handle, pgpool_error **err) {
	return pgpool_config_set_event_callback(cfg, gp_event, (void *)handle, gp_event_free, err);
}
