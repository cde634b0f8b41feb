// Goroutines sharing one libpgpool pool through the Go module in go/ (package pgpool).
// Library failures are Go errors (*pgpool.Error) with RetrySafe / OutcomeUnknown flags;
// BeginFuncRetry retries a transaction only when that is safe; connections go back to the
// pool with defer.
//
// Usage: go run . [URL]; URL defaults to $DATABASE_URL. Build against an installed
// libpgpool (pkg-config), or with -tags pgpool_nopkgconfig and CGO_CFLAGS / CGO_LDFLAGS
// pointing at include/ and the directory of libpgpool.so (see README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	pgpool "github.com/pgpool/pgpool/go"
)

// README:BEGIN go
// openPool opens the pool the goroutines share, the library's warnings going to the log: a
// connection held over 10 s is reported with the file and line that acquired it, one held
// over a minute is taken back, and after 3 failed connects in a row callers fail at once
// instead of waiting out their timeout.
func openPool(ctx context.Context, url string) (*pgpool.Pool, error) {
	err := pgpool.SetLogger(pgpool.LogWarn, func(level pgpool.LogLevel, msg string) {
		log.Printf("pgpool %s: %s", level, msg)
	})
	if err != nil {
		return nil, err
	}
	return pgpool.NewPool(ctx, url, pgpool.MaxConns(4),
		pgpool.ApplicationName("pgpool-go-example"), pgpool.LeakThreshold(10*time.Second),
		pgpool.MaxCheckout(time.Minute), pgpool.BreakerThreshold(3))
}

// README:END go

func fail(what string, err error) {
	fmt.Fprintln(os.Stderr, what+":", err)
	os.Exit(1)
}

func main() {
	url := os.Getenv("DATABASE_URL")
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	if url == "" {
		fmt.Fprintln(os.Stderr, "usage: main URL (or set DATABASE_URL)")
		os.Exit(2)
	}
	fmt.Printf("libpgpool %s from Go\n", pgpool.Version())
	// README:BEGIN go-tx
	ctx := context.Background()
	pool, err := openPool(ctx, url)
	if err != nil {
		fail("open", err)
	}
	defer pool.Close()
	// BeginFuncRetry runs a transaction again (on a fresh connection, after a pause) when
	// that is safe: a serialization failure, a deadlock, a transient connect error; never
	// after an unknown outcome.
	err = pool.BeginFuncRetry(ctx, 5, func(c *pgpool.Conn) error {
		if _, err := c.Exec(ctx, "DROP TABLE IF EXISTS go_counters"); err != nil {
			return err
		}
		_, err := c.Exec(ctx, "CREATE TABLE go_counters (id int PRIMARY KEY, n bigint NOT NULL)")
		if err == nil {
			_, err = c.Exec(ctx, "INSERT INTO go_counters VALUES ($1, $2)", 1, 0)
		}
		return err
	})
	if err != nil {
		fail("setup", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := pool.BeginFuncRetry(ctx, 5, func(c *pgpool.Conn) error {
					_, err := c.Exec(ctx, "UPDATE go_counters SET n = n + $1 WHERE id = $2", 1, 1)
					return err
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		fail("worker", err)
	}
	var n int64
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.QueryRow(qctx, "SELECT n FROM go_counters WHERE id = $1", 1).Scan(&n); err != nil {
		fail("query", err)
	}
	fmt.Printf("counter %d after 16 goroutines x 25 transactions\n", n)
	_, err = pool.Exec(ctx, "SELEC 1")
	var pe *pgpool.Error
	if errors.As(err, &pe) {
		fmt.Printf("bad SQL is a Go error: category %s, SQLSTATE %s, retry safe %v\n", pe.Category, pe.SQLState, pe.RetrySafe)
	}
	// README:END go-tx
	pool.Exec(ctx, "DROP TABLE go_counters")
	s := pool.Stats()
	fmt.Printf("stats: acquires %d, open %d, created %d\n", s.AcquireCount, s.TotalConns, s.NewConnsCount)
	if n != 400 {
		os.Exit(1)
	}
}
