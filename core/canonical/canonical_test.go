package canonical

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestHost(t *testing.T) {
	for _, tc := range []struct {
		in, scheme, host, port string
		bad                    bool
	}{
		{in: "", host: ""},
		{in: "shop.test", scheme: "http", host: "shop.test"},
		{in: "SHOP.Test.", scheme: "http", host: "shop.test"},
		{in: "shop.test:80", scheme: "http", host: "shop.test"},
		{in: "shop.test:443", scheme: "http", host: "shop.test", port: "443"},
		{in: "shop.test:443", scheme: "https", host: "shop.test"},
		{in: "shop.test:0080", scheme: "http", host: "shop.test"},
		{in: "shop.test:00666", scheme: "http", host: "shop.test", port: "666"},
		{in: "shop.test:666", scheme: "http", host: "shop.test", port: "666"},
		{in: "shop.test.:8080", scheme: "http", host: "shop.test", port: "8080"},
		{in: "[::1]", host: "[::1]"},
		{in: "[0:0::1]:8080", host: "[::1]", port: "8080"},
		{in: "[2001:DB8::1]", host: "[2001:db8::1]"},
		{in: "127.0.0.1:8080", host: "127.0.0.1", port: "8080"},
		{in: "bücher.example", host: "xn--bcher-kva.example"},
		{in: "XN--BCHER-KVA.example", host: "xn--bcher-kva.example"},
		{in: "_dmarc.example", host: "_dmarc.example"},
		{in: "shop.test..", bad: true},
		{in: ".shop.test", bad: true},
		{in: "shop..test", bad: true},
		{in: ".", bad: true},
		{in: "shop.test:", scheme: "http", host: "shop.test"}, // RFC 3986 §6.2.3: an empty port is the default
		{in: "shop.test:0", bad: true},
		{in: "shop.test:65536", bad: true},
		{in: "shop.test:8o", bad: true},
		{in: "shop.test:123456", bad: true},
		{in: "user@shop.test", bad: true},
		{in: "shop.test/x", bad: true},
		{in: "shop%2etest", bad: true},
		{in: "shop test", bad: true},
		{in: "shop\\test", bad: true},
		{in: "[::1", bad: true},
		{in: "[::1]x", bad: true},
		{in: "[fe80::1%25eth0]", bad: true},
		{in: "[1.2.3.4]", bad: true},
		{in: "[]", bad: true},
		{in: ":", bad: true},
		{in: ":8080", bad: true},
		{in: "xn--zz.example", bad: true},
	} {
		host, port, err := Host(tc.in, tc.scheme)
		if tc.bad {
			if err == nil {
				t.Errorf("Host(%q) = %q %q, want an error", tc.in, host, port)
			}
			continue
		}
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("Host(%q, %q) = %q %q %v, want %q %q", tc.in, tc.scheme, host, port, err, tc.host, tc.port)
		}
	}
}

