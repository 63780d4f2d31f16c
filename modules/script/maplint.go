package script

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/conduitproxy/conduit/core"
)

// A script's package-level variables are shared by every request, and requests run at
// once. Go ends the whole process when two goroutines write one map at the same time
// ("fatal error: concurrent map writes", which no recover catches), so a package-level map
// that the script writes while serving is a crash waiting for load, unless a lock guards it.
// unguardedMapWrites finds the likely cases for a warning at validate: package-level maps
// written in a function other than init, in a package that does not import sync. It reads
// syntax only (a local variable of the same name is taken for the map), so it warns; it
// does not refuse.

// unguardedMapWrites returns "file:line: name" for each write to a package-level map of a
// package that does not import sync, in file name order. Files that do not parse are
// skipped (yaegi reports them).
func unguardedMapWrites(files map[string][]byte) []string {
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, name := range slices.Sorted(maps.Keys(files)) {
		f, err := parser.ParseFile(fset, name, files[name], parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "sync" {
				return nil
			}
		}
		parsed = append(parsed, f)
	}
	shared := map[string]bool{}
	for _, f := range parsed {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if isMapType(vs.Type) || (i < len(vs.Values) && isMapValue(vs.Values[i])) {
						shared[n.Name] = true
					}
				}
			}
		}
	}
	if len(shared) == 0 {
		return nil
	}
	var out []string
	report := func(e ast.Expr) {
		if id, ok := e.(*ast.Ident); ok && shared[id.Name] {
			p := fset.Position(id.Pos())
			out = append(out, fmt.Sprintf("%s:%d: %s", filepath.Base(p.Filename), p.Line, id.Name))
		}
	}
	for _, f := range parsed {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil || (fn.Recv == nil && fn.Name.Name == "init") {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.AssignStmt:
					for _, l := range n.Lhs {
						if ix, ok := l.(*ast.IndexExpr); ok {
							report(ix.X)
						}
					}
				case *ast.IncDecStmt:
					if ix, ok := n.X.(*ast.IndexExpr); ok {
						report(ix.X)
					}
				case *ast.CallExpr:
					if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "delete" || id.Name == "clear") && len(n.Args) > 0 {
						report(n.Args[0])
					}
				}
				return true
			})
		}
	}
	return out
}

// isMapType reports whether t is a map type expression.
func isMapType(t ast.Expr) bool {
	_, ok := t.(*ast.MapType)
	return ok
}

// isMapValue reports whether v builds a map: a map literal or make(map…).
func isMapValue(v ast.Expr) bool {
	switch v := v.(type) {
	case *ast.CompositeLit:
		return isMapType(v.Type)
	case *ast.CallExpr:
		id, ok := v.Fun.(*ast.Ident)
		return ok && id.Name == "make" && len(v.Args) > 0 && isMapType(v.Args[0])
	}
	return false
}

// warnProcessHazards warns at pathAt about what in a script's or plugin's package (files:
// name → source; what names it in the message) can end the whole process and no recover
// catches: go statements Conduit cannot guard (goguard.go) and unguarded package-level map
// writes.
func warnProcessHazards(ctx *core.SiteContext, pathAt string, files map[string][]byte, what string) {
	for _, w := range unguardedGoStatements(files) {
		ctx.Warnf(pathAt, "%s: a panic in the goroutine this go statement starts ends the whole process (only a go statement that starts a function literal gets a recover); write it as go func() { … }() (docs/scripting.md#limits-and-failure)", w)
	}
	for _, w := range unguardedMapWrites(files) {
		ctx.Warnf(pathAt, "%s writes a package-level map and the %s does not import sync: requests run at once, and Go ends the whole process on concurrent map writes (no recover catches it); guard the map with a sync.Mutex (docs/scripting.md#limits-and-failure)", w, what)
	}
}
