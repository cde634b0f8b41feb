// Package pgpool is a Go interface to libpgpool, a blocking, thread-based PostgreSQL
// connection pool, through cgo. Its API follows pgx's pgxpool: NewPool, Query, QueryRow,
// Exec, Acquire/Release, BeginFunc and Stats, with a context.Context on every call that can
// block; package stdlib puts a database/sql front on a Pool.
//
// Build: by default the library is found with pkg-config (pgpool.pc). To build against a
// libpgpool.so that is not installed, use -tags pgpool_nopkgconfig with
//
//	CGO_CFLAGS=-I<repo>/include
//	CGO_LDFLAGS="-L<repo>/target/release -Wl,-rpath,<repo>/target/release -lpgpool"
//
// Contexts: a context's deadline bounds the wait for a connection and becomes the
// connection's query timeout (the statement is cancelled on the server); cancelling the
// context while a statement runs sends a cancel request to the server from another
// goroutine. Either way the call returns an error for which errors.Is(err, ctx.Err()) holds
// and errors.As finds the library's *Error (SQLSTATE 57014 for a cancelled statement).
//
// Handles: Close a Pool, Release a Conn and Close Rows; finalizers are only a safety net.
package pgpool

import (
	"context"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

/*
#include <stdlib.h>
#include "gp.h"
*/
import "C"

// Pool is a pool of connections, safe for concurrent use by any number of goroutines.
type Pool struct {
	p              *C.pgpool_pool
	acquireTimeout time.Duration
	queryTimeout   time.Duration // 0: unbounded
	closeOnce      sync.Once
}

type settings struct {
	setters        []func(cfg *C.pgpool_config, err **C.pgpool_error) C.pgpool_code
	acquireTimeout time.Duration
	queryTimeout   time.Duration
}

// Option configures a Pool (NewPool). Durations are rounded up to milliseconds; where the
// library accepts "never", a negative duration means never.
type Option func(*settings)

func ms(d time.Duration) C.int64_t {
	if d < 0 {
		return -1
	}
	return C.int64_t((d + time.Millisecond - 1) / time.Millisecond)
}

func set(f func(cfg *C.pgpool_config, err **C.pgpool_error) C.pgpool_code) Option {
	return func(s *settings) { s.setters = append(s.setters, f) }
}

// MaxConns is the most connections open at once (max_size; default 10).
func MaxConns(n int32) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_max_size(c, C.uint32_t(n), e)
	})
}

// MinIdle is the number of idle connections kept ready (min_idle; default 0).
func MinIdle(n int32) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_min_idle(c, C.uint32_t(n), e)
	})
}

// MaxIdle is the most idle connections kept (max_idle; default MaxConns).
func MaxIdle(n int32) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_max_idle(c, C.uint32_t(n), e)
	})
}

// MaxConnLifetime closes connections this old (max_lifetime; default 30 min; negative: never).
func MaxConnLifetime(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_max_lifetime_ms(c, ms(d), e)
	})
}

// MaxConnIdleTime closes connections idle this long (idle_timeout; default 10 min;
// negative: never).
func MaxConnIdleTime(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_idle_timeout_ms(c, ms(d), e)
	})
}

// MaxConnUses retires a connection after this many checkouts (max_uses; default 0: no limit).
func MaxConnUses(n uint64) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_max_uses(c, C.uint64_t(n), e)
	})
}

// AcquireTimeout bounds the wait for a connection when the context has no earlier deadline
// (acquire_timeout; default 30 s).
func AcquireTimeout(d time.Duration) Option {
	return func(s *settings) {
		s.acquireTimeout = d
		set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
			return C.pgpool_config_set_acquire_timeout_ms(c, ms(d), e)
		})(s)
	}
}

// ConnectTimeout bounds one connection attempt (connect_timeout; default 10 s).
func ConnectTimeout(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_connect_timeout_ms(c, ms(d), e)
	})
}

// StatementTimeout sets the server's statement_timeout in every session (negative: the
// server's default).
func StatementTimeout(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_statement_timeout_ms(c, ms(d), e)
	})
}

