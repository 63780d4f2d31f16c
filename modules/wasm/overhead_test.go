package wasm

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/tetratelabs/wazero"
)

// BenchmarkEntryOverhead measures what an entry adds to one request in-process, without
// sockets: the wrapped handler against the bare next handler, for the guests of the
// conduit-wasm and conduit-httpwasm benchmark rows in each instance mode. The difference
// between a row and "bare" is the entry's cost; allocs/op are exact, cpu-ns/op is the
// process's CPU time per request (on a loaded machine, steadier than ns/op).
//
//	go test -run '^$' -bench EntryOverhead -benchmem ./modules/wasm/
func BenchmarkEntryOverhead(b *testing.B) {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "upstream body")
	})
	run := func(b *testing.B, h http.Handler) {
		r := httptest.NewRequest(http.MethodGet, "/bench", nil)
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := processCPU()
		for i := 0; i < b.N; i++ {
			clear(w.h)
			delete(r.Header, "X-Wasm")
			h.ServeHTTP(w, r)
		}
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.Run("bare", func(b *testing.B) { run(b, next) })
	for _, bc := range []struct{ name, file, instances string }{
		{"conduit/fresh", "wat/header.wasm", instancesFresh},
		{"conduit/reset", "wat/header.wasm", instancesReset},
		{"conduit/reuse", "wat/header.wasm", instancesReuse},
		{"httpwasm", "wat/hwheader.wasm", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mw := testEntry(b, bc.file, bc.instances, DefaultTimeout)
			run(b, mw.Wrap(next))
		})
	}
}

// testEntry builds an entry for a committed guest with the default memory limit.
func testEntry(b testing.TB, file, instances string, timeout time.Duration) core.Middleware {
	code, err := readGuest(filepath.Join("..", "..", "plugins", "wasm", file))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	sc := &core.SiteContext{Context: ctx, Logger: slog.New(slog.DiscardHandler)}
	es := &entrySpec{file: file, code: code, memPages: DefaultMemoryLimitMiB * 16, timeout: timeout,
		instances: instances, response: file == "wat/header.wasm"}
	if es.instances == "" {
		es.instances = DefaultInstances
	}
	mw, err := build(sc, &engine{cache: wazero.NewCompilationCache()}, es)
	if err != nil {
		b.Fatal(err)
	}
	return mw
}

// discardWriter is a ResponseWriter that keeps the header and drops the body.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
