package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = "../.."

// adviceConfigs returns one config per catalog key (and per store scheme) using that key,
// plus one config using every key at once, as JSON by name.
func adviceConfigs(t *testing.T) map[string]map[string]any {
	t.Helper()
	site := map[string]any{}
	route := map[string]any{}
	global := map[string]any{}
	var routes []any
	out := map[string]map[string]any{}
	for _, e := range core.CatalogEntries() {
		doc := map[string]any{}
		switch {
		case e.Key == "tls.acme":
			doc["tls"] = map[string]any{"acme": map[string]any{}}
			site["tls"] = doc["tls"]
		case strings.HasPrefix(e.Key, "global."):
			k := strings.TrimPrefix(e.Key, "global.")
			doc["global"] = map[string]any{k: map[string]any{}}
			doc["sites"] = []any{map[string]any{"port": 8080}}
			global[k] = map[string]any{}
		case strings.HasPrefix(e.Key, "route."):
			k := strings.TrimPrefix(e.Key, "route.")
			doc["proxy"] = map[string]any{"/a": map[string]any{k: map[string]any{}}}
			route[k] = map[string]any{}
		case strings.HasPrefix(e.Key, "handler."):
			entry := map[string]any{"match": map[string]any{"path": "/r"}, strings.TrimPrefix(e.Key, "handler."): map[string]any{}}
			doc["routes"] = []any{entry}
			routes = append(routes, entry)
		default:
			doc[e.Key] = map[string]any{}
			site[e.Key] = map[string]any{}
		}
		out[e.Key] = doc
	}
	for _, scheme := range core.CatalogStoreSchemes() {
		out["store "+scheme] = map[string]any{"rateLimit": map[string]any{"store": scheme + "://127.0.0.1:6379"}}
	}
	site["proxy"] = map[string]any{"/a": route}
	site["routes"] = routes
	out["every key"] = map[string]any{"global": global, "sites": []any{site}}
	return out
}

// xbuildLine finds the xbuild command lines quoted in a message.
var xbuildLine = regexp.MustCompile("`(xbuild [^`]*)`")

// TestEveryAdviceBuilds collects every xbuild line Conduit can print: the `build:` line of
// `conduit features -c` for a config using each catalog key (and all of them at once) in a
// binary that lacks every module, and the line in each not-compiled warning or error. Each
// one runs through `xbuild --dry-run` against this repository's bundles, which resolves the
// bundle and feature names exactly as a build does; a line xbuild would reject fails the test.
func TestEveryAdviceBuilds(t *testing.T) {
	lines := map[string]string{} // xbuild line → where it was printed
	for name, doc := range adviceConfigs(t) {
		src, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		d, err := config.Parse(src, config.FormatJSON, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rep := analyzeWith(d, fakeRegistry())
		lines[rep.Build] = "conduit features for " + name
		if len(rep.Unknown) > 0 {
			t.Errorf("%s: unknown keys %q", name, rep.Unknown)
		}
	}
	for _, e := range core.CatalogEntries() {
		var d config.Diagnostics
		core.ReportNotCompiled(&d, e.Key, e.Key, core.MissingPolicy{})
		for _, diag := range append(d.Errors(), d.Warnings()...) {
			m := xbuildLine.FindAllStringSubmatch(diag.Message, -1)
			if e.Available() != (len(m) == 1) {
				t.Errorf("%s: message %q has %d xbuild lines; available in a bundle: %v", e.Key, diag.Message, len(m), e.Available())
			}
			for _, sub := range m {
				lines[sub[1]] = "the message for " + e.Key
			}
		}
	}
	for _, f := range core.CatalogFeatures() {
		remedy := core.FeatureRemedy(f.Name)
		for _, sub := range xbuildLine.FindAllStringSubmatch(remedy, -1) {
			lines[sub[1]] = "the remedy for feature " + f.Name
		}
	}

	// Every feature some bundle has is covered by at least one line; no other is named.
	named := map[string]bool{}
	for line := range lines {
		if _, list, ok := strings.Cut(line, "--features "); ok {
			for _, f := range strings.Split(strings.Fields(list)[0], ",") {
				named[f] = true
			}
		}
	}
	for _, f := range core.CatalogFeatures() {
		if (f.Bundle != "") != named[f.Name] {
			t.Errorf("feature %s (bundle %q): named in advice %v", f.Name, f.Bundle, named[f.Name])
		}
	}

	bin := buildXbuild(t)
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(lines))
	for l := range lines {
		keys = append(keys, l)
	}
	sort.Strings(keys)
	for _, line := range keys {
		args := strings.Fields(line)
		if args[0] != "xbuild" {
			t.Errorf("%s prints %q, not an xbuild command", lines[line], line)
			continue
		}
		args = append(slices.Clone(args[1:]), "--dry-run", "--core", root)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("%s prints %q, which xbuild rejects: %v\n%s", lines[line], line, err, out)
		}
	}
	t.Logf("%d distinct xbuild lines checked", len(keys))
}

// buildXbuild builds cmd/xbuild into a temporary directory.
func buildXbuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "xbuild")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/xbuild")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build xbuild: %v\n%s", err, out)
	}
	return bin
}
