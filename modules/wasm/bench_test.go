package wasm_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// BenchmarkMiddleware measures a request through a real Conduit (client, server and
// upstream in this process) with and without a WASM entry; cpu-µs/op is the process's
// CPU time per request, so the difference between two rows is what the entry costs.
//
//	go test -run '^$' -bench Middleware -benchtime 3s ./modules/wasm/
func BenchmarkMiddleware(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream body")
	}))
	defer up.Close()
	for _, bc := range []struct{ name, entry string }{
		{"plain", ""},
		{"conduit-abi/wat/fresh", `{type: wasm, path: "` + fixture("wat/header.wasm") + `", phase: response, instances: fresh}`},
		{"conduit-abi/wat/reset", `{type: wasm, path: "` + fixture("wat/header.wasm") + `", phase: response, instances: reset}`},
		{"conduit-abi/wat/reuse", `{type: wasm, path: "` + fixture("wat/header.wasm") + `", phase: response, instances: reuse}`},
		{"conduit-abi/rust/fresh", `{type: wasm, path: "` + fixture("rust/guard.wasm") + `", instances: fresh}`},
		{"conduit-abi/rust/reset", `{type: wasm, path: "` + fixture("rust/guard.wasm") + `", instances: reset}`},
		{"conduit-abi/rust/reuse", `{type: wasm, path: "` + fixture("rust/guard.wasm") + `", instances: reuse}`},
		{"conduit-abi/go/fresh", `{type: wasm, path: "` + fixture("go/conduitpath.wasm") + `", instances: fresh, timeoutMs: 5000}`},
		{"conduit-abi/go/reset", `{type: wasm, path: "` + fixture("go/conduitpath.wasm") + `", instances: reset, timeoutMs: 5000}`},
		{"conduit-abi/go/reuse", `{type: wasm, path: "` + fixture("go/conduitpath.wasm") + `", instances: reuse, timeoutMs: 5000}`},
		{"http-wasm/wat", `{type: wasm, path: "` + fixture("wat/hwheader.wasm") + `"}`},
		{"http-wasm/go", `{type: wasm, path: "` + fixture("go/httpheader.wasm") + `", timeoutMs: 5000}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := "port: 8080\nlogging: false\nproxy:\n  /: \"" + up.URL + "\"\n"
			if bc.entry != "" {
				cfg = site(up.URL, bc.entry) + "    logging: false\n"
			}
			srv := servertest.Start(b, cfg)
			url := srv.URL(8080) + "/bench"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
			get := func() {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			get()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				get()
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