// QueryTimeout cancels every statement on the server after this long (query_timeout;
// default unbounded). A context deadline can only shorten it.
func QueryTimeout(d time.Duration) Option {
	return func(s *settings) {
		s.queryTimeout = d
		set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
			return C.pgpool_config_set_query_timeout_ms(c, ms(d), e)
		})(s)
	}
}

// ApplicationName is every session's application_name (default: the connection string's,
// else "pgpool").
func ApplicationName(name string) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		cs := C.CString(name)
		defer C.free(unsafe.Pointer(cs))
		return C.pgpool_config_set_application_name(c, cs, e)
	})
}

// StatementCacheCapacity is the number of prepared statements cached per connection
// (default 256; 0: none).
func StatementCacheCapacity(n int) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_statement_cache_capacity(c, C.uint64_t(n), e)
	})
}

// ValidateOnAcquire checks a connection with a round trip before handing it out, unless it
// was used within the skip window (default true).
func ValidateOnAcquire(on bool) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_validate_on_acquire(c, C.bool(on), e)
	})
}

// HealthCheckPeriod is how often idle connections are checked (keepalive_interval; default
// 60 s; negative: never).
func HealthCheckPeriod(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_keepalive_interval_ms(c, ms(d), e)
	})
}

// MaxWaiters fails acquires at once (ErrOverloaded) when this many callers already wait
// (default 0: unbounded).
func MaxWaiters(n uint64) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_max_waiters(c, C.uint64_t(n), e)
	})
}

// CloseTimeout is how long Close waits for connections in use (default 5 s).
func CloseTimeout(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_close_timeout_ms(c, ms(d), e)
	})
}

// FullReset undoes session state (SET, LISTEN, advisory locks, temporary tables) on every
// release, in one extra round trip (default false).
func FullReset(on bool) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_full_reset(c, C.bool(on), e)
	})
}

// TransactionPooling is for a transaction-pooling proxy such as PgBouncer (default false).
func TransactionPooling(on bool) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_transaction_pooling(c, C.bool(on), e)
	})
}

// NewPool creates a pool for connString (a postgres:// URL or key=value pairs). It returns
// at once: connections open in the background (MinIdle of them) or on demand. Use Ping to
// check the server is reachable.
func NewPool(ctx context.Context, connString string, opts ...Option) (*Pool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := settings{acquireTimeout: 30 * time.Second}
	for _, o := range opts {
		o(&s)
	}
	var cfg *C.pgpool_config
	var detail *C.pgpool_error
	if err := takeError(C.pgpool_config_new(&cfg, &detail), detail); err != nil {
		return nil, err
	}
	defer C.pgpool_config_free(cfg)
	for _, f := range s.setters {
		detail = nil
		if err := takeError(f(cfg, &detail), detail); err != nil {
			return nil, err
		}
	}
	cs := C.CString(connString)
	defer C.free(unsafe.Pointer(cs))
	p := &Pool{acquireTimeout: s.acquireTimeout, queryTimeout: s.queryTimeout}
	detail = nil
	if err := takeError(C.pgpool_pool_create(cs, cfg, &p.p, &detail), detail); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(p, (*Pool).finalize)
	return p, nil
}

// Open is NewPool.
func Open(ctx context.Context, connString string, opts ...Option) (*Pool, error) {
	return NewPool(ctx, connString, opts...)
}

func (p *Pool) finalize() { C.pgpool_pool_free(p.p) }

// Close closes the pool: later calls fail with ErrClosed, idle connections close, and Close
// waits (up to CloseTimeout) for connections in use to come back. Idempotent. Stats still
// work afterwards.
func (p *Pool) Close() error {
	var err error
	p.closeOnce.Do(func() {
		var detail *C.pgpool_error
		err = takeError(C.pgpool_pool_close(p.p, -1, &detail), detail)
		runtime.KeepAlive(p)
	})
	return err
}

// WaitReady waits until MinIdle connections are open (bounded by ctx, or 30 s without a
// deadline), failing fast on a permanent connect error.
func (p *Pool) WaitReady(ctx context.Context) error {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	var detail *C.pgpool_error
	err := takeError(C.pgpool_pool_wait_ready(p.p, ms(max(timeout, 0)), &detail), detail)
	runtime.KeepAlive(p)
	return wrapCtx(ctx, err, false)
}

