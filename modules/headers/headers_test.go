package headers

import (
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

func decodeSecurity(t *testing.T, n config.Node) (Security, *config.Diagnostics) {
	t.Helper()
	var d config.Diagnostics
	var s Security
	config.Decode(n, "s", &s, &d)
	return s, &d
}

func paths(list []config.Diagnostic) string {
	var out []string
	for _, x := range list {
		out = append(out, x.Path)
	}
	return strings.Join(out, " ")
}

func TestSecurityDecode(t *testing.T) {
	tests := []struct {
		name   string
		node   config.Node
		errs   string
		warns  string
		fields map[string]string // expected headers ("" = absent)
	}{
		{name: "true", node: true, fields: map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Xss-Protection": "1; mode=block", "X-Frame-Options": "SAMEORIGIN",
			"Referrer-Policy": "strict-origin-when-cross-origin", "Strict-Transport-Security": "", "Content-Security-Policy": "",
		}},
		{name: "object with HSTS", node: map[string]config.Node{"hstsMaxAgeSecs": 31536000.0, "csp": "default-src 'self'", "xFrameOptions": "deny", "referrerPolicy": "no-referrer", "permissionsPolicy": "camera=()"},
			fields: map[string]string{
				"Strict-Transport-Security": "max-age=31536000; includeSubDomains", "Content-Security-Policy": "default-src 'self'",
				"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Permissions-Policy": "camera=()", "X-Content-Type-Options": "nosniff", "X-Xss-Protection": "1; mode=block",
			}},
		{name: "HSTS flags", node: map[string]config.Node{"hstsMaxAgeSecs": 63072000.0, "hstsIncludeSubDomains": false, "hstsPreload": true},
			warns:  "s.hstsPreload",
			fields: map[string]string{"Strict-Transport-Security": "max-age=63072000; preload"}},
		{name: "HSTS zero disables", node: map[string]config.Node{"hstsMaxAgeSecs": 0.0}, fields: map[string]string{"Strict-Transport-Security": ""}},
		{name: "obsolete names", node: map[string]config.Node{"hsts": "max-age=63072000; includeSubDomains; preload", "contentSecurityPolicy": "default-src 'none'", "frameOptions": "DENY"},
			warns: "s.hsts s.contentSecurityPolicy s.frameOptions",
			fields: map[string]string{"Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
				"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY"}},
		{name: "current name wins over obsolete", node: map[string]config.Node{"frameOptions": "DENY", "xFrameOptions": "SAMEORIGIN", "hsts": "max-age=1", "hstsMaxAgeSecs": 2.0},
			warns: "s.hsts s.frameOptions", fields: map[string]string{"X-Frame-Options": "SAMEORIGIN", "Strict-Transport-Security": "max-age=2; includeSubDomains"}},
		{name: "bad frame options", node: map[string]config.Node{"xFrameOptions": "ALLOW-FROM x"}, errs: "s.xFrameOptions"},
		{name: "bad obsolete frame options", node: map[string]config.Node{"frameOptions": "ALLOWALL"}, errs: "s.frameOptions", warns: "s.frameOptions"},
		{name: "bad referrer policy", node: map[string]config.Node{"referrerPolicy": "never"}, errs: "s.referrerPolicy"},
		{name: "CRLF in csp", node: map[string]config.Node{"csp": "a\r\nX-Evil: 1"}, errs: "s.csp"},
		{name: "bad hsts string", node: map[string]config.Node{"hsts": "forever"}, errs: "s.hsts"},
		{name: "unknown key", node: map[string]config.Node{"hstsMaxAge": 5.0}, warns: "s.hstsMaxAge"},
		{name: "bad allowedHosts", node: map[string]config.Node{"allowedHosts": []config.Node{"https://x.com", "a.*.com", "ok.com"}}, errs: "s.allowedHosts[0] s.allowedHosts[1]"},
		{name: "wrong type", node: "yes", errs: "s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, d := decodeSecurity(t, tt.node)
			if got := paths(d.Errors()); got != tt.errs {
				t.Fatalf("errors at %q, want %q: %v", got, tt.errs, d.Errors())
			}
			if got := paths(d.Warnings()); got != tt.warns {
				t.Fatalf("warnings at %q, want %q: %v", got, tt.warns, d.Warnings())
			}
			if tt.errs != "" {
				return
			}
			got := map[string]string{}
			for _, f := range securityFields(&s) {
				got[f.key] = f.value[0]
			}
			for k, want := range tt.fields {
				if got[k] != want {
					t.Errorf("%s = %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

func TestParseHSTSValue(t *testing.T) {
	tests := []struct {
		in   string
		want hsts
		ok   bool
	}{
		{"max-age=31536000", hsts{maxAge: 31536000}, true},
		{"max-age=5; includeSubDomains", hsts{maxAge: 5, sub: true}, true},
		{` MAX-AGE="7" ; preload ; includesubdomains `, hsts{maxAge: 7, sub: true, preload: true}, true},
		{"includeSubDomains", hsts{}, false},
		{"max-age=abc", hsts{}, false},
		{"max-age", hsts{}, false},
		{"max-age=1; foo", hsts{}, false},
	}
	for _, tt := range tests {
		got, err := parseHSTSValue(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseHSTSValue(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func FuzzParseHSTSValue(f *testing.F) {
	for _, s := range []string{"max-age=1", "max-age=63072000; includeSubDomains; preload", ";;", "max-age=\"1\"", "max-age=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHSTSValue(s)
		if err != nil {
			return
		}
		if !strings.Contains(strings.ToLower(s), "max-age") {
			t.Fatalf("%q parsed without max-age: %+v", s, h)
		}
	})
}

func TestCustomHeaders(t *testing.T) {
	var d config.Diagnostics
	set, del := compileCustom(Custom{"x-served-by": "conduit", "X-Powered-By": "", "Bad Name": "x", "X-Split": "a\nb", "Transfer-Encoding": "x"}, "h", &d)
	if got := paths(d.Errors()); got != `h.Bad Name h.Transfer-Encoding h.X-Split` {
		t.Fatalf("errors at %q: %v", got, d.Errors())
	}
	if len(set) < 1 || set[0].key != "X-Served-By" || set[0].value[0] != "conduit" {
		t.Fatalf("set = %+v", set)
	}
	if len(del) != 1 || del[0] != "X-Powered-By" {
		t.Fatalf("del = %v", del)
	}
	// Custom headers replace security headers of the same name.
	merged := mergeFields([]field{{"X-Frame-Options", []string{"SAMEORIGIN"}}}, []field{{"X-Frame-Options", []string{"DENY"}}, {"X-A", []string{"b"}}})
	if len(merged) != 2 || merged[0].value[0] != "DENY" {
		t.Fatalf("merged = %+v", merged)
	}
}

func TestAllowHost(t *testing.T) {
	hi := newHostInstance(&Instance{}, "example.com", []string{"www.example.com", "*.apps.example.com", "::1"})
	for host, want := range map[string]bool{
		"example.com": true, "EXAMPLE.com": true, "www.example.com": true, "a.apps.example.com": true,
		"a.b.apps.example.com": false, "apps.example.com": false, "evil.com": false, "[::1]": true, "::1": true,
		"": false, "www.example.com.evil": false,
	} {
		if got := hi.AllowHost(host); got != want {
			t.Errorf("AllowHost(%q) = %v, want %v", host, got, want)
		}
	}
	star := newHostInstance(&Instance{}, "", []string{"*"})
	if !star.AllowHost("anything.test") {
		t.Error("* allows any host")
	}
	catchAll := newHostInstance(&Instance{}, "", []string{"a.test"})
	if catchAll.AllowHost("b.test") || !catchAll.AllowHost("a.test") {
		t.Error("a catch-all site with allowedHosts accepts only the list")
	}
}

func TestNormalizeHostPattern(t *testing.T) {
	for in, want := range map[string]string{"Example.COM": "example.com", "example.com:8443": "example.com", "[::1]:80": "::1", "*": "*", "*.x.com": "*.x.com"} {
		if got, ok := normalizeHostPattern(in); !ok || got != want {
			t.Errorf("normalizeHostPattern(%q) = %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "http://x", "x/y", "a*.x.com", "x.*.com", "u@x"} {
		if _, ok := normalizeHostPattern(bad); ok {
			t.Errorf("normalizeHostPattern(%q) accepted", bad)
		}
	}
}
