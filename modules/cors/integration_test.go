package cors_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/auth/basic"
	_ "github.com/conduitproxy/conduit/modules/cors"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

func send(t *testing.T, method, url string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	r := servertest.Do(t, method, url, hdr...)
	return r.Status, r.Header, r.Body
}

// TestPreflightIsAnsweredBeforeAuth: basic auth guards the site, yet the preflight gets its
// 204, and the 401 of a real request carries Access-Control-Allow-Origin so the browser can
// read it.
func TestPreflightIsAnsweredBeforeAuth(t *testing.T) {
	hits := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		_, _ = io.WriteString(w, "secret data")
	}))
	defer up.Close()
	srv := servertest.Start(t, `
port: 8080
basicAuth:
  users:
    admin: "s3cret"
cors:
  origins: ["https://app.example.com", "https://*.preview.example.com"]
  credentials: true
  maxAgeSecs: 86400
proxy:
  /: "`+up.URL+`"
`)
	base := srv.URL(8080)
	code, h, _ := send(t, "OPTIONS", base+"/api/items", "Origin", "https://pr-7.preview.example.com",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization")
	if code != 204 || h.Get("Access-Control-Allow-Origin") != "https://pr-7.preview.example.com" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Max-Age") != "86400" ||
		h.Get("Access-Control-Allow-Headers") != "authorization" || h.Get("Access-Control-Allow-Methods") != "POST" {
		t.Fatalf("preflight = %d %v", code, h)
	}
	if hits != 0 {
		t.Fatal("preflight reached the upstream")
	}
	code, h, _ = send(t, "GET", base+"/api/items", "Origin", "https://app.example.com")
	if code != 401 || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || h.Get("Vary") == "" {
		t.Fatalf("unauthenticated = %d %v", code, h)
	}
	code, h, body := send(t, "GET", base+"/api/items", "Origin", "https://app.example.com", "Authorization", "Basic YWRtaW46czNjcmV0")
	if code != 200 || body != "secret data" || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("authenticated = %d %q %v", code, body, h)
	}
	code, h, _ = send(t, "GET", base+"/api/items", "Origin", "https://evil.example", "Authorization", "Basic YWRtaW46czNjcmV0")
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin = %d %v", code, h)
	}
	// A plain OPTIONS (no Access-Control-Request-Method) is not a preflight: auth applies.
	if code, _, _ := send(t, "OPTIONS", base+"/api/items", "Origin", "https://app.example.com"); code != 401 {
		t.Fatalf("plain OPTIONS = %d", code)
	}
}

func TestValidatorsSinkCorsSites(t *testing.T) {
	for _, tt := range []struct {
		src string
		ok  bool
	}{
		{`{"port": 9114, "cors": {"credentials": true}}`, false},
		{`{"port": 9115, "cors": {"credentials": true, "origins": ["*"]}}`, false},
		{`{"port": 9116, "cors": {"credentials": true, "origins": []}}`, false},
		{`{"port": 9117, "cors": {"credentials": true, "origins": ["https://app.example.com"]}}`, true},
		{`{"port": 9118, "cors": true}`, true},
		{`{"port": 9119, "cors": {"origins": ["*"]}}`, true},
		{`{"port": 9120, "cors": {}}`, true},
		{`{"port": 9121, "cors": false}`, true},
	} {
		_, d, err := servertest.Build(tt.src, config.FormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		if d.HasErrors() == tt.ok {
			t.Errorf("%s: errors %v", tt.src, d.Errors())
		}
		if !tt.ok && (len(d.Errors()) != 1 || d.Errors()[0].Path != "cors.credentials") {
			t.Errorf("%s: errors %v, want one at cors.credentials", tt.src, d.Errors())
		}
	}
}
