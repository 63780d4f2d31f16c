package tcp

import (
	"bytes"
	"net"
	"testing"
)

func TestProxyHeader(t *testing.T) {
	v4 := func(s string, p int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: p} }
	sig := "\r\n\r\n\x00\r\nQUIT\n"
	cases := []struct {
		name        string
		version     int
		client, srv net.Addr
		want        string
	}{
		{"v1 IPv4", 1, v4("192.0.2.1", 56324), v4("192.0.2.2", 443), "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n"},
		{"v1 IPv6", 1, v4("2001:db8::1", 1), v4("2001:db8::2", 65535), "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"},
		{"v1 mapped IPv4 is IPv4", 1, v4("::ffff:192.0.2.1", 5), v4("::ffff:192.0.2.2", 6), "PROXY TCP4 192.0.2.1 192.0.2.2 5 6\r\n"},
		{"v1 mixed families", 1, v4("192.0.2.1", 5), v4("2001:db8::2", 6), "PROXY UNKNOWN\r\n"},
		{"v1 not TCP", 1, &net.UnixAddr{Name: "/x", Net: "unix"}, v4("192.0.2.2", 6), "PROXY UNKNOWN\r\n"},
		{"v2 IPv4", 2, v4("192.0.2.1", 0x1234), v4("192.0.2.2", 443),
			sig + "\x21\x11\x00\x0c" + "\xc0\x00\x02\x01" + "\xc0\x00\x02\x02" + "\x12\x34" + "\x01\xbb"},
		{"v2 IPv6", 2, v4("2001:db8::1", 1), v4("2001:db8::2", 2),
			sig + "\x21\x21\x00\x24" + "\x20\x01\x0d\xb8" + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
				"\x20\x01\x0d\xb8" + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02" + "\x00\x01\x00\x02"},
		{"v2 mixed families is LOCAL", 2, v4("192.0.2.1", 5), v4("2001:db8::2", 6), sig + "\x20\x00\x00\x00"},
	}
	for _, tc := range cases {
		if got := proxyHeader(tc.version, tc.client, tc.srv); !bytes.Equal(got, []byte(tc.want)) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
