package pgpool

import (
	"fmt"
	"os"
	"runtime/cgo"
	"time"
)

/*
#include "gp.h"
*/
import "C"

// EventKind is what an Event reports (pgpool_event_kind). Kinds are only ever added: a
// handler ignores the ones it does not know.
type EventKind int32

// The event kinds.
const (
	EventConnect       EventKind = 1 // a connection was opened (Duration: the connect)
	EventAcquire       EventKind = 2 // a caller acquired a connection (Duration: the wait)
	EventRelease       EventKind = 3 // a caller gave one back (Duration: the hold)
	EventRemove        EventKind = 4 // a connection was closed and left the pool (Reason; Duration: its age)
	EventError         EventKind = 5 // a background failure: connect, keepalive, validation (Err)
	EventLeakSuspected EventKind = 6 // held longer than LeakThreshold (Duration, Site)
	EventReclaimed     EventKind = 7 // taken back after MaxCheckout (Duration, Site); no EventRemove follows
	EventNotice        EventKind = 8 // a server notice (Severity, SQLState, Message)
)

// String is the kind's stable name: "connect", "acquire", "release", "remove", "error",
// "leak_suspected", "reclaimed", "notice".
func (k EventKind) String() string {
	switch k {
	case EventConnect:
		return "connect"
	case EventAcquire:
		return "acquire"
	case EventRelease:
		return "release"
	case EventRemove:
		return "remove"
	case EventError:
		return "error"
	case EventLeakSuspected:
		return "leak_suspected"
	case EventReclaimed:
		return "reclaimed"
	case EventNotice:
		return "notice"
	}
	return "EventKind(" + itoa(int(k)) + ")"
}

// CloseReason says why a connection left the pool (EventRemove, EventReclaimed): the
// library's stable names, as in Stats' closed counters.
type CloseReason string

// The close reasons.
const (
	CloseIdleTimeout      CloseReason = "idle_timeout"      // idle longer than MaxConnIdleTime
	CloseLifetime         CloseReason = "lifetime"          // older than MaxConnLifetime (or FallbackLifetime)
	CloseMaxIdle          CloseReason = "max_idle"          // released while MaxIdle were idle
	CloseMaxUses          CloseReason = "max_uses"          // checked out MaxConnUses times
	CloseBroken           CloseReason = "broken"            // broken, failed its reset, or released by a panicking thread
	CloseFailedValidation CloseReason = "failed_validation" // failed the check before hand-out
	CloseFailedKeepalive  CloseReason = "failed_keepalive"  // failed a keepalive round trip
	CloseDiscarded        CloseReason = "discarded"         // Conn.Discard
	ClosePoolClosed       CloseReason = "pool_closed"       // the pool closed
	CloseReclaimed        CloseReason = "reclaimed"         // taken back from its holder
	CloseRoleChanged      CloseReason = "role_changed"      // the server changed role against target_session_attrs
	CloseReplicaLag       CloseReason = "replica_lag"       // on a standby further behind than MaxReplicaLag
)

// Event is one thing that happened in a pool (see WithEventHandler).
type Event struct {
	Kind       EventKind
	Pool       string        // the pool's name ("default" unless the connection string's pool_name sets it)
	ConnID     uint64        // the connection, unique within the pool; 0 for EventNotice and a failed connect
	BackendPID int32         // the session's server process (Conn.BackendPID); 0 when unknown
	Reason     CloseReason   // EventRemove, EventReclaimed; "" otherwise
	Duration   time.Duration // the connect, the wait, the hold or the age (see the kinds); Never (-1) for the others
	Err        *Error        // EventError: the failure (Code, Message, SQLState); nil otherwise
	Message    string        // EventNotice: the notice's text ("" otherwise; EventError: Err.Message)
	SQLState   string        // EventError (when the server sent one), EventNotice
	Site       string        // EventLeakSuspected, EventReclaimed: where the connection was acquired
	Severity   string        // EventNotice: "WARNING", "NOTICE", ...
}

// WithEventHandler calls f for every event of the pool: connects, acquires, releases,
// removals with their reason, background errors, suspected leaks, reclaimed connections and
// server notices, each with the connection's id and backend pid where there is one.
//
// f is called synchronously on the thread where the event happened: inside the caller's
// Acquire or Release, or on one of the library's own threads (connects and their errors,
// the reaper, keepalives), possibly from several at once. It must return quickly and be
// safe for concurrent use; a panic in f is recovered and printed to stderr. Calls that wait
// for a pool (Acquire, Query, Exec, Ping, Health, WaitReady) fail with CodeUsage when made
// from inside f, and f must not Close the pool: hand such work to another goroutine. Events
// of one connection arrive in order (its connect before its acquire, its release before its
// removal; Discard removes without a release).
func WithEventHandler(f func(Event)) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		if f == nil {
			return C.pgpool_config_set_event_callback(c, nil, nil, nil, e)
		}
		// Freed by the library (pgpoolGoEventFree) when the config and the pool let go of it.
		h := cgo.NewHandle(f)
		rc := C.gp_event_install(c, C.uintptr_t(h), e)
		if rc != C.PGPOOL_OK {
			h.Delete()
		}
		return rc
	})
}

// Env is whether the pool reads the PGPOOL_* environment variables (PGPOOL_MAX_SIZE=20,
// PGPOOL_ACQUIRE_TIMEOUT=5s, ...; options given here and in the connection string outrank
// them). Default true; false for a pool whose settings must not depend on the environment.
func Env(on bool) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_env(c, C.bool(on), e)
	})
}

// EnvAliases is whether the pool also reads other tools' variables for its options, below
// PGPOOL_*: Go database/sql conventions (DB_MAX_OPEN_CONNS, DB_MAX_IDLE_CONNS,
// DB_CONN_MAX_LIFETIME, DB_CONN_MAX_IDLE_TIME) and node-postgres ones (PG_POOL_MAX,
// PG_POOL_MIN, PG_IDLE_TIMEOUT, ...), in those tools' units. Default false; no effect with
// Env(false).
func EnvAliases(on bool) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_env_aliases(c, C.bool(on), e)
	})
}

//export pgpoolGoEvent
func pgpoolGoEvent(ev *C.pgpool_event, h C.uintptr_t) {
	f, ok := cgo.Handle(h).Value().(func(Event))
	if !ok {
		return
	}
	e := Event{
		Kind:       EventKind(ev.kind),
		Pool:       C.GoString(ev.pool),
		ConnID:     uint64(ev.conn_id),
		BackendPID: int32(ev.backend_pid),
		Reason:     CloseReason(C.GoString(ev.reason_text)),
		Duration:   Never,
		SQLState:   C.GoString(ev.sqlstate),
		Site:       C.GoString(ev.site),
		Severity:   C.GoString(ev.severity),
	}
	if ev.duration_us >= 0 {
		e.Duration = time.Duration(ev.duration_us) * time.Microsecond
	}
	if e.Kind == EventError {
		code := Code(ev.error_code)
		e.Err = &Error{Code: code, SQLState: e.SQLState, Category: codeName(code),
			Message: C.GoString(ev.message)}
	} else {
		e.Message = C.GoString(ev.message)
	}
	defer func() {
		// A panic must not unwind into the library.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "pgpool: the event handler panicked on a %s event: %v\n", e.Kind, r)
		}
	}()
	f(e)
}

//export pgpoolGoEventFree
func pgpoolGoEventFree(h C.uintptr_t) {
	cgo.Handle(h).Delete()
}
