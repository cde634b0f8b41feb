package pgpool

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

/*
#include <stdlib.h>
*/
import "C"

// Call sites: with LeakThreshold or MaxCheckout on, every acquire passes the file and line
// of its caller (the first frame outside this package, package stdlib and database/sql) to
// pgpool_pool_acquire_at, so leak reports, reclaim events and timeout messages name it.

// siteDepth program counters identify a call stack for the cache: enough to reach past
// database/sql's frames to the caller.
const siteDepth = 16

// maxSites bounds the cache; past it, labels are made (and freed) per call.
const maxSites = 4096

type siteKey [siteDepth]uintptr

var (
	// sites maps call stacks to their labels (never freed). Read without a lock or an
	// allocation; copied on write (a new call stack is rare once a program runs).
	sites   atomic.Pointer[map[siteKey]*C.char]
	sitesMu sync.Mutex // serialises writers
	// internal holds the function-name prefixes of the frames skipped: this package's,
	// package stdlib's (beneath it) and database/sql's.
	internal = internalPrefixes()
)

func internalPrefixes() []string {
	pc, _, _, _ := runtime.Caller(0)
	name := runtime.FuncForPC(pc).Name() // "github.com/pgpool/pgpool/go.internalPrefixes"
	slash := strings.LastIndexByte(name, '/')
	pkg := name[:slash+1+strings.IndexByte(name[slash+1:], '.')] // the import path
	return []string{pkg + ".", pkg + "/stdlib.", "database/sql."}
}

func isInternal(function string) bool {
	for _, p := range internal {
		if strings.HasPrefix(function, p) {
			return true
		}
	}
	return false
}

// callerSite returns the label of the caller outside the package as a C string. When owned
// is true the caller frees it; otherwise it is cached and lives until the process exits.
func callerSite() (site *C.char, owned bool) {
	var key siteKey
	n := runtime.Callers(2, key[:])
	if m := sites.Load(); m != nil {
		if cs, ok := (*m)[key]; ok {
			return cs, false
		}
	}
	pcs := key // a copy: CallersFrames keeps its slice, which would move key to the heap
	label, found := describeSite(pcs[:n])
	if !found && n == siteDepth {
		// The stack is deeper than the key: look further, and do not cache (callers that
		// differ beyond the key's frames share it).
		deep := make([]uintptr, 256)
		label, _ = describeSite(deep[:runtime.Callers(2, deep)])
		return C.CString(label), true
	}
	sitesMu.Lock()
	defer sitesMu.Unlock()
	old := sites.Load()
	if old != nil {
		if cs, ok := (*old)[key]; ok { // another goroutine added it meanwhile
			return cs, false
		}
		if len(*old) >= maxSites {
			return C.CString(label), true
		}
	}
	m := make(map[siteKey]*C.char, 1+len(ptrMap(old)))
	for k, v := range ptrMap(old) {
		m[k] = v
	}
	cs := C.CString(label)
	m[key] = cs
	sites.Store(&m)
	return cs, false
}

func ptrMap(m *map[siteKey]*C.char) map[siteKey]*C.char {
	if m == nil {
		return nil
	}
	return *m
}

// describeSite is "dir/file.go:line" of the first frame outside the package.
func describeSite(pcs []uintptr) (string, bool) {
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function != "" && !isInternal(f.Function) {
			return shortFile(f.File) + ":" + itoa(f.Line), true
		}
		if !more {
			return "unknown", false
		}
	}
}

// shortFile keeps the last directory and the file name.
func shortFile(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return path
	}
	if j := strings.LastIndexByte(path[:i], '/'); j >= 0 {
		return path[j+1:]
	}
	return path
}

// cChar and cString let the package's tests read a label.
type cChar = C.char

func cString(p *C.char) string { return C.GoString(p) }
