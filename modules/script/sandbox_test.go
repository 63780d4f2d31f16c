package script

import (
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/traefik/yaegi/stdlib"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestSandboxTables: every package the sandbox offers and every symbol it removes exists in
// yaegi's tables (a typo would silently offer nothing, or remove nothing), a script gets the
// symbols of the sandbox packages it imports only, and the script package is keyed by the
// import path scripts use.
func TestSandboxTables(t *testing.T) {
	for _, p := range sandboxPackages {
		if _, ok := stdlib.Symbols[p+"/"+p[strings.LastIndex(p, "/")+1:]]; !ok {
			t.Errorf("sandbox package %s is not in yaegi's standard library", p)
		}
	}
	for p, names := range sandboxDenied {
		syms := stdlib.Symbols[p+"/"+p[strings.LastIndex(p, "/")+1:]]
		for _, n := range names {
			if _, ok := syms[n]; !ok {
				t.Errorf("denied symbol %s.%s does not exist", p, n)
			}
		}
	}
	for p, repl := range sandboxReplaced {
		syms := stdlib.Symbols[p+"/"+p[strings.LastIndex(p, "/")+1:]]
		for n, v := range repl {
			if orig, ok := syms[n]; !ok || orig.Type() != v.Type() {
				t.Errorf("replaced symbol %s.%s: the standard one is missing or of another type", p, n)
			}
		}
	}
	box := sandboxSymbols(io.Discard, nil)
	if _, ok := box["net/http/http"]["Get"]; ok {
		t.Error("the sandbox offers http.Get")
	}
	if _, ok := box["os/os"]; ok {
		t.Error("the sandbox offers os")
	}
	only := sandboxSymbols(io.Discard, []string{"net/http", "os/exec", "strings"})
	if _, ok := only["strings/strings"]["ToUpper"]; !ok {
		t.Errorf("the symbols for imports net/http, os/exec and strings: %v", slices.Sorted(maps.Keys(only)))
	}
	if _, ok := only["os/exec/exec"]; ok {
		t.Error("a sandboxed script importing os/exec gets its symbols")
	}
	for key, syms := range only { // the packages not imported: their interface wrappers only
		if key == "." || key == "net/http/http" || key == "strings/strings" {
			continue
		}
		for name := range syms {
			if !strings.HasPrefix(name, "_") {
				t.Errorf("%s.%s offered to a script that does not import it", key, name)
			}
		}
	}
	if _, ok := only["io/io"]["_Reader"]; !ok {
		t.Error("io's interface wrappers missing for a script that does not import io")
	}
	if got := sourceImports(map[string][]byte{"a.go": []byte("package a\nimport (\"fmt\"\n\"strings\")\n"), "b.go": []byte("package a\nimport \"fmt\"\n")}); !slices.Equal(got, []string{"fmt", "strings"}) {
		t.Errorf("sourceImports: %q", got)
	}
	if _, ok := scriptSymbols()[ImportPath+"/script"]["Abort"]; !ok {
		t.Errorf("conduit/script is not keyed as %s/script: %v", ImportPath, scriptSymbols())
	}
}

// TestSandboxAtValidate: a sandboxed script cannot reach a process or the network; with
// unrestricted: true the same script compiles.
func TestSandboxAtValidate(t *testing.T) {
	tests := []struct {
		entry, want string
	}{
		{`{type: script, path: testdata/scripts/sandboxed.go}`, `import "os/exec" is not available to a sandboxed script`},
		{`{type: script, path: testdata/scripts/dialer.go}`, `package http "net/http" has no symbol Get`},
		{`{type: script, path: testdata/scripts/sandboxed.go, unrestricted: true}`, ""},
		{`{type: script, path: testdata/scripts/dialer.go, unrestricted: true}`, ""},
		{`{type: script, path: testdata/scripts/mimetypes.go}`, `package mime "mime" has no symbol AddExtensionType`},
		{`{type: script, path: testdata/scripts/hijacker.go, timeoutMs: 0}`, `package http "net/http" has no symbol Hijacker`},
		{`{type: script, path: testdata/scripts/hijacker.go, timeoutMs: 0, unrestricted: true}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			_, d, err := servertest.Build("port: 8080\nmiddleware:\n  - "+tt.entry+"\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			errs := d.Errors()
			if tt.want == "" {
				if len(errs) != 0 {
					t.Fatalf("errors %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Path != "middleware[0].path" || !strings.Contains(errs[0].Message, tt.want) {
				t.Fatalf("errors %v, want one at middleware[0].path containing %q", errs, tt.want)
			}
		})
	}
}
