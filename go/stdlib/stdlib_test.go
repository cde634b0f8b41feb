package stdlib_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	pgpool "github.com/pgpool/pgpool/go"
	"github.com/pgpool/pgpool/go/stdlib"
)

func openDB(t *testing.T) (*pgpool.Pool, *sql.DB) {
	t.Helper()
	url := os.Getenv("PGPOOL_TEST_URL")
	if url == "" {
		t.Fatal("PGPOOL_TEST_URL is not set: point it at a PostgreSQL server (tests/go_module.rs does)")
	}
	pool, err := pgpool.NewPool(context.Background(), url, pgpool.MaxConns(4))
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() {
		db.Close()
		pool.Close()
	})
	return pool, db
}

func TestDatabaseSQL(t *testing.T) {
	pool, db := openDB(t)
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	var s string
	var ts time.Time
	var ns sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT $1::int4 + 1, $2::text, now(), NULL::text", 41, "hi").Scan(&n, &s, &ts, &ns); err != nil {
		t.Fatal(err)
	}
	if n != 42 || s != "hi" || ts.IsZero() || ns.Valid {
		t.Fatalf("got %d %q %v %v", n, s, ts, ns)
	}
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS go_sql"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE go_sql (id int PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	defer db.ExecContext(ctx, "DROP TABLE go_sql")
	res, err := db.ExecContext(ctx, "INSERT INTO go_sql SELECT g, 'v' || g FROM generate_series(1, 5) g")
	if err != nil {
		t.Fatal(err)
	}
	if ra, _ := res.RowsAffected(); ra != 5 {
		t.Fatalf("rows affected %d", ra)
	}
	// A committed and a rolled back transaction.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		t.Fatal(err)
	}
	var level string
	if err := tx.QueryRowContext(ctx, "SHOW transaction_isolation").Scan(&level); err != nil || level != "serializable" {
		t.Fatalf("isolation %q %v", level, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE go_sql SET v = 'x' WHERE id = $1", 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM go_sql"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "SELECT id, v FROM go_sql ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	types, _ := rows.ColumnTypes()
	if len(cols) != 2 || cols[1] != "v" || types[0].DatabaseTypeName() != "INT4" {
		t.Fatalf("columns %v, types %v", cols, types[0].DatabaseTypeName())
	}
	var got []string
	for rows.Next() {
		var id int
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil || len(got) != 5 || got[0] != "x" || got[4] != "v5" {
		t.Fatalf("rows %v %v", got, err)
	}
	rows.Close()
	// Prepared statements and errors with SQLSTATE.
	stmt, err := db.PrepareContext(ctx, "SELECT v FROM go_sql WHERE id = $1")
	if err != nil {
		t.Fatal(err)
	}
	if err := stmt.QueryRowContext(ctx, 2).Scan(&s); err != nil || s != "v2" {
		t.Fatalf("prepared: %q %v", s, err)
	}
	stmt.Close()
	_, err = db.ExecContext(ctx, "INSERT INTO go_sql VALUES (1, 'dup')")
	var pe *pgpool.Error
	if !errors.As(err, &pe) || pe.SQLState != "23505" {
		t.Fatalf("duplicate key: %v", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT 1 WHERE false").Scan(&n); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("no rows: %v", err)
	}
	// A deadline cancels the statement on the server.
	dctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := db.ExecContext(dctx, "SELECT pg_sleep(10)"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	// Every connection is back in the pool (database/sql keeps none idle).
	if st := pool.Stats(); st.AcquiredConns != 0 {
		t.Fatalf("connections held after the test: %+v", st)
	}
}

// Through database/sql, a timed-out acquire still names the caller's line, not a frame of
// database/sql or of this package.
func TestCallSiteThroughDatabaseSQL(t *testing.T) {
	url := os.Getenv("PGPOOL_TEST_URL")
	pool, err := pgpool.NewPool(context.Background(), url, pgpool.MaxConns(1),
		pgpool.LeakThreshold(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer pool.Close()
	defer db.Close()
	ctx := context.Background()
	_, _, line, _ := runtime.Caller(0)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = pool.Acquire(short)
	site := fmt.Sprintf("(acquired at stdlib/stdlib_test.go:%d)", line+1)
	if !errors.Is(err, pgpool.ErrTimeout) || !strings.Contains(err.Error(), site) {
		t.Fatalf("want %s in: %v", site, err)
	}
}
