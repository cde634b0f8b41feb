package pgpool_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pgpool "github.com/pgpool/pgpool/go"
)

func testURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("PGPOOL_TEST_URL")
	if url == "" {
		t.Fatal("PGPOOL_TEST_URL is not set: point it at a PostgreSQL server (tests/go_module.rs does)")
	}
	return url
}

func newPool(t testing.TB, opts ...pgpool.Option) *pgpool.Pool {
	t.Helper()
	p, err := pgpool.NewPool(context.Background(), testURL(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestVersion(t *testing.T) {
	if pgpool.Version() != pgpool.HeaderVersion {
		t.Fatalf("library %s, header %s", pgpool.Version(), pgpool.HeaderVersion)
	}
}

func TestScanTypes(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(2))
	ctx := context.Background()
	var (
		i    int
		i16  int16
		i32  int32
		i64  int64
		f32  float32
		f64  float64
		b    bool
		s    string
		by   []byte
		ts   time.Time
		tstz time.Time
		num  string
		a    any
	)
	err := p.QueryRow(ctx, `SELECT 7::int4, 16::int2, 32::int4, 9000000000::int8, 1.5::float4,
		2.25::float8, true, 'héllo'::text, '\xdeadbeef'::bytea,
		'2024-01-31 12:34:56.789'::timestamp, '2024-01-31 12:34:56.789+02'::timestamptz,
		12.50::numeric, 'x'::varchar`).
		Scan(&i, &i16, &i32, &i64, &f32, &f64, &b, &s, &by, &ts, &tstz, &num, &a)
	if err != nil {
		t.Fatal(err)
	}
	if i != 7 || i16 != 16 || i32 != 32 || i64 != 9000000000 || f32 != 1.5 || f64 != 2.25 || !b || s != "héllo" {
		t.Fatalf("got %v %v %v %v %v %v %v %q", i, i16, i32, i64, f32, f64, b, s)
	}
	if string(by) != "\xde\xad\xbe\xef" {
		t.Fatalf("bytea %x", by)
	}
	if want := time.Date(2024, 1, 31, 12, 34, 56, 789000000, time.UTC); !ts.Equal(want) {
		t.Fatalf("timestamp %v, want %v", ts, want)
	}
	if want := time.Date(2024, 1, 31, 10, 34, 56, 789000000, time.UTC); !tstz.Equal(want) {
		t.Fatalf("timestamptz %v, want %v", tstz, want)
	}
	if num != "12.50" || a != "x" {
		t.Fatalf("numeric %q, any %#v", num, a)
	}
	// *any gets the natural Go type of each column.
	var ai, af, ab, abytes, ats any
	if err := p.QueryRow(ctx, "SELECT 1::int8, 0.5::float8, false, '\\x01'::bytea, now()").Scan(&ai, &af, &ab, &abytes, &ats); err != nil {
		t.Fatal(err)
	}
	if ai != int64(1) || af != 0.5 || ab != false {
		t.Fatalf("any: %#v %#v %#v", ai, af, ab)
	}
	if _, ok := abytes.([]byte); !ok {
		t.Fatalf("bytea as any: %T", abytes)
	}
	if _, ok := ats.(time.Time); !ok {
		t.Fatalf("timestamptz as any: %T", ats)
	}
}

func TestScanNulls(t *testing.T) {
	p := newPool(t)
	ctx := context.Background()
	var (
		pi  *int64
		ps  *string
		pt  *time.Time
		ni  sql.NullInt64
		ns  sql.NullString
		nb  sql.NullBool
		nf  sql.NullFloat64
		nt  sql.NullTime
		a   any = "not nil"
		by  []byte
		pi2 *int32
	)
	err := p.QueryRow(ctx, "SELECT NULL::int8, NULL::text, NULL::timestamptz, NULL::int8, NULL::text, NULL::bool, NULL::float8, NULL::timestamptz, NULL::int4, NULL::bytea, 5::int4").
		Scan(&pi, &ps, &pt, &ni, &ns, &nb, &nf, &nt, &a, &by, &pi2)
	if err != nil {
		t.Fatal(err)
	}
	if pi != nil || ps != nil || pt != nil || ni.Valid || ns.Valid || nb.Valid || nf.Valid || nt.Valid || a != nil {
		t.Fatalf("NULLs not reported: %v %v %v %v %v %v %v %v %v", pi, ps, pt, ni, ns, nb, nf, nt, a)
	}
	if pi2 == nil || *pi2 != 5 {
		t.Fatalf("pointer to a non-NULL: %v", pi2)
	}
	if err := p.QueryRow(ctx, "SELECT 3::int8, 'x'::text, now()").Scan(&ni, &ns, &nt); err != nil || ni.Int64 != 3 || ns.String != "x" || !nt.Valid {
		t.Fatalf("Null* with values: %v %v %v %v", err, ni, ns, nt)
	}
	var n int
	err = p.QueryRow(ctx, "SELECT NULL::int4").Scan(&n)
	if err == nil {
		t.Fatal("NULL into *int succeeded")
	}
}

func TestParams(t *testing.T) {
	p := newPool(t)
	ctx := context.Background()
	type myInt int32
	when := time.Date(2023, 5, 6, 7, 8, 9, 123456000, time.FixedZone("x", 3600))
	var (
		b                 bool
		i16, i32, i64, u8 int64
		f4, f8            float64
		s                 string
		by                []byte
		ts                time.Time
		isNull            bool
		named             int64
		valuer            string
		ptr               int64
	)
	err := p.QueryRow(ctx, `SELECT $1::bool, $2::int2, $3::int4, $4::int8, $5::int2, $6::float4, $7::float8,
		$8::text, $9::bytea, $10::timestamptz, $11::int4 IS NULL, $12::int4, $13::text, $14::int8`,
		true, int16(-3), int32(1<<30), int64(1<<40), uint8(200), float32(0.5), 1.25,
		"it's", []byte{0, 1, 2}, when, nil, myInt(42), sql.NullString{String: "v", Valid: true}, &[]int64{77}[0]).
		Scan(&b, &i16, &i32, &i64, &u8, &f4, &f8, &s, &by, &ts, &isNull, &named, &valuer, &ptr)
	if err != nil {
		t.Fatal(err)
	}
	if !b || i16 != -3 || i32 != 1<<30 || i64 != 1<<40 || u8 != 200 || f4 != 0.5 || f8 != 1.25 || s != "it's" {
		t.Fatalf("got %v %v %v %v %v %v %v %q", b, i16, i32, i64, u8, f4, f8, s)
	}
	if string(by) != "\x00\x01\x02" || !ts.Equal(when) || !isNull || named != 42 || valuer != "v" || ptr != 77 {
		t.Fatalf("got %x %v %v %v %q %v", by, ts, isNull, named, valuer, ptr)
	}
	var nullValuer sql.NullInt64
	var got *int64
	if err := p.QueryRow(ctx, "SELECT $1::int8", nullValuer).Scan(&got); err != nil || got != nil {
		t.Fatalf("NULL valuer: %v %v", err, got)
	}
	if _, err := p.Exec(ctx, "SELECT $1::int4", struct{}{}); err == nil {
		t.Fatal("an unsupported parameter type was accepted")
	}
}

func TestQueryRowsAndExec(t *testing.T) {
	p := newPool(t)
	ctx := context.Background()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "CREATE TEMP TABLE go_items (id int PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := c.Exec(ctx, "INSERT INTO go_items VALUES ($1, $2)", i, fmt.Sprintf("item%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	tag, err := c.Exec(ctx, "UPDATE go_items SET name = upper(name) WHERE id > $1", 2)
	if err != nil || tag.RowsAffected() != 3 {
		t.Fatalf("update: %v %v", tag, err)
	}
	rows, err := c.Query(ctx, "SELECT id, name FROM go_items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if cols := rows.Columns(); len(cols) != 2 || cols[0] != "id" || cols[1] != "name" {
		t.Fatalf("columns %v", cols)
	}
	var ids []int
	var names []string
	for rows.Next() {
		var id int
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		names = append(names, name)
	}
	if rows.Err() != nil || len(ids) != 5 || names[0] != "item1" || names[4] != "ITEM5" {
		t.Fatalf("rows %v %v %v", ids, names, rows.Err())
	}
	if err := c.QueryRow(ctx, "SELECT id FROM go_items WHERE id = 99").Scan(new(int)); !errors.Is(err, pgpool.ErrNoRows) || !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("no rows: %v", err)
	}
	// Pool-level Query and Exec, many rows and wide rows.
	rows2, err := p.Query(ctx, "SELECT g, g * 2 FROM generate_series(1, 1000) g")
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for rows2.Next() {
		var a, b int
		if err := rows2.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		sum += b - a
	}
	if sum != 500500 {
		t.Fatalf("sum %d", sum)
	}
	var wide [40]any
	dest := make([]any, 40)
	for i := range dest {
		dest[i] = &wide[i]
	}
	q := "SELECT 0"
	for i := 1; i < 40; i++ {
		q += fmt.Sprintf(", %d", i)
	}
	if err := p.QueryRow(ctx, q).Scan(dest...); err != nil || wide[39] != int64(39) {
		t.Fatalf("wide row: %v %v", err, wide[39])
	}
	tag, err = p.Exec(ctx, "SELECT * FROM generate_series(1, 3)")
	if err != nil || tag.RowsAffected() != 3 {
		t.Fatalf("exec select: %v %v", tag, err)
	}
}

func TestBeginFunc(t *testing.T) {
	p := newPool(t)
	ctx := context.Background()
	if _, err := p.Exec(ctx, "DROP TABLE IF EXISTS go_tx; CREATE TABLE go_tx (n int)"); err != nil {
		// Several statements need the simple protocol.
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Batch(ctx, "DROP TABLE IF EXISTS go_tx; CREATE TABLE go_tx (n int)"); err != nil {
			t.Fatal(err)
		}
		c.Release()
	}
	t.Cleanup(func() { p.Exec(context.Background(), "DROP TABLE go_tx") })
	count := func() int {
		var n int
		if err := p.QueryRow(ctx, "SELECT count(*)::int4 FROM go_tx").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := p.BeginFunc(ctx, func(c *pgpool.Conn) error {
		_, err := c.Exec(ctx, "INSERT INTO go_tx VALUES (1)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := p.BeginFunc(ctx, func(c *pgpool.Conn) error {
		if _, err := c.Exec(ctx, "INSERT INTO go_tx VALUES (2)"); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("rollback: %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "panic in tx" {
				t.Fatalf("recovered %v", r)
			}
		}()
		p.BeginFunc(ctx, func(c *pgpool.Conn) error {
			c.Exec(ctx, "INSERT INTO go_tx VALUES (3)")
			panic("panic in tx")
		})
	}()
	// A failed statement whose error is ignored makes the commit a reported rollback.
	err := p.BeginFunc(ctx, func(c *pgpool.Conn) error {
		c.Exec(ctx, "INSERT INTO go_tx VALUES (4)")
		c.Exec(ctx, "SELEC 1")
		return nil
	})
	var pe *pgpool.Error
	if !errors.As(err, &pe) || pe.SQLState != "25P02" {
		t.Fatalf("commit of a failed transaction: %v", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d rows after commit, rollback, panic and failed commit; want 1", n)
	}
	if s := p.Stats(); s.AcquiredConns != 0 {
		t.Fatalf("connections still held: %+v", s)
	}
}

func TestContextDeadlineCancelsOnServer(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(1))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Exec(ctx, "SELECT pg_sleep(10)")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	var pe *pgpool.Error
	if !errors.As(err, &pe) || pe.SQLState != "57014" {
		t.Fatalf("want the server's 57014, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	// The one connection is reusable at once.
	var n int
	if err := p.QueryRow(context.Background(), "SELECT 1::int4").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after cancel: %v %v", n, err)
	}
	// Cancel (not a deadline) on a held connection, from the watcher goroutine.
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel2)
	_, err = c.Exec(ctx2, "SELECT pg_sleep(10)")
	if !errors.Is(err, context.Canceled) || !errors.As(err, &pe) || pe.SQLState != "57014" {
		t.Fatalf("cancel: %v", err)
	}
	if err := c.QueryRow(context.Background(), "SELECT 2::int4").Scan(&n); err != nil || n != 2 {
		t.Fatalf("conn after cancel: %v %v", n, err)
	}
	// An already-cancelled context fails before anything runs.
	if _, err := c.Exec(ctx2, "SELECT 1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestContextCancelDuringAcquire(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(1))
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = p.Acquire(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want Canceled, got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancelled acquire took %v", d)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := p.Query(ctx2, "SELECT 1"); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, pgpool.ErrTimeout) {
		t.Fatalf("deadline during acquire: %v", err)
	}
	// Without a context deadline the pool's AcquireTimeout applies.
	p2 := newPool(t, pgpool.MaxConns(1), pgpool.AcquireTimeout(100*time.Millisecond))
	c2, err := p2.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Release()
	if _, err := p2.Exec(context.Background(), "SELECT 1"); !errors.Is(err, pgpool.ErrTimeout) {
		t.Fatalf("acquire timeout: %v", err)
	}
}

func TestErrors(t *testing.T) {
	p := newPool(t)
	ctx := context.Background()
	_, err := p.Exec(ctx, "SELEC 1")
	var pe *pgpool.Error
	if !errors.As(err, &pe) || pe.SQLState != "42601" || pe.Code != pgpool.CodeServer || pe.Category != "server" || pe.RetrySafe {
		t.Fatalf("syntax error: %#v", err)
	}
	if !errors.Is(err, pgpool.ErrServer) || errors.Is(err, pgpool.ErrTimeout) {
		t.Fatalf("errors.Is with sentinels: %v", err)
	}
	err = p.QueryRow(ctx, "SELECT 1/0").Scan(new(int))
	if !errors.As(err, &pe) || pe.SQLState != "22012" {
		t.Fatalf("division by zero: %v", err)
	}
	if _, err := pgpool.NewPool(ctx, testURL(t), pgpool.MaxConns(0)); !errors.Is(err, pgpool.ErrConfig) {
		t.Fatalf("bad config: %v", err)
	}
	p2 := newPool(t)
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Exec(ctx, "SELECT 1"); !errors.Is(err, pgpool.ErrClosed) {
		t.Fatalf("closed pool: %v", err)
	}
	if _, err := p2.Acquire(ctx); !errors.Is(err, pgpool.ErrClosed) {
		t.Fatalf("closed pool acquire: %v", err)
	}
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Release()
	c.Release()
	if _, err := c.Exec(ctx, "SELECT 1"); !errors.Is(err, pgpool.ErrInvalidHandle) {
		t.Fatalf("released conn: %v", err)
	}
}

func TestStats(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(3), pgpool.ApplicationName("pgpool-go-stats"))
	ctx := context.Background()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var app string
	if err := c.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app); err != nil || app != "pgpool-go-stats" {
		t.Fatalf("application_name %q %v", app, err)
	}
	s := p.Stats()
	if s.MaxConns != 3 || s.TotalConns != 1 || s.AcquiredConns != 1 || s.AcquireCount != 1 || s.NewConnsCount != 1 {
		t.Fatalf("stats while held: %+v", s)
	}
	c.Release()
	s = p.Stats()
	if s.AcquiredConns != 0 || s.IdleConns != 1 {
		t.Fatalf("stats after release: %+v", s)
	}
}

func TestConcurrency(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(4))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				want := g*1000 + i
				var got int
				var err error
				switch i % 3 {
				case 0:
					err = p.QueryRow(ctx, "SELECT $1::int4", want).Scan(&got)
				case 1:
					var rows *pgpool.Rows
					rows, err = p.Query(ctx, "SELECT $1::int4 + g - 1 FROM generate_series(1, 2) g", want)
					if err == nil {
						for rows.Next() {
							err = rows.Scan(&got)
							break
						}
						rows.Close()
					}
				default:
					c, cerr := context.WithTimeout(ctx, 5*time.Second)
					err = p.QueryRow(c, "SELECT $1::int4", want).Scan(&got)
					cerr()
				}
				if err == nil && got != want {
					err = fmt.Errorf("goroutine %d: got %d, want %d", g, got, want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.TotalConns > 4 || s.AcquiredConns != 0 || s.AcquireCount < 16*200 {
		t.Fatalf("stats after the run: %+v", s)
	}
}

// warnings collects the library's log records at LogWarn and above while a test runs.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func captureWarnings(t *testing.T) *warnings {
	t.Helper()
	w := &warnings{}
	if err := pgpool.SetLogger(pgpool.LogWarn, func(level pgpool.LogLevel, msg string) {
		if level > pgpool.LogWarn {
			panic("a record above the level asked for: " + level.String())
		}
		w.mu.Lock()
		w.msgs = append(w.msgs, msg)
		w.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pgpool.SetLogger(pgpool.LogOff, nil); err != nil {
			t.Error(err)
		}
	})
	return w
}

// find waits up to 5 s for a record containing every one of parts.
func (w *warnings) find(t *testing.T, parts ...string) string {
	t.Helper()
	for i := 0; i < 500; i++ {
		w.mu.Lock()
		for _, m := range w.msgs {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(m, p)
			}
			if all {
				w.mu.Unlock()
				return m
			}
		}
		w.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Fatalf("no log record with %q among %q", parts, w.msgs)
	return ""
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// site is "go/pgpool_test.go:N" for the line after the caller's.
func nextLine(t *testing.T) string {
	t.Helper()
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("pgpool_test.go:%d", line+1)
}

func TestReliabilityOptions(t *testing.T) {
	ctx := context.Background()
	p := newPool(t, pgpool.MaxConcurrentConnects(1), pgpool.BreakerThreshold(5),
		pgpool.ReconnectBackoffMax(2*time.Second), pgpool.LeakThreshold(pgpool.Never),
		pgpool.MaxCheckout(0), pgpool.HealthTimeout(3*time.Second), pgpool.BreakerThreshold(0))
	if err := p.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name string
		opt  pgpool.Option
	}{
		{"max_concurrent_connects", pgpool.MaxConcurrentConnects(0)},
		{"health_timeout", pgpool.HealthTimeout(0)},
		{"reconnect_backoff_max", pgpool.ReconnectBackoffMax(5 * time.Millisecond)},
	} {
		_, err := pgpool.NewPool(ctx, testURL(t), bad.opt)
		if !errors.Is(err, pgpool.ErrConfig) || !strings.Contains(err.Error(), bad.name) {
			t.Fatalf("%s: %v", bad.name, err)
		}
	}
	if pgpool.Healthy.String() != "healthy" || pgpool.Degraded.String() != "degraded" ||
		pgpool.Down.String() != "down" || pgpool.LogWarn.String() != "warn" {
		t.Fatal("String of the health states or log levels")
	}
}

func TestHealth(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(2))
	ctx := context.Background()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := p.Health(ctx)
	if !h.OK || h.Err != nil || h.State != pgpool.Healthy || h.ServerVersion == "" || h.Database == "" ||
		h.ServerTime == "" || h.AcquiredConns != 1 || h.TotalConns != 2 || h.Latency <= 0 ||
		h.ConsecutiveConnectFailures != 0 {
		t.Fatalf("health: %+v", h)
	}
	c.Release()
	s := p.Stats()
	if s.Health != pgpool.Healthy || s.ConsecutiveConnectFailures != 0 || s.SinceConnectSuccess < 0 ||
		s.SinceConnectFailure != pgpool.Never || s.ReclaimedClosed != 0 || s.LeaksSuspected != 0 ||
		s.Connectors < 0 || s.Connectors > 2 {
		t.Fatalf("stats: %+v", s)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if h := p.Health(cancelled); h.OK || !errors.Is(h.Err, context.Canceled) {
		t.Fatalf("health with a cancelled context: %+v", h)
	}
	withDeadline, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	if h := p.Health(withDeadline); !h.OK {
		t.Fatalf("health with a deadline: %+v", h)
	}
	p.Close()
	if h := p.Health(ctx); h.OK || !errors.Is(h.Err, pgpool.ErrClosed) {
		t.Fatalf("health of a closed pool: %+v", h)
	}
}

func TestLeakReportNamesTheCaller(t *testing.T) {
	w := captureWarnings(t)
	ctx := context.Background()
	p := newPool(t, pgpool.MaxConns(1), pgpool.LeakThreshold(50*time.Millisecond),
		pgpool.ReaperInterval(20*time.Millisecond), pgpool.ApplicationName("pgpool-go-leak"))
	site := nextLine(t)
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a suspected leak", func() bool { return p.Stats().LeaksSuspected == 1 })
	msg := w.find(t, "possible leak", "acquired at go/"+site)
	t.Logf("logged: %s", msg)
	// A timed-out acquire names the longest-held connection and its caller.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = p.Acquire(short)
	cancel()
	if !errors.Is(err, pgpool.ErrTimeout) || !strings.Contains(err.Error(), "longest held") ||
		!strings.Contains(err.Error(), "(acquired at go/"+site+")") {
		t.Fatalf("timeout message: %v", err)
	}
	c.Release()
	// Pool-level calls name their caller too (acquired, run and released as three calls).
	var wg sync.WaitGroup
	wg.Add(1)
	execSite := nextLine(t)
	go func() { defer wg.Done(); p.Exec(ctx, "SELECT pg_sleep(0.3)") }()
	w.find(t, "possible leak", "acquired at go/"+execSite)
	wg.Wait()
	beginSite := nextLine(t)
	err = p.BeginFunc(ctx, func(c *pgpool.Conn) error {
		_, err := c.Exec(ctx, "SELECT pg_sleep(0.3)")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.find(t, "possible leak", "acquired at go/"+beginSite)
	// Without LeakThreshold or MaxCheckout no call site is recorded.
	plain := newPool(t, pgpool.MaxConns(1))
	held, err := plain.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	short2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := plain.Acquire(short2); !errors.Is(err, pgpool.ErrTimeout) || strings.Contains(err.Error(), "pgpool_test.go") {
		t.Fatalf("timeout message of a pool that records no sites: %v", err)
	}
}

func TestMaxCheckoutReclaims(t *testing.T) {
	w := captureWarnings(t)
	ctx := context.Background()
	p := newPool(t, pgpool.MaxConns(1), pgpool.MaxCheckout(300*time.Millisecond),
		pgpool.ReaperInterval(20*time.Millisecond))
	site := nextLine(t)
	stuck, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Release()
	start := time.Now()
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	other, err := p.Acquire(wait) // served once the first is taken back
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	if _, err := other.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	other.Release()
	if waited < 250*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("the waiter was served after %v (MaxCheckout 300 ms)", waited)
	}
	_, err = stuck.Exec(ctx, "SELECT 1")
	if !errors.Is(err, pgpool.ErrBroken) || !strings.Contains(err.Error(), "reclaimed") {
		t.Fatalf("reclaimed connection: %v", err)
	}
	w.find(t, "reclaimed", "acquired at go/"+site)
	stuck.Release()
	if s := p.Stats(); s.ReclaimedClosed != 1 || s.AcquiredConns != 0 {
		t.Fatalf("stats: %+v", s)
	}
	t.Logf("measured: a waiter was served %v after the holder's acquire (MaxCheckout 300 ms)", waited)
}

func TestBreakerFailsFast(t *testing.T) {
	ctx := context.Background()
	p, err := pgpool.NewPool(ctx, "postgres://nobody@127.0.0.1:1/none", pgpool.BreakerThreshold(3),
		pgpool.AcquireTimeout(10*time.Second), pgpool.ConnectTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	_, err = p.Acquire(ctx)
	took := time.Since(start)
	if !errors.Is(err, pgpool.ErrConnect) || !strings.Contains(err.Error(), "database unavailable") || took > 2*time.Second {
		t.Fatalf("acquire after %v: %v", took, err)
	}
	s := p.Stats()
	if s.Health != pgpool.Down || s.ConsecutiveConnectFailures < 3 || s.SinceConnectSuccess != pgpool.Never ||
		s.SinceConnectFailure < 0 || s.ConnectErrors < 3 {
		t.Fatalf("stats: %+v", s)
	}
	// Down: every way in fails fast with the cause.
	start = time.Now()
	if _, err := p.Exec(ctx, "SELECT 1"); !errors.Is(err, pgpool.ErrConnect) {
		t.Fatalf("exec: %v", err)
	}
	deadline, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.QueryRow(deadline, "SELECT 1").Scan(new(int)); !errors.Is(err, pgpool.ErrConnect) {
		t.Fatalf("query row with a deadline: %v", err)
	}
	runs := 0
	if err := p.BeginFuncRetry(ctx, 3, func(*pgpool.Conn) error { runs++; return nil }); !errors.Is(err, pgpool.ErrConnect) || runs != 0 {
		t.Fatalf("BeginFuncRetry: %v (%d runs)", err, runs)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("the pool that is down took %v", d)
	}
	h := p.Health(ctx)
	if h.OK || h.State != pgpool.Down || !errors.Is(h.Err, pgpool.ErrConnect) || h.ServerVersion != "" {
		t.Fatalf("health: %+v", h)
	}
	t.Logf("measured: acquire against a refusing server failed after %v (AcquireTimeout 10 s)", took)
}

func TestCloseTimeoutReclaims(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(2))
	ctx := context.Background()
	errs := make(chan error, 1)
	go func() {
		c, err := p.Acquire(ctx)
		if err != nil {
			errs <- err
			return
		}
		defer c.Release()
		_, err = c.Exec(ctx, "SELECT pg_sleep(20)")
		errs <- err
	}()
	eventually(t, "the statement to start", func() bool { return p.Stats().AcquiredConns == 1 })
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	err := p.CloseTimeout(300 * time.Millisecond)
	took := time.Since(start)
	if !errors.Is(err, pgpool.ErrTimeout) || !strings.Contains(err.Error(), "reclaimed") || took > time.Second {
		t.Fatalf("CloseTimeout after %v: %v", took, err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, pgpool.ErrBroken) {
			t.Fatalf("the holder's statement: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the holder's statement was not cut short")
	}
	if s := p.Stats(); s.ReclaimedClosed != 1 || s.AcquiredConns != 0 {
		t.Fatalf("stats: %+v", s)
	}
	if _, err := p.Exec(ctx, "SELECT 1"); !errors.Is(err, pgpool.ErrClosed) {
		t.Fatalf("after CloseTimeout: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close after CloseTimeout: %v", err)
	}
	// A zero timeout reclaims nothing.
	p2 := newPool(t, pgpool.MaxConns(1))
	c, err := p2.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.CloseTimeout(0); !errors.Is(err, pgpool.ErrWouldBlock) {
		t.Fatalf("CloseTimeout(0): %v", err)
	}
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	c.Release()
	if s := p2.Stats(); s.ReclaimedClosed != 0 {
		t.Fatalf("stats: %+v", s)
	}
	t.Logf("measured: CloseTimeout(300 ms) with a statement running returned after %v", took)
}

const fail40001 = "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$"

func TestBeginFuncRetryWriteSkew(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(4))
	ctx := context.Background()
	table := fmt.Sprintf("go_retry_%d", os.Getpid())
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Batch(ctx, "DROP TABLE IF EXISTS "+table+"; CREATE TABLE "+table+" (who int)"); err != nil {
		t.Fatal(err)
	}
	c.Release()
	t.Cleanup(func() { p.Exec(context.Background(), "DROP TABLE "+table) })
	// Both read the count and insert under SERIALIZABLE; with both first attempts
	// overlapping (the barrier), one COMMIT fails with 40001 and its retry commits.
	var barrier sync.WaitGroup
	barrier.Add(2)
	met := make(chan struct{})
	go func() { barrier.Wait(); close(met) }()
	var runs [2]atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for who := 0; who < 2; who++ {
		wg.Add(1)
		go func(who int) {
			defer wg.Done()
			errs[who] = p.BeginFuncRetry(ctx, 5, func(c *pgpool.Conn) error {
				n := runs[who].Add(1)
				if err := c.Batch(ctx, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"); err != nil {
					return err
				}
				var count int
				if err := c.QueryRow(ctx, "SELECT count(*)::int4 FROM "+table).Scan(&count); err != nil {
					return err
				}
				if _, err := c.Exec(ctx, "INSERT INTO "+table+" VALUES ($1)", who); err != nil {
					return err
				}
				if n == 1 {
					barrier.Done()
					select {
					case <-met:
					case <-time.After(10 * time.Second):
						return errors.New("the other transaction never reached the barrier")
					}
				}
				return nil
			})
		}(who)
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("BeginFuncRetry: %v / %v", errs[0], errs[1])
	}
	if total := runs[0].Load() + runs[1].Load(); total != 3 {
		t.Fatalf("%d + %d runs, want 3 in all", runs[0].Load(), runs[1].Load())
	}
	for who := 0; who < 2; who++ {
		var n int
		if err := p.QueryRow(ctx, "SELECT count(*)::int4 FROM "+table+" WHERE who = $1", who).Scan(&n); err != nil || n != 1 {
			t.Fatalf("writer %d committed %d times (%v), want once", who, n, err)
		}
	}
	t.Logf("attempts: %d and %d", runs[0].Load(), runs[1].Load())
}

func TestBeginFuncRetryDecisions(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(2))
	ctx := context.Background()
	conflict := func(c *pgpool.Conn) error {
		_, err := c.Exec(ctx, fail40001)
		return err
	}
	// A conflict every time: maxAttempts runs, the last error returned.
	runs := 0
	err := p.BeginFuncRetry(ctx, 3, func(c *pgpool.Conn) error { runs++; return conflict(c) })
	var pe *pgpool.Error
	if !errors.As(err, &pe) || pe.SQLState != "40001" || runs != 3 || !pgpool.IsRetryable(err) {
		t.Fatalf("%d runs: %v", runs, err)
	}
	// Wrapped, then gone on the second attempt; a deadlock too; below 1 attempt counts as 1.
	runs = 0
	err = p.BeginFuncRetry(ctx, 3, func(c *pgpool.Conn) error {
		if runs++; runs == 1 {
			return fmt.Errorf("step 1: %w", conflict(c))
		}
		return nil
	})
	if err != nil || runs != 2 {
		t.Fatalf("%d runs: %v", runs, err)
	}
	runs = 0
	err = p.BeginFuncRetry(ctx, 2, func(c *pgpool.Conn) error {
		if runs++; runs == 1 {
			_, err := c.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$")
			return err
		}
		return nil
	})
	if err != nil || runs != 2 {
		t.Fatalf("deadlock: %d runs: %v", runs, err)
	}
	runs = 0
	if err := p.BeginFuncRetry(ctx, 0, func(c *pgpool.Conn) error { runs++; return conflict(c) }); err == nil || runs != 1 {
		t.Fatalf("0 attempts: %d runs: %v", runs, err)
	}
	// A conflict f swallowed dooms the COMMIT (25P02), which is judged by the conflict.
	runs = 0
	err = p.BeginFuncRetry(ctx, 3, func(c *pgpool.Conn) error {
		if runs++; runs == 1 {
			_ = conflict(c)
			c.Exec(ctx, "SELECT 1") // refused: 25P02, the cause stays the conflict
		}
		return nil
	})
	if err != nil || runs != 2 {
		t.Fatalf("swallowed conflict: %d runs: %v", runs, err)
	}
	// Not retried: another server error, an error of f's own (even after a conflict), a
	// swallowed error of another kind, a panic.
	runs = 0
	err = p.BeginFuncRetry(ctx, 5, func(c *pgpool.Conn) error {
		runs++
		_, err := c.Exec(ctx, "INSERT INTO no_such_table_here VALUES (1)")
		return err
	})
	if !errors.As(err, &pe) || pe.SQLState != "42P01" || runs != 1 {
		t.Fatalf("%d runs: %v", runs, err)
	}
	mine := errors.New("mine")
	runs = 0
	err = p.BeginFuncRetry(ctx, 5, func(c *pgpool.Conn) error { runs++; _ = conflict(c); return mine })
	if !errors.Is(err, mine) || runs != 1 {
		t.Fatalf("%d runs: %v", runs, err)
	}
	runs = 0
	err = p.BeginFuncRetry(ctx, 5, func(c *pgpool.Conn) error { runs++; c.Exec(ctx, "SELECT 1/0"); return nil })
	if !errors.As(err, &pe) || pe.SQLState != "25P02" || runs != 1 {
		t.Fatalf("%d runs: %v", runs, err)
	}
	runs = 0
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v", r)
			}
		}()
		p.BeginFuncRetry(ctx, 5, func(c *pgpool.Conn) error { runs++; conflict(c); panic("boom") })
	}()
	if runs != 1 {
		t.Fatalf("panic: %d runs", runs)
	}
	// Cancelling ctx ends the pauses.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	runs = 0
	err = p.BeginFuncRetry(cctx, 1000, func(c *pgpool.Conn) error { runs++; return conflict(c) })
	if err == nil || runs < 2 || time.Since(start) > 3*time.Second {
		t.Fatalf("cancelled after %v and %d runs: %v", time.Since(start), runs, err)
	}
	if s := p.Stats(); s.AcquiredConns != 0 {
		t.Fatalf("connections still held: %+v", s)
	}
	// IsRetryable on the library's flags.
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgpool.Error{Code: pgpool.CodeServer, SQLState: "40001"}, true},
		{&pgpool.Error{Code: pgpool.CodeServer, SQLState: "23505"}, false},
		{&pgpool.Error{Code: pgpool.CodeConnect, RetrySafe: true}, true},
		{&pgpool.Error{Code: pgpool.CodeConnect}, false},
		{&pgpool.Error{Code: pgpool.CodeBroken}, true},
		{&pgpool.Error{Code: pgpool.CodeBroken, OutcomeUnknown: true}, false},
		{&pgpool.Error{Code: pgpool.CodeServer, SQLState: "40001", OutcomeUnknown: true}, false},
		{fmt.Errorf("wrapped: %w", &pgpool.Error{Code: pgpool.CodeServer, SQLState: "40P01"}), true},
		{&pgpool.Error{Code: pgpool.CodeTimeout, RetrySafe: true}, false},
		{errors.New("plain"), false},
		{nil, false},
	} {
		if got := pgpool.IsRetryable(c.err); got != c.want {
			t.Errorf("IsRetryable(%v) = %v", c.err, got)
		}
	}
}

