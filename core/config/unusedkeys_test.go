package config_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// decodeEntryPoints are the functions that decode configuration into a Go value, with the
// index of the argument that receives it.
var decodeEntryPoints = map[string]int{
	"github.com/conduitproxy/conduit/core/config.Decode":                2,
	"github.com/conduitproxy/conduit/core/config.DecodeToggle":          5,
	"(*github.com/conduitproxy/conduit/core.SiteContext).Decode":        1,
	"(*github.com/conduitproxy/conduit/core.SiteContext).DecodeQuietly": 1,
	"(*github.com/conduitproxy/conduit/core.GlobalContext).Decode":      1,
}

// unreadKeysAllowed are configuration fields that are decoded and never read by name in
// Go code, each with the reason that is fine. An entry is "package.Type.Field".
var unreadKeysAllowed = map[string]string{}

// TestEveryDecodedConfigKeyIsRead type-checks every package of the module, finds every type
// that configuration is decoded into (the values given to config.Decode, config.DecodeToggle
// and the SiteContext/GlobalContext Decode methods, and the struct, pointer, slice and map
// types reachable from them through decoded fields, stopping at config.Unmarshaler
// implementations, which decode themselves), and requires each decoded field to be read
// somewhere in the module's non-test code (a field selection that is not only assigned to),
// or to be listed in unreadKeysAllowed with its reason. A key that is parsed and then
// ignored fails here.
func TestEveryDecodedConfigKeyIsRead(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the whole module")
	}
	root := moduleRoot(t)
	fset := token.NewFileSet()
	pkgs := checkModule(t, root, fset)

	var roots []types.Type
	read := map[*types.Var]bool{}
	for _, p := range pkgs {
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok {
					if arg := decodeTarget(p.info, call); arg != nil {
						roots = append(roots, p.info.TypeOf(arg))
					}
				}
				return true
			})
			for _, v := range fieldReads(p.info, f) {
				read[v] = true
			}
		}
	}
	if len(roots) < 20 {
		t.Fatalf("found only %d decode calls: the scan no longer recognises them", len(roots))
	}

	sc := &fieldScan{fset: fset, seen: map[types.Type]bool{}, fields: map[string]*types.Var{}, untagged: map[string]*types.Var{}}
	for _, r := range roots {
		sc.add(r)
	}
	fields := sc.fields
	var unread []string
	for key, v := range fields {
		if read[v] {
			if _, listed := unreadKeysAllowed[key]; listed {
				t.Errorf("%s is read now: remove it from unreadKeysAllowed", key)
			}
			continue
		}
		if _, listed := unreadKeysAllowed[key]; !listed {
			unread = append(unread, fmt.Sprintf("%s (%s)", key, fset.Position(v.Pos())))
		}
	}
	for key := range unreadKeysAllowed {
		if _, ok := fields[key]; !ok {
			t.Errorf("unreadKeysAllowed lists %s, which is no longer a decoded field", key)
		}
	}
	for key, v := range sc.untagged {
		t.Errorf("config field without a json tag (config.Decode would accept its Go name as a key): %s (%s)", key, fset.Position(v.Pos()))
	}
	sort.Strings(unread)
	for _, u := range unread {
		t.Errorf("config field decoded and never read: %s; implement it, warn that it has no effect (and read it to do so), or list it with its reason", u)
	}
	t.Logf("%d decoded config fields in %d types from %d decode calls", len(fields), len(sc.seen), len(roots))
}

// decodeTarget returns the argument that receives the decoded value when call is one of the
// decode entry points.
func decodeTarget(info *types.Info, call *ast.CallExpr) ast.Expr {
	var id *ast.Ident
	switch fn := call.Fun.(type) {
	case *ast.Ident:
		id = fn
	case *ast.SelectorExpr:
		id = fn.Sel
	default:
		return nil
	}
	f, ok := info.Uses[id].(*types.Func)
	if !ok {
		return nil
	}
	i, ok := decodeEntryPoints[f.FullName()]
	if !ok || i >= len(call.Args) {
		return nil
	}
	return call.Args[i]
}

// fieldReads returns the struct fields that f selects in a position other than the left
// side of a plain assignment.
func fieldReads(info *types.Info, f *ast.File) map[*ast.SelectorExpr]*types.Var {
	assigned := map[*ast.SelectorExpr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && (as.Tok == token.ASSIGN || as.Tok == token.DEFINE) {
			for _, l := range as.Lhs {
				if sel, ok := ast.Unparen(l).(*ast.SelectorExpr); ok {
					assigned[sel] = true
				}
			}
		}
		return true
	})
	out := map[*ast.SelectorExpr]*types.Var{}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok || assigned[sel] {
			return true
		}
		if s := info.Selections[sel]; s != nil && s.Kind() == types.FieldVal {
			out[sel] = s.Obj().(*types.Var)
		}
		return true
	})
	return out
}

