package cache_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestPurgeWithoutACachedRoute: in a binary that has the cache, DELETE /cache/purge on the
// Admin API of a configuration where no route caches answers 409 saying so, not 501 "not
// compiled into this binary"; with a cached route it purges.
func TestPurgeWithoutACachedRoute(t *testing.T) {
	up := newOrigin(t)
	for _, tc := range []struct {
		name, cache string
		status      int
		body        string
	}{
		{"no cached route", "", http.StatusConflict, "no route has a cache"},
		{"a cached route", ", cache: {store: memory, ttlSecs: 60}", http.StatusOK, `"purged":false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, "port: 8080\nproxy:\n  /: { targets: [\""+up.URL+"\"]"+tc.cache+" }\n")
			api, err := admin.Start("127.0.0.1:0", admin.Options{Server: srv.Server})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = api.Close(context.Background()) })
			req, _ := http.NewRequest(http.MethodDelete, "http://"+api.Addr().String()+"/cache/purge?url=http://localhost:8080/x", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) || strings.Contains(string(b), "not compiled") {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, b, tc.status, tc.body)
			}
		})
	}
}
