package fallback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/fallback"
	_ "github.com/conduitproxy/conduit/modules/static"
)

// start builds src and serves it on ephemeral ports; it returns the base URL of configured
// port 8080.
func start(t *testing.T, src string) string {
	t.Helper()
	return servertest.Start(t, src).URL(8080)
}

func get(t *testing.T, method, url, accept string) (int, http.Header, string) {
	t.Helper()
	var hdr []string
	if accept != "" {
		hdr = []string{"Accept", accept}
	}
	r := servertest.Do(t, method, url, hdr...)
	return r.Status, r.Header, r.Body
}

func TestNoFallbackIsABare404(t *testing.T) {
	base := start(t, `{"port": 8080}`)
	if code, _, _ := get(t, "GET", base+"/nothing", ""); code != 404 {
		t.Fatalf("= %d", code)
	}
}

func TestEmptyFallbackIs200WithEmptyBody(t *testing.T) {
	for _, src := range []string{`{"port": 8080, "fallback": {}}`, "port: 8080\nfallback:\n"} {
		base := start(t, src)
		code, h, body := get(t, "GET", base+"/anything", "")
		if code != 200 || body != "" || h.Get("Content-Length") != "0" {
			t.Fatalf("%q: = %d %q %v", src, code, body, h)
		}
	}
}

func TestSPAWithAPIExample(t *testing.T) {
	dir := t.TempDir()
	shell := filepath.Join(dir, "index.html")
	if err := os.WriteFile(shell, []byte("<!doctype html><p>SHELL-V1</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The fallback of testdata/compat/spa-with-api.yaml, with the file in a temp dir.
	base := start(t, `
port: 8080
fallback:
  byAccept:
    html:
      file: `+shell+`
      status: 200
    json:
      body: { "error": "Not Found", "status": 404 }
      status: 404
  status: 404
  body: "Not Found"
`)
	code, h, body := get(t, "GET", base+"/dashboard/settings", "text/html,application/xhtml+xml,*/*;q=0.8")
	if code != 200 || body != "<!doctype html><p>SHELL-V1</p>" || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("browser = %d %q %v", code, body, h)
	}
	code, h, body = get(t, "GET", base+"/api/nothing", "application/json")
	var js map[string]any
	if code != 404 || h.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &js) != nil || js["error"] != "Not Found" {
		t.Fatalf("api client = %d %q %v", code, body, h)
	}
	code, h, body = get(t, "GET", base+"/x", "application/octet-stream")
	if code != 404 || body != "Not Found" || h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("other = %d %q %v", code, body, h)
	}
	// The file is read per request: a rebuilt shell is served without a reload.
	if err := os.WriteFile(shell, []byte("<!doctype html><p>SHELL-V2</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, body := get(t, "GET", base+"/y", "text/html"); body != "<!doctype html><p>SHELL-V2</p>" {
		t.Fatalf("after rebuild: %q", body)
	}
	// HEAD: the length, no body.
	code, h, body = get(t, "HEAD", base+"/y", "text/html")
	if code != 200 || body != "" || h.Get("Content-Length") != "30" {
		t.Fatalf("HEAD = %d %q %v", code, body, h)
	}
	// A file that disappears gives the bare 404.
	_ = os.Remove(shell)
	if code, _, _ := get(t, "GET", base+"/z", "text/html"); code != 404 {
		t.Fatalf("missing file = %d", code)
	}
}

func TestHeadersAndMethods(t *testing.T) {
	base := start(t, `{"port": 8080, "fallback": {"status": 503, "body": "maintenance", "headers": {"Retry-After": "120", "cache-control": "no-store"}}}`)
	for _, m := range []string{"GET", "POST", "DELETE"} {
		code, h, body := get(t, m, base+"/", "")
		if code != 503 || body != "maintenance" || h.Get("Retry-After") != "120" || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s = %d %q %v", m, code, body, h)
		}
	}
}

func TestValidatorsSinkStatuses(t *testing.T) {
	data, err := os.ReadFile("../../testdata/compat/validators_sink.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := config.Parse(data, config.FormatJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, d := server.Build(context.Background(), doc, server.BuildOptions{})
	want := map[int]bool{}
	for i, s := range doc.Sites {
		fb, ok := s["fallback"].(map[string]config.Node)
		if !ok {
			continue
		}
		if st, ok := config.Number(fb["status"]); ok && (st < 100 || st > 599) {
			want[i] = true
		}
	}
	if len(want) != 2 {
		t.Fatalf("expected the fixture to hold two bad fallback statuses, found %v", want)
	}
	for i := range want {
		path := config.Join(config.Index("sites", i), "fallback.status")
		found := false
		for _, e := range d.Errors() {
			if e.Path == path {
				found = true
			}
		}
		if !found {
			t.Errorf("no error at %s", path)
		}
	}
	for _, e := range d.Errors() {
		if strings.Contains(e.Path, "fallback") && !want[siteIndex(e.Path)] {
			t.Errorf("unexpected fallback error %v", e)
		}
	}
}

func siteIndex(path string) int {
	var i int
	if _, err := fmt.Sscanf(path, "sites[%d]", &i); err != nil {
		return -1
	}
	return i
}
