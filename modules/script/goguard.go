package script

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/traefik/yaegi/interp"
)

// A panic that nothing recovers ends the process, and the goroutines a script starts are
// its own: the budget's recover runs on the call's goroutine only. yaegi gives no hook
// around the goroutines it starts. So Conduit rewrites each `go` statement of a script (or
// of a Traefik plugin's packages) that starts a function literal before yaegi compiles it,
// adding a deferred recover at the top of the literal's body:
//
//	go func(…) { BODY }(…)  →  go func(…) { defer func() { conduitRecovered__(recover()) }(); BODY }(…)
//
// conduitRecovered__ (goGuardImport's Recovered, bound in a file added to each package it
// changed) logs the panic. The statement stays a go statement with the same function and
// arguments, evaluated at the same time, and only text on the literal's first line is
// inserted, so every file:line yaegi reports stays true. (The recover is a closure in the
// literal on purpose: a package-level function deferred there does not recover in yaegi when
// the goroutine was started by a function that compiled code called.) Other forms
// (`go f(x)`, `go s.run()`) cannot be given a recover without moving when their function
// and arguments are evaluated (yaegi shares a loop's variable between iterations, so
// `for _, c := range cs { go watch(c) }` depends on it): they are left as they are, and
// validate warns about them (unguardedGoStatements).

// goGuardFunc is the package-level name the rewritten literals call with recover().
const goGuardFunc = "conduitRecovered__"

// goGuardImport is the import path of the compiled package whose Recovered logs a recovered
// panic (guardedCallbacks); every interpreter has it.
const goGuardImport = "conduit.internal/goroutine"

// goGuardFile is the name of the file that declares goGuardFunc in a changed package.
const goGuardFile = "zz_conduit_goroutines.go"

// goStatements parses src and calls each with every go statement; it returns the file set
// and file, or nil when src does not parse.
func goStatements(name string, src []byte, each func(*ast.GoStmt)) (*token.FileSet, *ast.File) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, nil
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if g, ok := n.(*ast.GoStmt); ok {
			each(g)
		}
		return true
	})
	return fset, f
}

// guardGoStatements returns src with every go statement that starts a function literal
// rewritten as above, the package's name, and whether anything changed. A file that does
// not parse is returned unchanged (yaegi reports its error).
func guardGoStatements(name string, src []byte) (out []byte, pkg string, changed bool) {
	var lits []*ast.FuncLit
	fset, f := goStatements(name, src, func(g *ast.GoStmt) {
		if lit, ok := g.Call.Fun.(*ast.FuncLit); ok {
			lits = append(lits, lit)
		}
	})
	if f == nil {
		return src, "", false
	}
	if len(lits) == 0 {
		return src, f.Name.Name, false
	}
	at := make([]int, len(lits))
	for i, lit := range lits {
		at[i] = fset.Position(lit.Body.Lbrace).Offset + 1
	}
	slices.Sort(at)
	out = bytes.Clone(src)
	text := []byte(" defer func() { " + goGuardFunc + "(recover()) }();")
	for i := len(at) - 1; i >= 0; i-- {
		out = slices.Insert(out, at[i], text...)
	}
	return out, f.Name.Name, true
}

// unguardedGoStatements returns "file:line" of each go statement of the files (name →
// source) that guardGoStatements leaves as it is, in file name order.
func unguardedGoStatements(files map[string][]byte) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		var pos []token.Pos
		fset, _ := goStatements(name, files[name], func(g *ast.GoStmt) {
			if _, ok := g.Call.Fun.(*ast.FuncLit); !ok {
				pos = append(pos, g.Go)
			}
		})
		for _, p := range pos {
			out = append(out, fmt.Sprintf("%s:%d", name, fset.Position(p).Line))
		}
	}
	return out
}

// goGuardSource is the file that declares goGuardFunc in package pkg.
func goGuardSource(pkg string) []byte {
	return fmt.Appendf(nil, `package %s

import conduitGoroutine__ %q

// %s logs a panic a goroutine of the package recovered (added by Conduit).
var %s = conduitGoroutine__.Recovered
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

// guardedCallbacks are goGuardImport's Recovered, which the rewritten go statements call, and
// the standard functions that run a script's function on a goroutine of their own
// (time.AfterFunc, context.AfterFunc) in a version whose goroutine recovers a panic of that
// function; both log the panic to out. They replace the standard ones in every interpreter,
// sandboxed or not.
func guardedCallbacks(out io.Writer) interp.Exports {
	recovered := func(p any) {
		if p != nil {
			fmt.Fprintln(out, "panic in a goroutine of the script, recovered:", p)
		}
	}
	guard := func(f func()) func() {
		return func() {
			defer func() { recovered(recover()) }()
			f()
		}
	}
	return interp.Exports{
		goGuardImport + "/goroutine": {"Recovered": reflect.ValueOf(recovered)},
		"time/time": {"AfterFunc": reflect.ValueOf(func(d time.Duration, f func()) *time.Timer {
			return time.AfterFunc(d, guard(f))
		})},
		"context/context": {"AfterFunc": reflect.ValueOf(func(ctx context.Context, f func()) (stop func() bool) {
			return context.AfterFunc(ctx, guard(f))
		})},
	}
}
