package pgpool

/*
#include <stdlib.h>
#include "gp.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Registry is a set of named pools declared in one TOML file (or string): opened together
// with OpenAll, looked up with Get, closed together with CloseAll within one deadline. Safe
// for concurrent use. The file's format is the library's (docs/operations/
// registry-and-shutdown.md):
//
//	[defaults]
//	acquire_timeout = "5s"
//	[pools.primary]
//	url_env = "DATABASE_URL"
//	max_size = 20
//	min_idle = 2
//
// For shutdown on SIGTERM / SIGINT use Go's os/signal (signal.NotifyContext) and call
// CloseAll; the library's own signal handling is not for Go programs.
type Registry struct {
	r     *C.pgpool_registry
	mu    sync.Mutex
	pools map[string]*Pool
}

// OpenRegistryFile reads the registry declared in the TOML file at path. Every name, option
// and connection string is checked; nothing connects until OpenAll or Get. Errors
// (CodeConfig) name the file, the pool and the key.
func OpenRegistryFile(path string) (*Registry, error) {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	r := &Registry{pools: map[string]*Pool{}}
	var detail *C.pgpool_error
	if err := takeError(C.pgpool_registry_from_file(cs, &r.r, &detail), detail); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(r, (*Registry).finalize)
	return r, nil
}

// OpenRegistry reads a registry from the text of a TOML file, as OpenRegistryFile does.
func OpenRegistry(toml string) (*Registry, error) {
	cs := C.CString(toml)
	defer C.free(unsafe.Pointer(cs))
	r := &Registry{pools: map[string]*Pool{}}
	var detail *C.pgpool_error
	if err := takeError(C.pgpool_registry_from_toml(cs, &r.r, &detail), detail); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(r, (*Registry).finalize)
	return r, nil
}

func (r *Registry) finalize() { C.pgpool_registry_free(r.r) }

// OpenAll opens every pool (each warms its MinIdle connections in the background). When ctx
// has a deadline it then waits until every pool is ready (MinIdle open; with MinIdle 0, one
// connection made), all at once within that deadline, and otherwise fails naming each pool
// that was not ready and its last connect error (ErrTimeout, or ErrConnect when each failed
// for good). Without a deadline it returns once the pools are opened.
func (r *Registry) OpenAll(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wait := C.int64_t(0)
	if dl, ok := ctx.Deadline(); ok {
		wait = ms(max(time.Until(dl), time.Millisecond))
	}
	var detail *C.pgpool_error
	err := takeError(C.pgpool_registry_open_all(r.r, wait, &detail), detail)
	runtime.KeepAlive(r)
	return err
}

// Names lists the pools, sorted by name.
func (r *Registry) Names() []string {
	var n C.size_t
	C.pgpool_registry_count(r.r, &n, nil)
	names := make([]string, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		var p *C.char
		if C.pgpool_registry_name(r.r, i, &p, nil) == C.PGPOOL_OK {
			names = append(names, C.GoString(p))
		}
	}
	runtime.KeepAlive(r)
	return names
}

// Metrics returns the statistics of every opened pool as one Prometheus text (format
// 0.0.4), a pool label per pool.
func (r *Registry) Metrics() (string, error) {
	var text *C.char
	var detail *C.pgpool_error
	rc := C.pgpool_registry_metrics(r.r, &text, &detail)
	runtime.KeepAlive(r)
	if err := takeError(rc, detail); err != nil {
		return "", err
	}
	defer C.pgpool_string_free(text)
	return C.GoString(text), nil
}

// HealthJSON runs a health check of every opened pool in parallel and returns one JSON
// object: ok (every check succeeded), state (the worst pool's) and pools (each pool's
// Pool.HealthJSON object). Bounded by the longest HealthTimeout of the pools.
func (r *Registry) HealthJSON() (string, error) {
	var text *C.char
	var detail *C.pgpool_error
	rc := C.pgpool_registry_health_json(r.r, &text, &detail)
	runtime.KeepAlive(r)
	if err := takeError(rc, detail); err != nil {
		return "", err
	}
	defer C.pgpool_string_free(text)
	return C.GoString(text), nil
}

// Get returns the pool name, opening it if OpenAll did not. Every call for one name returns
// the same *Pool; its acquire and query timeouts are the file's (a context's deadline
// can only shorten them). Errors: CodeUsage for an unknown name
// (the message lists the registry's pools), ErrClosed for a pool that never opened before
// CloseAll. Do not Close the pool itself: CloseAll does.
func (r *Registry) Get(name string) (*Pool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pools[name]; ok {
		return p, nil
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	p := &Pool{}
	var detail *C.pgpool_error
	err := takeError(C.pgpool_registry_get(r.r, cs, &p.p, &detail), detail)
	runtime.KeepAlive(r)
	if err != nil {
		return nil, err
	}
	// The file's bounds, which a context's deadline can only shorten.
	var acquireMs, queryMs C.int64_t
	C.pgpool_pool_timeouts(p.p, &acquireMs, &queryMs, nil)
	p.acquireTimeout = time.Duration(acquireMs) * time.Millisecond
	if queryMs > 0 {
		p.queryTimeout = time.Duration(queryMs) * time.Millisecond
	}
	runtime.SetFinalizer(p, (*Pool).finalize)
	r.pools[name] = p
	return p, nil
}

// CloseAll closes every pool at once, within one deadline: ctx's (without one, the longest
// close_timeout of the pools). New acquires fail at once with ErrClosed, idle connections
// close, and connections in use get until the deadline to come back; those still held then
// are reclaimed (see Pool.CloseTimeout), and CloseAll returns an error for which
// errors.Is(err, ErrTimeout) holds, with the number reclaimed. Idempotent.
func (r *Registry) CloseAll(ctx context.Context) (reclaimed int, err error) {
	deadline := C.int64_t(-1)
	if dl, ok := ctx.Deadline(); ok {
		deadline = ms(max(time.Until(dl), 0))
	}
	var n C.uint32_t
	var detail *C.pgpool_error
	err = takeError(C.pgpool_registry_close_all(r.r, deadline, &n, &detail), detail)
	runtime.KeepAlive(r)
	return int(n), err
}