// Ping acquires a connection and runs an empty round trip.
func (p *Pool) Ping(ctx context.Context) error {
	_, err := p.Exec(ctx, "SELECT 1")
	return err
}

// limits turns ctx's deadline into the acquire wait and the query timeout (ms; -1 = the
// pool's own) and says whether the context's deadline is the tighter bound.
func (p *Pool) limits(ctx context.Context) (acquire time.Duration, query C.int64_t, byCtx bool) {
	acquire, query = p.acquireTimeout, -1
	dl, ok := ctx.Deadline()
	if !ok {
		return acquire, query, false
	}
	left := time.Until(dl)
	if left < time.Millisecond {
		left = time.Millisecond
	}
	if left < acquire {
		acquire, byCtx = left, true
	}
	if p.queryTimeout <= 0 || left < p.queryTimeout {
		query, byCtx = ms(left), true
	}
	return acquire, query, byCtx
}

// wrapCtx makes an error of a call that ctx cut short report ctx's error.
func wrapCtx(ctx context.Context, err error, byCtx bool) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return &ctxError{cerr, err}
	}
	if e, ok := err.(*Error); ok && byCtx && e.Code == CodeTimeout {
		// The library's timer (the context's deadline in milliseconds) fired first.
		return &ctxError{context.DeadlineExceeded, err}
	}
	return err
}

const acquireSlice = 25 * time.Millisecond

// acquire takes a connection, waiting at most until ctx's deadline or the pool's
// AcquireTimeout; a cancellable context is checked every 25 ms.
func (p *Pool) acquire(ctx context.Context) (*C.pgpool_conn, error) {
	var conn *C.pgpool_conn
	var detail *C.pgpool_error
	if ctx.Done() == nil {
		err := takeError(C.pgpool_pool_acquire(p.p, -1, &conn, &detail), detail)
		runtime.KeepAlive(p)
		return conn, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	wait, _, byCtx := p.limits(ctx)
	end := time.Now().Add(wait)
	for {
		slice := min(time.Until(end), acquireSlice)
		if slice < time.Millisecond {
			slice = time.Millisecond
		}
		detail = nil
		rc := C.pgpool_pool_acquire(p.p, ms(slice), &conn, &detail)
		runtime.KeepAlive(p)
		if rc == C.PGPOOL_OK {
			return conn, nil
		}
		err := takeError(rc, detail)
		if rc != C.PGPOOL_ERR_TIMEOUT || !time.Now().Before(end) || ctx.Err() != nil {
			return nil, wrapCtx(ctx, err, byCtx)
		}
	}
}

// Acquire takes a connection from the pool for the caller's exclusive use until Release.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	conn := &Conn{c: c, pool: p}
	runtime.SetFinalizer(conn, (*Conn).Release)
	return conn, nil
}

// run executes sql on a pooled connection; with wantRows the result stays in the returned
// state. A context that can be cancelled takes acquire, run and release as three calls (so
// that a cancel request can be aimed at the connection); otherwise it is one call.
func (p *Pool) run(ctx context.Context, sql string, args []any, wantRows bool) (*execState, error) {
	st := getState()
	if err := st.prepare(sql, args); err != nil {
		putState(st)
		return nil, err
	}
	if ctx.Done() != nil {
		c, err := p.acquire(ctx)
		if err != nil {
			putState(st)
			return nil, err
		}
		conn := Conn{c: c, pool: p}
		err = conn.runState(ctx, st, wantRows)
		C.pgpool_conn_release(c, nil)
		if err != nil {
			putState(st)
			return nil, err
		}
		return st, nil
	}
	csql, cbuf, n := st.cargs()
	var resp **C.pgpool_result
	if wantRows {
		resp = &st.box.res
	}
	var detail *C.pgpool_error
	rc := C.gp_pool_exec(p.p, -1, csql, st.params, cbuf, n, resp, &st.meta,
		&st.types[0], C.uint32_t(len(st.types)), &st.cells[0], &detail)
	runtime.KeepAlive(p)
	if rc != C.PGPOOL_OK {
		err := takeError(rc, detail)
		putState(st)
		return nil, err
	}
	return st, nil
}

