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
	recordSites    bool          // LeakThreshold or MaxCheckout is on: name acquires' callers
	closeMu        sync.Mutex
	closed         bool // Close ran (and was not refused)
}

type settings struct {
	setters        []func(cfg *C.pgpool_config, err **C.pgpool_error) C.pgpool_code
	acquireTimeout time.Duration
	queryTimeout   time.Duration
	leakThreshold  bool
	maxCheckout    bool
}

// Option configures a Pool (NewPool). Durations are rounded up to milliseconds; where the
// library accepts "never", a negative duration (Never) means never.
type Option func(*settings)

// Never, as an Option's duration, switches the limit off (MaxConnLifetime, MaxConnIdleTime,
// HealthCheckPeriod, LeakThreshold, MaxCheckout); in Stats (SinceConnectSuccess,
// SinceConnectFailure) it means the event has not happened yet.
const Never time.Duration = -1

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

// ReaperInterval is how often the pool's housekeeping enforces MaxConnIdleTime,
// MaxConnLifetime, LeakThreshold and MaxCheckout (reaper_interval; default 1 s): a leak is
// reported, and a connection reclaimed, up to this long after its limit passed.
func ReaperInterval(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_reaper_interval_ms(c, ms(d), e)
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

// MaxConcurrentConnects is the number of connection attempts running at once, shared by
// warm-up, refill and growth on demand, so that a crowd of callers cannot start a login
// storm (max_concurrent_connects; default 2; at least 1; above MaxConns acts as MaxConns).
func MaxConcurrentConnects(n int32) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_max_concurrent_connects(c, C.uint32_t(max(n, 0)), e)
	})
}

// BreakerThreshold is the circuit breaker: after n failed connects in a row with no
// connection open (or one permanent error such as a bad password) the pool is down, and an
// acquire that needs a new connection waits for one background probe at most, then fails
// with ErrConnect ("database unavailable: ...", the cause's SQLSTATE kept) instead of
// waiting out its timeout. Default 3; 0 (or negative) switches the breaker off.
func BreakerThreshold(n int32) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_breaker_threshold(c, C.uint32_t(max(n, 0)), e)
	})
}

// ReconnectBackoffMax is the longest pause between connect attempts after failures
// (reconnect_backoff_max; default 5 s; at least 10 ms).
func ReconnectBackoffMax(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_reconnect_backoff_max_ms(c, ms(d), e)
	})
}

// offOrMs maps a duration that may switch a limit off: zero or negative (Never) is off.
func offOrMs(d time.Duration) C.int64_t {
	if d <= 0 {
		return -1
	}
	return ms(d)
}

// FallbackLifetime is how long a target_session_attrs=prefer-standby session that fell
// back to a primary (no standby accepted it) is kept: its lifetime, enforced as
// MaxConnLifetime is (CloseLifetime), so that its replacement tries the standbys first
// (fallback_lifetime; default off, only MaxConnLifetime; zero or Never: off).
func FallbackLifetime(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_fallback_lifetime_ms(c, offOrMs(d), e)
	})
}

// InitSQL is run on every new session before the pool uses it, HikariCP's
// connectionInitSql or pgxpool's AfterConnect as SQL (init_sql): statements separated by
// ";" in one round trip, bounded by what is left of ConnectTimeout. A failure fails the
// connect (permanent for SQLSTATE class 42: syntax, privilege, undefined object). With
// FullReset it runs again after each reset. "" is none (the default).
func InitSQL(sql string) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		text := C.CString(sql)
		defer C.free(unsafe.Pointer(text))
		return C.pgpool_config_set_init_sql(c, text, e)
	})
}

// MaxReplicaLag keeps away from sessions on a hot standby whose replay is further behind
// its primary than d: the connect refuses such a standby (the next host is tried;
// target_session_attrs=prefer-standby falls back to the primary), and an open session found
// lagging is closed (CloseReplicaLag, Stats.ReplicaLagClosed). Measured at connect, before
// a hand-out once the last measure is older than d/2, and by the keepalive
// (max_replica_lag; default off; zero or Never: off).
func MaxReplicaLag(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_max_replica_lag_ms(c, offOrMs(d), e)
	})
}

// LeakThreshold reports a connection held longer than d once, as a suspected leak: logged
// at LogWarn (see SetLogger) with the file and line that acquired it, and counted in
// Stats.LeaksSuspected (leak_threshold; default off; zero or Never: off). Checked every
// ReaperInterval.
//
// With LeakThreshold or MaxCheckout on, Acquire, Query, QueryRow, Exec, BeginFunc and
// BeginFuncRetry record their caller's file and line (runtime.Callers, cached per call
// stack; the first frame outside this package, package stdlib and database/sql), and the
// one-call path of a pool-level query becomes three (acquire, run, release).
func LeakThreshold(d time.Duration) Option {
	return func(s *settings) {
		s.leakThreshold = d > 0
		set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
			return C.pgpool_config_set_leak_threshold_ms(c, offOrMs(d), e)
		})(s)
	}
}

