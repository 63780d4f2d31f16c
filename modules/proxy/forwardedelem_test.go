package proxy

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"golang.org/x/net/http/httpguts"
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
		var text string
		if c.peer != "" {
			peer = netip.MustParseAddr(c.peer)
			text = peer.WithZone("").String()
		}
		if got := forwardedElement(peer, text, c.proto, c.host); got != c.want {
			t.Errorf("forwardedElement(%q, %q, %q) = %s, want %s", c.peer, c.proto, c.host, got, c.want)
		}
	}
}

// FuzzForwardedValue: whatever Host a client sends, the Forwarded value is one valid header
// field value, and a quoted string reads back as the input (control characters as spaces).
func FuzzForwardedValue(f *testing.F) {
	for _, s := range []string{"example.com", "example.com:8443", "[::1]:80", `a"b\c`, "\x00\r\n", "", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var b strings.Builder
		writeForwardedValue(&b, v)
		out := b.String()
		if !httpguts.ValidHeaderFieldValue(out) {
			t.Fatalf("writeForwardedValue(%q) = %q, not a valid field value", v, out)
		}
		if core.IsToken(v) {
			if out != v {
				t.Fatalf("token %q written as %q", v, out)
			}
			return
		}
		if len(out) < 2 || out[0] != '"' || out[len(out)-1] != '"' {
			t.Fatalf("writeForwardedValue(%q) = %q, not a quoted string", v, out)
		}
		var un strings.Builder
		inner := out[1 : len(out)-1]
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			switch {
			case c == '\\' && i+1 < len(inner):
				i++
				un.WriteByte(inner[i])
			case c == '"' || c == '\\':
				t.Fatalf("unescaped %q in %q", c, out)
			default:
				un.WriteByte(c)
			}
		}
		want := []byte(v)
		for i, c := range want {
			if c < 0x20 && c != '\t' || c == 0x7f {
				want[i] = ' '
			}
		}
		if un.String() != string(want) {
			t.Fatalf("%q reads back as %q, want %q", out, un.String(), want)
		}
	})
}

// FuzzWebsocketToken: the upgrade decision only ever forwards the token "websocket" (in the
// client's letter case), whatever the Upgrade and Connection headers hold.
func FuzzWebsocketToken(f *testing.F) {
	for _, s := range []string{"websocket", "h2c", "foo/2, WebSocket", " , websocket/13,", ""} {
		f.Add(s, "Upgrade")
	}
	f.Fuzz(func(t *testing.T, upgrade, connection string) {
		tok, ok := isUpgrade(http.Header{"Upgrade": {upgrade}, "Connection": {connection}})
		if ok && !strings.EqualFold(tok, "websocket") {
			t.Fatalf("Upgrade %q, Connection %q: upgrade to %q", upgrade, connection, tok)
		}
	})
}

// TestPeerAddr checks the peer's address and text: a plain IPv4 peer's text is RemoteAddr's
// host part, every other form is formatted from the parsed address (unmapped, no zone).
func TestPeerAddr(t *testing.T) {
	tests := []struct {
		remote, addr, text string
	}{
		{"192.0.2.7:4321", "192.0.2.7", "192.0.2.7"},
		{"[2001:db8::1]:443", "2001:db8::1", "2001:db8::1"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7", "192.0.2.7"},
		{"[fe80::1%eth0]:80", "fe80::1%eth0", "fe80::1"},
		{"[2001:DB8:0::1]:443", "2001:db8::1", "2001:db8::1"},
		{"192.0.2.07:80", "invalid IP", ""},
		{"@", "invalid IP", ""},
		{"", "invalid IP", ""},
	}
	for _, tc := range tests {
		addr, text := peerAddr(&http.Request{RemoteAddr: tc.remote})
		if addr.String() != tc.addr || text != tc.text {
			t.Errorf("peerAddr(%q) = %s, %q; want %s, %q", tc.remote, addr, text, tc.addr, tc.text)
		}
	}
}

// TestValueSlab checks that the slices cut from one slab are independent: appending to one
// copies it and leaves its neighbour alone, and a full slab starts a new array.
func TestValueSlab(t *testing.T) {
	var s valueSlab
	vals := make([][]string, forwardingValues+1)
	for i := range vals {
		vals[i] = s.one(string(rune('a' + i)))
	}
	grown := append(vals[0], "x")
	if vals[1][0] != "b" || len(vals[0]) != 1 || grown[1] != "x" {
		t.Fatalf("append to one value changed its neighbour: %q %q %q", vals[0], vals[1], grown)
	}
	for i, v := range vals {
		if len(v) != 1 || cap(v) != 1 || v[0] != string(rune('a'+i)) {
			t.Fatalf("value %d = %q (cap %d)", i, v, cap(v))
		}
	}
}