// Query runs sql with args on a pooled connection and returns its rows (buffered: the
// connection is back in the pool when Query returns). Close the rows.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (*Rows, error) {
	st, err := p.run(ctx, sql, args, true)
	if err != nil {
		return nil, err
	}
	return newRows(st, true), nil
}

// QueryRow runs sql and returns its first row; errors are reported by Row.Scan.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) *Row {
	st, err := p.run(ctx, sql, args, true)
	if err != nil {
		return &Row{err: err}
	}
	return &Row{rows: newRows(st, false)}
}

// Exec runs a command and returns its row count.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (CommandTag, error) {
	st, err := p.run(ctx, sql, args, false)
	if err != nil {
		return CommandTag{}, err
	}
	tag := CommandTag{rows: int64(st.meta.affected)}
	putState(st)
	return tag, nil
}

// BeginFunc runs f in a transaction on a pooled connection: it commits when f returns nil
// and rolls back when f returns an error or panics (the panic goes on).
func (p *Pool) BeginFunc(ctx context.Context, f func(*Conn) error) error {
	c, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return c.BeginFunc(ctx, f)
}

// CommandTag is the outcome of a command.
type CommandTag struct{ rows int64 }

// RowsAffected is the number of rows the command inserted, updated, deleted or returned.
func (t CommandTag) RowsAffected() int64 { return t.rows }

// Stats is a snapshot of the pool, named after pgxpool.Stat and sql.DBStats.
type Stats struct {
	MaxConns          int32 // configured maximum (sql.DBStats.MaxOpenConnections)
	TotalConns        int32 // established connections (OpenConnections)
	AcquiredConns     int32 // connections held by callers (InUse)
	IdleConns         int32 // connections ready to hand out (Idle)
	CheckingConns     int32 // idle connections being checked by the keepalive job
	ConstructingConns int32 // connection attempts in progress
	ClosingConns      int32
	WaitingCallers    int32         // callers waiting for a connection now
	AcquireCount      int64         // successful acquires
	WaitCount         int64         // acquires that had to wait
	WaitDuration      time.Duration // total time those acquires waited
	AcquireTimeouts   int64
	OverloadedCount   int64 // acquires refused because MaxWaiters callers waited
	NewConnsCount     int64
	ConnectErrors     int64
	Validations       int64
	MaxIdleTimeClosed int64 // closed after MaxConnIdleTime
	MaxLifetimeClosed int64
	MaxIdleClosed     int64 // closed because MaxIdle were idle already
	MaxUsesClosed     int64
	BrokenClosed      int64
	ValidationClosed  int64
	KeepaliveClosed   int64
	DiscardedClosed   int64
	PoolClosed        int64
}

// Stats returns a consistent snapshot of the pool's gauges and counters.
func (p *Pool) Stats() Stats {
	var s C.pgpool_stats
	s.size = C.uint32_t(unsafe.Sizeof(s))
	C.pgpool_pool_stats(p.p, &s, nil)
	runtime.KeepAlive(p)
	return Stats{
		MaxConns: int32(s.max_size), TotalConns: int32(s.open), AcquiredConns: int32(s.in_use),
		IdleConns: int32(s.idle), CheckingConns: int32(s.checking),
		ConstructingConns: int32(s.pending), ClosingConns: int32(s.closing),
		WaitingCallers: int32(s.waiting), AcquireCount: int64(s.acquires),
		WaitCount: int64(s.wait_count), WaitDuration: time.Duration(s.wait_duration_us) * time.Microsecond,
		AcquireTimeouts: int64(s.acquire_timeouts), OverloadedCount: int64(s.overloaded),
		NewConnsCount: int64(s.connections_created), ConnectErrors: int64(s.connect_errors),
		Validations: int64(s.validations), MaxIdleTimeClosed: int64(s.closed_idle_timeout),
		MaxLifetimeClosed: int64(s.closed_lifetime), MaxIdleClosed: int64(s.closed_max_idle),
		MaxUsesClosed: int64(s.closed_max_uses), BrokenClosed: int64(s.closed_broken),
		ValidationClosed: int64(s.closed_failed_validation), KeepaliveClosed: int64(s.closed_failed_keepalive),
		DiscardedClosed: int64(s.closed_discarded), PoolClosed: int64(s.closed_pool_closed),
	}
}
