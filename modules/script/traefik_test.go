package script_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// stampDir is the example plugin of plugins/, in Traefik's plugins-local layout.
const stampDir = "../../plugins/plugins-local/src/github.com/conduitproxy/conduit-plugin-stamp"

// TestTraefikPlugin runs the example plugin unchanged through a real Conduit, with a nested
// config decoded weakly typed as Traefik does ("403" into an int, "a,b" into a list).
func TestTraefikPlugin(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, `
  - type: traefik
    path: `+stampDir+`
    config:
      requestHeaders: {X-Tenant: acme}
      deny: {paths: "/admin,/private", status: "451"}
      rules:
        - {prefix: /api, header: X-Order, value: api}
        - {prefix: /, header: X-Order, value: root}
  - {type: script, path: testdata/scripts/tagged.go, config: {tag: after}}
`))
	tests := []struct {
		name, path string
		status     int
		body       string
		order      string
	}{
		{"nested rules and request headers", "/api/x", 200, "GET /api/x", "api,root,after"},
		{"one rule", "/other", 200, "GET /other", "root,after"},
		{"denied path, status decoded from a string", "/private", 451, "refused by middleware[0]\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := servertest.Get(t, srv.URL(8080)+tt.path)
			if rep.Status != tt.status || rep.Body != tt.body {
				t.Fatalf("got %d %q, want %d %q", rep.Status, rep.Body, tt.status, tt.body)
			}
			if got := strings.Join(rep.Header.Values("X-Order"), ","); got != tt.order {
				t.Errorf("X-Order %q, want %q", got, tt.order)
			}
			if tt.status == 200 && rep.Header.Get("X-Got-Tenant") != "acme" {
				t.Errorf("upstream saw X-Tenant %q", rep.Header.Get("X-Got-Tenant"))
			}
		})
	}
}

// TestTraefikPluginAutoDetected: a script path holding .traefik.yml is loaded as a plugin.
func TestTraefikPluginAutoDetected(t *testing.T) {
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, `
  - {type: script, path: `+stampDir+`, config: {requestHeaders: {X-Tenant: auto}}}
`))
	if rep := servertest.Get(t, srv.URL(8080)+"/"); rep.Header.Get("X-Got-Tenant") != "auto" {
		t.Fatalf("got %d %v", rep.Status, rep.Header)
	}
}

// TestTraefikPluginNewError: an error from the plugin's New is a config error at the entry.
func TestTraefikPluginNewError(t *testing.T) {
	_, d, err := servertest.Build("port: 8080\nmiddleware:\n  - {type: traefik, path: "+stampDir+", config: {deny: {status: 7}}}\n", config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	errs := d.Errors()
	if len(errs) != 1 || errs[0].Path != "middleware[0].path" || !strings.Contains(errs[0].Message, "deny.status 7 is not an HTTP status") {
		t.Fatalf("errors %v", errs)
	}
}

// pluginHead is the start of the test plugins' source: their package, imports, Config and
// CreateConfig (10 lines; New and the rest follow).
const pluginHead = `package gopanic

import (
	"context"
	"net/http"
)

type Config struct{}

func CreateConfig() *Config { return &Config{} }
`

// writePlugin writes a one-file plugin in Traefik's plugins-local layout under a temp dir and
// returns its directory.
func writePlugin(t *testing.T, src string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src", "example.org", "gopanic")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		".traefik.yml": "displayName: Go panic\ntype: middleware\nimport: example.org/gopanic\nbasePkg: gopanic\n",
		"go.mod":       "module example.org/gopanic\n\ngo 1.22\n",
		"gopanic.go":   src,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestTraefikPluginGoroutinePanic: through a real Conduit, a plugin whose background
// goroutine (started in New, as plugins that refresh state do) panics does not end the
// process; and a compile error names the plugin's file on disk.
func TestTraefikPluginGoroutinePanic(t *testing.T) {
	dir := writePlugin(t, pluginHead+`
func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	go func() { refresh() }()
	return next, nil
}

func refresh() { var s []int; _ = s[1] }
`)
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: traefik, path: "+dir+"}\n"))
	for range 3 {
		if rep := servertest.Get(t, srv.URL(8080)+"/x"); rep.Status != 200 || rep.Body != "GET /x" {
			t.Fatalf("got %d %q", rep.Status, rep.Body)
		}
	}
	broken := writePlugin(t, "package gopanic\n\nfunc CreateConfig() int { return undefinedThing }\n")
	_, d, err := servertest.Build("port: 8080\nmiddleware:\n  - {type: traefik, path: "+broken+"}\n", config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if errs := d.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Message, filepath.Join(broken, "gopanic.go")+":3:") {
		t.Fatalf("errors %v, want one naming %s", errs, filepath.Join(broken, "gopanic.go"))
	}
}

// TestTraefikPluginUnguardedMapWarning: validate warns about a plugin that writes a
// package-level map without sync, and still builds it.
func TestTraefikPluginUnguardedMapWarning(t *testing.T) {
	dir := writePlugin(t, pluginHead+`
var seen = map[string]bool{}

func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen[r.URL.Path] = true
		next.ServeHTTP(w, r)
	}), nil
}
`)
	_, d, err := servertest.Build("port: 8080\nmiddleware:\n  - {type: traefik, path: "+dir+"}\n", config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	if errs := d.Errors(); len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	if ws := d.Warnings(); len(ws) != 1 || !strings.Contains(ws[0].Message, "gopanic.go:16: seen writes a package-level map and the plugin does not import sync") {
		t.Fatalf("warnings %v", ws)
	}
}

// TestTraefikPluginThroughSymlink: a plugin whose directory in plugins-local is a symbolic
// link to where it is developed loads, as it did when yaegi read the disk itself.
func TestTraefikPluginThroughSymlink(t *testing.T) {
	real := writePlugin(t, pluginHead+`
func New(ctx context.Context, next http.Handler, cfg *Config, name string) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Linked", "yes")
		next.ServeHTTP(w, r)
	}), nil
}
`)
	gopath := t.TempDir()
	link := filepath.Join(gopath, "src", "example.org", "gopanic")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	up := echo(t)
	srv := servertest.Start(t, site(up.URL, "  - {type: traefik, path: "+link+"}\n"))
	if rep := servertest.Get(t, srv.URL(8080)+"/l"); rep.Status != 200 || rep.Header.Get("X-Linked") != "yes" {
		t.Fatalf("got %d %v", rep.Status, rep.Header)
	}
}
