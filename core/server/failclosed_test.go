package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// This test binary links the proxy and no guard module, so every guard key below has its
// module missing, as on a minimal or custom build without it.

// guardCases are the keys that restrict access, where they sit in a config, and the feature
// that enforces them.
var guardCases = []struct {
	name, site, path, key, feature string
}{
	{"ipFilter", "ipFilter: {allow: [10.0.0.0/8]}", "sites[0].ipFilter", "ipFilter", "ipfilter"},
	{"site rateLimit", "rateLimit: {limit: 1, windowSecs: 60}", "sites[0].rateLimit", "rateLimit", "ratelimit"},
	{"consumers", "consumers: {consumers: [{username: a, apiKey: k}]}", "sites[0].consumers", "consumers", "consumers"},
	{"basicAuth", "basicAuth: {users: {a: b}}", "sites[0].basicAuth", "basicAuth", "basicauth"},
	{"apiKey", "apiKey: {keys: [k]}", "sites[0].apiKey", "apiKey", "apikey"},
	{"jwtAuth", "jwtAuth: {secret: s}", "sites[0].jwtAuth", "jwtAuth", "jwt"},
	{"forwardAuth", "forwardAuth: {url: http://127.0.0.1:1/auth}", "sites[0].forwardAuth", "forwardAuth", "forwardauth"},
	{"middleware script", "middleware: [{type: script, path: gate.go}]", "sites[0].middleware[0].type", `middleware type "script"`, "script"},
	{"middleware traefik", "middleware: [{type: traefik, path: plugins-local}]", "sites[0].middleware[0].type", `middleware type "traefik"`, "script"},
	{"route rateLimit in the proxy map", "proxy: {/api: {targets: [http://127.0.0.1:1], rateLimit: {limit: 1, windowSecs: 60}}}",
		"sites[0].proxy./api.rateLimit", "rateLimit", "ratelimit"},
	{"route rateLimit in routes[]", "routes: [{match: {path: /a/**}, proxy: {targets: [http://127.0.0.1:1], rateLimit: {limit: 1, windowSecs: 60}}}]",
		"sites[0].routes[0].proxy.rateLimit", "rateLimit", "ratelimit"},
}

func guardConfig(global, site string) string {
	return fmt.Sprintf("global: {%s}\nsites:\n  - host: api.example\n    port: 8080\n    %s\n", global, site)
}

