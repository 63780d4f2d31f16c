package wasm_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestHTTPWasm drives hwprobe.wat (an http-wasm guest) through both phases: it answers
// some requests itself, changes the request of the others and, with buffer_response,
// the response.
func TestHTTPWasm(t *testing.T) {
	up := upstream(t)
	hw := `{type: wasm, path: "` + fixture("wat/hwprobe.wasm") + `", timeoutMs: 300}`
	srv := servertest.Start(t, site(up.URL, hw))
	deny := servertest.Start(t, site(up.URL, `{type: wasm, path: "`+fixture("wat/hwprobe.wasm")+`", timeoutMs: 300, onError: deny}`))
	cases := []struct {
		name, path   string
		status       int
		body         string
		want         map[string]string
		denyStatus   int
		checkElapsed bool
	}{
		{name: "request and response phase", path: "/x", status: 200, body: "upstream body",
			want: map[string]string{"X-Seen-Wasm-Req": "1", "X-Wasm-Ctx": "42"}, denyStatus: 200},
		{name: "guest answers", path: "/deny", status: 403, body: "blocked by wasm", want: map[string]string{"X-Wasm-Ctx": ""}, denyStatus: 403},
		{name: "guest redirects", path: "/redirect", status: 302, body: "", want: map[string]string{"Location": "/elsewhere"}, denyStatus: 302},
		{name: "guest rewrites the body", path: "/rewrite", status: 200, body: "rewritten by wasm",
			want: map[string]string{"Content-Length": "17", "X-Wasm-Ctx": "42"}, denyStatus: 200},
		{name: "trap fails open", path: "/trap", status: 200, body: "upstream body", denyStatus: 500},
		{name: "endless loop stopped", path: "/loop", status: 200, body: "upstream body", denyStatus: 500, checkElapsed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := servertest.Get(t, srv.URL(8080)+tc.path)
			if tc.checkElapsed && time.Since(start) > 5*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			if r.Status != tc.status || r.Body != tc.body {
				t.Fatalf("got %d %q, want %d %q", r.Status, r.Body, tc.status, tc.body)
			}
			for k, v := range tc.want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if r := servertest.Get(t, deny.URL(8080)+tc.path); r.Status != tc.denyStatus {
				t.Fatalf("onError deny: got %d %q, want %d", r.Status, r.Body, tc.denyStatus)
			}
			// The guest still serves after any of these (a closed instance is replaced).
			if r := servertest.Get(t, srv.URL(8080)+"/x"); r.Header.Get("X-Wasm-Ctx") != "42" {
				t.Fatalf("after %s: %d %v", tc.name, r.Status, r.Header)
			}
		})
	}
}

// TestHTTPWasmRequestHeader checks that the guest's request header reaches the upstream.
func TestHTTPWasmRequestHeader(t *testing.T) {
	seen := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("X-Wasm")
	}))
	defer up.Close()
	srv := servertest.Start(t, site(up.URL, `{type: wasm, path: "`+fixture("wat/hwheader.wasm")+`"}`))
	if r := servertest.Get(t, srv.URL(8080)+"/"); r.Status != 200 {
		t.Fatalf("got %d", r.Status)
	}
	if v := <-seen; v != "1" {
		t.Fatalf("upstream saw X-Wasm %q, want 1", v)
	}
}
