package pgpool

/*
#include "gp.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

const (
	kindNull  = 0
	kindInt   = 1
	kindFloat = 2
	kindBool  = 3
	kindText  = 4
	kindBytes = 5
	kindTime  = 6
	kindError = 7
)

// execState is the per-query scratch space reused through a sync.Pool: the library's
// parameter list and result object, the encoded SQL and parameters, and the decoded row.
type execState struct {
	params *C.pgpool_params
	box    *resultBox
	meta   C.gp_meta
	buf    []byte
	sqlLen int
	types  []C.uint32_t
	cells  []C.gp_cell
	names  []*C.char
}

// resultBox holds the result pointer in an allocation of its own: cgo checks everything a
// pointer argument points into, and the state itself holds Go pointers.
type resultBox struct{ res *C.pgpool_result }

const initialCols = 16

var states = sync.Pool{New: func() any { return newExecState() }}

func newExecState() *execState {
	st := &execState{
		box:   &resultBox{},
		buf:   make([]byte, 0, 256),
		types: make([]C.uint32_t, initialCols),
		cells: make([]C.gp_cell, initialCols),
	}
	C.pgpool_params_new(&st.params, nil)
	runtime.SetFinalizer(st, (*execState).free)
	return st
}

func (st *execState) free() {
	C.pgpool_result_free(st.box.res)
	C.pgpool_params_free(st.params)
	st.box.res, st.params = nil, nil
}

func getState() *execState { return states.Get().(*execState) }

func putState(st *execState) {
	if cap(st.buf) > 1<<20 {
		st.buf = make([]byte, 0, 256)
	}
	states.Put(st)
}

// prepare encodes sql (NUL-terminated) and args into st.buf.
func (st *execState) prepare(sql string, args []any) error {
	st.buf = append(st.buf[:0], sql...)
	st.buf = append(st.buf, 0)
	st.sqlLen = len(sql)
	var err error
	for i, a := range args {
		if st.buf, err = appendParam(st.buf, a); err != nil {
			return &Error{Code: CodeInvalidArgument, Category: "invalid_argument",
				Message: "parameter $" + itoa(i+1) + ": " + err.Error()}
		}
	}
	return nil
}

func (st *execState) cargs() (sql *C.char, buf *C.uchar, n C.size_t) {
	p := unsafe.Pointer(&st.buf[0])
	return (*C.char)(p), (*C.uchar)(unsafe.Add(p, st.sqlLen+1)), C.size_t(len(st.buf) - st.sqlLen - 1)
}

// redescribe grows the column arrays when a result has more columns than they hold.
func (st *execState) redescribe() {
	n := int(st.meta.ncols)
	if st.meta.described != 0 || st.box.res == nil {
		return
	}
	st.types = make([]C.uint32_t, n)
	st.cells = make([]C.gp_cell, n)
	C.gp_describe(st.box.res, &st.meta, &st.types[0], C.uint32_t(n), &st.cells[0])
}

func (st *execState) fetch(row uint64) {
	C.gp_fetch_row(st.box.res, C.uint64_t(row), st.meta.ncols, &st.types[0], &st.cells[0])
}

func (st *execState) columnNames() []string {
	n := int(st.meta.ncols)
	if n == 0 {
		return []string{}
	}
	if cap(st.names) < n {
		st.names = make([]*C.char, n)
	}
	names := st.names[:n]
	C.gp_column_names(st.box.res, C.uint32_t(n), &names[0])
	out := make([]string, n)
	for i, p := range names {
		if p != nil {
			out[i] = C.GoString(p)
		}
	}
	return out
}

func (st *execState) columnTypeNames() []string {
	n := int(st.meta.ncols)
	out := make([]string, n)
	for i := 0; i < n; i++ {
		var p *C.char
		if C.pgpool_result_column_type_name(st.box.res, C.uint32_t(i), &p, nil) == C.PGPOOL_OK && p != nil {
			out[i] = C.GoString(p)
		}
	}
	return out
}

// takeError turns a failed call's code and detail object into an *Error, freeing the object.
func takeError(rc C.pgpool_code, detail *C.pgpool_error) error {
	if rc == C.PGPOOL_OK {
		if detail != nil {
			C.pgpool_error_free(detail)
		}
		return nil
	}
	e := &Error{Code: Code(rc)}
	if detail == nil {
		e.Category = Code(rc).String()
		e.Message = e.Category
		return e
	}
	var info C.gp_errinfo
	C.gp_error_info(detail, &info)
	e.Message = C.GoString(info.message)
	e.Category = C.GoString(info.category)
	if info.sqlstate != nil {
		e.SQLState = C.GoString(info.sqlstate)
	}
	e.OutcomeUnknown = info.outcome_unknown != 0
	e.RetrySafe = info.retry_safe != 0
	C.pgpool_error_free(detail)
	return e
}

func codeName(c Code) string { return C.GoString(C.pgpool_code_name(C.int32_t(c))) }

// Version is the loaded library's version ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.pgpool_version()) }

// HeaderVersion is the version of the pgpool.h this package was compiled against.
const HeaderVersion = C.PGPOOL_VERSION_STRING
