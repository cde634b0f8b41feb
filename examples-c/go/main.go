// Goroutines sharing one libpgpool pool through cgo. Library failures become Go errors
// (*pgpool.Error) whose RetrySafe / OutcomeUnknown flags drive the retry loop; every handle
// is freed with defer.
//
// Usage: go run main.go [URL]; URL defaults to $DATABASE_URL. Build with CGO_CFLAGS pointing
// at include/ and CGO_LDFLAGS at the directory of libpgpool.so (scripts/run-c-examples.sh).
package main

/*
#cgo LDFLAGS: -lpgpool
#include <stdlib.h>
#include "pgpool.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"
)

// Error is a failed libpgpool call.
type Error struct {
	Code           int
	Category       string
	Message        string
	SQLState       string
	OutcomeUnknown bool // the statement may have run although it failed
	RetrySafe      bool // running the same work again is safe
}

func (e *Error) Error() string {
	if e.SQLState != "" {
		return fmt.Sprintf("pgpool %s (SQLSTATE %s): %s", e.Category, e.SQLState, e.Message)
	}
	return fmt.Sprintf("pgpool %s: %s", e.Category, e.Message)
}

// README:BEGIN go
// check turns a result code and detail object into a Go error, freeing the object.
func check(rc C.pgpool_code, detail *C.pgpool_error) error {
	defer C.pgpool_error_free(detail)
	if rc == C.PGPOOL_OK {
		return nil
	}
	e := &Error{Code: int(rc), Category: C.GoString(C.pgpool_error_category(detail)),
		Message: C.GoString(C.pgpool_error_message(detail)),
		OutcomeUnknown: bool(C.pgpool_error_outcome_unknown(detail)),
		RetrySafe:      bool(C.pgpool_error_retry_safe(detail))}
	if s := C.pgpool_error_sqlstate(detail); s != nil {
		e.SQLState = C.GoString(s)
	}
	return e
}
// README:END go

// Pool is shared by all goroutines.
type Pool struct{ p *C.pgpool_pool }

// Conn is used by one goroutine at a time.
type Conn struct{ c *C.pgpool_conn }

func Open(url string, maxSize uint32) (*Pool, error) {
	var cfg *C.pgpool_config
	var detail *C.pgpool_error
	if err := check(C.pgpool_config_new(&cfg, &detail), detail); err != nil {
		return nil, err
	}
	defer C.pgpool_config_free(cfg)
	C.pgpool_config_set_max_size(cfg, C.uint32_t(maxSize), nil)
	name := C.CString("pgpool-go-example")
	defer C.free(unsafe.Pointer(name))
	C.pgpool_config_set_application_name(cfg, name, nil)
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))
	var p *C.pgpool_pool
	if err := check(C.pgpool_pool_create(curl, cfg, &p, &detail), detail); err != nil {
		return nil, err
	}
	return &Pool{p}, nil
}

func (p *Pool) Close() error {
	var detail *C.pgpool_error
	err := check(C.pgpool_pool_close(p.p, 5000, &detail), detail)
	C.pgpool_pool_free(p.p)
	return err
}

func (p *Pool) Acquire(timeout time.Duration) (*Conn, error) {
	var c *C.pgpool_conn
	var detail *C.pgpool_error
	if err := check(C.pgpool_pool_acquire(p.p, C.int64_t(timeout.Milliseconds()), &c, &detail), detail); err != nil {
		return nil, err
	}
	return &Conn{c}, nil
}

func (p *Pool) Stats() (C.pgpool_stats, error) {
	var s C.pgpool_stats
	s.size = C.uint32_t(unsafe.Sizeof(s))
	var detail *C.pgpool_error
	return s, check(C.pgpool_pool_stats(p.p, &s, &detail), detail)
}

func (c *Conn) Release() { C.pgpool_conn_release(c.c, nil) }

// cParams copies text parameters into C memory (cgo forbids passing Go pointers to them).
func cParams(args []string) (**C.char, func()) {
	if len(args) == 0 {
		return nil, func() {}
	}
	size := C.size_t(len(args)) * C.size_t(unsafe.Sizeof(uintptr(0)))
	array := (*[1 << 16]*C.char)(C.malloc(size))[:len(args):len(args)]
	for i, a := range args {
		array[i] = C.CString(a)
	}
	return &array[0], func() {
		for _, s := range array {
			C.free(unsafe.Pointer(s))
		}
		C.free(unsafe.Pointer(&array[0]))
	}
}

func (c *Conn) Exec(sql string, args ...string) (uint64, error) {
	csql := C.CString(sql)
	defer C.free(unsafe.Pointer(csql))
	params, free := cParams(args)
	defer free()
	var rows C.uint64_t
	var detail *C.pgpool_error
	err := check(C.pgpool_conn_execute(c.c, csql, C.size_t(len(args)), params, &rows, &detail), detail)
	return uint64(rows), err
}

func (c *Conn) QueryInt64(sql string, args ...string) (int64, error) {
	csql := C.CString(sql)
	defer C.free(unsafe.Pointer(csql))
	params, free := cParams(args)
	defer free()
	var res *C.pgpool_result
	var detail *C.pgpool_error
	if err := check(C.pgpool_conn_query(c.c, csql, C.size_t(len(args)), params, &res, &detail), detail); err != nil {
		return 0, err
	}
	defer C.pgpool_result_free(res)
	var v C.int64_t
	err := check(C.pgpool_result_get_int64(res, 0, 0, &v, &detail), detail)
	return int64(v), err
}

// README:BEGIN go-tx
// Tx runs f in a transaction on a pooled connection, retrying while the error says that is
// safe; an unknown outcome is returned, never retried.
func (p *Pool) Tx(f func(*Conn) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = p.tryTx(f)
		var pe *Error
		if err == nil || !errors.As(err, &pe) || pe.OutcomeUnknown || !pe.RetrySafe {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return err
}

func (p *Pool) tryTx(f func(*Conn) error) error {
	conn, err := p.Acquire(5 * time.Second)
	if err != nil {
		return err
	}
	defer conn.Release()
	var detail *C.pgpool_error
	if err := check(C.pgpool_conn_begin(conn.c, &detail), detail); err != nil {
		return err
	}
	if err := f(conn); err != nil {
		C.pgpool_conn_rollback(conn.c, nil)
		return err
	}
	return check(C.pgpool_conn_commit(conn.c, &detail), detail)
}

// README:END go-tx
func main() {
	url := os.Getenv("DATABASE_URL")
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	if url == "" {
		fmt.Fprintln(os.Stderr, "usage: main URL (or set DATABASE_URL)")
		os.Exit(2)
	}
	fmt.Printf("libpgpool %s from Go\n", C.GoString(C.pgpool_version()))
	pool, err := Open(url, 4)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer pool.Close()
	err = pool.Tx(func(c *Conn) error {
		if _, err := c.Exec("DROP TABLE IF EXISTS go_counters"); err != nil {
			return err
		}
		_, err := c.Exec("CREATE TABLE go_counters (id int PRIMARY KEY, n bigint NOT NULL)")
		if err == nil {
			_, err = c.Exec("INSERT INTO go_counters VALUES (1, 0)")
		}
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(1)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := pool.Tx(func(c *Conn) error {
					_, err := c.Exec("UPDATE go_counters SET n = n + $1 WHERE id = 1", "1")
					return err
				}); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	conn, err := pool.Acquire(5 * time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	n, err := conn.QueryInt64("SELECT n FROM go_counters WHERE id = $1", "1")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("counter %d after 16 goroutines x 25 transactions\n", n)
	_, err = conn.QueryInt64("SELEC 1")
	var pe *Error
	if errors.As(err, &pe) {
		fmt.Printf("bad SQL is a Go error: category %s, SQLSTATE %s, retry safe %v\n", pe.Category, pe.SQLState, pe.RetrySafe)
	}
	conn.Exec("DROP TABLE go_counters")
	conn.Release()
	s, err := pool.Stats()
	if err == nil {
		fmt.Printf("stats: acquires %d, open %d, created %d\n", uint64(s.acquires), uint32(s.open), uint64(s.connections_created))
	}
	if n != 400 {
		os.Exit(1)
	}
}
