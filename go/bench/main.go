// Command bench compares package pgpool (libpgpool through cgo) with pgx's pgxpool on one
// server: `SELECT $1::int4` through QueryRow+Scan at several goroutine counts on pools of the
// same size, both contenders alternating in one run. It prints queries per second, p99
// latency, process CPU per query (getrusage) and, for pgpool, cgo calls per query, with the
// ratios pgpool/pgxpool. It reports; it asserts nothing.
//
// Usage: go run . -url URL [-duration 2s] [-pool 8] [-goroutines 1,4,16] [-rounds 2]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	pgpool "github.com/pgpool/pgpool/go"
)

type result struct {
	queries  int64
	elapsed  time.Duration
	p99      time.Duration
	cpu      time.Duration
	cgoCalls int64
}

func (r result) qps() float64 { return float64(r.queries) / r.elapsed.Seconds() }
func (r result) cpuPerQuery() time.Duration {
	return time.Duration(int64(r.cpu) / max(r.queries, 1))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run calls query from g goroutines for d and measures it.
func run(g int, d time.Duration, query func(ctx context.Context, i int) error) (result, error) {
	ctx := context.Background()
	for i := 0; i < 50; i++ { // warm up: connections and statement caches
		if err := query(ctx, i); err != nil {
			return result{}, err
		}
	}
	runtime.GC()
	lat := make([][]time.Duration, g)
	counts := make([]int64, g)
	errs := make([]error, g)
	var wg sync.WaitGroup
	cgo0, cpu0, start := runtime.NumCgoCall(), cpuTime(), time.Now()
	end := start.Add(d)
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			l := make([]time.Duration, 0, 1<<16)
			for i := 0; ; i++ {
				t := time.Now()
				if !t.Before(end) {
					break
				}
				if err := query(ctx, i); err != nil {
					errs[w] = err
					return
				}
				l = append(l, time.Since(t))
			}
			lat[w], counts[w] = l, int64(len(l))
		}(w)
	}
	wg.Wait()
	r := result{elapsed: time.Since(start), cpu: cpuTime() - cpu0, cgoCalls: runtime.NumCgoCall() - cgo0}
	var all []time.Duration
	for w := 0; w < g; w++ {
		if errs[w] != nil {
			return r, errs[w]
		}
		r.queries += counts[w]
		all = append(all, lat[w]...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) > 0 {
		r.p99 = all[len(all)*99/100]
	}
	return r, nil
}

func merge(a, b result) result {
	return result{queries: a.queries + b.queries, elapsed: a.elapsed + b.elapsed,
		p99: max(a.p99, b.p99), cpu: a.cpu + b.cpu, cgoCalls: a.cgoCalls + b.cgoCalls}
}

func main() {
	url := flag.String("url", os.Getenv("DATABASE_URL"), "PostgreSQL URL")
	dur := flag.Duration("duration", 2*time.Second, "measuring time per point and contender")
	size := flag.Int("pool", 8, "pool size of both contenders")
	gs := flag.String("goroutines", "1,4,16", "goroutine counts")
	rounds := flag.Int("rounds", 1, "alternations per point (each runs both contenders)")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "usage: bench -url URL")
		os.Exit(2)
	}
	ctx := context.Background()
	pp, err := pgpool.NewPool(ctx, *url, pgpool.MaxConns(int32(*size)), pgpool.ApplicationName("bench-pgpool"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer pp.Close()
	cfg, err := pgxpool.ParseConfig(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg.MaxConns = int32(*size)
	cfg.ConnConfig.RuntimeParams["application_name"] = "bench-pgxpool"
	xp, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer xp.Close()
	pgpoolQuery := func(ctx context.Context, i int) error {
		var n int32
		if err := pp.QueryRow(ctx, "SELECT $1::int4", int32(i)).Scan(&n); err != nil {
			return err
		}
		if n != int32(i) {
			return fmt.Errorf("pgpool: got %d, want %d", n, i)
		}
		return nil
	}
	pgxQuery := func(ctx context.Context, i int) error {
		var n int32
		if err := xp.QueryRow(ctx, "SELECT $1::int4", int32(i)).Scan(&n); err != nil {
			return err
		}
		if n != int32(i) {
			return fmt.Errorf("pgx: got %d, want %d", n, i)
		}
		return nil
	}
	fmt.Printf("SELECT $1::int4, pool of %d, %v per point and contender, %d round(s), GOMAXPROCS %d, libpgpool %s\n\n",
		*size, *dur, *rounds, runtime.GOMAXPROCS(0), pgpool.Version())
	fmt.Printf("%-10s | %-9s | %10s | %9s | %12s | %9s | %-8s\n", "goroutines", "contender", "q/s", "p99", "CPU/query", "cgo/query", "ratio")
	fmt.Println(strings.Repeat("-", 85))
	for _, f := range strings.Split(*gs, ",") {
		g, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || g < 1 {
			fmt.Fprintln(os.Stderr, "bad goroutine count", f)
			os.Exit(2)
		}
		var a, b result
		for r := 0; r < *rounds; r++ {
			// Alternate which contender goes first.
			order := []int{0, 1}
			if r%2 == 1 {
				order = []int{1, 0}
			}
			for _, o := range order {
				var res result
				if o == 0 {
					res, err = run(g, *dur, pgpoolQuery)
					a = merge(a, res)
				} else {
					res, err = run(g, *dur, pgxQuery)
					b = merge(b, res)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}
		fmt.Printf("%-10d | %-9s | %10.0f | %9v | %12v | %9.2f | q/s %.2fx\n", g, "pgpool", a.qps(),
			a.p99.Round(time.Microsecond), a.cpuPerQuery(), float64(a.cgoCalls)/float64(max(a.queries, 1)), a.qps()/b.qps())
		fmt.Printf("%-10s | %-9s | %10.0f | %9v | %12v | %9.2f | CPU %.2fx\n", "", "pgxpool", b.qps(),
			b.p99.Round(time.Microsecond), b.cpuPerQuery(), float64(b.cgoCalls)/float64(max(b.queries, 1)),
			float64(a.cpuPerQuery())/float64(b.cpuPerQuery()))
	}
	fmt.Println("\nratio: pgpool / pgxpool (q/s: higher is better; CPU/query: lower is better)")
}
