package script

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// buildEntry builds one entry from its YAML-shaped node, failing on any diagnostic.
func buildEntry(tb testing.TB, node map[string]config.Node) core.Middleware {
	tb.Helper()
	ctx := core.NewSiteContext(context.Background(), &core.Site{Label: "*"}, nil, nil, nil)
	ctx.Logger = slog.New(slog.DiscardHandler) // a budget overrun on a loaded machine would break the benchmark's output lines
	mw := build(ctx, core.MiddlewareSpec{Type: node["type"].(string), Path: "middleware[0]", Node: node})
	if ctx.Diag.Len() > 0 || mw == nil {
		tb.Fatalf("build: %v", ctx.Diag.Err())
	}
	return mw
}

// cpuNow is the process's user+system CPU time so far.
func cpuNow(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEntry measures one entry's own cost per request in process: the core's request
// state, the entry, and a next handler that answers 204 (no sockets). "none" is the same
// chain without the entry.
func BenchmarkEntry(b *testing.B) {
	rows := []struct {
		name string
		node map[string]config.Node
	}{
		{"none", nil},
		{"script", map[string]config.Node{"type": "script", "path": "testdata/scripts/oneheader.go"}},
		{"script-inline", map[string]config.Node{"type": "script", "path": "testdata/scripts/oneheader.go", "timeoutMs": 0.0}},
		// The default budget's code with a budget a loaded machine cannot run out of.
		{"script-60s", map[string]config.Node{"type": "script", "path": "testdata/scripts/oneheader.go", "timeoutMs": 60000.0}},
		{"response-phase", map[string]config.Node{"type": "script", "path": "testdata/scripts/oneheader.go", "phase": "response"}},
		{"response-phase-inline", map[string]config.Node{"type": "script", "path": "testdata/scripts/oneheader.go", "phase": "response", "timeoutMs": 0.0}},
		{"traefik-plugin", map[string]config.Node{"type": "traefik", "path": "../../plugins/plugins-local/src/github.com/conduitproxy/conduit-plugin-stamp",
			"config": map[string]config.Node{"rules": []config.Node{map[string]config.Node{"prefix": "/", "header": "X-Stamp", "value": "1"}}}}},
	}
	for _, row := range rows {
		b.Run(row.name, func(b *testing.B) {
			var mw core.Middleware
			if row.node != nil {
				mw = buildEntry(b, row.node)
			}
			benchChain(b, mw)
		})
	}
}

// BenchmarkBudget measures what a budget costs without the interpreter: the same entry
// machinery around a compiled handler that sets one response header and calls next, with
// timeoutMs 0 (on the request's goroutine) and the default 50 ms (on a worker, watched).
func BenchmarkBudget(b *testing.B) {
	for _, budget := range []time.Duration{0, defaultTimeoutMs * time.Millisecond} {
		b.Run(budget.String(), func(b *testing.B) {
			e := &entry{name: "middleware[0]", budget: budget, log: slog.New(slog.DiscardHandler), next: &lateNext{},
				m: newEntryMetrics(telemetry.NewRegistry(), "*", "middleware[0]")}
			if budget > 0 {
				e.wd = newWatchdog(budget, func() { e.addStuck(1) })
			}
			next := e.next
			e.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Script", "yes")
				next.ServeHTTP(w, r)
			})
			benchChain(b, e)
		})
	}
}

// benchChain measures the core's request state, mw (nil: none) and a next handler that
// answers 204, per request; cpu-ns/op is the whole process's CPU time.
func benchChain(b *testing.B, mw core.Middleware) {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	if mw != nil {
		h = mw.Wrap(h)
	}
	h = core.WithState(h)
	w, r := httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	start := cpuNow(b)
	for b.Loop() {
		clear(w.Header())
		h.ServeHTTP(w, r)
	}
	b.ReportMetric(float64((cpuNow(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	// A call past its budget (a stall of the loaded machine) sends the request on without
	// the script, and enough of them disable the entry: the figures would not be the script's.
	if e, ok := mw.(*entry); ok && e.m.timeouts.Value() > 0 {
		b.Fatalf("%v calls ran past their budget of %v: the figures are not the script's; use the row with the larger budget", e.m.timeouts.Value(), e.budget)
	}
}
