package pgpool

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

/*
#include <stdlib.h>
#include "pgpool.h"
*/
import "C"

// Name names the pool (name; default "default"): the pool label of its Prometheus
// metrics and the prefix of its log lines. 1 to 63 letters, digits, '_', '-' or '.';
// anything else makes NewPool fail with ErrConfig.
func Name(name string) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		cs := C.CString(name)
		defer C.free(unsafe.Pointer(cs))
		return C.pgpool_config_set_name(c, cs, e)
	})
}

// Histograms keeps the latency histograms of Stats (acquire wait, connect, query and hold
// time; default true). Off, they stay empty.
func Histograms(on bool) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_histograms(c, C.bool(on), e)
	})
}

// StatsLogInterval logs one line of the pool's gauges, counters and p99s at LogInfo (see
// SetLogger) this often (stats_log_interval; default and zero or Never: off).
func StatsLogInterval(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_stats_log_interval_ms(c, offOrMs(d), e)
	})
}

// SlowQueryThreshold logs statements slower than d at LogWarn with their text (literals
// replaced by ?), duration and rows; parameter values are never logged
// (slow_query_threshold; default and zero or Never: off). Every statement is logged so at
// LogDebug.
func SlowQueryThreshold(d time.Duration) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_slow_query_threshold_ms(c, offOrMs(d), e)
	})
}

// DegradedWaiters makes Health report the pool degraded while more than n callers wait
// for a connection (degraded_waiters; default 10; negative: never).
func DegradedWaiters(n int) Option {
	return set(func(c *C.pgpool_config, e **C.pgpool_error) C.pgpool_code {
		return C.pgpool_config_set_degraded_waiters(c, C.int64_t(n), e)
	})
}

// Histogram is one latency distribution of Stats: quantiles within 6.25%, Max exact, all
// zero when nothing was recorded.
type Histogram struct {
	Count              int64
	Sum                time.Duration
	P50, P90, P99, Max time.Duration
}

func histogram(h C.pgpool_histogram) Histogram {
	us := func(v C.uint64_t) time.Duration { return time.Duration(v) * time.Microsecond }
	return Histogram{
		Count: int64(h.count), Sum: us(h.sum_us),
		P50: us(h.p50_us), P90: us(h.p90_us), P99: us(h.p99_us), Max: us(h.max_us),
	}
}

// Metrics returns the pool's statistics in the Prometheus text exposition format 0.0.4:
// every gauge, counter and histogram, labelled with the pool's Name.
func (p *Pool) Metrics() (string, error) {
	var text *C.char
	var detail *C.pgpool_error
	rc := C.pgpool_pool_metrics(p.p, &text, &detail)
	runtime.KeepAlive(p)
	if err := takeError(rc, detail); err != nil {
		return "", err
	}
	defer C.pgpool_string_free(text)
	return C.GoString(text), nil
}

// MetricsHandler serves Metrics for a Prometheus scrape (mount it at /metrics).
func (p *Pool) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		text, err := p.Metrics()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(text))
	})
}

// HealthJSON runs a health check and returns it as one JSON object, the body of a
// /api/db/health endpoint: ok, pool, state, reasons, database, timestamp, serverVersion,
// latencyMs, maxSize, poolSize, idleCount, inUseCount, waitingCount,
// consecutiveConnectFailures, lastConnectError, error. An unhealthy pool is not an error:
// the JSON says so. Bounded by HealthTimeout; a ctx done earlier returns its error at once.
func (p *Pool) HealthJSON(ctx context.Context) (string, error) {
	type result struct {
		json string
		err  error
	}
	run := func() result {
		var text *C.char
		var detail *C.pgpool_error
		rc := C.pgpool_pool_health_json(p.p, &text, &detail)
		runtime.KeepAlive(p)
		if err := takeError(rc, detail); err != nil {
			return result{"", err}
		}
		defer C.pgpool_string_free(text)
		return result{C.GoString(text), nil}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if ctx.Done() == nil {
		r := run()
		return r.json, r.err
	}
	done := make(chan result, 1)
	go func() { done <- run() }()
	select {
	case r := <-done:
		return r.json, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// healthReasons splits pgpool_health.reasons.
func healthReasons(b []C.char) []string {
	text := healthText(b)
	if text == "" {
		return nil
	}
	return strings.Split(text, "; ")
}
