package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

const token = "0123456789abcdef-admin-token"

// startWithAdmin serves the config in file path (real listeners) with the Admin API.
func startWithAdmin(t *testing.T, path string) (*server.Server, *admin.API, chan struct{}) {
	t.Helper()
	srv := servertest.StartFile(t, path)
	stopped := make(chan struct{})
	return srv.Server, servertest.StartAdmin(t, srv, func() { close(stopped) }), stopped
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "conduit.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func call(t *testing.T, api *admin.API, method, path, auth, body string) (int, string) {
	t.Helper()
	return adminRequest{method: method, path: path, auth: auth, body: body}.send(t, api)
}

const baseConfig = "global:\n  admin: { bind: \"127.0.0.1:2019\", token: %q }\nsites:\n  - port: 8080\n"

// TestEveryEndpointNeedsTheToken pins 401 with an empty body on all 13 endpoints.
func TestEveryEndpointNeedsTheToken(t *testing.T) {
	_, api, _ := startWithAdmin(t, writeConfig(t, t.TempDir(), fmt.Sprintf(baseConfig, token)))
	endpoints := [][2]string{
		{"GET", "/status"}, {"POST", "/reload"}, {"POST", "/shutdown"}, {"GET", "/upstreams"},
		{"POST", "/upstreams/add"}, {"POST", "/upstreams/remove"}, {"POST", "/upstreams/weight"},
		{"DELETE", "/cache/purge"}, {"GET", "/rate-limits"}, {"POST", "/ip-deny"}, {"DELETE", "/ip-deny"},
		{"POST", "/certs/reload"}, {"POST", "/upgrade"},
	}
	for _, e := range endpoints {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + token, token, "Bearer " + token + "x"} {
			code, body := call(t, api, e[0], e[1], auth, "{}")
			if code != 401 || body != "" {
				t.Errorf("%s %s with %q: %d %q, want 401 and an empty body", e[0], e[1], auth, code, body)
			}
		}
	}
	if code, _ := call(t, api, "GET", "/status", "bearer "+token, ""); code != 200 {
		t.Errorf("lower-case scheme: %d", code)
	}
}

func TestStatusReloadAndMissingFeatures(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, fmt.Sprintf(baseConfig, token))
	srv, api, _ := startWithAdmin(t, path)
	auth := "Bearer " + token
	code, body := call(t, api, "GET", "/status", auth, "")
	var st map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("status: %d %s", code, body)
	}
	for _, k := range []string{"status", "inflight", "retry_inflight", "sites", "configured_upstreams", "healthy_upstreams", "total_probed_upstreams", "config_path"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status lacks %q: %s", k, body)
		}
	}
	if st["status"] != "running" || st["sites"] != 1.0 || st["config_path"] != path {
		t.Errorf("status: %s", body)
	}
	first := srv.Current()
	code, body = call(t, api, "POST", "/reload", auth, "")
	if code != 200 || !strings.Contains(body, `"message":"config reloaded"`) || srv.Current() == first {
		t.Fatalf("reload: %d %s", code, body)
	}
	// A bad config is refused and the running generation stays.
	writeConfig(t, dir, fmt.Sprintf(baseConfig, token)+"    healthCheck: 5\n")
	running := srv.Current()
	code, body = call(t, api, "POST", "/reload", auth, "")
	if code != 400 || !strings.Contains(body, `"status":"error"`) || !strings.Contains(body, "error at sites[0].healthCheck") || srv.Current() != running {
		t.Fatalf("bad reload: %d %s", code, body)
	}
	// A cold field change is refused with the message docs/configuration.md quotes.
	writeConfig(t, dir, strings.Replace(fmt.Sprintf(baseConfig, token), "8080", "8081", 1))
	code, body = call(t, api, "POST", "/reload", auth, "")
	if code != 400 || !strings.Contains(body, "cold fields changed — restart required: ") {
		t.Fatalf("cold reload: %d %s", code, body)
	}
	// The token rotates with a reload.
	writeConfig(t, dir, fmt.Sprintf(baseConfig, token+"-new"))
	if code, body = call(t, api, "POST", "/reload", auth, ""); code != 200 {
		t.Fatalf("rotate: %d %s", code, body)
	}
	if code, _ = call(t, api, "GET", "/status", auth, ""); code != 401 {
		t.Fatalf("old token after rotation: %d", code)
	}
	auth = "Bearer " + token + "-new"
	// Endpoints of modules not in this test binary answer 501 naming the feature.
	code, body = call(t, api, "DELETE", "/cache/purge?url=http://x/", auth, "")
	if code != 501 || !strings.Contains(body, `feature \"cache\"`) {
		t.Fatalf("cache purge without cache: %d %s", code, body)
	}
	// GET /ip-deny is registered by ipfilter (core.Module.AdminPaths) like POST and DELETE;
	// it answers 501 too, not 405.
	code, body = call(t, api, "GET", "/ip-deny", auth, "")
	if code != 501 || !strings.Contains(body, `feature \"ipfilter\"`) {
		t.Fatalf("ip-deny list without ipfilter: %d %s", code, body)
	}
	if code, _ = call(t, api, "GET", "/nope", auth, ""); code != 404 {
		t.Fatalf("unknown endpoint: %d", code)
	}
	if code, _ = call(t, api, "GET", "/reload", auth, ""); code != 405 {
		t.Fatalf("wrong method: %d", code)
	}
}

