package pgpool_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	pgpool "github.com/pgpool/pgpool/go"
)

// eventLog keeps every event a handler saw.
type eventLog struct {
	mu     sync.Mutex
	events []pgpool.Event
}

func (l *eventLog) add(e pgpool.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) snapshot() []pgpool.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pgpool.Event(nil), l.events...)
}

// waitFor polls until an event matching ok has arrived (background events come a moment
// after the call that caused them).
func (l *eventLog) waitFor(t *testing.T, what string, ok func(pgpool.Event) bool) pgpool.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range l.snapshot() {
			if ok(e) {
				return e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s event in %+v", what, l.snapshot())
	return pgpool.Event{}
}

func TestEventsCarryBackendPIDsReasonsAndDurations(t *testing.T) {
	ctx := context.Background()
	var log eventLog
	var (
		mu       sync.Mutex
		target   *pgpool.Pool // set once the first checks are done
		refused  error
		closeErr error
	)
	p := newPool(t, pgpool.MaxConns(1), pgpool.ApplicationName("go-events"),
		pgpool.WithEventHandler(func(e pgpool.Event) {
			log.add(e)
			mu.Lock()
			pool := target
			target = nil
			mu.Unlock()
			if e.Kind == pgpool.EventAcquire && pool != nil {
				_, err := pool.Acquire(ctx)
				cerr := pool.Close() // waits for the pool: refused too, and nothing closed
				mu.Lock()
				refused, closeErr = err, cerr
				mu.Unlock()
			}
			if e.Kind == pgpool.EventRelease {
				panic("recovered by the package")
			}
		}))
	conn, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := conn.BackendPID()
	if err != nil {
		t.Fatal(err)
	}
	id, err := conn.ID()
	if err != nil {
		t.Fatal(err)
	}
	conn.Release()
	connect := log.waitFor(t, "connect", func(e pgpool.Event) bool { return e.Kind == pgpool.EventConnect })
	if connect.BackendPID != pid || connect.ConnID != id || id != 1 || connect.Duration <= 0 || connect.Pool != "default" {
		t.Fatalf("connect %+v, pid %d", connect, pid)
	}
	for _, kind := range []pgpool.EventKind{pgpool.EventAcquire, pgpool.EventRelease} {
		e := log.waitFor(t, kind.String(), func(e pgpool.Event) bool { return e.Kind == kind })
		if e.BackendPID != pid || e.ConnID != 1 || e.Duration < 0 || e.Reason != "" || e.Err != nil {
			t.Fatalf("%s %+v, pid %d", kind, e, pid)
		}
	}
	// Inside the handler, an Acquire (which would wait for the pool) is refused.
	mu.Lock()
	target = p
	mu.Unlock()
	conn, err = p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := refused
	mu.Unlock()
	var pe *pgpool.Error
	if !errors.As(got, &pe) || pe.Code != pgpool.CodeUsage {
		t.Fatalf("an Acquire inside the handler returned %v", got)
	}
	mu.Lock()
	gotClose := closeErr
	mu.Unlock()
	if !errors.As(gotClose, &pe) || pe.Code != pgpool.CodeUsage {
		t.Fatalf("a Close inside the handler returned %v", gotClose)
	}
	// The age comes from the pool's coarse clock (a few milliseconds): a connection that
	// has lived 20 ms shows at least 10.
	time.Sleep(20 * time.Millisecond)
	conn.Discard()
	removed := log.waitFor(t, "remove", func(e pgpool.Event) bool { return e.Kind == pgpool.EventRemove })
	if removed.Reason != pgpool.CloseDiscarded || removed.BackendPID != pid || removed.Duration < 10*time.Millisecond {
		t.Fatalf("remove %+v", removed)
	}
	// The refused Close left the pool open; a Close outside the handler closes it.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(ctx); !errors.Is(err, pgpool.ErrClosed) {
		t.Fatalf("Acquire after Close: %v", err)
	}
}

func TestAFailedConnectIsAnErrorEvent(t *testing.T) {
	var log eventLog
	p, err := pgpool.NewPool(context.Background(), "postgres://nobody@127.0.0.1:1/none",
		pgpool.ConnectTimeout(2*time.Second), pgpool.WithEventHandler(log.add))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := p.Acquire(ctx); err == nil {
		t.Fatal("acquired from a refused address")
	}
	e := log.waitFor(t, "error", func(e pgpool.Event) bool { return e.Kind == pgpool.EventError })
	if e.Err == nil || e.Err.Code != pgpool.CodeConnect || !errors.Is(e.Err, pgpool.ErrConnect) || e.ConnID != 0 {
		t.Fatalf("error event %+v (%v)", e, e.Err)
	}
}

