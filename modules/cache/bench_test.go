package cache

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// benchWriter is a reusable ResponseWriter, so the benchmarks measure the cache alone.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(int)             {}

func benchCache(b *testing.B) *Cache {
	b.Helper()
	site := &core.Site{Port: 8080, Label: "*"}
	ctx := core.NewSiteContext(context.Background(), site, nil, nil, nil)
	c, ok := build(ctx, map[string]config.Node{"store": "memory", "ttlSecs": float64(3600)}, "proxy./.cache", "/")
	if !ok {
		b.Fatal(ctx.Diag.Errors())
	}
	return c
}

var benchBody = []byte(`{"items":[1,2,3,4,5,6,7,8,9,10],"note":"a typical small JSON answer of about a hundred bytes"}`)

func upstreamHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Cache-Control"] = []string{"max-age=3600"}
		h["Content-Length"] = []string{strconv.Itoa(len(benchBody))}
		w.WriteHeader(200)
		_, _ = w.Write(benchBody)
	})
}

// BenchmarkHit is a cache hit from the memory store: key building, lookup, header
// assignment and body write.
func BenchmarkHit(b *testing.B) {
	c := benchCache(b)
	h := c.Wrap(upstreamHandler())
	r := httptest.NewRequest(http.MethodGet, "http://example.com/api/items?page=2", nil)
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	w.h = http.Header{}
	h.ServeHTTP(w, r)
	if w.h.Get("X-Cache") != "HIT" {
		b.Fatalf("X-Cache %q", w.h.Get("X-Cache"))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkMiss is a miss that stores: each iteration purges the key first.
func BenchmarkMiss(b *testing.B) {
	c := benchCache(b)
	h := c.Wrap(upstreamHandler())
	r := httptest.NewRequest(http.MethodGet, "http://example.com/api/items?page=2", nil)
	key := string(c.appendKey(nil, http.MethodGet, r.Host, r))
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, _ = c.mem.Purge(context.Background(), key)
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	if w.h.Get("X-Cache") != "MISS" {
		b.Fatalf("X-Cache %q", w.h.Get("X-Cache"))
	}
}

// TestHitDoesNotAllocate guards the hot path: a hit with a fresh Age rendering allocates
// nothing.
func TestHitDoesNotAllocate(t *testing.T) {
	site := &core.Site{Port: 8080, Label: "*"}
	ctx := core.NewSiteContext(context.Background(), site, nil, nil, nil)
	c, ok := build(ctx, map[string]config.Node{"store": "memory", "ttlSecs": float64(3600)}, "proxy./.cache", "/")
	if !ok {
		t.Fatal(ctx.Diag.Errors())
	}
	h := c.Wrap(upstreamHandler())
	r := httptest.NewRequest(http.MethodGet, "http://example.com/api/items?page=2", nil)
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	h.ServeHTTP(w, r)
	allocs := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) })
	if allocs > 0 {
		t.Fatalf("a hit allocates %.1f times", allocs)
	}
	_ = io.Discard
}
