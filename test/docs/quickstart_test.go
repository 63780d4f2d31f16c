package docs_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/testtool"
)

// startQuickstart serves examples/quickstart.yaml as `make run` does (from examples/), with
// its ports 8080 and 8081 moved to free ones, and returns the base URL of the front site.
func startQuickstart(t *testing.T) string {
	t.Helper()
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(examples, "quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	front, back := strconv.Itoa(testtool.FreePort(t)), strconv.Itoa(testtool.FreePort(t))
	text := strings.NewReplacer("8080", front, "8081", back).Replace(string(src))
	t.Chdir(examples)
	doc, err := config.Parse([]byte(text), config.FormatYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, d := server.Build(context.Background(), doc, server.BuildOptions{})
	if d.HasErrors() || len(d.Warnings()) > 0 {
		t.Fatalf("quickstart.yaml: errors %v, warnings %v", d.Errors(), d.Warnings())
	}
	srv := server.New(server.Options{BindHost: "127.0.0.1"})
	if err := srv.Start(g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://127.0.0.1:" + front
}

// TestQuickstartHeaders checks that the quickstart does what its comments say: `headers`
// reaches every response, `responseTransform` only the proxied /api ones (docs/proxy.md,
// "Response transform").
func TestQuickstartHeaders(t *testing.T) {
	base := startQuickstart(t)
	client := &http.Client{Timeout: 5 * time.Second}
	tests := []struct {
		name, path, accept string
		status             int
		transformed        bool // responseTransform's Cache-Control: no-store is expected
	}{
		{"static page", "/style.css", "", 200, false},
		{"proxied api", "/api/hello.json", "", 200, true},
		{"proxied api 404", "/api/nope.json", "", 404, true},
		{"fallback page", "/nope", "text/html", 404, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("GET %s: status %d, want %d", tt.path, resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("X-Powered-By"); got != "Conduit" {
				t.Errorf("GET %s: X-Powered-By %q, want Conduit on every response", tt.path, got)
			}
			if got := resp.Header.Get("Cache-Control"); (got == "no-store") != tt.transformed {
				t.Errorf("GET %s: Cache-Control %q; responseTransform applied: %v, want %v", tt.path, got, got == "no-store", tt.transformed)
			}
		})
	}
}
