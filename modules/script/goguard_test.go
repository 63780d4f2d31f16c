package script

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/traefik/yaegi/stdlib"
)

// TestGuardGoStatements: every go statement gets the recovering defer, on its own lines.
func TestGuardGoStatements(t *testing.T) {
	const d = " defer func() { conduitRecovered__(recover()) }();"
	tests := []struct {
		name, src, want string
		changed         bool
	}{
		{"function literal", "package p\nfunc f() {\n\tgo func() {\n\t\tg()\n\t}()\n}\n",
			"package p\nfunc f() {\n\tgo func() {" + d + "\n\t\tg()\n\t}()\n}\n", true},
		{"literal with arguments", "package p\nfunc f() { go func(n int) { g(n) }(3) }\n",
			"package p\nfunc f() { go func(n int) {" + d + " g(n) }(3) }\n", true},
		{"nested", "package p\nfunc f() { go func() { go func() {}() }() }\n",
			"package p\nfunc f() { go func() {" + d + " go func() {" + d + "}() }() }\n", true},
		{"named function: left as it is", "package p\nfunc f() { go g(1, x) }\n", "package p\nfunc f() { go g(1, x) }\n", false},
		{"method: left as it is", "package p\nfunc f() { go s.run() }\n", "package p\nfunc f() { go s.run() }\n", false},
		{"no go statement", "package p\nfunc f() { g() }\n", "package p\nfunc f() { g() }\n", false},
		{"does not parse", "package p\nfunc f() { go }\n", "package p\nfunc f() { go }\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, pkg, changed := guardGoStatements("a.go", []byte(tt.src))
			if string(out) != tt.want || changed != tt.changed {
				t.Fatalf("got %q (changed %v), want %q (%v)", out, changed, tt.want, tt.changed)
			}
			if changed && pkg != "p" {
				t.Errorf("package %q", pkg)
			}
			if bytes.Count(out, []byte("\n")) != strings.Count(tt.src, "\n") {
				t.Error("the rewrite moved lines: yaegi's file:line would be wrong")
			}
		})
	}
	files := map[string][]byte{
		"a.go":   []byte("package p\nfunc f() { go func() { g() }() }\n"),
		"b.go":   []byte("package p\nfunc g() {}\n"),
		"gen.go": []byte("//go:build ignore\n\npackage main\nfunc main() { go func() {}() }\n"),
	}
	guardFiles(files)
	if src, ok := files[goGuardFile]; !ok || !bytes.HasPrefix(src, []byte("package p\n")) {
		t.Fatalf("guardFiles did not add the recovering function to package p: %q", src)
	}
	got := unguardedGoStatements(map[string][]byte{
		"b.go": []byte("package p\nfunc f() {\n\tgo g()\n\tgo func() {}()\n\tgo s.run(1)\n}\n"),
		"a.go": []byte("package p\nfunc f() { go h() }\n"),
	})
	if want := []string{"a.go:2", "b.go:3", "b.go:5"}; !slices.Equal(got, want) {
		t.Errorf("unguardedGoStatements: %q, want %q", got, want)
	}
}

// TestPluginPaths: yaegi's errors name a plugin's files on disk, not in the in-memory GOPATH.
func TestPluginPaths(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`1:21: import "x.org/p" error: src/x.org/p/p.go:3:4: undefined: y`, `1:21: import "x.org/p" error: /g/src/x.org/p/p.go:3:4: undefined: y`},
		{"src/x.org/p/p.go:1:1: expected 'package'", "/g/src/x.org/p/p.go:1:1: expected 'package'"},
		{"no path in a resource/src/ word", "no path in a resource/src/ word"},
	} {
		if got := pluginPaths(tt.in, "/g"); got != tt.want {
			t.Errorf("pluginPaths(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestGuardedCallbacksMatchStd: each guarded function has the standard one's type, so a
// script compiles against it as against the standard library.
func TestGuardedCallbacksMatchStd(t *testing.T) {
	for key, syms := range guardedCallbacks(io.Discard) {
		if key == goGuardImport+"/goroutine" {
			continue
		}
		for name, v := range syms {
			if std, ok := stdlib.Symbols[key][name]; !ok || std.Type() != v.Type() {
				t.Errorf("%s.%s: not the standard function's type", key, name)
			}
		}
	}
}

// FuzzGuardGoStatements: a rewritten file still parses, keeps its lines, and every go
// statement that starts a function literal begins with the deferred recover.
func FuzzGuardGoStatements(f *testing.F) {
	for _, s := range []string{
		"package p\nfunc f() { go g(1, x) }\n",
		"package p\nfunc f() {\n\tgo func() {\n\t\tg()\n\t}()\n}\n",
		"package p\nfunc f() { go func() { go g() }() }\n",
		"package p\nfunc f() { go func(n int) { g(n) }(3); go s.m[0](a...) }\n",
		"package p\nvar x = func() { go (f)(1) }\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out, _, changed := guardGoStatements("a.go", []byte(src))
		if !changed {
			if string(out) != src {
				t.Fatal("unchanged source rewritten")
			}
			return
		}
		if bytes.Count(out, []byte("\n")) != strings.Count(src, "\n") {
			t.Fatalf("lines moved:\n%s", out)
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, "a.go", out, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("the rewrite does not parse: %v\n%s\nfrom\n%s", err, out, src)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			g, ok := n.(*ast.GoStmt)
			if !ok {
				return true
			}
			if lit, ok := g.Call.Fun.(*ast.FuncLit); ok {
				if len(lit.Body.List) == 0 {
					t.Fatalf("a function literal's go statement without the recover:\n%s", out)
				}
				if _, ok := lit.Body.List[0].(*ast.DeferStmt); !ok {
					t.Fatalf("a function literal's go statement without the recover:\n%s", out)
				}
			}
			return true
		})
	})
}

// TestDirHashFollowsLinks: a plugin linked into its GOPATH is part of the GOPATH's hash, so
// a reload after the plugin's files changed compiles it again instead of reusing the old
// program; pluginSources reads it too.
func TestDirHashFollowsLinks(t *testing.T) {
	real, gopath := t.TempDir(), t.TempDir()
	file := filepath.Join(real, "p.go")
	if err := os.WriteFile(file, []byte("package p\nfunc f() { go func() {}() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(gopath, "src", "example.org"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(gopath, "src", "example.org", "p")); err != nil {
		t.Fatal(err)
	}
	keep := func(name string) bool { return strings.HasSuffix(name, ".go") }
	before, err := dirHash(gopath, keep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("package p\nfunc f() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if after, err := dirHash(gopath, keep); err != nil || after == before {
		t.Fatalf("hash %s → %s (%v): the linked plugin's change is not seen", before, after, err)
	}
	fsys, err := pluginSources(gopath)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(fsys, "src/example.org/p/p.go"); err != nil || string(b) != "package p\nfunc f() {}\n" {
		t.Fatalf("pluginSources: %q %v", b, err)
	}
}
