package script

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing/fstest"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib/generic"
)

// program is one compiled script or plugin: an interpreter holding the evaluated package.
// Programs are shared through core.Shared by content hash, so a reload whose sources did not
// change reuses the interpreter, and one whose sources changed compiles a new one.
type program struct {
	i    *interp.Interpreter
	pkg  string                   // the package name its symbols are reached by ("gate", "plugin")
	syms map[string]reflect.Value // the entry points found, looked up once at compile time

	stopOnce sync.Once
	stopped  atomic.Bool
}

// stop ends every interpreted function of the program still running (an endless loop of a
// call that ran past its budget): yaegi checks its run id between instructions, and a
// cancelled evaluation changes it. A call blocked inside a compiled function (time.Sleep,
// a channel of compiled code) is not stopped. The program cannot run again afterwards.
func (p *program) stop() {
	p.stopOnce.Do(func() {
		p.stopped.Store(true)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// EvalWithContext with a cancelled context calls the interpreter's stop. The source
		// blocks, so the cancelled context is the branch its select takes.
		_, _ = p.i.EvalWithContext(ctx, "select {}")
	})
}

// source is what a script entry's `path` names: one .go file, or a directory of one package.
// The files are read once: what is hashed is what is compiled.
type source struct {
	path  string            // as configured, made absolute
	dir   string            // the directory of the files
	files []string          // the .go files (not _test.go), sorted
	data  map[string][]byte // file base name → content
	hash  string            // SHA-256 over the files' names and contents
}

// readSource reads the files of a script path and hashes them.
func readSource(path string) (*source, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	s := &source{path: abs, dir: filepath.Dir(abs), data: map[string][]byte{}}
	if st.IsDir() {
		s.dir = abs
		entries, err := os.ReadDir(abs)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() && isGoSource(n) {
				s.files = append(s.files, filepath.Join(abs, n))
			}
		}
		if len(s.files) == 0 {
			return nil, fmt.Errorf("directory %s holds no .go file", path)
		}
		sort.Strings(s.files)
	} else {
		s.files = []string{abs}
	}
	h := sha256.New()
	for _, f := range s.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		s.data[filepath.Base(f)] = b
		writeHashed(h, filepath.Base(f), b)
	}
	s.hash = hex.EncodeToString(h.Sum(nil))
	return s, nil
}

// isGoSource reports whether a file name is a Go source file yaegi loads (not a test).
func isGoSource(name string) bool {
	return strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")
}

// writeHashed adds a file's name and content to h.
func writeHashed(h io.Writer, name string, b []byte) {
	_, _ = fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
	_, _ = h.Write(b)
}

// hashFile adds a file's name and content to h.
func hashFile(h io.Writer, path, name string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	writeHashed(h, name, b)
	return nil
}

// packageName reads the package clause of a Go file's content.
func packageName(name string, src []byte) (string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.PackageClauseOnly)
	if err != nil {
		return "", err
	}
	return f.Name.Name, nil
}

// newInterpreter returns an interpreter with the conduit/script package and either the
// sandbox's symbols or the whole standard library. goPath is where `import` finds source
// packages ("" finds none: a script is one package and imports only compiled ones).
// imports are the packages the code imports (nil: unknown): a sandboxed interpreter gets
// the symbols of those only, and yaegi's source of the generic packages (cmp, maps,
// slices) compiled in when one of them is imported, with every sandbox package, which
// their sources may import. The whole standard library always has them.
func newInterpreter(goPath string, sources fs.FS, unrestrictedStd bool, imports []string, stdout io.Writer) (*interp.Interpreter, error) {
	i := interp.New(interp.Options{GoPath: goPath, SourcecodeFilesystem: sources, Unrestricted: unrestrictedStd, Stdout: stdout, Stderr: stdout, Env: []string{}, Args: []string{}})
	generics := imports == nil || slices.ContainsFunc(imports, func(p string) bool { return slices.Contains(genericPackages, p) })
	if generics {
		imports = nil
	}
	sets := []interp.Exports{sandboxSymbols(stdout, imports)}
	if unrestrictedStd {
		sets, generics = fullSymbols(), false // Use compiles them for the standard library
	}
	sets = append(sets, guardedCallbacks(stdout), scriptSymbols())
	for _, s := range sets {
		if err := i.Use(s); err != nil {
			return nil, fmt.Errorf("load symbols: %w", err)
		}
	}
	if generics {
		for _, src := range generic.Sources {
			if _, err := i.Compile(src); err != nil {
				return nil, fmt.Errorf("load the generic packages: %w", err)
			}
		}
	}
	return i, nil
}

// scriptImport is the import path a script's package is compiled under, inside the
// in-memory GOPATH that holds only the script's files.
const scriptImport = "conduit.script/main"

