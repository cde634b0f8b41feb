package pgpool

import (
	"context"
	"errors"
	"math/rand"
	"time"
)

// The pauses between BeginFuncRetry's attempts: 10 ms doubling up to 1 s, ±20% jitter (as
// the library's own retry).
const (
	retryFirstPause = 10 * time.Millisecond
	retryMaxPause   = time.Second
)

// BeginFuncRetry runs f in a transaction on a pooled connection as BeginFunc does, and runs
// it again, on a fresh connection after a jittered pause (10 ms doubling to 1 s), when the
// attempt failed in a way that is safe to retry (IsRetryable): a serialization failure
// (40001) or deadlock (40P01), from a statement (f returns the error, wrapped or not) or
// from COMMIT; a transient connect error; a connection that broke when the outcome was
// known. A COMMIT that became a rollback (25P02: a statement failed and f went on) is judged
// by the connection's failure before it. Never after an error whose OutcomeUnknown is set
// (a connection lost during COMMIT), never for an error of f's own that wraps no retryable
// *Error, and never once ctx is done. At most maxAttempts attempts (less than 1 counts as
// 1); it returns the last attempt's error. f may run several times: keep effects outside the
// database out of it.
//
// It is written over BeginFunc, not over the library's pgpool_pool_transaction_retry: f then
// runs as a plain Go call (a panic in it rolls back and goes on; no callback from C), the
// pauses wait on ctx, and the decision sees the error f returns.
func (p *Pool) BeginFuncRetry(ctx context.Context, maxAttempts int, f func(*Conn) error) error {
	for attempt := 1; ; attempt++ {
		err, cause := p.beginFuncOnce(ctx, f)
		if err == nil || attempt >= maxAttempts || !IsRetryable(cause) || ctx.Err() != nil {
			return err
		}
		pause := min(retryFirstPause<<min(attempt-1, 20), retryMaxPause)
		pause = time.Duration(float64(pause) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// beginFuncOnce is one attempt: its error, and the error that decides on a retry.
func (p *Pool) beginFuncOnce(ctx context.Context, f func(*Conn) error) (err, cause error) {
	c, err := p.Acquire(ctx)
	if err != nil {
		return err, err
	}
	defer c.Release()
	err = c.BeginFunc(ctx, f)
	var e *Error
	if errors.As(err, &e) && e.SQLState == "25P02" && c.cause != nil {
		return err, c.cause
	}
	return err, err
}

// IsRetryable reports whether err (or an error it wraps) is a failure after which running
// the same transaction again is safe and may succeed: a serialization failure (SQLSTATE
// 40001) or deadlock (40P01) the server rolled back, a transient connect error (ErrConnect
// with RetrySafe), or a broken connection (ErrBroken) whose outcome is known. False for an
// error whose OutcomeUnknown is set, and for everything else.
func IsRetryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.OutcomeUnknown {
		return false
	}
	switch e.Code {
	case CodeServer:
		return e.SQLState == "40001" || e.SQLState == "40P01"
	case CodeConnect:
		return e.RetrySafe
	case CodeBroken:
		return true
	}
	return false
}
