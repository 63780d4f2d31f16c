package forwardauth_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/auth/forwardauth"
	"github.com/conduitproxy/conduit/modules/auth/internal/authtest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// authService is a real HTTP auth service: it allows requests whose Authorization is
// "Bearer good", redirects "Bearer login", and denies the rest with 403 and a body.
type authService struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	last  http.Header
}

func newAuthService(t *testing.T) *authService {
	a := &authService{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		a.mu.Lock()
		a.last = r.Header.Clone()
		a.mu.Unlock()
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			w.Header().Set("X-User-Id", "user_abc123")
			w.Header().Add("X-Scope", "read:orders")
			w.Header().Add("X-Scope", "write:orders")
			w.Header().Set("X-Secret-Internal", "not-listed")
			w.WriteHeader(http.StatusNoContent)
		case "Bearer login":
			http.Redirect(w, r, "https://login.example/?rd="+url.QueryEscape(r.Header.Get("X-Forwarded-Uri")), http.StatusFound)
		case "Bearer boom":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "auth down")
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="corp"`)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "go away")
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *authService) lastHeader() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func start(t *testing.T, authURL, upURL, extra string) *servertest.Server {
	return servertest.Start(t, fmt.Sprintf(`
port: 8080
forwardAuth:
  url: %q
  requestHeaders: [Authorization, X-Tenant-ID]
  responseHeaders: [X-User-ID, X-Scope]
  skipPaths: [/public/**]
%s
proxy: %q
`, authURL, extra, upURL))
}

func TestAllowCopiesHeadersAndStripsSpoofs(t *testing.T) {
	auth := newAuthService(t)
	up := authtest.NewUpstream(t)
	srv := start(t, auth.URL+"/verify", up.URL, "")
	r := authtest.Do(t, http.MethodPost, srv.URL(8080)+"/api/orders/42?x=1",
		"Authorization: Bearer good", "X-Tenant-ID: t1", "Cookie: c=1",
		"X-User-ID: admin", "X-Scope: everything")
	if r.Status != 200 {
		t.Fatalf("status %d %q", r.Status, r.Body)
	}
	got := up.Last()
	if v := got.Header.Values("X-User-Id"); len(v) != 1 || v[0] != "user_abc123" {
		t.Fatalf("X-User-ID upstream = %q", v)
	}
	if v := got.Header.Values("X-Scope"); strings.Join(v, ",") != "read:orders,write:orders" {
		t.Fatalf("X-Scope upstream = %q", v)
	}
	if got.Header.Get("X-Secret-Internal") != "" {
		t.Fatal("an unlisted auth response header reached the upstream")
	}
	h := auth.lastHeader()
	for k, want := range map[string]string{
		"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/api/orders/42?x=1", "X-Forwarded-For": "127.0.0.1",
		"X-Forwarded-Proto": "http", "Authorization": "Bearer good", "X-Tenant-Id": "t1",
	} {
		if h.Get(k) != want {
			t.Errorf("auth service saw %s = %q, want %q", k, h.Get(k), want)
		}
	}
	if h.Get("Cookie") != "" || h.Get("X-User-Id") != "" {
		t.Errorf("unlisted client headers reached the auth service: %v", h)
	}
}

func TestDenialsAreRelayed(t *testing.T) {
	auth := newAuthService(t)
	up := authtest.NewUpstream(t)
	srv := start(t, auth.URL+"/verify", up.URL, "")
	r := authtest.Get(t, srv.URL(8080)+"/api", "Authorization: Bearer bad")
	if r.Status != 403 || r.Body != "go away" || r.Header.Get("WWW-Authenticate") != `Bearer realm="corp"` {
		t.Fatalf("403: %d %q %v", r.Status, r.Body, r.Header)
	}
	r = authtest.Get(t, srv.URL(8080)+"/api", "Authorization: Bearer boom")
	if r.Status != 503 || r.Body != "auth down" {
		t.Fatalf("503: %d %q", r.Status, r.Body)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, srv.URL(8080)+"/api/x", nil)
	req.Header.Set("Authorization", "Bearer login")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "https://login.example/?rd=%2Fapi%2Fx") {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if up.Count() != 0 {
		t.Fatal("a denied request reached the upstream")
	}
}

func TestFailClosed(t *testing.T) {
	up := authtest.NewUpstream(t)
	// Unreachable: a port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/verify"
	l.Close()
	srv := start(t, dead, up.URL, "")
	if r := authtest.Get(t, srv.URL(8080)+"/api", "Authorization: Bearer good", "Accept: application/json"); r.Status != 401 || r.Body != `{"error":"Unauthorized","status":401}` {
		t.Fatalf("unreachable: %d %q", r.Status, r.Body)
	}
	// Timeout: the service never answers within timeoutMs.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	srv2 := servertest.Start(t, fmt.Sprintf("port: 8080\nforwardAuth: { url: %q, timeoutMs: 50 }\nproxy: %q\n", slow.URL, up.URL))
	if r := authtest.Get(t, srv2.URL(8080)+"/api"); r.Status != 401 {
		t.Fatalf("timeout: %d", r.Status)
	}
	if up.Count() != 0 {
		t.Fatal("request reached the upstream")
	}
}

func TestSkipPaths(t *testing.T) {
	auth := newAuthService(t)
	up := authtest.NewUpstream(t)
	srv := start(t, auth.URL, up.URL, "")
	r := authtest.Get(t, srv.URL(8080)+"/public/logo.png", "X-User-ID: admin")
	if r.Status != 200 || auth.calls.Load() != 0 {
		t.Fatalf("skip path: %d, %d auth calls", r.Status, auth.calls.Load())
	}
	if up.Last().Header.Get("X-User-Id") != "" {
		t.Fatal("spoofed identity header passed on a skip path")
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"missing url", `forwardAuth: {}`, "error at forwardAuth.url: is required"},
		{"grpc", `forwardAuth: { url: "grpc://auth:4000/verify" }`, "error at forwardAuth.url: scheme must be http or https"},
		{"admin default port", `forwardAuth: { url: "http://127.0.0.1:2019/auth" }`, "error at forwardAuth.url: points at the Admin API"},
		{"admin localhost", `forwardAuth: { url: "http://localhost:2019/x" }`, "points at the Admin API"},
		{"admin unspecified", `forwardAuth: { url: "http://0.0.0.0:2019/x" }`, "points at the Admin API"},
		{"admin v6", `forwardAuth: { url: "http://[::1]:2019/x" }`, "points at the Admin API"},
		{"admin v6 unspecified", `forwardAuth: { url: "http://[::]:2019/x" }`, "points at the Admin API"},
		{"timeout 0", `forwardAuth: { url: "http://auth:4000/", timeoutMs: 0 }`, "error at forwardAuth.timeoutMs: must be ≥ 1"},
		{"bad header", `forwardAuth: { url: "http://auth:4000/", requestHeaders: ["bad header"] }`, "error at forwardAuth.requestHeaders[0]"},
		{"credentials", `forwardAuth: { url: "http://u:p@auth:4000/" }`, "must not carry credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build("port: 8080\n"+tc.cfg+"\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if e := d.Err(); e == nil || !strings.Contains(e.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, e)
			}
		})
	}
	// With a configured admin bind, its own host and port are guarded and 2019 is free.
	for _, tc := range []struct {
		url     string
		refused bool
	}{
		{"http://10.1.2.3:9000/auth", true}, {"http://127.0.0.1:9000/auth", true},
		{"http://127.0.0.1:2019/auth", false}, {"http://auth-service:4000/verify", false},
		{"http://10.1.2.3:9001/auth", false},
	} {
		src := fmt.Sprintf("global: { admin: { bind: \"10.1.2.3:9000\", token: \"an-admin-token-of-32-characters!\" } }\nsites:\n  - port: 8080\n    forwardAuth: { url: %q }\n", tc.url)
		_, d, err := servertest.Build(src, config.FormatYAML)
		if err != nil {
			t.Fatal(err)
		}
		refused := d.Err() != nil && strings.Contains(d.Err().Error(), "points at the Admin API")
		if refused != tc.refused {
			t.Errorf("%s: refused=%v, want %v (%v)", tc.url, refused, tc.refused, d.Err())
		}
	}
}