func TestTheEnvironmentLayerCanBeSwitched(t *testing.T) {
	maxConns := func(opts ...pgpool.Option) int32 {
		t.Helper()
		p, err := pgpool.NewPool(context.Background(), testURL(t), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		return p.Stats().MaxConns
	}
	t.Setenv("PGPOOL_MAX_SIZE", "3")
	if got := maxConns(); got != 3 {
		t.Fatalf("PGPOOL_MAX_SIZE=3: MaxConns %d", got)
	}
	if got := maxConns(pgpool.Env(false)); got != 10 {
		t.Fatalf("Env(false): MaxConns %d", got)
	}
	if got := maxConns(pgpool.MaxConns(2)); got != 2 {
		t.Fatalf("an option outranks the environment: MaxConns %d", got)
	}
	t.Setenv("PGPOOL_MAX_SIZE", "")
	t.Setenv("PG_POOL_MAX", "4")
	if got := maxConns(); got != 10 {
		t.Fatalf("aliases are off by default: MaxConns %d", got)
	}
	if got := maxConns(pgpool.EnvAliases(true)); got != 4 {
		t.Fatalf("EnvAliases(true), PG_POOL_MAX=4: MaxConns %d", got)
	}
	if got := maxConns(pgpool.Env(false), pgpool.EnvAliases(true)); got != 10 {
		t.Fatalf("Env(false) wins over EnvAliases(true): MaxConns %d", got)
	}
}

// README:BEGIN events-go
var (
	eventsMu    sync.Mutex
	eventCounts = map[pgpool.EventKind]int{}
)

// openObserved opens a pool that counts its events and prints connects, removals and errors.
func openObserved(ctx context.Context, url string) (*pgpool.Pool, error) {
	return pgpool.NewPool(ctx, url, pgpool.MaxConns(4),
		pgpool.WithEventHandler(func(e pgpool.Event) {
			// Runs inside Acquire/Release or on the library's threads: keep it short.
			eventsMu.Lock()
			eventCounts[e.Kind]++
			eventsMu.Unlock()
			switch e.Kind {
			case pgpool.EventConnect:
				fmt.Printf("connect: conn %d, backend pid %d, in %v\n", e.ConnID, e.BackendPID, e.Duration)
			case pgpool.EventRemove:
				fmt.Printf("remove: conn %d, backend pid %d (%s)\n", e.ConnID, e.BackendPID, e.Reason)
			case pgpool.EventError:
				fmt.Printf("pool error: %v\n", e.Err)
			}
		}))
}

// README:END events-go

func TestEventHandlerExample(t *testing.T) {
	ctx := context.Background()
	p, err := openObserved(ctx, testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// The removal of the closed pool's connection comes from Close itself.
	eventsMu.Lock()
	defer eventsMu.Unlock()
	if eventCounts[pgpool.EventConnect] != 1 || eventCounts[pgpool.EventAcquire] != 1 ||
		eventCounts[pgpool.EventRelease] != 1 || eventCounts[pgpool.EventRemove] != 1 {
		t.Fatalf("counts %v", eventCounts)
	}
}

// A session that turned itself read-only (a SET the next user would inherit) is retired from a
// read-write pool on release: counted in RoleChangedClosed, removed with CloseRoleChanged.
func TestASessionThatMadeItselfReadOnlyLeavesAWritePool(t *testing.T) {
	ctx := context.Background()
	var log eventLog
	url := testURL(t)
	switch {
	case !strings.Contains(url, "://"):
		url += " target_session_attrs=read-write"
	case strings.Contains(url, "?"):
		url += "&target_session_attrs=read-write"
	default:
		url += "?target_session_attrs=read-write"
	}
	p, err := pgpool.NewPool(ctx, url, pgpool.MaxConns(1), pgpool.WithEventHandler(log.add))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	conn, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	conn.Release()
	if s := p.Stats(); s.RoleChangedClosed != 1 || s.IdleConns != 0 {
		t.Fatalf("RoleChangedClosed %d, IdleConns %d", s.RoleChangedClosed, s.IdleConns)
	}
	log.waitFor(t, "remove (role_changed)", func(e pgpool.Event) bool {
		return e.Kind == pgpool.EventRemove && e.Reason == pgpool.CloseRoleChanged
	})
	var readOnly string
	if err := p.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&readOnly); err != nil {
		t.Fatal(err)
	}
	if readOnly != "off" {
		t.Fatalf("the next session is read-only: %s", readOnly)
	}
}