// compileScript compiles a script source: the package's files, imported by yaegi from an
// in-memory GOPATH that holds nothing else (so a sandboxed script can import no source
// package either). A compile error names the real file:line:column.
func compileScript(src *source, unrestrictedStd bool, stdout io.Writer) (p *program, err error) {
	defer func() {
		if r := recover(); r != nil { // yaegi panics on some malformed programs
			p, err = nil, fmt.Errorf("compile: %v", r)
		}
	}()
	first := filepath.Base(src.files[0])
	pkg, err := packageName(src.files[0], src.data[first])
	if err != nil {
		return nil, err
	}
	data := maps.Clone(src.data)
	guardFiles(data) // goroutines the script starts recover their panics (goguard.go)
	fsys := fstest.MapFS{}
	for name, b := range data {
		fsys[path.Join("src", scriptImport, name)] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	i, err := newInterpreter(".", fsys, unrestrictedStd, sourceImports(data), stdout)
	if err != nil {
		return nil, err
	}
	if _, err := i.Eval("import " + strconv.Quote(scriptImport)); err != nil {
		err = importError(cleanCompileError(err), unrestrictedStd)
		// Name the real files in the message, without the wrapping import.
		return nil, errors.New(realPaths(importWrapper.ReplaceAllString(err.Error(), ""), src.dir))
	}
	p = &program{i: i, pkg: pkg}
	p.lookup("New", "Middleware", "Response")
	return p, nil
}

// lookup evaluates the package's names once and keeps those that exist.
func (p *program) lookup(names ...string) {
	p.syms = map[string]reflect.Value{}
	for _, n := range names {
		if v, err := p.i.Eval(p.pkg + "." + n); err == nil && v.IsValid() {
			p.syms[n] = v
		}
	}
}

// has reports whether the package defines name.
func (p *program) has(name string) bool {
	_, ok := p.syms[name]
	return ok
}

// fn returns name's value as a Go value, to be asserted to its func type.
func (p *program) fn(name string) any {
	v, ok := p.syms[name]
	if !ok || !v.CanInterface() {
		return nil
	}
	return v.Interface()
}

// typeOf names name's type for messages.
func (p *program) typeOf(name string) string {
	if v, ok := p.syms[name]; ok {
		return v.Type().String()
	}
	return "undefined"
}

// programSlot holds the program of one content hash in the shared store across reloads.
type programSlot struct {
	mu sync.Mutex
	p  *program
}

// get returns the slot's program, compiling it when there is none or it was stopped.
func (s *programSlot) get(compile func() (*program, error)) (*program, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil && !s.p.stopped.Load() {
		return s.p, nil
	}
	p, err := compile()
	if err != nil {
		return nil, err
	}
	s.p = p
	return p, nil
}

// Close stops the slot's program: no generation uses it any more.
func (s *programSlot) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		s.p.stop()
	}
	return nil
}

// cleanCompileError keeps yaegi's message, which already starts with file:line:column.
func cleanCompileError(err error) error {
	var p interp.Panic
	if errors.As(err, &p) {
		return fmt.Errorf("panic while loading: %v", p.Value)
	}
	return err
}

// realPaths replaces the in-memory GOPATH's paths in yaegi's text with the script's directory.
func realPaths(text, dir string) string {
	return strings.ReplaceAll(text, path.Join("src", scriptImport)+"/", dir+string(filepath.Separator))
}

// importWrapper matches the prefix yaegi gives an error inside the script's package.
var importWrapper = regexp.MustCompile(`^\d+:\d+: import "` + regexp.QuoteMeta(scriptImport) + `" error: `)

// missingImport matches yaegi's error for an import it has no symbols or source for.
var missingImport = regexp.MustCompile(`^(.*?)import "([^"]+)" error: unable to find source related to: .*$`)

// importError explains an import a script cannot have.
func importError(err error, unrestrictedStd bool) error {
	m := missingImport.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	if unrestrictedStd {
		return fmt.Errorf("%simport %q: a script imports only the standard library and %s", m[1], m[2], ImportPath)
	}
	return fmt.Errorf("%simport %q is not available to a sandboxed script (it may import %s; `unrestricted: true` opens the whole standard library, docs/scripting.md#sandbox)", m[1], m[2], strings.Join(SandboxPackages(), ", "))
}

// dirHash hashes every file below root whose name passes keep, in path order, following
// symbolic links to directories as walkFiles does.
func dirHash(root string, keep func(name string) bool) (string, error) {
	h := sha256.New()
	err := walkFiles(root, func(p, rel string) error {
		if !keep(filepath.Base(p)) {
			return nil
		}
		return hashFile(h, p, rel)
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// walkFiles calls each for every file below root, in path order, with its path and its path
// relative to root (slash-separated). Symbolic links to directories are followed, each real
// directory once (a Traefik plugin under development is often a link into plugins-local);
// a dangling link is skipped.
func walkFiles(root string, each func(p, rel string) error) error {
	seen := map[string]bool{}
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", dir, err)
		}
		if seen[real] {
			return nil
		}
		seen[real] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		for _, e := range entries {
			p, r := filepath.Join(dir, e.Name()), path.Join(rel, e.Name())
			info, err := os.Stat(p) // follows a link
			if err != nil {
				continue
			}
			if info.IsDir() {
				err = walk(p, r)
			} else {
				err = each(p, r)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, "")
}
