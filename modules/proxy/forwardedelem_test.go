package proxy

import (
	"net/netip"
	"testing"
)

func TestForwardedElement(t *testing.T) {
	cases := []struct {
		peer        string // "" for a peer without an IP address
		proto, host string
		want        string
	}{
		{"192.0.2.43", "http", "example.com", `for=192.0.2.43;proto=http;host=example.com`},
		{"192.0.2.43", "https", "example.com:8443", `for=192.0.2.43;proto=https;host="example.com:8443"`},
		{"2001:db8:cafe::17", "https", "example.com", `for="[2001:db8:cafe::17]";proto=https;host=example.com`},
		{"::ffff:192.0.2.43", "http", "a.test", `for="[::ffff:192.0.2.43]";proto=http;host=a.test`},
		{"fe80::1%eth0", "http", "a.test", `for="[fe80::1]";proto=http;host=a.test`},
		{"", "http", "a.test", `for=unknown;proto=http;host=a.test`},
		{"192.0.2.1", "http", "[2001:db8::1]:80", `for=192.0.2.1;proto=http;host="[2001:db8::1]:80"`},
		{"192.0.2.1", "http", `a"b\c` + "\x01", `for=192.0.2.1;proto=http;host="a\"b\\c "`},
		{"192.0.2.1", "http", "", `for=192.0.2.1;proto=http`},
	}
	for _, c := range cases {
		var peer netip.Addr
		if c.peer != "" {
			peer = netip.MustParseAddr(c.peer)
		}
		if got := forwardedElement(peer, c.proto, c.host); got != c.want {
			t.Errorf("forwardedElement(%q, %q, %q) = %s, want %s", c.peer, c.proto, c.host, got, c.want)
		}
	}
}
