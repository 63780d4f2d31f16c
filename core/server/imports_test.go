package server_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestModulesDoNotImportTheServer: modules build on core alone; what they need from the
// server (certificate sources, ACME challenge answers) is an interface in core. Test-support
// packages (a directory name ending in "test", such as modules/acme/pebbletest) and _test.go
// files may start a server.
func TestModulesDoNotImportTheServer(t *testing.T) {
	const serverPkg = "github.com/conduitproxy/conduit/core/server"
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(filepath.Join("..", "..", "modules"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasSuffix(d.Name(), "test") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == serverPkg || strings.HasPrefix(p, serverPkg+"/") {
				t.Errorf("%s imports %s", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files: the walk no longer finds the modules", checked)
	}
}
