package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestMaxBodyBufferBytesDecidesReplay: the proxy takes limits.maxBodyBufferBytes from the
// limits module (core.BodyBufferLimit), for the proxy map and for routes[] targets alike. A
// POST whose body fits is buffered and retried after a 503; a larger body streams once and
// the upstream's 503 is the answer.
func TestMaxBodyBufferBytesDecidesReplay(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(up.Close)
	route := fmt.Sprintf("{ targets: [%q], retry: { attempts: 1, conditions: [5xx] } }", up.URL)
	for _, tc := range []struct {
		name     string
		config   string
		bodySize int
		attempts int64
	}{
		{"proxy map, body fits", "limits: { maxBodyBufferBytes: 16 }\nproxy:\n  /: " + route, 16, 2},
		{"proxy map, body too large", "limits: { maxBodyBufferBytes: 16 }\nproxy:\n  /: " + route, 17, 1},
		{"proxy map, buffering off", "limits: { maxBodyBufferBytes: 0 }\nproxy:\n  /: " + route, 1, 1},
		{"proxy map, default 1 MiB", "proxy:\n  /: " + route, 64 << 10, 2},
		{"limits without the key, default 1 MiB", "limits: { maxBodyBytes: 1048576 }\nproxy:\n  /: " + route, 64 << 10, 2},
		{"routes[] target, body fits", "limits: { maxBodyBufferBytes: 16 }\nroutes:\n  - { match: { path: /** }, proxy: " + route + " }", 16, 2},
		{"routes[] target, body too large", "limits: { maxBodyBufferBytes: 16 }\nroutes:\n  - { match: { path: /** }, proxy: " + route + " }", 17, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, "port: 8080\n"+tc.config+"\n")
			hits.Store(0)
			resp, err := http.Post(srv.URL(8080)+"/", "text/plain", strings.NewReader(strings.Repeat("x", tc.bodySize)))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want the upstream's 503", resp.StatusCode)
			}
			if got := hits.Load(); got != tc.attempts {
				t.Fatalf("%d-byte body reached the upstream %d times, want %d", tc.bodySize, got, tc.attempts)
			}
		})
	}
}
