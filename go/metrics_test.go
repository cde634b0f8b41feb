package pgpool_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	pgpool "github.com/pgpool/pgpool/go"
)

func TestHistogramsMetricsAndHealthJSON(t *testing.T) {
	ctx := context.Background()
	p := newPool(t, pgpool.MaxConns(1), pgpool.Name("gometrics"), pgpool.DegradedWaiters(0),
		pgpool.HealthTimeout(300*time.Millisecond), pgpool.SlowQueryThreshold(time.Second),
		pgpool.StatsLogInterval(time.Minute))
	for i := 0; i < 10; i++ {
		if _, err := p.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Exec(ctx, "SELECT pg_sleep(0.03)"); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.AcquireWait.Count != s.AcquireCount || s.QueryTime.Count != 11 || s.HoldTime.Count != 11 ||
		s.ConnectTime.Count != s.NewConnsCount || s.QueryTime.Max < 30*time.Millisecond ||
		s.QueryTime.P50 > s.QueryTime.P99 || s.QueryTime.P99 > s.QueryTime.Max || s.QueryTime.Sum < 30*time.Millisecond {
		t.Fatalf("histograms: %+v", s)
	}

	text, err := p.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE pgpool_query_duration_seconds histogram\n",
		"pgpool_query_duration_seconds_count{pool=\"gometrics\"} 11\n",
		"pgpool_max_connections{pool=\"gometrics\"} 1\n",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %q:\n%s", want, text)
		}
	}
	srv := httptest.NewServer(p.MetricsHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") ||
		!strings.Contains(string(body), "pgpool_acquires_total{pool=\"gometrics\"}") {
		t.Fatalf("handler: %s %s", resp.Header.Get("Content-Type"), body)
	}

	raw, err := p.HealthJSON(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		OK       bool     `json:"ok"`
		Pool     string   `json:"pool"`
		State    string   `json:"state"`
		Reasons  []string `json:"reasons"`
		Database string   `json:"database"`
		PoolSize int      `json:"poolSize"`
	}
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if !h.OK || h.Pool != "gometrics" || h.State != "healthy" || len(h.Reasons) != 0 || h.Database == "" || h.PoolSize != 1 {
		t.Fatalf("health JSON: %s", raw)
	}

	// One caller waiting, more than DegradedWaiters(0): degraded, and Reasons says why.
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c2, err := p.Acquire(ctx)
		if err == nil {
			c2.Release()
		}
		done <- err
	}()
	eventually(t, "a waiter", func() bool { return p.Stats().WaitingCallers == 1 })
	hs := p.Health(ctx)
	if hs.State != pgpool.Degraded || hs.MaxConns != 1 || len(hs.Reasons) == 0 ||
		!strings.Contains(strings.Join(hs.Reasons, "|"), "callers waiting") {
		t.Fatalf("degraded health: %+v", hs)
	}
	c.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.HealthJSON(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("HealthJSON with a cancelled context: %v", err)
	}
}

func TestBadPoolNameIsAConfigError(t *testing.T) {
	_, err := pgpool.NewPool(context.Background(), testURL(t), pgpool.Name("no spaces"))
	if !errors.Is(err, pgpool.ErrConfig) || !strings.Contains(err.Error(), "name") {
		t.Fatalf("got %v", err)
	}
}
