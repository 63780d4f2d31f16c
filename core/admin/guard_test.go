package admin

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzOriginNames checks the Host/Origin parser against net/url: whatever it accepts as
// this API (bound to 127.0.0.1:2019) is, for net/url too, a loopback or localhost host on
// port 2019, and nothing panics.
func FuzzOriginNames(f *testing.F) {
	for _, s := range []string{"127.0.0.1:2019", "localhost:2019", "[::1]:2019", "evil.example:2019",
		"127.0.0.1", "[::ffff:127.0.0.1]:2019", "127.0.0.1:02019", "LOCALHOST:2019", "[::1%lo]:2019",
		"127.0.0.1:2019:2019", "[::1]x:2019", "user@localhost:2019", "localhost.:2019", ":2019"} {
		f.Add(s)
	}
	o := newOrigin("127.0.0.1:2019", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2019})
	f.Fuzz(func(t *testing.T, hostport string) {
		if !o.names(hostport) {
			return
		}
		u, err := url.Parse("http://" + hostport)
		if err != nil || u.Host != hostport {
			t.Fatalf("accepted %q, which net/url reads as %v (%v)", hostport, u, err)
		}
		if p, _ := strconv.Atoi(u.Port()); p != 2019 {
			t.Fatalf("accepted %q on port %q", hostport, u.Port())
		}
		h := u.Hostname()
		if ip := net.ParseIP(h); (ip == nil || !ip.IsLoopback()) && !strings.EqualFold(h, "localhost") {
			t.Fatalf("accepted %q: host %q is not loopback", hostport, h)
		}
		if !o.isOwnOrigin("http://" + hostport) {
			t.Fatalf("Host %q accepted but not as an Origin", hostport)
		}
	})
}

// TestOriginNames pins the accepted spellings for a loopback, a named and a wildcard bind.
func TestOriginNames(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2019}
	cases := []struct {
		bind, host string
		want       bool
	}{
		{"127.0.0.1:2019", "127.0.0.1:2019", true},
		{"127.0.0.1:2019", "localhost:2019", true},
		{"127.0.0.1:2019", "[::1]:2019", true},
		{"127.0.0.1:2019", "[0:0:0:0:0:0:0:1]:2019", true},
		{"127.0.0.1:2019", "[::ffff:127.0.0.1]:2019", true},
		{"127.0.0.1:2019", "127.0.0.1:02019", true},
		{"127.0.0.1:2019", "127.0.0.1", false},
		{"127.0.0.1:2019", "127.0.0.1:2020", false},
		{"127.0.0.1:2019", "10.0.0.5:2019", false},
		{"127.0.0.1:2019", "evil.example:2019", false},
		{"127.0.0.1:2019", "localhost.:2019", false},
		{"127.0.0.1:2019", "[::1%lo]:2019", false},
		{"127.0.0.1:2019", "127.0.0.1:2019:2019", false},
		{"127.0.0.1:2019", "", false},
		{"admin.internal:2019", "ADMIN.internal:2019", true},
		{"admin.internal:2019", "other.internal:2019", false},
		{"10.0.0.5:2019", "10.0.0.5:2019", true},
		{"10.0.0.5:2019", "10.0.0.6:2019", false},
		{"0.0.0.0:2019", "10.0.0.6:2019", true},
		{"0.0.0.0:2019", "[2001:db8::1]:2019", true},
		{"[::]:2019", "10.0.0.6:2019", true},
		{":2019", "10.0.0.6:2019", true},
		{"0.0.0.0:2019", "evil.example:2019", false},
	}
	for _, tc := range cases {
		if got := newOrigin(tc.bind, bound).names(tc.host); got != tc.want {
			t.Errorf("bind %s, Host %q: %v, want %v", tc.bind, tc.host, got, tc.want)
		}
	}
}
