package cors

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func build(t *testing.T, node config.Node) (*Instance, *config.Diagnostics) {
	t.Helper()
	d := &config.Diagnostics{}
	g := core.NewGlobalContext(context.Background(), nil, d, nil, nil)
	ctx := core.NewSiteContext(context.Background(), &core.Site{Path: "sites[0]", Label: "*", Port: 80}, map[string]config.Node{"cors": node}, g, http.NotFoundHandler())
	inst := provision(ctx)
	in, _ := inst.(*Instance)
	return in, d
}

func paths(list []config.Diagnostic) string {
	var out []string
	for _, x := range list {
		out = append(out, x.Path)
	}
	return strings.Join(out, " ")
}

// TestValidation covers the cors sites of validators_sink.json (9114–9121) and more.
func TestValidation(t *testing.T) {
	tests := []struct {
		name  string
		node  config.Node
		errs  string
		warns string
		on    bool
	}{
		{"credentials, origins unset", map[string]config.Node{"credentials": true}, "sites[0].cors.credentials", "", true},
		{"credentials, origins *", map[string]config.Node{"credentials": true, "origins": []config.Node{"*"}}, "sites[0].cors.credentials", "", true},
		{"credentials, origins empty", map[string]config.Node{"credentials": true, "origins": []config.Node{}}, "sites[0].cors.credentials", "", true},
		{"credentials with a list", map[string]config.Node{"credentials": true, "origins": []config.Node{"https://app.example.com"}}, "", "", true},
		{"true", true, "", "", true},
		{"origins *", map[string]config.Node{"origins": []config.Node{"*"}}, "", "", true},
		{"empty object", map[string]config.Node{}, "", "", true},
		{"false", false, "", "", false},
		{"bad origin", map[string]config.Node{"origins": []config.Node{"app.example.com", "https://a.com/path", "https://*.*.x.com", "https://ok.com"}},
			"sites[0].cors.origins[0] sites[0].cors.origins[1] sites[0].cors.origins[2]", "", true},
		{"trailing slash", map[string]config.Node{"origins": []config.Node{"https://a.com/"}}, "", "sites[0].cors.origins[0]", true},
		{"bad method", map[string]config.Node{"methods": []config.Node{"GET POST"}}, "sites[0].cors.methods[0]", "", true},
		{"headers alias", map[string]config.Node{"headers": []config.Node{"Authorization"}}, "", "sites[0].cors.headers", true},
		{"unknown key", map[string]config.Node{"maxAge": 5.0}, "", "sites[0].cors.maxAge", true},
		{"wrong type", "yes", "sites[0].cors", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, d := build(t, tt.node)
			if got := paths(d.Errors()); got != tt.errs {
				t.Fatalf("errors at %q, want %q: %v", got, tt.errs, d.Errors())
			}
			if got := paths(d.Warnings()); got != tt.warns {
				t.Fatalf("warnings at %q, want %q: %v", got, tt.warns, d.Warnings())
			}
			if (in != nil) != tt.on {
				t.Fatalf("instance = %v", in)
			}
		})
	}
}

func TestOriginMatch(t *testing.T) {
	var d config.Diagnostics
	o := compileOrigins([]string{"https://app.example.com", "https://*.example.org", "http://localhost:3000", "null"}, "o", &d)
	if d.HasErrors() {
		t.Fatal(d.Errors())
	}
	for origin, want := range map[string]bool{
		"https://app.example.com": true, "HTTPS://APP.EXAMPLE.COM": true, "http://app.example.com": false,
		"https://app.example.com:8443": false, "https://a.example.org": true, "https://a.b.example.org": true,
		"https://example.org": false, "https://.example.org": false, "https://x.example.org.evil.com": false,
		"https://evil.com/.example.org": false, "https://a:1.example.org": false, "http://localhost:3000": true,
		"http://localhost:3001": false, "null": true, "": false,
	} {
		if got := o.match(origin) != nil; got != want {
			t.Errorf("match(%q) = %v, want %v", origin, got, want)
		}
	}
	if v := o.match("https://app.example.com"); v[0] != "https://app.example.com" {
		t.Errorf("echo = %q", v)
	}
}

