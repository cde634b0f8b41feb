package pgpool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

/*
#include <stdlib.h>
#include "gp.h"
*/
import "C"

// Conn is a connection taken from the pool with Acquire. It is used by one goroutine at a
// time and must be given back with Release.
type Conn struct {
	c    *C.pgpool_conn
	pool *Pool
	// cause is the error of the last failed call on this connection, unless that was the
	// server refusing a statement in a failed transaction (25P02): then the failure before.
	// BeginFuncRetry judges a COMMIT that turned into a rollback by it.
	cause error
}

// failed records err (when not nil) as the connection's last failure; see Conn.cause.
func (c *Conn) failed(err error) error {
	if err != nil {
		var e *Error
		if c.cause == nil || !errors.As(err, &e) || e.SQLState != "25P02" {
			c.cause = err
		}
	}
	return err
}

// Release gives the connection back to the pool (rolling back an open transaction).
// Calling it again is a no-op.
func (c *Conn) Release() {
	if c == nil || c.c == nil {
		return
	}
	C.pgpool_conn_release(c.c, nil)
	c.c = nil
	runtime.SetFinalizer(c, nil)
}

// Discard closes the connection instead of returning it (after a session change the next
// user must not inherit).
func (c *Conn) Discard() {
	if c == nil || c.c == nil {
		return
	}
	C.pgpool_conn_discard(c.c, nil)
	c.c = nil
	runtime.SetFinalizer(c, nil)
}

func (c *Conn) handle() (*C.pgpool_conn, error) {
	if c == nil || c.c == nil {
		return nil, &Error{Code: CodeInvalidHandle, Category: "invalid_handle", Message: "the connection was released"}
	}
	return c.c, nil
}

// watch sends a cancel request for the running statement when ctx is done; the returned
// stop waits for a cancel in flight, so the connection is never released under it.
func watch(ctx context.Context, conn *C.pgpool_conn) func() {
	if ctx.Done() == nil {
		return nil
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.pgpool_conn_cancel(conn, nil)
		close(done)
	})
	return func() {
		if !stop() {
			<-done
		}
	}
}

// runState runs the statement encoded in st on c, bounded and cancelled by ctx.
func (c *Conn) runState(ctx context.Context, st *execState, wantRows bool) error {
	h, err := c.handle()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, query, byCtx := c.pool.limits(ctx)
	csql, cbuf, n := st.cargs()
	var resp **C.pgpool_result
	if wantRows {
		resp = &st.box.res
	}
	stop := watch(ctx, h)
	var detail *C.pgpool_error
	rc := C.gp_conn_exec(h, query, csql, st.params, cbuf, n, resp, &st.meta,
		&st.types[0], C.uint32_t(len(st.types)), &st.cells[0], &detail)
	if stop != nil {
		stop()
	}
	runtime.KeepAlive(c)
	return c.failed(wrapCtx(ctx, takeError(rc, detail), byCtx))
}

func (c *Conn) run(ctx context.Context, sql string, args []any, wantRows bool) (*execState, error) {
	st := getState()
	if err := st.prepare(sql, args); err != nil {
		putState(st)
		return nil, err
	}
	if err := c.runState(ctx, st, wantRows); err != nil {
		putState(st)
		return nil, err
	}
	return st, nil
}

// Query runs sql with args and returns its rows (buffered). Close the rows.
func (c *Conn) Query(ctx context.Context, sql string, args ...any) (*Rows, error) {
	st, err := c.run(ctx, sql, args, true)
	if err != nil {
		return nil, err
	}
	return newRows(st, true), nil
}

// QueryRow runs sql and returns its first row; errors are reported by Row.Scan.
func (c *Conn) QueryRow(ctx context.Context, sql string, args ...any) *Row {
	st, err := c.run(ctx, sql, args, true)
	if err != nil {
		return &Row{err: err}
	}
	return &Row{rows: newRows(st, false)}
}

