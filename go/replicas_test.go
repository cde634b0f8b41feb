package pgpool_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	pgpool "github.com/pgpool/pgpool/go"
)

// MaxReplicaLag on a real primary and its streaming standby (PGPOOL_TEST_PRIMARY and
// PGPOOL_TEST_STANDBY, key=value connection strings; tests/go_module.rs starts the pair): the
// standby's replay is paused while the primary writes, so it falls behind. An idle standby
// session is retired by the keepalive (ReplicaLagClosed, CloseReplicaLag), a new connect
// refuses the standby and says why, and prefer-standby takes the primary until the standby
// has caught up (FallbackLifetime).
func TestMaxReplicaLagKeepsAwayFromALaggingStandby(t *testing.T) {
	primary, standby := os.Getenv("PGPOOL_TEST_PRIMARY"), os.Getenv("PGPOOL_TEST_STANDBY")
	if primary == "" || standby == "" {
		t.Skip("PGPOOL_TEST_PRIMARY and PGPOOL_TEST_STANDBY are not set (tests/go_module.rs sets them)")
	}
	ctx := context.Background()
	open := func(url string, opts ...pgpool.Option) *pgpool.Pool {
		t.Helper()
		p, err := pgpool.NewPool(ctx, url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	text := func(p *pgpool.Pool, sql string) string {
		t.Helper()
		var s string
		if err := p.QueryRow(ctx, sql).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	onPrimary, onStandby := open(primary), open(standby)
	if _, err := onPrimary.Exec(ctx, "CREATE TABLE IF NOT EXISTS lag_go (n int4)"); err != nil {
		t.Fatal(err)
	}

	var log eventLog
	watched := open(standby+" target_session_attrs=standby", pgpool.MaxReplicaLag(time.Second),
		pgpool.MinIdle(1), pgpool.HealthCheckPeriod(200*time.Millisecond),
		pgpool.WithEventHandler(log.add))
	if got := text(watched, "SELECT pg_catalog.pg_is_in_recovery()::text"); got != "true" {
		t.Fatalf("in recovery: %s", got)
	}

	text(onStandby, "SELECT pg_catalog.pg_wal_replay_pause()::text")
	t.Cleanup(func() { text(onStandby, "SELECT pg_catalog.pg_wal_replay_resume()::text") })
	behind := 0.0
	for i := 0; i < 200 && behind <= 1.2; i++ {
		if _, err := onPrimary.Exec(ctx, "INSERT INTO lag_go VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		var err error
		behind, err = strconv.ParseFloat(text(onStandby,
			"SELECT (CASE WHEN pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() "+
				"THEN 0 ELSE EXTRACT(EPOCH FROM pg_catalog.clock_timestamp() - "+
				"pg_catalog.pg_last_xact_replay_timestamp()) END)::text"), 64)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if behind <= 1.2 {
		t.Fatalf("the standby never fell behind (%.1f s)", behind)
	}

	if h := onStandby.Health(ctx); !h.OK || !h.InRecovery || h.ReplicaLag <= time.Second {
		t.Fatalf("health on the standby: %+v", h)
	}
	if h := onPrimary.Health(ctx); !h.OK || h.InRecovery || h.ReplicaLag != -1 {
		t.Fatalf("health on the primary: %+v", h)
	}
	log.waitFor(t, "remove (replica_lag)", func(e pgpool.Event) bool {
		return e.Kind == pgpool.EventRemove && e.Reason == pgpool.CloseReplicaLag
	})
	if s := watched.Stats(); s.ReplicaLagClosed < 1 {
		t.Fatalf("ReplicaLagClosed %d", s.ReplicaLagClosed)
	}

	fresh := open(standby+" target_session_attrs=standby", pgpool.MaxReplicaLag(time.Second),
		pgpool.AcquireTimeout(3*time.Second))
	if _, err := fresh.Acquire(ctx); err == nil || !strings.Contains(err.Error(), "behind its primary") {
		t.Fatalf("a lagging standby was not refused: %v", err)
	}

	port := func(conninfo string) string {
		for _, kv := range strings.Fields(conninfo) {
			if v, ok := strings.CutPrefix(kv, "port="); ok {
				return v
			}
		}
		t.Fatalf("no port in %q", conninfo)
		return ""
	}
	both := "host=127.0.0.1,127.0.0.1 port=" + port(standby) + "," + port(primary) +
		" user=postgres dbname=postgres target_session_attrs=prefer-standby"
	reads := open(both, pgpool.MaxReplicaLag(time.Second), pgpool.FallbackLifetime(200*time.Millisecond))
	if got := text(reads, "SELECT pg_catalog.pg_is_in_recovery()::text"); got != "false" {
		t.Fatalf("prefer-standby did not fall back to the primary: in recovery %s", got)
	}

	// Caught up again, the standby takes the reads back after FallbackLifetime.
	text(onStandby, "SELECT pg_catalog.pg_wal_replay_resume()::text")
	back := false
	for i := 0; i < 200 && !back; i++ {
		time.Sleep(50 * time.Millisecond)
		back = text(reads, "SELECT pg_catalog.pg_is_in_recovery()::text") == "true"
	}
	if !back {
		t.Fatal("the reads never returned to the standby")
	}
	if s := reads.Stats(); s.MaxLifetimeClosed < 1 {
		t.Fatalf("MaxLifetimeClosed %d", s.MaxLifetimeClosed)
	}
}
