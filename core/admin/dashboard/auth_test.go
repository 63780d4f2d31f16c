package dashboard_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/admin/dashboard"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// setup serves a config file (so reloads work) with a proxy route and the Admin API.
func setup(t *testing.T, tok string) (base, cfgPath string, srv *servertest.Server, up *httptest.Server) {
	t.Helper()
	up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	cfgPath = filepath.Join(t.TempDir(), "conduit.yaml")
	writeConfig(t, cfgPath, tok, up.URL)
	srv = servertest.StartFile(t, cfgPath)
	api := servertest.StartAdmin(t, srv, func() {})
	return "http://" + api.Addr().String(), cfgPath, srv, up
}

func writeConfig(t *testing.T, path, tok, upURL string) {
	t.Helper()
	tokLine := ""
	if tok != "" {
		tokLine = fmt.Sprintf(", token: %q", tok)
	}
	cfg := fmt.Sprintf("global:\n  admin: { bind: \"127.0.0.1:2019\"%s }\nsites:\n  - port: 8080\n    proxy:\n      /api: { targets: [%q] }\n", tokLine, upURL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// send makes one request the way a browser page on the Admin API's origin would: an
// Origin for every method but GET and HEAD, JSON bodies. hdr are extra name/value pairs.
func send(t *testing.T, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Origin", url[:strings.Index(url, "/dashboard")])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Streams (tap, top) answer at once and never end: read what is there.
	buf := make([]byte, 64<<10)
	n, _ := io.ReadAtLeast(resp.Body, buf, 1)
	return resp, string(buf[:n])
}

// login returns the session cookie for tok.
func login(t *testing.T, base, tok string) *http.Cookie {
	t.Helper()
	resp, _ := send(t, "POST", base+"/dashboard/login", fmt.Sprintf(`{"token": %q}`, tok))
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.CookieName {
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

// everyPath is every path under the dashboard with the methods it answers: each embedded
// file, the page, and each Admin API endpoint it passes through.
func everyPath(t *testing.T) [][2]string {
	t.Helper()
	files, err := os.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	out := [][2]string{{"GET", "/dashboard/"}, {"HEAD", "/dashboard/"}, {"GET", "/dashboard/api/overview"},
		{"POST", "/dashboard/logout"}, {"GET", "/dashboard/nonexistent"}, {"GET", "/dashboard/api/shutdown"}}
	for _, f := range files {
		out = append(out, [2]string{"GET", "/dashboard/" + f.Name()})
	}
	for _, e := range dashboard.AllowedEndpoints() {
		m, p, _ := strings.Cut(e, " ")
		out = append(out, [2]string{m, "/dashboard/api" + p})
	}
	return out
}

// TestNothingAnswersWithoutTheToken walks every dashboard path with no credentials, a
// wrong bearer token, a forged session cookie and the Admin API token in the URL: each
// answers 401 and carries the dashboard's CSP. The page's 401 is the login form, which
// holds nothing of the running configuration. With a session the same paths answer, so
// the 401s are the token check and not a broken route.
func TestNothingAnswersWithoutTheToken(t *testing.T) {
	base, cfgPath, _, up := setup(t, token)
	creds := []struct {
		name string
		hdr  []string
	}{
		{"none", nil},
		{"wrong bearer", []string{"Authorization", "Bearer not-the-token-0123456789"}},
		{"basic scheme", []string{"Authorization", "Basic " + token}},
		{"forged cookie", []string{"Cookie", dashboard.CookieName + "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		{"token as cookie", []string{"Cookie", dashboard.CookieName + "=" + token}},
	}
	for _, p := range everyPath(t) {
		for _, c := range creds {
			t.Run(p[0]+" "+p[1]+" "+c.name, func(t *testing.T) {
				body := ""
				if p[0] == "POST" && p[1] != "/dashboard/logout" {
					body = "{}"
				}
				resp, got := send(t, p[0], base+p[1]+"?token="+token, body, c.hdr...)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401; body %q", resp.StatusCode, got)
				}
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
					t.Errorf("CSP %q", csp)
				}
				if resp.Header.Get("Set-Cookie") != "" {
					t.Errorf("a refused request got a cookie: %q", resp.Header.Get("Set-Cookie"))
				}
				for _, secret := range []string{up.URL, cfgPath, token} {
					if strings.Contains(got, secret) {
						t.Errorf("the 401 body shows %q", secret)
					}
				}
				if p[1] == "/dashboard/" && p[0] == "GET" && !strings.Contains(got, `id="login"`) {
					t.Errorf("the page's 401 is not the login form: %q", got)
				}
			})
		}
	}
	cookie := login(t, base, token)
	for _, p := range everyPath(t) {
		// login.html is only ever the 401 answer (with its script and style inlined).
		if p[0] != "GET" || p[1] == "/dashboard/nonexistent" || p[1] == "/dashboard/api/shutdown" || p[1] == "/dashboard/login.html" {
			continue
		}
		resp, _ := send(t, p[0], base+p[1], "", "Cookie", cookie.Name+"="+cookie.Value)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with a session: %d, want 200", p[0], p[1], resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s %s: CSP %q", p[0], p[1], csp)
		}
	}
}

// TestSession covers the login and what a session may do.
func TestSession(t *testing.T) {
	base, cfgPath, srv, up := setup(t, token)
	ck := func(c *http.Cookie) []string { return []string{"Cookie", c.Name + "=" + c.Value} }

	if resp, _ := send(t, "POST", base+"/dashboard/login", `{"token": "wrong-token-0123456789"}`); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "POST", base+"/dashboard/login", "token="+token, "Content-Type", "application/x-www-form-urlencoded"); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form-encoded login: %d, want 415", resp.StatusCode)
	}
	if resp, _ := send(t, "POST", base+"/dashboard/login", fmt.Sprintf(`{"token": %q}`, token), "Origin", "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin login: %d, want 403", resp.StatusCode)
	}
	c := login(t, base, token)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != dashboard.Prefix || c.Secure {
		t.Errorf("cookie attributes: %+v (want HttpOnly, SameSite=Strict, Path=/dashboard/, not Secure over plain HTTP)", c)
	}
	cases := []struct {
		name         string
		method, path string
		body         string
		hdr          []string
		want         int
	}{
		{"overview", "GET", "/dashboard/api/overview", "", nil, 200},
		{"status", "GET", "/dashboard/api/status", "", nil, 200},
		{"the cookie is not the Admin API token", "GET", "/status", "", nil, 401},
		{"an endpoint the page does not offer", "POST", "/dashboard/api/shutdown", "", nil, 404},
		{"certs are not offered", "POST", "/dashboard/api/certs/reload", "{}", nil, 404},
		{"weight", "POST", "/dashboard/api/upstreams/weight", fmt.Sprintf(`{"route": "/api", "target": %q, "weight": 3}`, up.URL), nil, 200},
		{"action without Origin", "POST", "/dashboard/api/reload", "", []string{"Origin", ""}, 403},
		{"action from another site", "POST", "/dashboard/api/reload", "", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"action from another origin", "POST", "/dashboard/api/reload", "", []string{"Origin", "http://evil.example"}, 403},
		{"action with a form body", "POST", "/dashboard/api/upstreams/weight", "route=/api", []string{"Content-Type", "text/plain"}, 415},
		{"rebinding Host", "GET", "/dashboard/api/status", "", []string{"Host", "evil.example"}, 403},
		{"path escape", "GET", "/dashboard/..%2fapp.js", "", nil, 404},
		{"reload", "POST", "/dashboard/api/reload", "", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := base + tc.path
			hdr := append(ck(c), tc.hdr...)
			req, _ := http.NewRequest(tc.method, url, strings.NewReader(tc.body))
			req.Header.Set("Origin", base)
			if tc.method == "GET" {
				req.Header.Del("Origin")
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for i := 0; i+1 < len(hdr); i += 2 {
				switch {
				case hdr[i] == "Host":
					req.Host = hdr[i+1]
				case hdr[i+1] == "":
					req.Header.Del(hdr[i])
				default:
					req.Header.Set(hdr[i], hdr[i+1])
				}
			}
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, raw)
			}
		})
	}
	if n := srv.Current().Number(); n != 2 {
		t.Errorf("generation %d after the dashboard's reload, want 2", n)
	}
	var ov struct {
		Generation int      `json:"generation"`
		Features   []string `json:"features"`
		ConfigPath string   `json:"config_path"`
		LastReload struct {
			OK bool `json:"ok"`
		} `json:"last_reload"`
		Sites []struct {
			Port int `json:"port"`
		} `json:"sites"`
	}
	if _, body := send(t, "GET", base+"/dashboard/api/overview", "", ck(c)...); json.Unmarshal([]byte(body), &ov) != nil ||
		ov.Generation != 2 || !slices.Contains(ov.Features, "proxy") || ov.ConfigPath != cfgPath || !ov.LastReload.OK ||
		len(ov.Sites) != 1 || ov.Sites[0].Port != 8080 {
		t.Errorf("overview %s", body)
	}

	// A reload that rotates the token ends the session.
	writeConfig(t, cfgPath, "rotated-admin-token-0123456789", up.URL)
	if resp, body := send(t, "POST", base+"/dashboard/api/reload", "", ck(c)...); resp.StatusCode != http.StatusOK {
		t.Fatalf("reload: %d %s", resp.StatusCode, body)
	}
	if resp, _ := send(t, "GET", base+"/dashboard/api/status", "", ck(c)...); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the session outlived a token rotation: %d", resp.StatusCode)
	}
	c2 := login(t, base, "rotated-admin-token-0123456789")
	if resp, _ := send(t, "POST", base+"/dashboard/logout", "", ck(c2)...); resp.StatusCode != http.StatusNoContent {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "GET", base+"/dashboard/api/status", "", ck(c2)...); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the session outlived the logout: %d", resp.StatusCode)
	}
}

