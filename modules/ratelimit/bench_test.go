package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func testLimiter(tb testing.TB, node map[string]config.Node) *Limiter {
	tb.Helper()
	ctx := core.NewSiteContext(context.Background(), &core.Site{Label: "*"}, nil, nil, nil)
	l, ok := New(ctx, node, "rateLimit", "site:*")
	if !ok {
		tb.Fatalf("New: %v", ctx.Diag.Errors())
	}
	return l
}

// TestAllowInjectedClock drives a limiter through Allow with a fake clock.
func TestAllowInjectedClock(t *testing.T) {
	l := testLimiter(t, map[string]config.Node{"windowSecs": 1.0, "limit": 2.0})
	var now int64 = 1e18
	l.now = func() int64 { return now }
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	for i, want := range []bool{true, true, false} {
		if d := l.Allow(r, ""); d.Allowed != want {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	now += 500_000_000 // half a second: one token back
	if d := l.Allow(r, ""); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after 0.5 s: %+v", d)
	}
	// A consumer key is its own bucket, independent of the IP.
	if d := l.Allow(r, "alice"); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("consumer key: %+v", d)
	}
	if l.stats.Passed() != 4 || l.stats.Rejected() != 1 {
		t.Fatalf("stats %d/%d", l.stats.Passed(), l.stats.Rejected())
	}
}

// BenchmarkMemoryAllow: one client hitting a limit it never reaches (the common case).
func BenchmarkMemoryAllow(b *testing.B) {
	l := testLimiter(b, map[string]config.Node{"windowSecs": 1.0, "limit": 1e12})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		if !l.Allow(r, "").Allowed {
			b.Fatal("refused")
		}
	}
}

// BenchmarkMemoryAllowParallel: many clients (distinct IPs) in parallel.
func BenchmarkMemoryAllowParallel(b *testing.B) {
	l := testLimiter(b, map[string]config.Node{"windowSecs": 1.0, "limit": 1e12})
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := seq.Add(1)
		reqs := make([]*http.Request, 256)
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, "/", nil)
			a := netip.AddrFrom4([4]byte{10, byte(n), byte(i), 1})
			reqs[i].RemoteAddr = a.String() + ":" + strconv.Itoa(1000+i)
		}
		i := 0
		for pb.Next() {
			l.Allow(reqs[i&255], "")
			i++
		}
	})
}

// BenchmarkMemoryReject: a client over its limit (the 429 decision, not the response).
func BenchmarkMemoryReject(b *testing.B) {
	l := testLimiter(b, map[string]config.Node{"windowSecs": 3600.0, "limit": 1.0})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	l.Allow(r, "")
	b.ReportAllocs()
	for b.Loop() {
		if l.Allow(r, "").Allowed {
			b.Fatal("allowed")
		}
	}
}
