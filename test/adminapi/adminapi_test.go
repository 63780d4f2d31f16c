// Package adminapi_test checks what every Admin API answer has in common, whichever module
// serves it: a JSON body, `Cache-Control: no-store`, and for errors one shape,
// {"status":"error","message":"…"}, the shape `conduit reload|status|upstreams` read.
package adminapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/cache"
	_ "github.com/conduitproxy/conduit/modules/ipfilter"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/ratelimit"
)

func TestEveryAnswerIsUncachedJSON(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "up") }))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
rateLimit: {windowSecs: 60, limit: 100}
proxy:
  /: { targets: [%q], cache: {store: memory, ttlSecs: 60} }
`, up.URL))
	api, err := admin.Start("127.0.0.1:0", admin.Options{Server: srv.Server})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close(context.Background()) })
	base := "http://" + api.Addr().String()
	cases := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/status", "", 200},
		{"GET", "/nope", "", 404},
		{"GET", "/reload", "", 405},
		{"POST", "/certs/reload", "{}", 400},
		{"POST", "/upgrade", "", 409},
		{"GET", "/upstreams", "", 200},
		{"POST", "/upstreams/add", "{}", 400},
		{"POST", "/upstreams/weight", `{"route":"/nope","target":"http://x","weight":2}`, 404},
		{"DELETE", "/cache/purge", "", 400},
		{"DELETE", "/cache/purge?url=" + "%3A%2F%2F", "", 400},
		{"DELETE", "/cache/purge?url=http://localhost:8080/x", "", 200},
		{"GET", "/rate-limits", "", 200},
		{"POST", "/ip-deny", "{}", 400},
		{"POST", "/ip-deny", `{"cidr":"192.0.2.0/24"}`, 200},
		{"GET", "/ip-deny", "", 200},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json") // what the Admin API requires of a body
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, raw)
			}
			if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
				t.Errorf("Content-Type %q, Cache-Control %q; want application/json and no-store", ct, cc)
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not a JSON object: %v", raw, err)
			}
			if tc.status < 400 {
				return
			}
			if msg, _ := body["message"].(string); body["status"] != "error" || msg == "" {
				t.Errorf("error body %s, want {\"status\":\"error\",\"message\":…}", raw)
			}
			if _, ok := body["error"]; ok {
				t.Errorf("error body %s has an \"error\" key; the message is in \"message\"", raw)
			}
		})
	}
}
