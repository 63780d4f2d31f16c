package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// fakeRegistry is a registry view holding the given modules, independent of whatever the
// test binary links.
func fakeRegistry(mods ...*core.Module) registryView {
	find := func(keys func(*core.Module) []string) func(string) (*core.Module, bool) {
		return func(k string) (*core.Module, bool) {
			for _, m := range mods {
				if slices.Contains(keys(m), k) {
					return m, true
				}
			}
			return nil, false
		}
	}
	return registryView{
		site:       find(func(m *core.Module) []string { return m.SiteKeys }),
		global:     find(func(m *core.Module) []string { return m.GlobalKeys }),
		route:      find(func(m *core.Module) []string { return m.RouteKeys }),
		handler:    find(func(m *core.Module) []string { return m.HandlerKeys }),
		middleware: find(func(m *core.Module) []string { return m.MiddlewareTypes }),
		features: func() []string {
			var out []string
			for _, m := range mods {
				out = append(out, m.Feature)
			}
			return out
		},
	}
}

var (
	modProxy = &core.Module{ID: "http.handlers.proxy", Feature: "proxy", Package: coreModulePath + "/modules/proxy",
		SiteKeys: []string{"proxy", "requestTransform"}, HandlerKeys: []string{"proxy"}}
	modStatic = &core.Module{ID: "http.handlers.static", Feature: "static", Package: coreModulePath + "/modules/static",
		SiteKeys: []string{"static", "staticOptions"}, HandlerKeys: []string{"static"}}
	modRateLimit = &core.Module{ID: "http.guards.ratelimit", Feature: "ratelimit", Package: coreModulePath + "/modules/ratelimit",
		SiteKeys: []string{"rateLimit"}, RouteKeys: []string{"rateLimit"}}
	modJWT = &core.Module{ID: "http.auth.jwt", Feature: "jwt", Package: coreModulePath + "/modules/auth/jwt",
		SiteKeys: []string{"jwtAuth"}}
	// modGateway is a third-party module whose site key holds route objects (as the
	// proxy's does), so the analyzer looks inside it for route keys and store URLs.
	modGateway = &core.Module{ID: "http.handlers.gateway", Feature: "gateway", Package: "example.com/conduit-gateway",
		SiteKeys: []string{"gateway"}, RouteMapKeys: []string{"gateway"}}
	modGeoIP = &core.Module{ID: "http.guards.geoip", Feature: "geoip", Package: "example.com/conduit-geoip",
		SiteKeys: []string{"geoip"}}
)

