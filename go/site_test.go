package pgpool

import (
	"strings"
	"testing"
)

func TestCallerSiteSkipsThePackage(t *testing.T) {
	var first = (*cChar)(nil)
	for i := 0; i < 2; i++ {
		site, owned := callerSite() // this test's frame is in package pgpool: skipped too
		if owned || site == nil {
			t.Fatalf("not cached: %v %v", site, owned)
		}
		if i == 0 {
			first = site
		} else if site != first {
			t.Fatal("the same call stack got another label")
		}
	}
	if label := cString(first); !strings.HasPrefix(label, "testing/testing.go:") {
		t.Fatalf("label %q", label)
	}
	for _, f := range []string{"github.com/pgpool/pgpool/go.(*Pool).Acquire",
		"github.com/pgpool/pgpool/go/stdlib.(*Connector).Connect", "database/sql.(*DB).conn"} {
		if !isInternal(f) {
			t.Errorf("%s is not skipped", f)
		}
	}
	for _, f := range []string{"github.com/pgpool/pgpool/go_test.TestX", "main.main",
		"github.com/pgpool/pgpool/go/bench.run"} {
		if isInternal(f) {
			t.Errorf("%s is skipped", f)
		}
	}
	if got := shortFile("/a/b/c.go"); got != "b/c.go" {
		t.Errorf("shortFile: %q", got)
	}
}

// BenchmarkCallerSite is the cost of naming the caller of an acquire (a cache hit).
func BenchmarkCallerSite(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if s, owned := callerSite(); s == nil || owned {
			b.Fatal("not cached")
		}
	}
}
