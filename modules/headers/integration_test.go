package headers_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/headers"
	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

func get(t *testing.T, url, host string) (int, http.Header) {
	t.Helper()
	var hdr []string
	if host != "" {
		hdr = []string{"Host", host}
	}
	r := servertest.Get(t, url, hdr...)
	return r.Status, r.Header
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "ALLOWALL") // overridden
		w.Header().Set("X-Powered-By", "php")         // removed by headers: {X-Powered-By: ""}
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "a")
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	srv := servertest.Start(t, `
port: 8080
securityHeaders:
  hstsMaxAgeSecs: 31536000
  csp: "default-src 'self'"
  permissionsPolicy: "geolocation=()"
headers:
  X-Served-By: conduit
  X-Powered-By: ""
proxy:
  /api: "`+up.URL+`"
`)
	base := srv.URL(8080)
	want := map[string]string{
		"X-Content-Type-Options": "nosniff", "X-Xss-Protection": "1; mode=block", "X-Frame-Options": "SAMEORIGIN",
		"Referrer-Policy": "strict-origin-when-cross-origin", "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
		"Content-Security-Policy": "default-src 'self'", "Permissions-Policy": "geolocation=()", "X-Served-By": "conduit",
	}
	for _, path := range []string{"/api/x", "/api/stream", "/nothing-here", "/__health__"} {
		code, h := get(t, base+path, "")
		for k, v := range want {
			if got := h.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s (%d): %s = %q, want %q", path, code, k, got, v)
			}
		}
		if h.Get("X-Powered-By") != "" {
			t.Errorf("%s: X-Powered-By not removed", path)
		}
	}
}

func TestSecurityHeadersTrueAndCompatAliases(t *testing.T) {
	srv := servertest.Start(t, `
sites:
  - port: 8080
    securityHeaders: true
  - port: 8081
    securityHeaders:
      hsts: "max-age=63072000; includeSubDomains; preload"
      contentSecurityPolicy: "default-src 'none'"
      frameOptions: DENY
`)
	_, h := get(t, srv.URL(8080)+"/", "")
	if h.Get("X-Frame-Options") != "SAMEORIGIN" || h.Get("Strict-Transport-Security") != "" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("true: %v", h)
	}
	_, h = get(t, srv.URL(8081)+"/", "")
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Content-Security-Policy") != "default-src 'none'" ||
		h.Get("Strict-Transport-Security") != "max-age=63072000; includeSubDomains; preload" {
		t.Fatalf("aliases: %v", h)
	}
	warned := 0
	for _, w := range srv.Diagnostics.Warnings() {
		if strings.Contains(w.Message, "deprecated key") {
			warned++
		}
	}
	if warned != 3 {
		t.Fatalf("deprecation warnings = %d: %v", warned, srv.Diagnostics.Warnings())
	}
}

// TestAllowedHosts checks the Host policy through the core's Host validation: a Host the
// policy rejects gets 400.
func TestAllowedHosts(t *testing.T) {
	srv := servertest.Start(t, `
sites:
  - host: example.com
    port: 8080
    securityHeaders:
      allowedHosts: [www.example.com, "*.preview.example.com"]
  - host: other.test
    port: 8081
    securityHeaders: true
`)
	tests := []struct {
		port int
		host string
		code int
	}{
		{8080, "example.com", 404},
		{8080, "www.example.com:8080", 404},
		{8080, "pr-12.preview.example.com", 404},
		{8080, "a.b.preview.example.com", 400},
		{8080, "evil.test", 400},
		{8081, "other.test", 404},
		{8081, "evil.test", 400}, // no allowedHosts: the site's own host only (core default)
	}
	for _, tt := range tests {
		if code, _ := get(t, srv.URL(tt.port)+"/", tt.host); code != tt.code {
			t.Errorf("port %d Host %q = %d, want %d", tt.port, tt.host, code, tt.code)
		}
	}
	// A catch-all site with allowedHosts accepts only the listed hosts; "*" accepts any.
	srv = servertest.Start(t, `
sites:
  - port: 8080
    securityHeaders:
      allowedHosts: [a.test]
  - port: 8081
    securityHeaders:
      allowedHosts: ["*"]
`)
	for _, tt := range []struct {
		port int
		host string
		code int
	}{{8080, "a.test", 404}, {8080, "b.test", 400}, {8081, "b.test", 404}} {
		if code, _ := get(t, srv.URL(tt.port)+"/", tt.host); code != tt.code {
			t.Errorf("catch-all port %d Host %q = %d, want %d", tt.port, tt.host, code, tt.code)
		}
	}
}

// TestInterimResponsesCarryNoSecurityHeaders: a 103 goes through untouched; the final
// response gets the headers.
func TestInterimResponses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "done")
	}))
	defer up.Close()
	srv := servertest.Start(t, "port: 8080\nsecurityHeaders: true\nproxy:\n  /: \""+up.URL+"\"\n")
	conn, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	raw, _ := io.ReadAll(bufio.NewReader(conn))
	s := string(raw)
	interim, final, ok := strings.Cut(s, "\r\n\r\n")
	if !ok || !strings.HasPrefix(interim, "HTTP/1.1 103") {
		t.Fatalf("no 103 first:\n%s", s)
	}
	if strings.Contains(interim, "X-Frame-Options") {
		t.Errorf("103 carries security headers:\n%s", interim)
	}
	if !strings.Contains(final, "X-Frame-Options: SAMEORIGIN") {
		t.Errorf("final response lacks security headers:\n%s", final)
	}
}