// TestMissingGuardRefusesBuild: a guard key whose module is not compiled in is an error at
// its exact path naming the feature (the build, hence validate, start and reload, fails);
// global.allowMissingFeatures turns it into a warning naming the site left unguarded.
func TestMissingGuardRefusesBuild(t *testing.T) {
	for _, tc := range guardCases {
		t.Run(tc.name, func(t *testing.T) {
			g, d, err := servertest.Build(guardConfig("", tc.site), config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			errs := d.Errors()
			if g != nil || len(errs) != 1 || errs[0].Path != tc.path ||
				!strings.HasPrefix(errs[0].Message, fmt.Sprintf("%s restricts access but feature %q is ", tc.key, tc.feature)) ||
				!strings.Contains(errs[0].Message, "refusing to serve without it (") ||
				!strings.HasSuffix(errs[0].Message, fmt.Sprintf("list %q in global.allowMissingFeatures)", tc.feature)) {
				t.Fatalf("generation %v, errors %v; want one error at %s for feature %q", g != nil, errs, tc.path, tc.feature)
			}

			g, d, err = servertest.Build(guardConfig("allowMissingFeatures: ["+tc.feature+"]", tc.site), config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("global.allowMissingFeatures lists %q, so site api.example:8080 serves WITHOUT this guard", tc.feature)
			var dropped []config.Diagnostic
			for _, w := range d.Warnings() {
				if w.Path == tc.path && strings.HasSuffix(w.Message, want) {
					dropped = append(dropped, w)
				}
			}
			if g == nil || d.HasErrors() || len(dropped) != 1 {
				t.Fatalf("with allowMissingFeatures: errors %v, warnings %v; want the warning %q at %s", d.Errors(), d.Warnings(), want, tc.path)
			}
		})
	}
}

func TestAllowMissingFeaturesValidation(t *testing.T) {
	tests := []struct {
		name, global, site string
		wantErr            []string // "path: message prefix"
		wantWarn           string   // a warning message suffix, when set
	}{
		{"exact message for jwtAuth", "", "jwtAuth: {secret: s}",
			[]string{"sites[0].jwtAuth: jwtAuth restricts access but feature \"jwt\" is not compiled into this binary, so nothing would enforce it; refusing to serve without it (bundle \"standard\" has it, or build one with `xbuild --features jwt`; see `conduit features`; to drop the guard on purpose, list \"jwt\" in global.allowMissingFeatures)"}, ""},
		{"unknown feature name", "allowMissingFeatures: [jwtt]", "jwtAuth: {secret: s}",
			[]string{"global.allowMissingFeatures[0]: unknown feature \"jwtt\" (did you mean \"jwt\"?); features: ", "sites[0].jwtAuth: jwtAuth restricts access"}, ""},
		{"not a list", "allowMissingFeatures: jwt", "proxy: http://127.0.0.1:1",
			[]string{"global.allowMissingFeatures: "}, ""},
		{"a feature of another guard does not allow this one", "allowMissingFeatures: [apikey]", "jwtAuth: {secret: s}",
			[]string{"sites[0].jwtAuth: jwtAuth restricts access"}, ""},
		{"an alias names its feature (rhai is script)", "allowMissingFeatures: [rhai]", "middleware: [{type: script, path: gate.go}]",
			nil, `middleware type "script" restricts access but feature "script" is not compiled into this binary; global.allowMissingFeatures lists "script", so site api.example:8080 serves WITHOUT this guard`},
		{"a behaviour key stays a warning", "", "compression: true",
			nil, "compression is configured but feature \"compress\" is not compiled into this binary (bundle \"minimal\" has it, or build one with `xbuild --features compress`; see `conduit features`); ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, d, err := servertest.Build(guardConfig(tt.global, tt.site), config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			errs := d.Errors()
			if len(errs) != len(tt.wantErr) || (len(errs) > 0) != (g == nil) {
				t.Fatalf("generation %v, errors %v; want %q", g != nil, errs, tt.wantErr)
			}
			for i, want := range tt.wantErr {
				if got := errs[i].Path + ": " + errs[i].Message; !strings.HasPrefix(got, want) {
					t.Errorf("error %d = %q, want prefix %q", i, got, want)
				}
			}
			if tt.wantWarn != "" {
				w := d.Warnings()
				if len(w) != 1 || w[0].Message != tt.wantWarn {
					t.Errorf("warnings %v, want %q", w, tt.wantWarn)
				}
			}
		})
	}
}

// TestMissingGuardReloadRefused serves a config, then reloads one that adds jwtAuth (not
// compiled in) through Server.Reload and the Admin API: both are refused with the error, and
// the running generation keeps answering over its socket. Allowing the feature explicitly
// lets the reload through, with the dropped guard in the warnings.
func TestMissingGuardReloadRefused(t *testing.T) {
	upstream := func(body string) *httptest.Server {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
		t.Cleanup(up.Close)
		return up
	}
	a, b := upstream("a"), upstream("b")
	cfg := filepath.Join(t.TempDir(), "conduit.yaml")
	write := func(global, site string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(guardConfig(global, site)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("", "proxy: "+a.URL)
	srv, api := startWithAdmin(t, cfg)
	get := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+srv.Addr(8080).String()+"/", nil)
		req.Host = "api.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	adminReload := func() (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+api.Addr().String()+"/reload", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if got := get(); got != "200 a" {
		t.Fatalf("before reload: %s", got)
	}
	running := srv.Current()

	write("", "jwtAuth: {secret: s}\n    proxy: "+b.URL)
	const refusal = `error at sites[0].jwtAuth: jwtAuth restricts access but feature \"jwt\" is not compiled into this binary`
	if _, err := srv.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), strings.ReplaceAll(refusal, `\"`, `"`)) {
		t.Fatalf("Reload: %v", err)
	}
	if code, body := adminReload(); code != 400 || !strings.Contains(body, refusal) {
		t.Fatalf("POST /reload: %d %s", code, body)
	}
	if got := get(); got != "200 a" || srv.Current() != running {
		t.Fatalf("after refused reloads: %s (generation replaced: %v), want the running generation", got, srv.Current() != running)
	}

	write("allowMissingFeatures: [jwt]", "jwtAuth: {secret: s}\n    proxy: "+b.URL)
	code, body := adminReload()
	if code != 200 || !strings.Contains(body, `global.allowMissingFeatures lists \"jwt\", so site api.example:8080 serves WITHOUT this guard`) {
		t.Fatalf("POST /reload with the feature allowed: %d %s", code, body)
	}
	if got := get(); got != "200 b" {
		t.Fatalf("after the allowed reload: %s", got)
	}
}

