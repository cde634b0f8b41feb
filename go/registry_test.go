package pgpool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	pgpool "github.com/pgpool/pgpool/go"
)

func registryTOML(t *testing.T, app string) string {
	return fmt.Sprintf(`
[defaults]
acquire_timeout = "5s"
application_name = %q

[pools.primary]
url = %q
max_size = 3
min_idle = 1

[pools.replica]
url_env = "GO_TEST_REPLICA_URL"
`, app, testURL(t))
}

func TestRegistryOpensGetsAndClosesNamedPools(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GO_TEST_REPLICA_URL", testURL(t))
	dir := t.TempDir()
	path := dir + "/pools.toml"
	if err := os.WriteFile(path, []byte(registryTOML(t, "go-registry")), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := pgpool.OpenRegistryFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Names(), ","); got != "primary,replica" {
		t.Fatalf("names %q", got)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := reg.OpenAll(wctx); err != nil {
		t.Fatal(err)
	}
	if text, err := reg.Metrics(); err != nil || !strings.Contains(text, `pgpool_max_connections{pool="primary"}`) {
		t.Fatalf("metrics: %v\n%s", err, text)
	}
	if text, err := reg.HealthJSON(); err != nil || !strings.HasPrefix(text, `{"ok":true,"state":"healthy","pools":[{"ok":true,"pool":"primary"`) {
		t.Fatalf("health: %v\n%s", err, text)
	}
	primary, err := reg.Get("primary")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := reg.Get("primary")
	if again != primary {
		t.Fatal("Get returned another *Pool for the same name")
	}
	var n int
	if err := primary.QueryRow(ctx, "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
		t.Fatalf("%v %d", err, n)
	}
	if s := primary.Stats(); s.MaxConns != 3 {
		t.Fatalf("max_size from the file: %d", s.MaxConns)
	}
	_, err = reg.Get("nope")
	var pe *pgpool.Error
	if !errors.As(err, &pe) || pe.Code != pgpool.CodeUsage || !strings.Contains(pe.Message, "primary, replica") {
		t.Fatalf("unknown name: %v", err)
	}

	// A connection still held at the deadline is reclaimed, on time.
	conn, err := primary.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer ccancel()
	start := time.Now()
	reclaimed, err := reg.CloseAll(cctx)
	if !errors.Is(err, pgpool.ErrTimeout) || reclaimed != 1 {
		t.Fatalf("CloseAll with a held connection: %d, %v", reclaimed, err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("CloseAll took %v", el)
	}
	conn.Release()
	if _, err := primary.Exec(ctx, "SELECT 1"); !errors.Is(err, pgpool.ErrClosed) {
		t.Fatalf("after CloseAll: %v", err)
	}
	if reclaimed, err := reg.CloseAll(ctx); err != nil || reclaimed != 0 {
		t.Fatalf("second CloseAll: %d %v", reclaimed, err)
	}
}

func TestRegistryErrorsNameThePoolAndTheKey(t *testing.T) {
	_, err := pgpool.OpenRegistry("[pools.main]\nurl = \"host=h\"\nmax_sise = 3\n")
	if !errors.Is(err, pgpool.ErrConfig) || !strings.Contains(err.Error(), `unknown key "max_sise" in [pools.main]`) {
		t.Fatalf("%v", err)
	}
	_, err = pgpool.OpenRegistry("[pools.main]\nurl = \"host=h\"\nidle_timeout = 30\n")
	if !errors.Is(err, pgpool.ErrConfig) || !strings.Contains(err.Error(), "pools.main.idle_timeout") {
		t.Fatalf("%v", err)
	}
	_, err = pgpool.OpenRegistryFile("/nonexistent/pools.toml")
	if !errors.Is(err, pgpool.ErrConfig) || !strings.Contains(err.Error(), "/nonexistent/pools.toml") {
		t.Fatalf("%v", err)
	}
}

func TestRegistryOpenAllNamesThePoolThatIsNotReady(t *testing.T) {
	reg, err := pgpool.OpenRegistry(fmt.Sprintf(`
[pools.up]
url = %q
[pools.down]
url = "host=127.0.0.1 port=1 user=nobody"
min_idle = 1
connect_timeout = "200ms"
`, testURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = reg.OpenAll(ctx)
	if err == nil || !strings.Contains(err.Error(), "down:") || strings.Contains(err.Error(), "up:") {
		t.Fatalf("%v", err)
	}
	if _, err := reg.CloseAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}
