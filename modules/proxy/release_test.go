package proxy_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// closeCountingUpstream is a real upstream that counts the connections it saw closed.
func closeCountingUpstream(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var closed atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "up")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	return up, &closed
}

// TestRemovedRouteClosesItsKeepAlivePool: when the old generation stops after a reload that
// removed a route, the proxy's idle keep-alive connection to that route's upstream is
// closed at once (its shared connection pool is released), not after idleTimeoutSecs; a
// route the reload keeps keeps its connection. /other has its own pool settings, so its
// pool belongs to the old generation alone and tells when the old generation let go.
func TestRemovedRouteClosesItsKeepAlivePool(t *testing.T) {
	for _, tc := range []struct {
		name        string
		reloaded    string // the site's proxy map after the reload
		wantAPIGone bool
	}{
		{"route removed", "{}", true},
		{"route kept", "{/api: {targets: [API]}}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, apiClosed := closeCountingUpstream(t)
			other, otherClosed := closeCountingUpstream(t)
			site := func(proxy string) string {
				proxy = strings.NewReplacer("API", api.URL, "OTHER", other.URL).Replace(proxy)
				return "sites:\n  - port: 8080\n    proxy: " + proxy + "\n"
			}
			srv := servertest.Start(t, site("{/api: {targets: [API]}, /other: {targets: [OTHER], pool: {idleTimeoutSecs: 61}}}"))
			for _, p := range []string{"/api/x", "/other/x"} {
				if r := servertest.Get(t, srv.URL(8080)+p); r.Status != 200 || r.Body != "up" {
					t.Fatalf("GET %s before the reload: %d %q", p, r.Status, r.Body)
				}
			}
			srv.Reload(t, site(tc.reloaded))
			deadline := time.Now().Add(5 * time.Second)
			for otherClosed.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the removed /other route's idle upstream connection is still open 5s after the reload")
				}
				time.Sleep(10 * time.Millisecond)
			}
			for tc.wantAPIGone && apiClosed.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if gone := apiClosed.Load() > 0; gone != tc.wantAPIGone {
				t.Fatalf("/api's upstream connection closed = %v, want %v", gone, tc.wantAPIGone)
			}
		})
	}
}
