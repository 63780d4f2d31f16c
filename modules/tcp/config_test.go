package tcp_test

import (
	"net"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/modules/tcp"
)

func TestConfigErrorsNameTheirPath(t *testing.T) {
	cases := []struct {
		name, src string
		path      string // the one error expected; "" for a valid config
		msg       string
	}{
		{"minimal", "port: 9000\ntcp: {targets: [\"db:5432\"]}", "", ""},
		{"every key", "port: 9000\ntcp: {targets: [\"db:5432\", \"[::1]:5432\"], strategy: least-conn, connectTimeoutMs: 100, idleTimeoutMs: 1000, maxDurationMs: 5000, proxyProtocol: v2, maxConnections: 10, maxFails: 3, failTimeoutMs: 500, accessLog: false}", "", ""},
		{"ip filter is a connection role", "port: 9000\nipFilter: {allow: [10.0.0.0/8]}\ntcp: {targets: [\"db:5432\"]}", "", ""},
		{"ip filter without X-Forwarded-For", "port: 9000\nipFilter: {allow: [10.0.0.0/8], trustProxy: true}\ntcp: {targets: [\"db:5432\"]}", "ipFilter.trustProxy", "raw connections"},
		{"targets missing", "port: 9000\ntcp: {strategy: random}", "tcp.targets", "required"},
		{"targets empty", "port: 9000\ntcp: {targets: []}", "tcp.targets", "at least one"},
		{"target without port", "port: 9000\ntcp: {targets: [\"db\"]}", "tcp.targets[0]", "host:port"},
		{"target with scheme", "port: 9000\ntcp: {targets: [\"db:5432\", \"tcp://db:5432\"]}", "tcp.targets[1]", "host:port"},
		{"target port 0", "port: 9000\ntcp: {targets: [\"db:0\"]}", "tcp.targets[0]", "host:port"},
		{"strategy", "port: 9000\ntcp: {targets: [\"db:1\"], strategy: ip-hash}", "tcp.strategy", "round-robin, random or least-conn"},
		{"proxy protocol", "port: 9000\ntcp: {targets: [\"db:1\"], proxyProtocol: v3}", "tcp.proxyProtocol", "v1 or v2"},
		{"idle 0", "port: 9000\ntcp: {targets: [\"db:1\"], idleTimeoutMs: 0}", "tcp.idleTimeoutMs", "at least 1"},
		{"connect 0", "port: 9000\ntcp: {targets: [\"db:1\"], connectTimeoutMs: 0}", "tcp.connectTimeoutMs", "at least 1"},
		{"with proxy", "port: 9000\nproxy: http://127.0.0.1:1\ntcp: {targets: [\"db:1\"]}", "proxy", "cannot be combined with tcp"},
		{"with routes", "port: 9000\nroutes: [{match: {path: /x}, proxy: http://127.0.0.1:1}]\ntcp: {targets: [\"db:1\"]}", "routes", "cannot be combined with tcp"},
		{"with http2", "port: 9000\nhttp2: {h2c: true}\ntcp: {targets: [\"db:1\"]}", "http2", "cannot be combined with tcp"},
		{"with metrics", "port: 9000\nmetrics: {}\ntcp: {targets: [\"db:1\"]}", "metrics", "cannot be combined with tcp"},
		{"http site on the tcp port", "sites:\n  - port: 9000\n    tcp: {targets: [\"db:1\"]}\n  - port: 9000\n    host: a.test\n    proxy: http://127.0.0.1:1", "sites[1].port", "port 9000 is the tcp port of sites[0]"},
		{"tcp port after an http site", "sites:\n  - port: 9000\n    proxy: http://127.0.0.1:1\n  - port: 9000\n    tcp: {targets: [\"db:1\"]}", "sites[0].port", "port 9000 is the tcp port of sites[1]"},
		{"two tcp sites on a port", "sites:\n  - port: 9000\n    tcp: {targets: [\"db:1\"]}\n  - port: 9000\n    host: b.test\n    tcp: {targets: [\"db:2\"]}", "sites[1].port", "is the tcp port of sites[0]"},
		{"redirect port onto the tcp port", "sites:\n  - port: 9000\n    tcp: {targets: [\"db:1\"]}\n  - port: 9443\n    tls: {cert: /nonexistent.crt, key: /nonexistent.key, httpRedirectPort: 9000}\n    host: a.test\n    proxy: http://127.0.0.1:1", "sites[1].tls.httpRedirectPort", "is the tcp port of sites[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build(tc.src, config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			errs := d.Errors()
			if tc.path == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", d.Err())
				}
				return
			}
			for _, e := range errs {
				if e.Path == tc.path && strings.Contains(e.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want an error at %s containing %q; got %v", tc.path, tc.msg, d.Err())
		})
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"db:5432", "db:5432"},
		{"DB.Example:5432", "db.example:5432"},
		{"10.0.0.1:1", "10.0.0.1:1"},
		{"[::1]:65535", "[::1]:65535"},
		{"db", ""}, {":5432", ""}, {"db:65536", ""}, {"db:+1", ""}, {"db:http", ""},
		{"a b:1", ""}, {"user@db:1", ""}, {"db/x:1", ""}, {"http://db:1", ""},
	} {
		got, err := tcp.ParseTarget(tc.in)
		if tc.out == "" {
			if err == nil {
				t.Errorf("%q: accepted as %q", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.out {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.out)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"db:5432", "[::1]:1", "db", "a:b:c", "[::1%eth0]:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := tcp.ParseTarget(s)
		if err != nil {
			return
		}
		// What is accepted splits back into a host and a port, and is its own canonical form.
		if _, _, err := net.SplitHostPort(got); err != nil {
			t.Fatalf("%q → %q does not split: %v", s, got, err)
		}
		if again, err := tcp.ParseTarget(got); err != nil || again != got {
			t.Fatalf("%q → %q → %q, %v", s, got, again, err)
		}
	})
}