// TestWithoutTokenTheDashboardIsOpen: without global.admin.token the Admin API is open, and
// so is the dashboard (no login needed).
func TestWithoutTokenTheDashboardIsOpen(t *testing.T) {
	base, _, _, _ := setup(t, "")
	if resp, body := send(t, "GET", base+"/dashboard/", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "app.js") {
		t.Errorf("GET /dashboard/ without a token configured: %d", resp.StatusCode)
	}
}

// TestOnlyOnTheAdminListener: the dashboard lives on the Admin API listener only (which
// does not start without global.admin.bind); on a site's port /dashboard/ is an ordinary
// path that goes to the upstream.
func TestOnlyOnTheAdminListener(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "upstream:"+r.URL.Path) }))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy: %q\n", up.URL))
	if r := servertest.Get(t, srv.URL(8080)+"/dashboard/"); r.Body != "upstream:/dashboard/" {
		t.Errorf("a site's /dashboard/ answered %d %q, want the upstream", r.Status, r.Body)
	}
}

// TestDashboardIsSmall keeps the page under the 200 KB the issue allows, uncompressed.
func TestDashboardIsSmall(t *testing.T) {
	files, err := os.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range files {
		info, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		total += info.Size()
	}
	if total > 200<<10 {
		t.Errorf("the dashboard's files are %d bytes, over 200 KiB", total)
	}
	t.Logf("dashboard files: %d bytes", total)
}
