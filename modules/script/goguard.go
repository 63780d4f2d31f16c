package script

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing/fstest"
	"time"

	"github.com/traefik/yaegi/interp"
)

// A panic that nothing recovers ends the process, and the goroutines a script starts are
// its own: the budget's recover runs on the call's goroutine only. yaegi gives no hook
// around the goroutines it starts, and a recover in the script's own deferred function does
// not stop yaegi from raising the panic again when the goroutine's function was reached
// through a compiled call. So Conduit rewrites every `go` statement of a script (or of a
// Traefik plugin's packages) before yaegi compiles it, to start the goroutine through a
// compiled function whose goroutine recovers and logs a panic:
//
//	go func() { BODY }()  →  conduitGo__(func() { BODY })
//	go f(x)               →  conduitGo__(func() { f(x) })
//
// and adds a file declaring conduitGo__ (bound to goGuardImport's Go) to each package it
// changed. The rewrite replaces and inserts text on the lines of the go statements only, so
// every file:line yaegi reports stays true. In the second form, which covers a function
// literal called with arguments too, the function and its arguments are evaluated in the
// new goroutine rather than at the go statement (docs/scripting.md#limits-and-failure).

// goGuardFunc is the package-level name the rewrite calls.
const goGuardFunc = "conduitGo__"

// goGuardImport is the import path of the compiled package that starts guarded goroutines
// (guardedCallbacks); every interpreter has it.
const goGuardImport = "conduit.internal/goroutine"

// goGuardFile is the name of the file that declares goGuardFunc in a changed package.
const goGuardFile = "zz_conduit_goroutines.go"

// guardGoStatements returns src with every go statement rewritten as above, the package's
// name, and whether anything changed. A file that does not parse is returned unchanged
// (yaegi reports its error).
func guardGoStatements(name string, src []byte) (out []byte, pkg string, changed bool) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return src, "", false
	}
	type edit struct {
		at, del int // offset, and how many bytes the text replaces there
		text    string
	}
	var edits []edit
	off := func(p token.Pos) int { return fset.Position(p).Offset }
	ast.Inspect(f, func(n ast.Node) bool {
		g, ok := n.(*ast.GoStmt)
		if !ok {
			return true
		}
		if _, lit := g.Call.Fun.(*ast.FuncLit); lit && len(g.Call.Args) == 0 {
			edits = append(edits,
				edit{off(g.Go), len("go"), goGuardFunc + "("},
				edit{off(g.Call.Lparen), off(g.Call.Rparen) + 1 - off(g.Call.Lparen), ")"})
			return true
		}
		edits = append(edits,
			edit{off(g.Go), len("go"), goGuardFunc + "(func() {"},
			edit{off(g.Call.End()), 0, " })"})
		return true
	})
	if len(edits) == 0 {
		return src, f.Name.Name, false
	}
	slices.SortStableFunc(edits, func(a, b edit) int { return b.at - a.at })
	out = bytes.Clone(src)
	for _, e := range edits {
		out = slices.Replace(out, e.at, e.at+e.del, []byte(e.text)...)
	}
	return out, f.Name.Name, true
}

// goGuardSource is the file that declares goGuardFunc in package pkg.
func goGuardSource(pkg string) []byte {
	return fmt.Appendf(nil, `package %s

import conduitGoroutine__ %q

// %s starts f on a goroutine that recovers and logs a panic (added by Conduit).
var %s = conduitGoroutine__.Go
`, pkg, goGuardImport, goGuardFunc, goGuardFunc)
}

// guardFiles rewrites the go statements of a package's files (name → source) in place and
// adds the file that declares goGuardFunc when one changed, in the package most of the
// directory's files name (a file excluded by a build constraint, such as a generator's
// `package main`, may name another).
func guardFiles(files map[string][]byte) {
	votes, guarded := map[string]int{}, false
	for name, src := range files {
		out, pkg, changed := guardGoStatements(name, src)
		if pkg == "" {
			continue
		}
		votes[pkg]++
		if changed {
			files[name], guarded = out, true
		}
	}
	if !guarded {
		return
	}
	pkg := ""
	for p, n := range votes {
		if n > votes[pkg] || (n == votes[pkg] && p < pkg) {
			pkg = p
		}
	}
	files[goGuardFile] = goGuardSource(pkg)
}

// guardedCallbacks are the standard functions that run a script's function on a goroutine
// of their own (time.AfterFunc, context.AfterFunc), in a version whose goroutine recovers a
// panic of that function and logs it to out, and goGuardImport's Go, which the rewritten go
// statements call. They replace the standard ones in every interpreter, sandboxed or not.
func guardedCallbacks(out io.Writer) interp.Exports {
	guard := func(f func()) func() {
		return func() {
			defer func() {
				if p := recover(); p != nil {
					fmt.Fprintln(out, "panic in a goroutine of the script, recovered:", p)
				}
			}()
			f()
		}
	}
	return interp.Exports{
		goGuardImport + "/goroutine": {"Go": reflect.ValueOf(func(f func()) { go guard(f)() })},
		"time/time": {"AfterFunc": reflect.ValueOf(func(d time.Duration, f func()) *time.Timer {
			return time.AfterFunc(d, guard(f))
		})},
		"context/context": {"AfterFunc": reflect.ValueOf(func(ctx context.Context, f func()) (stop func() bool) {
			return context.AfterFunc(ctx, guard(f))
		})},
	}
}

// pluginSources reads a Traefik plugin's GOPATH (the Go files of every package under
// goPath/src, and go.mod and vendor/modules.txt files) into memory with the go statements of
// each package guarded, for yaegi to import from (GoPath "."). Test files are left out: yaegi
// does not load them.
func pluginSources(goPath string) (fs.FS, error) {
	pkgs := map[string]map[string][]byte{} // directory (slash-separated, from goPath) → files
	err := filepath.WalkDir(filepath.Join(goPath, "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		goFile := strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")
		if !goFile && name != "go.mod" && name != "modules.txt" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(goPath, filepath.Dir(p))
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(rel)
		if pkgs[dir] == nil {
			pkgs[dir] = map[string][]byte{}
		}
		pkgs[dir][name] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	fsys := fstest.MapFS{}
	for dir, files := range pkgs {
		goFiles := map[string][]byte{}
		for name, b := range files {
			if strings.HasSuffix(name, ".go") {
				goFiles[name] = b
			} else {
				fsys[path.Join(dir, name)] = &fstest.MapFile{Data: b, Mode: 0o444}
			}
		}
		guardFiles(goFiles)
		for name, b := range goFiles {
			fsys[path.Join(dir, name)] = &fstest.MapFile{Data: b, Mode: 0o444}
		}
	}
	return fsys, nil
}
