package pgpool_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
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
