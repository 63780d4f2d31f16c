package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/health"
)

const token = "0123456789abcdef-admin-token"

// startWithAdmin serves the config in file path (real listeners) with the Admin API.
func startWithAdmin(t *testing.T, path string) (*server.Server, *admin.API, chan struct{}) {
	t.Helper()
	srv := server.New(server.Options{Listen: servertest.Ephemeral})
	g, d, err := server.LoadAndBuild(context.Background(), path, srv.BuildOptions())
	if err != nil || d.HasErrors() {
		t.Fatalf("build: %v %v", err, d.Err())
	}
	if err := srv.Start(g); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	api, err := admin.Start("127.0.0.1:0", admin.Options{Server: srv, Shutdown: func() { close(stopped) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		api.Close(context.Background())
		srv.Shutdown(context.Background())
	})
	return srv, api, stopped
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "conduit.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func call(t *testing.T, api *admin.API, method, path, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+api.Addr().String()+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const baseConfig = "global:\n  admin: { bind: \"127.0.0.1:2019\", token: %q }\nsites:\n  - port: 8080\n"

// TestEveryEndpointNeedsTheToken pins 401 with an empty body on all 12 endpoints.
func TestEveryEndpointNeedsTheToken(t *testing.T) {
	_, api, _ := startWithAdmin(t, writeConfig(t, t.TempDir(), fmt.Sprintf(baseConfig, token)))
	endpoints := [][2]string{
		{"GET", "/status"}, {"POST", "/reload"}, {"POST", "/shutdown"}, {"GET", "/upstreams"},
		{"POST", "/upstreams/add"}, {"POST", "/upstreams/remove"}, {"POST", "/upstreams/weight"},
		{"DELETE", "/cache/purge"}, {"GET", "/rate-limits"}, {"POST", "/ip-deny"}, {"DELETE", "/ip-deny"},
		{"POST", "/certs/reload"},
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
