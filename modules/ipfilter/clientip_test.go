package ipfilter_test

import (
	"net/http"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/fallback"
	_ "github.com/conduitproxy/conduit/modules/ratelimit"
)

// TestRealClientIPReachesRateLimit: behind a trusted proxy, a rate limit keyed by IP counts
// each real client separately (the IP filter publishes the resolved address).
func TestRealClientIPReachesRateLimit(t *testing.T) {
	srv := servertest.Start(t, `
port: 8080
ipFilter: { trustProxy: true }
rateLimit: { windowSecs: 60, limit: 1 }
fallback: { body: ok }
`)
	status := func(xff string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL(8080)+"/", nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("203.0.113.1"); got != 200 {
		t.Fatalf("first client: %d", got)
	}
	if got := status("203.0.113.2"); got != 200 {
		t.Fatalf("second client shares the proxy's bucket: %d", got)
	}
	if got := status("203.0.113.1"); got != 429 {
		t.Fatalf("first client again: %d, want 429", got)
	}
}
