// A service with named pools from a TOML file that shuts down cleanly on SIGTERM / SIGINT:
// every pool is opened and waited for, goroutines run queries on every pool until a signal
// (Go's own os/signal: signal.NotifyContext), then every pool closes within 5 s
// (Registry.CloseAll) and a summary is printed; the exit status is 0.
//
// Usage: go run . pools.toml [workers per pool]. Build against an installed libpgpool
// (pkg-config), or with -tags pgpool_nopkgconfig and CGO_CFLAGS / CGO_LDFLAGS pointing at
// include/ and the directory of libpgpool.so (see README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pgpool "github.com/pgpool/pgpool/go"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: go-service pools.toml [workers per pool]")
	}
	perPool := 2
	if len(os.Args) > 2 {
		perPool, _ = strconv.Atoi(os.Args[2])
	}

	// README:BEGIN registry-go
	reg, err := pgpool.OpenRegistryFile(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	// Open every pool and wait up to 10 s until each is ready: fail fast when one is down.
	openCtx, cancelOpen := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelOpen()
	if err := reg.OpenAll(openCtx); err != nil {
		log.Fatal(err)
	}
	// ctx ends on SIGTERM / SIGINT: the workers stop taking work.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// README:END registry-go

	var queries atomic.Int64
	var wg sync.WaitGroup
	for _, name := range reg.Names() {
		pool, err := reg.Get(name)
		if err != nil {
			log.Fatal(err)
		}
		name := name
		for i := 0; i < perPool; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					_, err := pool.Exec(ctx, "SELECT pg_sleep(0.01)")
					switch {
					case err == nil:
						queries.Add(1)
					case errors.Is(err, pgpool.ErrClosed), ctx.Err() != nil:
						return
					default:
						log.Printf("%s: %v", name, err)
					}
				}
			}()
		}
	}
	fmt.Printf("ready: %d pools\n", len(reg.Names()))

	// README:BEGIN registry-go-shutdown
	<-ctx.Done()
	stop() // a second signal now ends the process at once, as Go does by default
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	reclaimed, err := reg.CloseAll(closeCtx)
	// README:END registry-go-shutdown
	wg.Wait()
	if err != nil {
		fmt.Printf("pools closed, %d connections reclaimed: %v\n", reclaimed, err)
	} else {
		fmt.Printf("pools closed, 0 connections reclaimed\n")
	}
	fmt.Printf("%d queries; shutdown clean\n", queries.Load())
}