func FuzzOrigins(f *testing.F) {
	for _, s := range []string{"https://*.example.com", "http://localhost:3000", "null", "https://a.com/", "x://*"} {
		f.Add(s, "https://a.example.com")
	}
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		var d config.Diagnostics
		o := compileOrigins([]string{pattern}, "o", &d)
		v := o.match(origin)
		if v == nil {
			return
		}
		if o.any {
			t.Fatal("match on an any-origin list should not be consulted")
		}
		// A match echoes the request's origin (exactly, or the configured spelling of it).
		if !strings.EqualFold(v[0], origin) {
			t.Fatalf("pattern %q origin %q echoed %q", pattern, origin, v[0])
		}
		// The wildcard never crosses a path or port boundary.
		if strings.Contains(pattern, "*") {
			pre, suf, _ := strings.Cut(strings.ToLower(strings.TrimSpace(pattern)), "*")
			mid := origin[len(pre) : len(origin)-len(suf)]
			if strings.ContainsAny(mid, "/:") || mid == "" {
				t.Fatalf("pattern %q matched %q across a boundary", pattern, origin)
			}
		}
	})
}

func TestPreflightAndActualResponses(t *testing.T) {
	in, d := build(t, map[string]config.Node{
		"origins": []config.Node{"https://app.example.com"}, "credentials": true,
		"methods": []config.Node{"GET", "post"}, "allowedHeaders": []config.Node{"Authorization", "Content-Type"}, "maxAgeSecs": 600.0,
	})
	if d.HasErrors() {
		t.Fatal(d.Errors())
	}
	reached := false
	h := core.WithState(in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		w.Header().Set("Access-Control-Allow-Origin", "https://upstream.example") // overridden
		w.Header().Set("Vary", "Accept-Encoding")
		w.WriteHeader(200)
	})))
	req := httptest.NewRequest("OPTIONS", "/api", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if reached || rec.Code != 204 {
		t.Fatalf("preflight reached next=%v code=%d", reached, rec.Code)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Authorization, Content-Type",
		"Access-Control-Max-Age": "600",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(rec.Header().Get("Vary"), "Origin") {
		t.Errorf("preflight Vary = %q", rec.Header().Get("Vary"))
	}

	// A preflight from another origin is answered too, without CORS headers.
	req.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if reached || rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign preflight: %d %v", rec.Code, rec.Header())
	}

	// Actual request: the origin is echoed, Vary gets Origin added.
	req = httptest.NewRequest("GET", "/api", nil)
	req.Header.Set("Origin", "https://app.example.com")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !reached || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		rec.Header().Get("Access-Control-Allow-Credentials") != "true" || strings.Join(rec.Header().Values("Vary"), ",") != "Accept-Encoding,Origin" {
		t.Fatalf("actual: %v", rec.Header())
	}
	// A request without Origin still gets Vary: Origin (the answer depends on it).
	req = httptest.NewRequest("GET", "/api", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !strings.Contains(strings.Join(rec.Header().Values("Vary"), ","), "Origin") {
		t.Fatalf("no-origin Vary: %v", rec.Header())
	}
}

func TestStarEchoesRequestedMethodAndHeaders(t *testing.T) {
	in, _ := build(t, true)
	h := core.WithState(in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })))
	req := httptest.NewRequest("OPTIONS", "/", nil)
	req.Header.Set("Origin", "https://x.test")
	req.Header.Set("Access-Control-Request-Method", "DELETE")
	req.Header.Set("Access-Control-Request-Headers", "x-custom, content-type")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" || rec.Header().Get("Access-Control-Allow-Methods") != "DELETE" ||
		rec.Header().Get("Access-Control-Allow-Headers") != "x-custom, content-type" || rec.Header().Get("Access-Control-Max-Age") != "" {
		t.Fatalf("preflight: %v", rec.Header())
	}
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Origin", "https://x.test")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" || rec.Header().Get("Vary") != "" {
		t.Fatalf("actual: %v", rec.Header())
	}
}