// unmarshalerMethod is the method whose presence makes a type decode itself.
const unmarshalerMethod = "UnmarshalConfig"

// fieldScan collects the fields config.Decode fills, keyed "package.Type.Field".
type fieldScan struct {
	fset     *token.FileSet
	seen     map[types.Type]bool
	fields   map[string]*types.Var
	untagged map[string]*types.Var // decoded fields without a json name
}

// add adds the fields config.Decode fills in t and in the types reachable from them.
func (sc *fieldScan) add(t types.Type) {
	if t == nil || sc.seen[t] {
		return
	}
	sc.seen[t] = true
	if selfDecoding(t) {
		return
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer:
		sc.add(u.Elem())
	case *types.Slice:
		sc.add(u.Elem())
	case *types.Array:
		sc.add(u.Elem())
	case *types.Map:
		sc.add(u.Elem())
	case *types.Struct:
		owner := sc.typeName(t)
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if !f.Exported() {
				continue
			}
			tag, tagged := reflect.StructTag(u.Tag(i)).Lookup("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if !tagged || name == "" {
				// config.Decode would take the Go field name as a key.
				sc.untagged[owner+"."+f.Name()] = f
			}
			sc.fields[owner+"."+f.Name()] = f
			sc.add(f.Type())
		}
	}
}

// selfDecoding reports whether t or *t has an UnmarshalConfig method (config.Unmarshaler).
func selfDecoding(t types.Type) bool {
	for _, x := range []types.Type{t, types.NewPointer(t)} {
		ms := types.NewMethodSet(x)
		for i := 0; i < ms.Len(); i++ {
			if ms.At(i).Obj().Name() == unmarshalerMethod {
				return true
			}
		}
	}
	return false
}

// typeName names a struct type for messages and the allow-list: "pkg.Type", or
// "pkg.<anonymous at file:line>" for an unnamed struct.
func (sc *fieldScan) typeName(t types.Type) string {
	if n, ok := t.(*types.Named); ok {
		return n.Obj().Pkg().Name() + "." + n.Obj().Name()
	}
	if s, ok := t.(*types.Struct); ok && s.NumFields() > 0 {
		pos := sc.fset.Position(s.Field(0).Pos())
		return s.Field(0).Pkg().Name() + ".<struct at " + filepath.Base(pos.Filename) + ">"
	}
	return t.String()
}

// checkedPackage is one package of the module, type-checked from source.
type checkedPackage struct {
	files []*ast.File
	info  *types.Info
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// checkModule type-checks every package of the module from source; packages outside it are
// imported from the export data the go command builds (`go list -export`).
func checkModule(t *testing.T, root string, fset *token.FileSet) []*checkedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}\t{{.Module}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.String())
	}
	const modPath = "github.com/conduitproxy/conduit"
	export := map[string]string{}
	var own []string
	sc := bufio.NewScanner(bytes.NewReader(outb))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "\t", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == modPath || strings.HasPrefix(parts[0], modPath+"/") {
			own = append(own, parts[0])
			continue
		}
		export[parts[0]] = parts[1]
	}
	gc := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := export[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	imp := &moduleImporter{fset: fset, root: root, modPath: modPath, gc: gc, done: map[string]*types.Package{}, infos: map[string]*checkedPackage{}}
	var out []*checkedPackage
	for _, path := range own {
		if _, err := imp.Import(path); err != nil {
			t.Fatalf("type-check %s: %v", path, err)
		}
		if p := imp.infos[path]; p != nil {
			out = append(out, p)
		}
	}
	return out
}

// moduleImporter type-checks the module's packages from source (so that a field read in one
// package and declared in another is the same object) and everything else from export data.
type moduleImporter struct {
	fset          *token.FileSet
	root, modPath string
	gc            types.Importer
	done          map[string]*types.Package
	infos         map[string]*checkedPackage
}

// Import implements types.Importer.
func (m *moduleImporter) Import(path string) (*types.Package, error) {
	if p, ok := m.done[path]; ok {
		return p, nil
	}
	if path != m.modPath && !strings.HasPrefix(path, m.modPath+"/") {
		p, err := m.gc.Import(path)
		m.done[path] = p
		return p, err
	}
	dir := filepath.Join(m.root, strings.TrimPrefix(strings.TrimPrefix(path, m.modPath), "/"))
	bp, err := build.ImportDir(dir, 0)
	if err != nil {
		return nil, err
	}
	cp := &checkedPackage{info: &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Uses:       map[*ast.Ident]types.Object{},
		Defs:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}}
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(m.fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		cp.files = append(cp.files, f)
	}
	conf := types.Config{Importer: m}
	p, err := conf.Check(path, m.fset, cp.files, cp.info)
	if err != nil {
		return nil, err
	}
	m.done[path] = p
	m.infos[path] = cp
	return p, nil
}