// startWithAdmin serves the config file cfgPath on loopback listeners with the Admin API on
// a free loopback port; both stop when the test ends.
func startWithAdmin(t *testing.T, cfgPath string) (*server.Server, *admin.API) {
	t.Helper()
	srv := server.New(server.Options{Listen: servertest.Ephemeral})
	g, d, err := server.LoadAndBuild(context.Background(), cfgPath, srv.BuildOptions())
	if err != nil || d.HasErrors() {
		t.Fatal(err, d.Err())
	}
	if err := srv.Start(g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	api, err := admin.Start("127.0.0.1:0", admin.Options{Server: srv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close(context.Background()) })
	return srv, api
}

// TestMisspeltGuardIsAnError: an unknown site key whose nearest known key is a guard is an
// error (the site would otherwise serve unguarded); other unknown keys stay warnings.
func TestMisspeltGuardIsAnError(t *testing.T) {
	for _, tc := range []struct {
		key   string
		isErr bool
	}{
		{"jwtAuht", true}, {"apikey", true}, {"basicauth", true}, {"ipFiltr", true}, {"forwardAuht", true},
		{"rateLimits", true}, {"consumer", true},
		{"compresion", false}, {"securityHeader", false}, {"zzzz", false},
	} {
		_, d, err := servertest.Build("sites:\n  - port: 8080\n    "+tc.key+": {}\n", config.FormatYAML)
		if err != nil {
			t.Fatal(err)
		}
		path := "sites[0]." + tc.key
		gotErr, gotWarn := false, false
		for _, e := range d.Errors() {
			gotErr = gotErr || e.Path == path
		}
		for _, w := range d.Warnings() {
			gotWarn = gotWarn || w.Path == path
		}
		if gotErr != tc.isErr || gotWarn == tc.isErr {
			t.Errorf("%s: error %v warning %v, want error %v", tc.key, gotErr, gotWarn, tc.isErr)
		}
	}
}

// TestModuleKeyInsideACoreBlock: a key a module owns inside a core block (tls.acme) is
// reported like a top-level key when the module is not compiled in (this test binary has no
// acme module), with no module name written into the core.
func TestModuleKeyInsideACoreBlock(t *testing.T) {
	_, d, err := servertest.Build("sites:\n  - host: a.test\n    port: 8443\n    tls: { acme: { email: a@a.test } }\n", config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range append(d.Warnings(), d.Errors()...) {
		if w.Path == "sites[0].tls.acme" && strings.Contains(w.Message, `feature "acme"`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no diagnostic at sites[0].tls.acme naming the feature: %v %v", d.Warnings(), d.Errors())
	}
}
