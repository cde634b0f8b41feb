package pgpool

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

/*
#include "gp.h"
*/
import "C"

// LogLevel is the severity of a library log record (pgpool_log_level).
type LogLevel int32

// The log levels, most severe first.
const (
	LogOff   LogLevel = 0 // as SetLogger's level: no records
	LogError LogLevel = 1 // failures
	LogWarn  LogLevel = 2 // problems the pool recovered from, suspected leaks, reclaimed connections
	LogInfo  LogLevel = 3 // rare lifecycle events
	LogDebug LogLevel = 4 // connects, closes, notices, transaction retries
	LogTrace LogLevel = 5 // every acquire and release
)

// String is the level's name: "off", "error", "warn", "info", "debug" or "trace".
func (l LogLevel) String() string {
	switch l {
	case LogOff:
		return "off"
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	case LogDebug:
		return "debug"
	case LogTrace:
		return "trace"
	}
	return "LogLevel(" + itoa(int(l)) + ")"
}

var (
	logMu   sync.Mutex // serialises SetLogger
	logFunc atomic.Pointer[func(LogLevel, string)]
)

// SetLogger routes the library's log records at level or more severe to f, for every pool
// of the process (the library has one logger): suspected leaks (LeakThreshold) and reclaimed
// connections (MaxCheckout) are logged at LogWarn with where the connection was acquired.
// A nil f or LogOff switches it off; a later call replaces the earlier one. f is called from
// any goroutine, including ones the library's threads run it on, possibly concurrently; it
// must return quickly (it runs inside the library's calls) and not call the library. A
// panic in f is recovered and printed to stderr. The environment variable PGPOOL_LOG
// (error, warn, info, debug, trace) logs to stderr instead, without a SetLogger call.
func SetLogger(level LogLevel, f func(level LogLevel, message string)) error {
	logMu.Lock()
	defer logMu.Unlock()
	if f == nil || level <= LogOff {
		var detail *C.pgpool_error
		err := takeError(C.pgpool_log_set_callback(nil, nil, 0, &detail), detail)
		logFunc.Store(nil)
		return err
	}
	logFunc.Store(&f)
	var detail *C.pgpool_error
	if err := takeError(C.gp_log_install(C.int32_t(level), &detail), detail); err != nil {
		logFunc.Store(nil)
		return err
	}
	return nil
}

//export pgpoolGoLog
func pgpoolGoLog(level C.int32_t, message *C.char) {
	f := logFunc.Load()
	if f == nil {
		return
	}
	msg := C.GoString(message)
	defer func() {
		// A panic must not unwind into the library.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "pgpool: the log function panicked on %q: %v\n", msg, r)
		}
	}()
	(*f)(LogLevel(level), msg)
}
