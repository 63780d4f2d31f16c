package script_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkThroughConduit sends sequential keep-alive requests through a real Conduit to a
// real upstream, with and without a middleware[] entry; cpu-µs/op is the whole process's
// CPU (client, Conduit and upstream) per request, so the difference between two rows is
// what the entry adds. docs/scripting.md#performance has the figures.
func BenchmarkThroughConduit(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	rows := []struct{ name, middleware string }{
		{"plain", ""},
		{"script", "middleware:\n  - {type: script, path: testdata/scripts/oneheader.go}\n"},
		{"script-inline", "middleware:\n  - {type: script, path: testdata/scripts/oneheader.go, timeoutMs: 0}\n"},
		{"traefik-plugin", "middleware:\n  - {type: traefik, path: " + stampDir + ", config: {rules: [{prefix: /, header: X-Stamp, value: \"1\"}]}}\n"},
		{"traefik-plugin-inline", "middleware:\n  - {type: traefik, path: " + stampDir + ", timeoutMs: 0, config: {rules: [{prefix: /, header: X-Stamp, value: \"1\"}]}}\n"},
	}
	for _, row := range rows {
		b.Run(row.name, func(b *testing.B) {
			srv := servertest.Start(b, "port: 8080\nproxy: "+up.URL+"\n"+row.middleware)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			url := srv.URL(8080) + "/"
			get := func() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			for range 200 {
				get()
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime(b)
			for b.Loop() {
				get()
			}
			b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
