package xbuild

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseWith(t *testing.T) {
	dir := filepath.FromSlash("/work/repo")
	if filepath.VolumeName(os.TempDir()) != "" {
		dir = `C:\work\repo`
	}
	tests := []struct {
		arg     string
		want    Plugin
		wantErr string
	}{
		{"example.com/a", Plugin{Module: "example.com/a"}, ""},
		{"example.com/a@v1.2.3", Plugin{Module: "example.com/a", Version: "v1.2.3"}, ""},
		{"example.com/a=./plugins/a", Plugin{Module: "example.com/a", Replace: filepath.Join(dir, "plugins", "a")}, ""},
		{"example.com/a@v1.0.0=../fork", Plugin{Module: "example.com/a", Version: "v1.0.0", Replace: filepath.Join(filepath.Dir(dir), "fork")}, ""},
		{"example.com/a=example.com/fork@v1.1.0", Plugin{Module: "example.com/a", Replace: "example.com/fork@v1.1.0"}, ""},
		// The last '@' before '=' splits the version; an '@' in the replacement stays there.
		{"example.com/@scope/a@v2.0.0=./x@y", Plugin{Module: "example.com/@scope/a", Version: "v2.0.0", Replace: filepath.Join(dir, "x@y")}, ""},
		{"example.com/a=" + filepath.Join(dir, "abs"), Plugin{Module: "example.com/a", Replace: filepath.Join(dir, "abs")}, ""},
		{"", Plugin{}, "module path is required"},
		{"@v1", Plugin{}, "module path is required"},
		{"example.com/a@", Plugin{}, "empty version"},
		{"example.com/a=", Plugin{}, "empty replacement"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			got, err := ParseWith(tt.arg, dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skip("not inside the repository")
	}
	return root
}

// TestBundleConvention checks every maybe_*.go of this repository's bundles: one blank
// import, the matching omit tag, no feature in two bundles, and an importable package.
func TestBundleConvention(t *testing.T) {
	root := repoRoot(t)
	set, err := LoadFeatures(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range set.All() {
		rel := strings.TrimPrefix(f.Package, CoreModule+"/")
		if rel == f.Package {
			t.Errorf("%s imports %s, outside the core module", f.File, f.Package)
			continue
		}
		if st, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err != nil || !st.IsDir() {
			t.Errorf("%s imports %s, which is not a directory of this repository", f.File, f.Package)
		}
	}
	t.Logf("features: %s", strings.Join(set.Names(), ", "))
}

func TestLoadFeaturesErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"ok", map[string]string{
			"minimal/maybe_a.go":  "//go:build !conduit_omit_a\n\npackage minimal\n\nimport _ \"example.com/a\"\n",
			"standard/maybe_b.go": "//go:build !conduit_omit_b\n\n// Feature b is also known as old-b.\n//conduit:alias old-b\n//conduit:alias bee\npackage standard\n\nimport _ \"example.com/b\"\n",
		}, ""},
		{"wrong tag", map[string]string{
			"minimal/maybe_a.go": "//go:build !conduit_omit_b\n\npackage minimal\n\nimport _ \"example.com/a\"\n",
		}, "needs the build constraint `//go:build !conduit_omit_a`"},
		{"no tag", map[string]string{
			"minimal/maybe_a.go": "package minimal\n\nimport _ \"example.com/a\"\n",
		}, "needs the build constraint"},
		{"named import", map[string]string{
			"minimal/maybe_a.go": "//go:build !conduit_omit_a\n\npackage minimal\n\nimport a \"example.com/a\"\n\nvar _ = a.X\n",
		}, "exactly one blank import"},
		{"two imports", map[string]string{
			"minimal/maybe_a.go": "//go:build !conduit_omit_a\n\npackage minimal\n\nimport (\n\t_ \"example.com/a\"\n\t_ \"example.com/b\"\n)\n",
		}, "exactly one blank import"},
		{"alias clash", map[string]string{
			"minimal/maybe_a.go":  "//go:build !conduit_omit_a\n\n//conduit:alias x\npackage minimal\n\nimport _ \"example.com/a\"\n",
			"standard/maybe_b.go": "//go:build !conduit_omit_b\n\n//conduit:alias x\npackage standard\n\nimport _ \"example.com/b\"\n",
		}, `alias "x" names both`},
		{"alias is a feature", map[string]string{
			"minimal/maybe_a.go":  "//go:build !conduit_omit_a\n\n//conduit:alias b\npackage minimal\n\nimport _ \"example.com/a\"\n",
			"standard/maybe_b.go": "//go:build !conduit_omit_b\n\npackage standard\n\nimport _ \"example.com/b\"\n",
		}, `alias "b" of feature "a" is itself a feature`},
		{"bad alias", map[string]string{
			"minimal/maybe_a.go": "//go:build !conduit_omit_a\n\n//conduit:alias x y\npackage minimal\n\nimport _ \"example.com/a\"\n",
		}, "bad alias line"},
		{"duplicate", map[string]string{
			"minimal/maybe_a.go": "//go:build !conduit_omit_a\n\npackage minimal\n\nimport _ \"example.com/a\"\n",
			"full/maybe_a.go":    "//go:build !conduit_omit_a\n\npackage full\n\nimport _ \"example.com/a2\"\n",
		}, "declared twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, b := range Bundles {
				if err := os.MkdirAll(filepath.Join(root, "modules", "bundle", b), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(root, "modules", "bundle", filepath.FromSlash(name)), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			set, err := LoadFeatures(root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f, ok := set.Lookup("b"); !ok || f.Bundle != "standard" || f.Package != "example.com/b" || strings.Join(f.Aliases, ",") != "old-b,bee" {
				t.Errorf("b = %+v", f)
			}
			if got, err := set.Resolve([]string{"old-b", "a"}); err != nil || len(got) != 2 || got[0].Name != "b" {
				t.Errorf("Resolve(old-b, a) = %+v, %v; want b, a", got, err)
			}
			_, err = set.Resolve([]string{"a", "bb"})
			var unk *UnknownFeatureError
			if !errors.As(err, &unk) || unk.Name != "bb" || unk.Suggestion != "b" {
				t.Fatalf("Resolve(bb) = %v, want unknown feature with suggestion b", err)
			}
			if !strings.Contains(err.Error(), `did you mean "b"?`) || !strings.Contains(err.Error(), "known features: a, b") {
				t.Errorf("message = %q", err)
			}
		})
	}
}

// TestBuildFailsFast covers errors found before any compilation.
func TestBuildFailsFast(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"unknown feature", Options{Features: []string{"no-such-feature"}}, `unknown feature "no-such-feature"`},
		{"unknown bundle", Options{Bundle: "huge"}, `unknown bundle "huge"`},
		{"core is not a module", Options{Core: t.TempDir()}, "not a module directory"},
		{"core is another module", Options{Core: filepath.Join(root, "plugins", "example-header")}, "does not declare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Dir = root
			tt.opts.Output = filepath.Join(t.TempDir(), "never")
			_, err := Build(ctx, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCoreDirInsidePlugin(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, dir := range []string{root, filepath.Join(root, "plugins", "example-header"), filepath.Join(root, "xbuild")} {
		got, err := CoreDir(ctx, dir)
		if err != nil {
			t.Fatalf("CoreDir(%s): %v", dir, err)
		}
		if got != root {
			t.Errorf("CoreDir(%s) = %s, want %s", dir, got, root)
		}
	}
}

// TestCoreConflict pins a core older than a plugin needs: the build must stop with a
// CoreConflictError naming the plugin, before compiling anything.
func TestCoreConflict(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command against a file:// module proxy")
	}
	const core, plugin = "example.test/fakecore", "example.test/plugin"
	env := writeFakeProxy(t,
		fakeCore(core, "v1.0.0"), fakeCore(core, "v1.1.0"),
		fakeModule{path: plugin, version: "v1.0.0", files: map[string]string{
			"go.mod":    "module " + plugin + "\n\ngo 1.21\n\nrequire " + core + " v1.1.0\n",
			"plugin.go": "package plugin\n",
		}},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	opts := Options{CoreModule: core, Core: "v1.0.0", Dir: dir, Env: env, Output: filepath.Join(dir, "conduit"),
		With: []Plugin{{Module: plugin, Version: "v1.0.0"}}}
	_, err := Build(ctx, opts)
	var conflict *CoreConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("err = %v, want a CoreConflictError", err)
	}
	if conflict.Pinned != "v1.0.0" || !strings.Contains(err.Error(), plugin+"@v1.0.0 requires "+core+"@v1.1.0") {
		t.Errorf("conflict = %v", err)
	}
	t.Logf("message:\n%v", err)

	// With the core the plugin wants, the build goes through; the plugin registers nothing,
	// which the smoke test reports.
	opts.Core = "v1.1.0"
	res, err := Build(ctx, opts)
	var noReg *NoRegistrationError
	if !errors.As(err, &noReg) || noReg.Module != plugin {
		t.Fatalf("err = %v, want a NoRegistrationError for %s", err, plugin)
	}
	if res == nil || res.Size == 0 || res.Core != "v1.1.0" {
		t.Errorf("result = %+v", res)
	}

	// A local core (a checkout) is replaced for every version: a plugin that requires a
	// newer released core still builds against it.
	local := t.TempDir()
	for name, body := range fakeCore(core, "local").files {
		p := filepath.Join(local, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts.Core = local
	res, err = Build(ctx, opts)
	if !errors.As(err, &noReg) {
		t.Fatalf("local core: err = %v, want a NoRegistrationError", err)
	}
	if res == nil || res.Core != local {
		t.Errorf("local core: result = %+v", res)
	}
}

// TestCurrentPlugin: run inside a plugin module without --with, xbuild builds that module.
func TestCurrentPlugin(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pluginDir := filepath.Join(root, "plugins", "example-header")
	b, err := newBuilder(Options{Dir: pluginDir})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := b.currentPlugin(ctx)
	if !ok || p.Module != "github.com/conduitproxy/conduit-example-header" || p.Replace != pluginDir {
		t.Errorf("in the plugin: %+v, %v", p, ok)
	}
	b, _ = newBuilder(Options{Dir: root})
	if p, ok := b.currentPlugin(ctx); ok {
		t.Errorf("in the core: %+v, want none", p)
	}
	b, _ = newBuilder(Options{Dir: t.TempDir()})
	if p, ok := b.currentPlugin(ctx); ok {
		t.Errorf("outside any module: %+v, want none", p)
	}
}

// TestDisplayVersion checks how a linked module's version is shown.
func TestDisplayVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com/p@=> /src/p", "example.com/p => /src/p"},
		{"example.com/p@v1.2.0", "example.com/p@v1.2.0"},
		{"example.com/p@v1.2.0 => example.com/q", "example.com/p@v1.2.0 => example.com/q"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := displayVersion(tt.in); got != tt.want {
			t.Errorf("displayVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDefaultOutputIgnored checks that the binary xbuild writes by default (./conduit) in
// this checkout is ignored by git, so a build does not leave an untracked file.
func TestDefaultOutputIgnored(t *testing.T) {
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout")
	}
	b, err := newBuilder(Options{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{out, out + ".exe"} {
		rel, _ := filepath.Rel(root, p)
		cmd := exec.Command("git", "check-ignore", "-q", rel)
		cmd.Dir = root
		if err := cmd.Run(); err != nil {
			t.Errorf("%s (xbuild's default output) is not ignored by .gitignore: %v", rel, err)
		}
	}
}
