package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestDrainUpstream: POST /upstreams/drain takes a target out of its route's rotation (GET
// /upstreams says so), /upstreams/undrain puts it back, an unknown target is 404, and a
// reload clears the drain.
func TestDrainUpstream(t *testing.T) {
	named := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, name) }))
		t.Cleanup(s.Close)
		return s
	}
	a, b := named("a"), named("b")
	cfgPath := filepath.Join(t.TempDir(), "conduit.yaml")
	cfg := fmt.Sprintf("global:\n  admin: { bind: \"127.0.0.1:2019\" }\nsites:\n  - port: 8080\n    proxy:\n      /api: { targets: [%q, %q] }\n", a.URL, b.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := servertest.StartFile(t, cfgPath)
	adminURL := "http://" + servertest.StartAdmin(t, srv, nil).Addr().String()
	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post(adminURL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	counts := func() map[string]int {
		t.Helper()
		out := map[string]int{}
		for range 20 {
			out[servertest.Get(t, srv.URL(8080)+"/api/x").Body]++
		}
		return out
	}
	drainedFlag := func() bool {
		t.Helper()
		var list struct {
			Routes []struct {
				Targets []struct {
					URL     string `json:"url"`
					Drained bool   `json:"drained"`
				} `json:"targets"`
			} `json:"routes"`
		}
		if err := json.Unmarshal([]byte(servertest.Get(t, adminURL+"/upstreams").Body), &list); err != nil {
			t.Fatal(err)
		}
		for _, tg := range list.Routes[0].Targets {
			if tg.URL == b.URL {
				return tg.Drained
			}
		}
		t.Fatal("b is not listed")
		return false
	}
	body := fmt.Sprintf(`{"route": "/api", "target": %q}`, b.URL)
	if c := counts(); c["a"] == 0 || c["b"] == 0 {
		t.Fatalf("before the drain: %v", c)
	}
	if code := post("/upstreams/drain", body); code != 200 {
		t.Fatalf("drain: %d", code)
	}
	if c := counts(); c["b"] != 0 || c["a"] != 20 || !drainedFlag() {
		t.Errorf("drained: %v (listed drained: %v)", c, drainedFlag())
	}
	if code := post("/upstreams/drain", `{"route": "/api", "target": "http://127.0.0.1:1"}`); code != 404 {
		t.Errorf("draining an unknown target: %d, want 404", code)
	}
	if code := post("/upstreams/undrain", body); code != 200 {
		t.Fatalf("undrain: %d", code)
	}
	if c := counts(); c["b"] == 0 || drainedFlag() {
		t.Errorf("undrained: %v", c)
	}
	post("/upstreams/drain", body)
	if code := post("/reload", ""); code != 200 {
		t.Fatalf("reload: %d", code)
	}
	if c := counts(); c["b"] == 0 {
		t.Errorf("after a reload: %v, want the drain cleared", c)
	}
}