func TestPath(t *testing.T) {
	keep := PathOptions{Slashes: KeepSlashes}
	unesc := PathOptions{Slashes: UnescapeSlashes}
	keepEmpty := PathOptions{KeepEmptySegments: true}
	for _, tc := range []struct {
		in       string
		opts     PathOptions
		escaped  string
		decoded  string
		rejected bool
	}{
		{in: "", escaped: "/", decoded: "/"},
		{in: "/", escaped: "/", decoded: "/"},
		{in: "/a/b", escaped: "/a/b", decoded: "/a/b"},
		{in: "/a/b/", escaped: "/a/b/", decoded: "/a/b/"},
		{in: "/a//b", escaped: "/a/b", decoded: "/a/b"},
		{in: "//a///b//", escaped: "/a/b/", decoded: "/a/b/"},
		{in: "/a//b", opts: keepEmpty, escaped: "/a//b", decoded: "/a//b"},
		{in: "/a/./b", escaped: "/a/b", decoded: "/a/b"},
		{in: "/a/b/.", escaped: "/a/b/", decoded: "/a/b/"},
		{in: "/a/b/..", escaped: "/a/", decoded: "/a/"},
		{in: "/a/x/../b", escaped: "/a/b", decoded: "/a/b"},
		{in: "/../../etc/passwd", escaped: "/etc/passwd", decoded: "/etc/passwd"},
		{in: "/..", escaped: "/", decoded: "/"},
		{in: "/a/%2e%2e/b", escaped: "/b", decoded: "/b"},
		{in: "/a/%2E./b", escaped: "/b", decoded: "/b"},
		{in: "/a/.%2e", escaped: "/", decoded: "/"},
		{in: "/%2e/a", escaped: "/a", decoded: "/a"},
		{in: "/...", escaped: "/...", decoded: "/..."},
		{in: "/.well-known/x", escaped: "/.well-known/x", decoded: "/.well-known/x"},
		{in: "/%41%62%7e", escaped: "/Ab~", decoded: "/Ab~"},
		{in: "/a%20b", escaped: "/a%20b", decoded: "/a b"},
		{in: "/a%2fb", rejected: true},
		{in: "/a%2Fb", rejected: true},
		{in: "/a%5cb", rejected: true},
		{in: "/a\\b", rejected: true},
		{in: "/a%2fb", opts: keep, escaped: "/a%2Fb", decoded: "/a/b"},
		{in: "/a\\b", opts: keep, escaped: "/a%5Cb", decoded: "/a\\b"},
		{in: "/a/..%2f..%2fb", opts: keep, escaped: "/a/..%2F..%2Fb", decoded: "/a/../../b"},
		{in: "/a/b%2f..%2fc", opts: unesc, escaped: "/a/c", decoded: "/a/c"},
		{in: "/a\\..\\c", opts: unesc, escaped: "/c", decoded: "/c"},
		{in: "/a%3bb;c=d", escaped: "/a%3Bb;c=d", decoded: "/a;b;c=d"},
		{in: "/a%3Fb", escaped: "/a%3Fb", decoded: "/a?b"},
		{in: "/caf%c3%a9", escaped: "/caf%C3%A9", decoded: "/café"},
		{in: "/a;x=1/b", escaped: "/a;x=1/b", decoded: "/a;x=1/b"},
		{in: "/a/..;/b", rejected: true},
		{in: "/a/.;x/b", rejected: true},
		{in: "/a/%2e%2e;/b", rejected: true},
		{in: "/a/%252e%252e/b", rejected: true},
		{in: "/a/%252F", rejected: true},
		{in: "/a/%255c", rejected: true},
		{in: "/%252%450", rejected: true},  // "%25" "2" "%45": once decoded, "%2E"
		{in: "/%25%32%65", rejected: true}, // every hex digit of the dot escaped
		{in: "/%25%32%46x", rejected: true},
		{in: "/%25%35c", rejected: true},
		{in: "/a/%252%45%252%45/admin", rejected: true}, // would reach the upstream as "/a/%252E%252E/admin"
		{in: "/%25%32%30", escaped: "/%2520", decoded: "/%20"},
		{in: "/100%25", escaped: "/100%25", decoded: "/100%"},
		{in: "/100%2525", escaped: "/100%2525", decoded: "/100%25"},
		{in: "/a%00b", rejected: true},
		{in: "/a\x00b", rejected: true},
		{in: "/a\x7fb", rejected: true},
		{in: "/a%zzb", rejected: true},
		{in: "/a%4", rejected: true},
		{in: "/a%", rejected: true},
		{in: "a/b", rejected: true},
		{in: "/a\"b", escaped: "/a%22b", decoded: "/a\"b"},
	} {
		esc, dec, err := Path(tc.in, tc.opts)
		if tc.rejected {
			if err == nil {
				t.Errorf("Path(%q) = %q, want ErrPath", tc.in, esc)
			}
			continue
		}
		if err != nil || esc != tc.escaped || dec != tc.decoded {
			t.Errorf("Path(%q, %+v) = %q %q %v, want %q %q", tc.in, tc.opts, esc, dec, err, tc.escaped, tc.decoded)
		}
	}
}