func TestAnalyzeConfig(t *testing.T) {
	minimalBinary := fakeRegistry(modProxy, modStatic, modRateLimit)
	tests := []struct {
		name     string
		config   string
		reg      registryView
		required []string
		bundle   string
		build    string
		missing  []string
		unknown  []string
		paths    map[string][]string // feature → paths, checked when set
		// unavailable are the features no build of this version has.
		unavailable []string
	}{
		{
			name:     "minimal only",
			config:   `{"port": 8080, "proxy": "http://127.0.0.1:4000", "static": "./public"}`,
			reg:      minimalBinary,
			required: []string{"proxy", "static"},
			bundle:   "minimal",
			build:    "xbuild --bundle minimal",
			missing:  []string{},
		},
		{
			name:     "empty config",
			config:   `{}`,
			reg:      minimalBinary,
			required: []string{},
			bundle:   "minimal",
			build:    "xbuild --bundle minimal",
			missing:  []string{},
		},
		{
			name:     "standard feature missing from this binary",
			config:   `{"port": 8080, "proxy": "http://b", "jwtAuth": {"secret": "x"}}`,
			reg:      minimalBinary,
			required: []string{"jwt", "proxy"},
			bundle:   "standard",
			build:    "xbuild --features jwt",
			missing:  []string{"jwt"},
		},
		{
			name:     "standard feature compiled in",
			config:   `{"proxy": "http://b", "jwtAuth": {"secret": "x"}}`,
			reg:      fakeRegistry(modProxy, modJWT),
			required: []string{"jwt", "proxy"},
			bundle:   "standard",
			build:    "xbuild --features jwt",
			missing:  []string{},
		},
		{
			name: "route keys and redis store in the proxy map",
			config: `{"proxy": {"/api": {"targets": ["http://b"], "cache": {"store": "memory"},
			          "rateLimit": {"limit": 5, "windowSecs": 1, "store": "redis://r:6379"}}, "/x": "http://c"}}`,
			reg:      minimalBinary,
			required: []string{"cache", "proxy", "ratelimit", "redis"},
			bundle:   "full",
			build:    "xbuild --features cache,redis",
			missing:  []string{"cache", "redis"},
			paths: map[string][]string{
				"cache": {"proxy./api.cache"},
				"redis": {"proxy./api.rateLimit.store"},
			},
		},
		{
			name:     "tls.acme and global otlp in the full shape",
			config:   `{"global": {"otlp": {"endpoint": "http://o"}, "workers": 2}, "sites": [{"host": "a.example", "tls": {"acme": {"email": "a@b.c"}}, "proxy": "http://b"}]}`,
			reg:      minimalBinary,
			required: []string{"acme", "otlp", "proxy"},
			bundle:   "full",
			build:    "xbuild --features acme,otlp",
			missing:  []string{"acme", "otlp"},
			paths: map[string][]string{
				"acme": {"sites[0].tls.acme"},
				"otlp": {"global.otlp"},
			},
		},
		{
			name:     "routes entries",
			config:   `{"routes": [{"match": {"path": "/a/**"}, "proxy": {"targets": ["http://b"], "cache": {}}}, {"match": {"path": "/s"}, "static": "./s"}]}`,
			reg:      fakeRegistry(modProxy),
			required: []string{"cache", "proxy", "static"},
			bundle:   "standard",
			build:    "xbuild --features cache",
			missing:  []string{"cache", "static"},
			paths: map[string][]string{
				"proxy":  {"routes[0].proxy"},
				"static": {"routes[1].static"},
				"cache":  {"routes[0].proxy.cache"},
			},
		},
		{
			name:     "third-party module",
			config:   `{"proxy": "http://b", "geoip": {"allow": ["FR"]}}`,
			reg:      fakeRegistry(modProxy, modGeoIP),
			required: []string{"geoip", "proxy"},
			bundle:   "minimal",
			build:    "xbuild --bundle minimal --with example.com/conduit-geoip",
			missing:  []string{},
		},
		{
			name:     "route objects inside a third-party key its registration marks as a route map",
			config:   `{"gateway": {"/a": {"cache": {"store": "disk:/tmp/c"}, "rateLimit": {"limit": 1, "windowSecs": 1, "store": "rediss://r:6379"}}}}`,
			reg:      fakeRegistry(modGateway),
			required: []string{"cache", "diskcache", "gateway", "ratelimit", "redis"},
			bundle:   "full",
			build:    "xbuild --features cache,diskcache,redis --with example.com/conduit-gateway",
			missing:  []string{"cache", "diskcache", "ratelimit", "redis"},
			paths: map[string][]string{
				"cache":     {"gateway./a.cache"},
				"diskcache": {"gateway./a.cache.store"},
				"redis":     {"gateway./a.rateLimit.store"},
			},
		},
		{
			name:     "unknown key is reported, not required",
			config:   `[{"port": 1, "proxy": "http://b", "jwtAuht": {}}]`,
			reg:      minimalBinary,
			required: []string{"proxy"},
			bundle:   "minimal",
			build:    "xbuild --bundle minimal",
			missing:  []string{},
			unknown:  []string{"sites[0].jwtAuht"},
		},
		{
			name:     "full-only site keys",
			config:   `{"tcp": {}, "upload": {"path": "/u"}, "faultInjection": {}, "middleware": [{"type": "wasm", "path": "a.wasm"}, {"type": "script", "path": "a.go"}]}`,
			reg:      minimalBinary,
			required: []string{"faults", "script", "tcp", "upload", "wasm"},
			bundle:   "full",
			build:    "xbuild --features faults,script,tcp,upload,wasm",
			missing:  []string{"faults", "script", "tcp", "upload", "wasm"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := config.Parse([]byte(tt.config), config.FormatJSON, nil)
			if err != nil {
				t.Fatal(err)
			}
			rep := analyzeWith(doc, tt.reg)
			if !reflect.DeepEqual(rep.Required, tt.required) {
				t.Errorf("required = %q, want %q", rep.Required, tt.required)
			}
			if rep.Bundle != tt.bundle {
				t.Errorf("bundle = %q, want %q", rep.Bundle, tt.bundle)
			}
			if rep.Build != tt.build {
				t.Errorf("build = %q, want %q", rep.Build, tt.build)
			}
			if !reflect.DeepEqual(rep.Missing, tt.missing) {
				t.Errorf("missing = %q, want %q", rep.Missing, tt.missing)
			}
			if !reflect.DeepEqual(rep.Unknown, tt.unknown) {
				t.Errorf("unknown = %q, want %q", rep.Unknown, tt.unknown)
			}
			if !reflect.DeepEqual(rep.Unavailable, tt.unavailable) {
				t.Errorf("unavailable = %q, want %q", rep.Unavailable, tt.unavailable)
			}
			for feature, want := range tt.paths {
				var got []string
				for _, u := range rep.Uses {
					if u.Feature == feature {
						got = u.Paths
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("paths of %s = %q, want %q", feature, got, want)
				}
			}
		})
	}
}

// TestAnalyzeCompatCorpus checks that every catalog feature the corpus uses is found, with
// no unknown key except the deliberate typo of kitchen_sink.json.
func TestAnalyzeCompatCorpus(t *testing.T) {
	files, err := filepath.Glob("../../testdata/compat/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("compat corpus missing: no testdata/compat/*.yaml (%v)", err)
	}
	files = append(files, "../../testdata/compat/kitchen_sink.json")
	for _, f := range files {
		doc, err := config.LoadFile(f, func(string) (string, bool) { return "x", true })
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		rep := analyzeWith(doc, fakeRegistry())
		for _, u := range rep.Unknown {
			if !strings.HasSuffix(u, "jwtAuht") {
				t.Errorf("%s: unexpected unknown key %s", filepath.Base(f), u)
			}
		}
		if !strings.HasPrefix(rep.Build, "xbuild ") {
			t.Errorf("%s: build = %q", filepath.Base(f), rep.Build)
		}
		if filepath.Base(f) == "redis-rate-limit.yaml" && (rep.Bundle != "full" || !slices.Contains(rep.Required, "redis")) {
			t.Errorf("redis-rate-limit.yaml: bundle %q, required %q; want full with redis", rep.Bundle, rep.Required)
		}
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr, LookupEnv: func(string) (string, bool) { return "", false }, Dir: t.TempDir()}
	code := Run(env, args)
	return code, stdout.String(), stderr.String()
}

func TestFeaturesCommandBinary(t *testing.T) {
	code, out, errOut := runCLI(t, "features", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc binaryJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if len(doc.Modules) != len(core.Modules()) || doc.Version == "" || doc.Features == nil {
		t.Errorf("modules %d (want %d), version %q, features %v", len(doc.Modules), len(core.Modules()), doc.Version, doc.Features)
	}
	for _, m := range doc.Modules {
		if m.Package == "" || m.Feature == "" || m.ID == "" {
			t.Errorf("incomplete module entry %+v", m)
		}
	}
	code, out, _ = runCLI(t, "features")
	if code != 0 || !strings.Contains(out, "modules") {
		t.Errorf("text form: exit %d, %q", code, out)
	}
}

func TestFeaturesCommandConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// No test binary links a JWT module, so this config needs something it lacks.
	needsJWT := write("jwt.yaml", "port: 8080\njwtAuth:\n  secret: $JWT_SECRET\n")
	code, out, errOut := runCLI(t, "features", "-c", needsJWT, "--json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (binary lacks jwt); stderr %s", code, errOut)
	}
	var rep configReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if !slices.Contains(rep.Missing, "jwt") || rep.Bundle != "standard" || rep.Build != "xbuild --features jwt" {
		t.Errorf("report = %+v", rep)
	}
	code, out, _ = runCLI(t, "features", "--config", needsJWT)
	if code != 1 || !strings.Contains(out, "build: xbuild --features jwt") || !strings.Contains(out, "NOT IN THIS BINARY") {
		t.Errorf("text form: exit %d\n%s", code, out)
	}

	// A feature with other names (the original's) lists them.
	scripted := write("script.yaml", "port: 8080\nmiddleware:\n  - {type: script, path: gate.go}\n")
	code, out, _ = runCLI(t, "features", "-c", scripted)
	for _, want := range []string{
		"  script       full       middleware[0].type  NOT IN THIS BINARY (also: rhai, script-rhai)\n",
		"build: xbuild --features script\n",
	} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("aliased feature: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}

	// A config using only core keys needs nothing.
	bare := write("bare.json", `{"port": 8080, "host": "a.example"}`)
	code, out, errOut = runCLI(t, "features", "-c", bare, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Required) != 0 || rep.Missing == nil {
		t.Errorf("report %s (err %v)", out, err)
	}

	code, _, errOut = runCLI(t, "features", "-c", filepath.Join(dir, "absent.yaml"))
	if code != 1 || errOut == "" {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	code, _, _ = runCLI(t, "features", "extra")
	if code != 1 {
		t.Errorf("extra argument: exit %d", code)
	}
}

func TestWithArg(t *testing.T) {
	m := &core.Module{ID: "x", Feature: "x", Package: "example.com/nowhere/sub"}
	if got := withArg(m); got != "example.com/nowhere/sub" {
		t.Errorf("withArg without build info = %q", got)
	}
}