// MaxCheckout takes back a connection held longer than d: its statement is cancelled on
// the server and its socket shut down (the holder's next call fails with ErrBroken,
// "reclaimed"; Release it as usual), and its slot serves other callers (max_checkout;
// default off; zero or Never: off). Checked every ReaperInterval; call sites are recorded
// as for LeakThreshold.
func MaxCheckout(d time.Duration) Option {
	return func(s *settings) {
		s.maxCheckout = d > 0
		set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
			return C.pgpool_config_set_max_checkout_ms(c, offOrMs(d), e)
		})(s)
	}
}

// HealthTimeout bounds Health as a whole (health_timeout; default 2 s).
func HealthTimeout(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_health_timeout_ms(c, ms(d), e)
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
	p := &Pool{acquireTimeout: s.acquireTimeout, queryTimeout: s.queryTimeout,
		recordSites: s.leakThreshold || s.maxCheckout}
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
// waits (up to the CloseTimeout option, 5 s by default) for connections in use to come
// back; those still held then are reclaimed as CloseTimeout (the method) describes.
// Idempotent: only the first call waits. Stats still work afterwards.
func (p *Pool) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	var detail *C.pgpool_error
	rc := C.pgpool_pool_close(p.p, -1, &detail)
	runtime.KeepAlive(p)
	// Refused inside an event handler (CodeUsage): nothing was closed, so a later Close
	// still closes the pool.
	p.closed = rc != C.PGPOOL_ERR_USAGE
	return takeError(rc, detail)
}

// CloseTimeout closes the pool as Close does, waiting at most d for connections in use to
// come back (less a tenth of d, at most 250 ms, kept for cancel requests). Then the
// connections still held are reclaimed: their sockets are shut down and their statements
// cancelled on the server before CloseTimeout returns, so a holder's call (even one
// running) fails with ErrBroken, "reclaimed" (the holder releases its Conn as usual;
// Stats.ReclaimedClosed counts them), and CloseTimeout returns an error for which
// errors.Is(err, ErrTimeout) holds, on time even when the server is unreachable. With d 0
// nothing is reclaimed: it returns ErrWouldBlock while connections are held, and they close
// when released. A negative d is the CloseTimeout option's value. It may be called after
// Close, or again: a call finds what is still held.
func (p *Pool) CloseTimeout(d time.Duration) error {
	var detail *C.pgpool_error
	err := takeError(C.pgpool_pool_close(p.p, ms(d), &detail), detail)
	runtime.KeepAlive(p)
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
	var site *C.char
	if p.recordSites {
		var owned bool
		if site, owned = callerSite(); owned {
			defer C.free(unsafe.Pointer(site))
		}
	}
	if ctx.Done() == nil {
		err := takeError(C.pgpool_pool_acquire_at(p.p, -1, site, &conn, &detail), detail)
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
		rc := C.pgpool_pool_acquire_at(p.p, ms(slice), site, &conn, &detail)
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
// that a cancel request can be aimed at the connection), and so does a pool that records
// call sites (the one-call pgpool_pool_exec takes none); otherwise it is one call.
func (p *Pool) run(ctx context.Context, sql string, args []any, wantRows bool) (*execState, error) {
	st := getState()
	if err := st.prepare(sql, args); err != nil {
		putState(st)
		return nil, err
	}
	if ctx.Done() != nil || p.recordSites {
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
	ReclaimedClosed   int64 // taken back: held past MaxCheckout, or still held when CloseTimeout ran out
	LeaksSuspected    int64 // checkouts held past LeakThreshold (each reported once)
	RoleChangedClosed int64 // the server changed role against target_session_attrs (a standby promoted, a primary turned read-only)
	ReplicaLagClosed  int64 // on a standby further behind its primary than MaxReplicaLag

	Health                     HealthState   // Healthy, Degraded or Down (the breaker is open)
	ConsecutiveConnectFailures int32         // failed connects in a row (0 after a success)
	SinceConnectSuccess        time.Duration // since the last successful connect; Never if none
	SinceConnectFailure        time.Duration // since the last failed connect; Never if none
	Connectors                 int32         // connect attempts running (at most MaxConcurrentConnects)

	AcquireWait Histogram // from an acquire call to hand-out (zero when a connection was idle)
	ConnectTime Histogram // each successful connect
	QueryTime   Histogram // each statement run on the pool's connections
	HoldTime    Histogram // each checkout, from hand-out to release
}

// sinceMs converts a "milliseconds ago, -1 for never" gauge.
func sinceMs(v C.int64_t) time.Duration {
	if v < 0 {
		return Never
	}
	return time.Duration(v) * time.Millisecond
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
		ReclaimedClosed: int64(s.closed_reclaimed), LeaksSuspected: int64(s.leaks_suspected),
		Health: HealthState(s.health), ConsecutiveConnectFailures: int32(s.consecutive_connect_failures),
		SinceConnectSuccess: sinceMs(s.since_connect_success_ms),
		SinceConnectFailure: sinceMs(s.since_connect_failure_ms), Connectors: int32(s.connectors),
		AcquireWait: histogram(s.acquire_wait), ConnectTime: histogram(s.connect_time),
		QueryTime: histogram(s.query_time), HoldTime: histogram(s.hold_time),
		RoleChangedClosed: int64(s.closed_role_changed),
		ReplicaLagClosed:  int64(s.closed_replica_lag),
	}
}

// HealthState is a pool's health (Stats.Health, Health.State).
type HealthState int32

// The health states.
const (
	// Healthy: the last connect attempt (if any) succeeded.
	Healthy HealthState = C.PGPOOL_HEALTHY
	// Degraded: recent connect attempts failed, but the breaker is not open (or connections
	// are still open and serve callers).
	Degraded HealthState = C.PGPOOL_DEGRADED
	// Down: the breaker is open (connects keep failing and no connection is open); an acquire
	// that needs a new connection fails with ErrConnect after one probe at most.
	Down HealthState = C.PGPOOL_DOWN
)

// String is "healthy", "degraded" or "down".
func (s HealthState) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	case Down:
		return "down"
	}
	return "HealthState(" + itoa(int(s)) + ")"
}