func TestShutdownEndpoint(t *testing.T) {
	_, api, stopped := startWithAdmin(t, writeConfig(t, t.TempDir(), fmt.Sprintf(baseConfig, token)))
	code, body := call(t, api, "POST", "/shutdown", "Bearer "+token, "")
	if code != 200 || strings.TrimSpace(body) != `{"status":"shutting_down"}` {
		t.Fatalf("shutdown: %d %s", code, body)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown callback not called")
	}
}

// adminRequest is one request to the Admin API as a browser, a rebinding page or the CLI
// would send it.
type adminRequest struct {
	method, path, host, auth, origin, fetchSite, contentType, body string
}

// send sends ar to api (Host defaults to the listener's address) and returns the status and
// the body.
func (ar adminRequest) send(t *testing.T, api *admin.API) (int, string) {
	t.Helper()
	var body io.Reader
	if ar.body != "" {
		body = strings.NewReader(ar.body)
	}
	req, err := http.NewRequest(ar.method, "http://"+api.Addr().String()+ar.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ar.host != "" {
		req.Host = ar.host
	}
	for k, v := range map[string]string{"Authorization": ar.auth, "Origin": ar.origin, "Sec-Fetch-Site": ar.fetchSite, "Content-Type": ar.contentType} {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCrossSiteAndRebindingRequestsAreRefused runs an Admin API without a token (the setup a
// browser page on the same machine could reach) and sends the requests a hostile page can
// make: a cross-site text/plain POST that would add an upstream, a DNS-rebinding request
// (foreign Host), foreign Origins on reads, Sec-Fetch-Site: cross-site. Each is refused and
// the route's upstream set is unchanged; same-origin and CLI-shaped requests work.
func TestCrossSiteAndRebindingRequestsAreRefused(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	t.Cleanup(up.Close)
	cfg := fmt.Sprintf("global:\n  admin: { bind: \"127.0.0.1:2019\" }\nsites:\n  - port: 8080\n    proxy:\n      /api: { targets: [%q] }\n", up.URL)
	_, api, _ := startWithAdmin(t, writeConfig(t, t.TempDir(), cfg))
	_, port, _ := net.SplitHostPort(api.Addr().String())
	own := "http://127.0.0.1:" + port
	add := `{"route":"/api","target":"http://203.0.113.9:80"}`

	cases := []struct {
		name string
		req  adminRequest
		want int
	}{
		{"cross-site form POST", adminRequest{method: "POST", path: "/upstreams/add", origin: "http://evil.example", contentType: "text/plain", body: add}, 403},
		{"foreign Origin with JSON", adminRequest{method: "POST", path: "/upstreams/add", origin: "http://evil.example", contentType: "application/json", body: add}, 403},
		{"Origin null", adminRequest{method: "POST", path: "/upstreams/add", origin: "null", contentType: "application/json", body: add}, 403},
		{"Origin on another port", adminRequest{method: "POST", path: "/upstreams/add", origin: "http://127.0.0.1:1", contentType: "application/json", body: add}, 403},
		{"Origin https", adminRequest{method: "POST", path: "/upstreams/add", origin: "https://127.0.0.1:" + port, contentType: "application/json", body: add}, 403},
		{"text/plain without Origin", adminRequest{method: "POST", path: "/upstreams/add", contentType: "text/plain", body: add}, 415},
		{"form encoding", adminRequest{method: "POST", path: "/upstreams/add", contentType: "application/x-www-form-urlencoded", body: add}, 415},
		{"body without a Content-Type", adminRequest{method: "POST", path: "/upstreams/add", body: add}, 415},
		{"Sec-Fetch-Site cross-site", adminRequest{method: "POST", path: "/upstreams/add", fetchSite: "cross-site", contentType: "application/json", body: add}, 403},
		{"Sec-Fetch-Site same-site", adminRequest{method: "POST", path: "/shutdown", fetchSite: "same-site"}, 403},
		{"rebinding Host", adminRequest{method: "POST", path: "/upstreams/add", host: "evil.example:" + port, contentType: "application/json", body: add}, 403},
		{"rebinding Host on GET", adminRequest{method: "GET", path: "/status", host: "evil.example"}, 403},
		{"loopback Host on another port", adminRequest{method: "GET", path: "/status", host: "127.0.0.1:1"}, 403},
		{"Host without port (80)", adminRequest{method: "GET", path: "/status", host: "localhost"}, 403},
		{"localhost. is another name", adminRequest{method: "GET", path: "/status", host: "localhost.:" + port}, 403},
		{"foreign Origin on GET", adminRequest{method: "GET", path: "/upstreams", origin: "http://evil.example"}, 403},
		{"tap from a foreign Origin", adminRequest{method: "GET", path: "/tap", origin: "http://evil.example"}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := tc.req.send(t, api); code != tc.want {
				t.Fatalf("%d %s, want %d", code, body, tc.want)
			}
		})
	}
	// Nothing above changed the route: only the configured target is listed.
	code, body := adminRequest{method: "GET", path: "/upstreams"}.send(t, api)
	if code != 200 || strings.Contains(body, "203.0.113.9") || !strings.Contains(body, up.URL) {
		t.Fatalf("upstreams after the refused requests: %d %s", code, body)
	}

	// What the CLI and a same-origin page send is let in.
	allowed := []struct {
		name string
		req  adminRequest
	}{
		{"status as the CLI sends it", adminRequest{method: "GET", path: "/status"}},
		{"Host localhost", adminRequest{method: "GET", path: "/status", host: "localhost:" + port}},
		{"Host LOCALHOST", adminRequest{method: "GET", path: "/status", host: "LOCALHOST:" + port}},
		{"Host [::1]", adminRequest{method: "GET", path: "/status", host: "[::1]:" + port}},
		{"same-origin read", adminRequest{method: "GET", path: "/status", origin: own, fetchSite: "same-origin"}},
		{"reload without a body", adminRequest{method: "POST", path: "/reload"}},
		{"same-origin add", adminRequest{method: "POST", path: "/upstreams/add", origin: own, fetchSite: "same-origin", contentType: "application/json; charset=utf-8", body: add}},
		{"CLI remove", adminRequest{method: "POST", path: "/upstreams/remove", contentType: "application/json", body: add}},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := tc.req.send(t, api); code != 200 {
				t.Fatalf("%d %s, want 200", code, body)
			}
		})
	}
}
