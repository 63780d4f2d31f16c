package wasm_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestGuestLanguages runs the Rust and Go guests of plugins/wasm through Conduit: what
// each adds to the request reaches the upstream, and what it answers itself reaches the
// client.
func TestGuestLanguages(t *testing.T) {
	seen := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		_, _ = w.Write([]byte("up"))
	}))
	defer up.Close()
	for _, tc := range []struct {
		name, entry, path     string
		status                int
		body                  string
		upHeader, upValue     string
		respHeader, respValue string
		reachesUpstream       bool
	}{
		{name: "rust, conduit ABI, passes", entry: `{type: wasm, path: "` + fixture("rust/guard.wasm") + `"}`,
			path: "/shop/item?x=1", status: 200, body: "up", upHeader: "X-Rust-Path", upValue: "/shop/item", reachesUpstream: true},
		{name: "rust, conduit ABI, refuses", entry: `{type: wasm, path: "` + fixture("rust/guard.wasm") + `"}`,
			path: "/admin/users", status: 403, body: "forbidden by the rust guest"},
		{name: "go, http-wasm", entry: `{type: wasm, path: "` + fixture("go/httpheader.wasm") + `", timeoutMs: 2000}`,
			path: "/a/b?c=d", status: 200, body: "up", upHeader: "X-Go-Uri", upValue: "/a/b?c=d",
			respHeader: "X-Go-Guest", respValue: "1", reachesUpstream: true},
		{name: "go, conduit ABI, reset instances (the default)", entry: `{type: wasm, path: "` + fixture("go/conduitpath.wasm") + `", timeoutMs: 2000}`,
			path: "/go/reset", status: 200, body: "up", upHeader: "X-Go-Path", upValue: "/go/reset", reachesUpstream: true},
		{name: "go, conduit ABI, reused instances", entry: `{type: wasm, path: "` + fixture("go/conduitpath.wasm") + `", instances: reuse, timeoutMs: 2000}`,
			path: "/go/path", status: 200, body: "up", upHeader: "X-Go-Path", upValue: "/go/path", reachesUpstream: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, site(up.URL, tc.entry))
			for i := 0; i < 3; i++ { // a reset, reused or pooled instance serves the later ones
				r := servertest.Get(t, srv.URL(8080)+tc.path)
				if r.Status != tc.status || r.Body != tc.body {
					t.Fatalf("got %d %q, want %d %q", r.Status, r.Body, tc.status, tc.body)
				}
				if tc.respHeader != "" && r.Header.Get(tc.respHeader) != tc.respValue {
					t.Fatalf("%s = %q, want %q", tc.respHeader, r.Header.Get(tc.respHeader), tc.respValue)
				}
				if !tc.reachesUpstream {
					continue
				}
				if h := <-seen; h.Get(tc.upHeader) != tc.upValue {
					t.Fatalf("upstream saw %s = %q, want %q", tc.upHeader, h.Get(tc.upHeader), tc.upValue)
				}
			}
		})
	}
}