// BenchmarkQueryRowSites measures what recording call sites costs a pool-level QueryRow:
// go test -bench QueryRowSites (with PGPOOL_TEST_URL).
func BenchmarkQueryRowSites(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []pgpool.Option
	}{
		{"off", nil},
		{"leak_threshold", []pgpool.Option{pgpool.LeakThreshold(time.Hour)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := newPool(b, append([]pgpool.Option{pgpool.MaxConns(1)}, c.opts...)...)
			ctx := context.Background()
			var n int
			for i := 0; i < b.N; i++ {
				if err := p.QueryRow(ctx, "SELECT $1::int4", i).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// InitSQL runs on every new session: the session shows what it set.
func TestInitSQLSetsUpEveryNewSession(t *testing.T) {
	p := newPool(t, pgpool.MaxConns(1), pgpool.InitSQL("SET search_path TO go_init, public"))
	var path string
	if err := p.QueryRow(context.Background(), "SHOW search_path").Scan(&path); err != nil {
		t.Fatal(err)
	}
	if path != "go_init, public" {
		t.Fatalf("search_path %q", path)
	}
	bad := newPool(t, pgpool.InitSQL("SELEC 1"), pgpool.AcquireTimeout(3*time.Second))
	_, err := bad.Acquire(context.Background())
	var pe *pgpool.Error
	if !errors.As(err, &pe) || pe.Code != pgpool.CodeConnect || !strings.Contains(err.Error(), "init_sql failed") {
		t.Fatalf("a failing InitSQL: %v", err)
	}
}