// Exec runs a command and returns its row count.
func (c *Conn) Exec(ctx context.Context, sql string, args ...any) (CommandTag, error) {
	st, err := c.run(ctx, sql, args, false)
	if err != nil {
		return CommandTag{}, err
	}
	tag := CommandTag{rows: int64(st.meta.affected)}
	putState(st)
	return tag, nil
}

// control runs BEGIN / ROLLBACK style calls under ctx.
func (c *Conn) control(ctx context.Context, f func(*C.pgpool_conn, **C.pgpool_error) C.pgpool_code) error {
	h, err := c.handle()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := watch(ctx, h)
	var detail *C.pgpool_error
	rc := f(h, &detail)
	if stop != nil {
		stop()
	}
	runtime.KeepAlive(c)
	return c.failed(wrapCtx(ctx, takeError(rc, detail), false))
}

// Begin starts a transaction (BEGIN).
func (c *Conn) Begin(ctx context.Context) error {
	return c.control(ctx, func(h *C.pgpool_conn, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_conn_begin(h, e)
	})
}

// Commit commits the open transaction. When a statement in it failed, the transaction is
// rolled back instead and Commit returns an *Error with SQLSTATE 25P02.
func (c *Conn) Commit(ctx context.Context) error {
	var failed C.int32_t
	err := c.control(ctx, func(h *C.pgpool_conn, e **C.pgpool_error) C.pgpool_code {
		return C.gp_commit(h, &failed, e)
	})
	if err == nil && failed != 0 {
		err = &Error{Code: CodeServer, SQLState: "25P02", Category: "server",
			Message: "the transaction was rolled back: a statement in it failed"}
	}
	return err
}

// Rollback rolls back the open transaction. It is not cut short by ctx's cancellation.
func (c *Conn) Rollback(ctx context.Context) error {
	return c.control(context.WithoutCancel(ctx), func(h *C.pgpool_conn, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_conn_rollback(h, e)
	})
}

// Batch runs one or more ;-separated statements with the simple protocol (no parameters).
func (c *Conn) Batch(ctx context.Context, sql string) error {
	cs := C.CString(sql)
	defer C.free(unsafe.Pointer(cs))
	return c.control(ctx, func(h *C.pgpool_conn, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_conn_batch(h, cs, e)
	})
}

// BeginFunc runs f in a transaction: it commits when f returns nil and rolls back when f
// returns an error or panics (the panic goes on).
func (c *Conn) BeginFunc(ctx context.Context, f func(*Conn) error) (err error) {
	if err := c.Begin(ctx); err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = c.Rollback(ctx)
		}
	}()
	if err := f(c); err != nil {
		done = true
		if rerr := c.Rollback(ctx); rerr != nil {
			return fmt.Errorf("%w (and the rollback failed: %v)", err, rerr)
		}
		return err
	}
	done = true
	return c.Commit(ctx)
}

// BackendPID is the server process id of the session.
func (c *Conn) BackendPID() (int32, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	var pid C.int32_t
	var detail *C.pgpool_error
	err = takeError(C.pgpool_conn_backend_pid(h, &pid, &detail), detail)
	runtime.KeepAlive(c)
	return int32(pid), err
}

// ID is the connection's id within its pool: the ConnID of the pool's events about it.
func (c *Conn) ID() (uint64, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	var id C.uint64_t
	var detail *C.pgpool_error
	err = takeError(C.pgpool_conn_id(h, &id, &detail), detail)
	runtime.KeepAlive(c)
	return uint64(id), err
}

// TxStatus is the session's transaction status after the last statement: 0 idle, 1 in a
// transaction, 2 in a failed transaction.
func (c *Conn) TxStatus() (int, error) {
	h, err := c.handle()
	if err != nil {
		return 0, err
	}
	var s C.int32_t
	var detail *C.pgpool_error
	err = takeError(C.pgpool_conn_transaction_status(h, &s, &detail), detail)
	runtime.KeepAlive(c)
	return int(s), err
}
