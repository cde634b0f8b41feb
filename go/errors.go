package pgpool

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// Code is a libpgpool result code (pgpool_code). The numbers never change.
type Code int32

// The library's result codes.
const (
	CodeOK              Code = 0
	CodeNullArgument    Code = 1
	CodeInvalidUTF8     Code = 2
	CodeInvalidHandle   Code = 3
	CodeInvalidArgument Code = 4
	CodeConfig          Code = 5
	CodeTimeout         Code = 6
	CodeClosed          Code = 7
	CodeOverloaded      Code = 8
	CodeConnect         Code = 9
	CodeServer          Code = 10
	CodeBroken          Code = 11
	CodeOutOfRange      Code = 12
	CodeTypeMismatch    Code = 13
	CodeNullValue       Code = 14
	CodeUnsupportedType Code = 15
	CodeWouldBlock      Code = 16
	CodeBusy            Code = 17
	CodePanic           Code = 18
	CodeUsage           Code = 19
	CodeRolledBack      Code = 20
	CodeForked          Code = 21 // a pool or connection made before fork(), used in the child
)

// String is the code's stable name ("timeout", "closed", ...).
func (c Code) String() string { return codeName(c) }

// Error is a failed libpgpool call. Use errors.As to get it from any error this package
// returns, and errors.Is with ErrTimeout, ErrClosed, ... to test its code.
type Error struct {
	Code           Code
	SQLState       string // five characters when the server sent one
	Category       string // the code's stable name: "server", "timeout", ...
	Message        string
	OutcomeUnknown bool // the statement may have run although the call failed
	RetrySafe      bool // running the same work again is safe and may succeed
}

func (e *Error) Error() string {
	if e.SQLState != "" {
		return fmt.Sprintf("pgpool %s (SQLSTATE %s): %s", e.Category, e.SQLState, e.Message)
	}
	return fmt.Sprintf("pgpool %s: %s", e.Category, e.Message)
}

// Is reports whether target is the sentinel of e's code (ErrTimeout for CodeTimeout, ...).
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	return ok && s.code == e.Code
}

type sentinel struct {
	code Code
	msg  string
}

func (s *sentinel) Error() string { return s.msg }

// Sentinels for errors.Is.
var (
	ErrTimeout       error = &sentinel{CodeTimeout, "pgpool: timeout"}
	ErrClosed        error = &sentinel{CodeClosed, "pgpool: pool closed"}
	ErrOverloaded    error = &sentinel{CodeOverloaded, "pgpool: too many waiters"}
	ErrConnect       error = &sentinel{CodeConnect, "pgpool: cannot connect"}
	ErrBroken        error = &sentinel{CodeBroken, "pgpool: connection broken"}
	ErrConfig        error = &sentinel{CodeConfig, "pgpool: invalid configuration"}
	ErrInvalidHandle error = &sentinel{CodeInvalidHandle, "pgpool: invalid or released handle"}
	ErrBusy          error = &sentinel{CodeBusy, "pgpool: connection used concurrently"}
	ErrWouldBlock    error = &sentinel{CodeWouldBlock, "pgpool: no idle connection"}
	ErrServer        error = &sentinel{CodeServer, "pgpool: server error"}
)

// ErrNoRows is returned by Row.Scan when the query returned no row. errors.Is(err,
// sql.ErrNoRows) holds too.
var ErrNoRows = fmt.Errorf("pgpool: no rows in result set: %w", sql.ErrNoRows)

// ctxError is a call cut short by its context: errors.Is finds the context's error
// (context.Canceled or context.DeadlineExceeded), errors.As the library's *Error.
type ctxError struct {
	ctx   error
	cause error
}

func (e *ctxError) Error() string   { return e.ctx.Error() + ": " + e.cause.Error() }
func (e *ctxError) Unwrap() []error { return []error{e.ctx, e.cause} }

func scanError(col int, err error) error {
	return fmt.Errorf("pgpool: scanning column %d: %w", col, err)
}

func itoa(i int) string { return strconv.Itoa(i) }

var errUnsupported = errors.New("unsupported type")