func TestConnection(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        http.Header
		want      http.Header
		protected string
		nominated []string
	}{
		{name: "none", in: http.Header{"X-A": {"1"}}, want: http.Header{"X-A": {"1"}}},
		{name: "hop tokens only",
			in:   http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}},
			want: http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}},
		{name: "nominated fields go, their tokens too",
			in:   http.Header{"Connection": {"close, X-Private", "x-other"}, "X-Private": {"1"}, "X-Other": {"2"}, "X-Keep": {"3"}},
			want: http.Header{"Connection": {"close"}, "X-Keep": {"3"}}, nominated: []string{"X-Private", "X-Other"}},
		{name: "only custom tokens",
			in:   http.Header{"Connection": {"X-Consumer-ID, X-Tier"}},
			want: http.Header{}, nominated: []string{"X-Consumer-Id", "X-Tier"}},
		{name: "protected", in: http.Header{"Connection": {"x-forwarded-for"}}, protected: "X-Forwarded-For"},
		{name: "protected host", in: http.Header{"Connection": {"keep-alive, Host"}}, protected: "Host"},
		{name: "protected forwarded", in: http.Header{"Connection": {"Forwarded"}}, protected: "Forwarded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, nominated := Connection(tc.in)
			if got != tc.protected || !reflect.DeepEqual(nominated, tc.nominated) {
				t.Fatalf("protected = %q nominated %q, want %q %q", got, nominated, tc.protected, tc.nominated)
			}
			if tc.protected == "" && !reflect.DeepEqual(tc.in, tc.want) {
				t.Fatalf("header = %v, want %v", tc.in, tc.want)
			}
		})
	}
}

func TestCanonicalInputsDoNotAllocate(t *testing.T) {
	h := http.Header{"Connection": {"keep-alive"}}
	n := testing.AllocsPerRun(100, func() {
		_, _, _ = Host("shop.test:8080", "http")
		_, _, _ = Path("/api/v1/items/42", PathOptions{})
		_, _ = Connection(h)
	})
	if n != 0 {
		t.Fatalf("%v allocations for canonical input", n)
	}
}

// FuzzPath checks the properties every caller relies on: the result is a fixed point, it
// holds no dot-segment, no empty segment and no encoded or raw slash or backslash inside a
// segment, its decoded form is what url.PathUnescape makes of it, and it never panics.
func FuzzPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/x", "/a%2fb", "/a\\b", "//a//", "/..;/x", "/%252e", "/a%20b", "/caf%c3%a9", "/.%2E/"} {
		f.Add(s, uint8(0), false)
	}
	f.Fuzz(func(t *testing.T, raw string, policy uint8, keepEmpty bool) {
		opts := PathOptions{Slashes: SlashPolicy(policy % 3), KeepEmptySegments: keepEmpty}
		esc, dec, err := Path(raw, opts)
		if err != nil {
			return
		}
		again, dec2, err := Path(esc, opts)
		if err != nil || again != esc || dec2 != dec {
			t.Fatalf("Path(%q) = %q is not a fixed point: %q %q %v", raw, esc, again, dec2, err)
		}
		if want, err := url.PathUnescape(esc); err != nil || want != dec {
			t.Fatalf("decoded %q, url.PathUnescape %q %v", dec, want, err)
		}
		segs := strings.Split(esc[1:], "/")
		for i, s := range segs {
			if s == "." || s == ".." {
				t.Fatalf("Path(%q) = %q keeps a dot-segment", raw, esc)
			}
			if s == "" && i != len(segs)-1 && !keepEmpty {
				t.Fatalf("Path(%q) = %q keeps an empty segment", raw, esc)
			}
			if strings.Contains(s, "\\") {
				t.Fatalf("Path(%q) = %q keeps a raw backslash", raw, esc)
			}
			if opts.Slashes != KeepSlashes && (strings.Contains(s, "%2F") || strings.Contains(s, "%5C")) {
				t.Fatalf("Path(%q) = %q keeps an encoded slash under policy %d", raw, esc, opts.Slashes)
			}
		}
	})
}

// FuzzHost checks that a canonical host is a fixed point and never panics.
func FuzzHost(f *testing.F) {
	for _, s := range []string{"shop.test", "SHOP.test.:80", "[::1]:8080", "bücher.example", "a..b", "x:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		host, port, err := Host(in, "http")
		if err != nil {
			return
		}
		h2, p2, err := Host(Authority(host, port), "http")
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("Host(%q) = %q %q is not a fixed point: %q %q %v", in, host, port, h2, p2, err)
		}
		if host != strings.ToLower(host) || strings.HasSuffix(host, ".") {
			t.Fatalf("Host(%q) = %q is not lower case without a trailing dot", in, host)
		}
	})
}