// Health is the result of Pool.Health.
type Health struct {
	OK                         bool        // the round trip succeeded
	State                      HealthState // healthy, degraded (connect failures, too many waiters, a failed check) or down
	Reasons                    []string    // why State is not Healthy (nil when it is)
	MaxConns                   int32
	TotalConns                 int32 // open connections
	IdleConns                  int32
	AcquiredConns              int32 // connections held by callers
	WaitingCallers             int32
	ConsecutiveConnectFailures int32
	Latency                    time.Duration // acquire + round trip
	Database                   string        // current_database() (empty on failure)
	ServerVersion              string        // the server's server_version (empty on failure)
	ServerTime                 string        // the server's now(), ISO 8601 UTC (empty on failure)
	InRecovery                 bool          // the server is a standby (pg_is_in_recovery())
	ReplicaLag                 time.Duration // on a standby, how far its replay is behind its primary; -1 on a primary or on failure
	Err                        error         // why the check failed (nil when OK)
}

// Health runs a health check: it acquires a connection, asks the server for its database
// name, version and time, and reports the round trip's latency, the pool's counts and its
// health state. An unhealthy pool is reported in the result (OK false, Err set, State
// Degraded or Down). The check is bounded by the HealthTimeout option (2 s by default) as a
// whole; a ctx done earlier returns at once with ctx's error (the check finishes in the
// background).
func (p *Pool) Health(ctx context.Context) Health {
	if err := ctx.Err(); err != nil {
		return Health{State: p.Stats().Health, Err: err}
	}
	if ctx.Done() == nil {
		return p.health()
	}
	done := make(chan Health, 1)
	go func() { done <- p.health() }()
	select {
	case h := <-done:
		return h
	case <-ctx.Done():
		return Health{State: p.Stats().Health, Err: ctx.Err()}
	}
}

func (p *Pool) health() Health {
	var h C.pgpool_health
	h.size = C.uint32_t(unsafe.Sizeof(h))
	var detail *C.pgpool_error
	rc := C.pgpool_pool_health(p.p, &h, &detail)
	runtime.KeepAlive(p)
	out := Health{
		OK: rc == C.PGPOOL_OK && bool(h.ok), State: HealthState(h.state),
		TotalConns: int32(h.open), IdleConns: int32(h.idle), AcquiredConns: int32(h.in_use),
		WaitingCallers: int32(h.waiting), ConsecutiveConnectFailures: int32(h.consecutive_connect_failures),
		Latency:       time.Duration(h.latency_us) * time.Microsecond,
		Database:      healthText(h.database[:]),
		ServerVersion: healthText(h.server_version[:]),
		ServerTime:    healthText(h.server_time[:]),
		Reasons:       healthReasons(h.reasons[:]),
		MaxConns:      int32(h.max_size),
		InRecovery:    h.in_recovery == 1,
		ReplicaLag:    -1,
	}
	if h.replica_lag_us >= 0 {
		out.ReplicaLag = time.Duration(h.replica_lag_us) * time.Microsecond
	}
	out.Err = takeError(rc, detail)
	if out.Err == nil && !out.OK {
		out.Err = &Error{Code: CodeUsage, Category: "usage", Message: "the health check reported failure without a code"}
	}
	return out
}

// healthText reads a NUL-terminated field of pgpool_health.
func healthText(b []C.char) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	return C.GoStringN(&b[0], C.int(n))
}
