package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/ipfilter"
)

// TestForwardedAndXRealIPFollowTrustProxy sends client-made Forwarded, X-Real-IP and
// X-Forwarded-For headers through a real Conduit (the client is 127.0.0.1) and checks what a
// real upstream received, with and without ipFilter.trustProxy believing the client.
func TestForwardedAndXRealIPFollowTrustProxy(t *testing.T) {
	cases := []struct {
		name     string
		ipFilter string
		// want Forwarded and X-Real-IP; HOST is replaced with the listener's address.
		forwarded, realIP string
	}{
		{
			name:      "no trustProxy: client copies replaced",
			forwarded: `for=127.0.0.1;proto=http;host="HOST"`,
			realIP:    "127.0.0.1",
		},
		{
			name:      "trustProxy list without the peer: replaced",
			ipFilter:  "ipFilter: { trustProxy: [192.0.2.0/24] }\n",
			forwarded: `for=127.0.0.1;proto=http;host="HOST"`,
			realIP:    "127.0.0.1",
		},
		{
			name:      "trustProxy true, loopback peer trusted: Forwarded appended, X-Real-IP is the resolved client",
			ipFilter:  "ipFilter: { trustProxy: true }\n",
			forwarded: `for=203.0.113.7;proto=https, for=127.0.0.1;proto=http;host="HOST"`,
			realIP:    "203.0.113.7",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up, ch := echoUpstream(t, "a")
			srv := servertest.Start(t, fmt.Sprintf("port: 8080\n%sproxy: %q\n", c.ipFilter, up.URL))
			resp, _ := get(t, srv.URL(8080)+"/", map[string]string{
				"Forwarded":       "for=203.0.113.7;proto=https",
				"X-Forwarded-For": "203.0.113.7",
				"X-Real-IP":       "198.51.100.66",
			})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := <-ch
			want := strings.ReplaceAll(c.forwarded, "HOST", srv.HostPort(8080))
			if v := got.Header.Values("Forwarded"); len(v) != 1 || v[0] != want {
				t.Errorf("Forwarded = %q, want %q", v, want)
			}
			if v := got.Header.Values("X-Real-Ip"); len(v) != 1 || v[0] != c.realIP {
				t.Errorf("X-Real-IP = %q, want %q", v, c.realIP)
			}
		})
	}
}
