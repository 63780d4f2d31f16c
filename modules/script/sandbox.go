package script

import (
	"fmt"
	"go/parser"
	"go/token"
	"hash/crc32"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"github.com/traefik/yaegi/stdlib/unrestricted"

	"github.com/conduitproxy/conduit/modules/script/api/symbols"
)

// ImportPath is the import path scripts use for the package in modules/script/api.
const ImportPath = "conduit/script"

// sandboxPackages are the standard-library packages a sandboxed script may import: text,
// encodings, hashes, maths, time and the net/http types, nothing that opens a file, a
// socket or a process (docs/scripting.md#sandbox).
var sandboxPackages = []string{
	"bufio", "bytes", "context", "errors", "fmt", "hash", "hash/crc32", "hash/fnv", "html",
	"io", "math", "math/bits", "math/rand", "mime", "net/http", "net/netip", "net/url", "path",
	"regexp", "sort", "strconv", "strings", "sync", "sync/atomic", "time", "unicode",
	"unicode/utf16", "unicode/utf8",
	"crypto/hmac", "crypto/md5", "crypto/rand", "crypto/sha1", "crypto/sha256", "crypto/sha512",
	"crypto/subtle",
	"encoding/base64", "encoding/hex", "encoding/json", "encoding/xml",
}

// sandboxDenied are symbols of sandboxPackages a sandboxed script does not get: in net/http,
// everything that dials, listens, serves files, hijacks the connection or changes
// process-wide state; in mime, the function that changes the process's type table (the
// Content-Type of every static file).
var sandboxDenied = map[string][]string{
	"mime": {"AddExtensionType"},
	"net/http": {
		"Client", "DefaultClient", "DefaultTransport", "Transport", "Get", "Head", "Post",
		"PostForm", "ListenAndServe", "ListenAndServeTLS", "Serve", "ServeTLS", "Server",
		"FileServer", "FileServerFS", "Dir", "FS", "ServeFile", "ServeFileFS", "ServeContent",
		"NewFileTransport", "NewFileTransportFS", "DefaultServeMux", "Handle", "HandleFunc",
		"ProxyFromEnvironment", "NewResponseController", "ResponseController", "Hijacker",
	},
}

// sandboxReplaced are functions of sandboxPackages a sandboxed script gets in a version that
// does not hand out the process's own mutable values: crc32.MakeTable returns the package's
// shared table for IEEE and Castagnoli, which a script could otherwise rewrite for every
// checksum in the process (gzip's included); the script gets a copy.
var sandboxReplaced = map[string]map[string]reflect.Value{
	"hash/crc32": {"MakeTable": reflect.ValueOf(func(poly uint32) *crc32.Table {
		t := *crc32.MakeTable(poly)
		return &t
	})},
}

// scriptSymbols is the conduit/script package keyed by the import path scripts use.
func scriptSymbols() interp.Exports {
	out := interp.Exports{}
	for k, v := range symbols.Symbols {
		out[ImportPath+"/"+k[strings.LastIndex(k, "/")+1:]] = v
	}
	return out
}

// sandboxFmtKey is the key fmt's symbols are handed to yaegi under in the sandbox. yaegi's
// Use takes the key "fmt/fmt" as the sign of its whole standard library: it then binds
// fmt's Print and Scan functions to the interpreter's streams and compiles the source of
// its generic packages (cmp, maps, slices) into the interpreter, about 0.8 MB of
// interpreter state per program whether the script imports them or not. "fmt/./fmt" names
// the same import path and package (yaegi splits the key with path.Dir and path.Base), so
// sandboxSymbols binds fmt's functions itself and newInterpreter compiles the generic
// packages only for a script that imports one.
const sandboxFmtKey = "fmt/./fmt"

// genericPackages are the packages yaegi has as source (stdlib/generic) and compiles into an
// interpreter instead of taking them from symbol tables.
var genericPackages = []string{"cmp", "maps", "slices"}

// sandboxSymbols builds the symbol set of a sandboxed script from yaegi's standard-library
// tables: the allowed packages among imports (nil: all of them), less the denied symbols,
// with fmt's printing functions writing to stdout and its scanning functions reading
// nothing. Of a package the script does not import it gets only the interface wrappers
// (the "_" names): yaegi needs them to turn a script's type into that package's interface
// (a script's reader assigned to r.Body, an io.ReadCloser, without importing io), and
// compiling such a conversion without them fails inside yaegi.
func sandboxSymbols(stdout io.Writer, imports []string) interp.Exports {
	out := interp.Exports{}
	for _, p := range sandboxPackages {
		key := p + "/" + p[strings.LastIndex(p, "/")+1:]
		syms, ok := stdlib.Symbols[key]
		if !ok {
			continue
		}
		if imports != nil && !slices.Contains(imports, p) {
			if w := wrappers(syms); len(w) > 0 {
				out[key] = w
			}
			continue
		}
		m := make(map[string]reflect.Value, len(syms))
		seen := copies{}
		for name, v := range syms {
			m[name] = isolateVar(v, seen)
		}
		for _, name := range sandboxDenied[p] {
			delete(m, name)
			delete(m, "_"+name)
		}
		for name, v := range sandboxReplaced[p] {
			m[name] = v
		}
		if p == "fmt" {
			key = sandboxFmtKey
		}
		out[key] = m
	}
	// The wrappers yaegi uses for interfaces with special behaviour (fmt.Stringer …), for
	// the standard functions and the bound ones alike.
	types := make(map[reflect.Value][]reflect.Type, len(stdlib.MapTypes)+6)
	for k, v := range stdlib.MapTypes {
		types[k] = v
	}
	out["."] = map[string]reflect.Value{"MapTypes": reflect.ValueOf(types)}
	fmtSyms, ok := out[sandboxFmtKey]
	if !ok {
		return out
	}
	stdin := strings.NewReader("")
	for name, fn := range map[string]any{
		"Print":   func(a ...any) (int, error) { return fmt.Fprint(stdout, a...) },
		"Printf":  func(f string, a ...any) (int, error) { return fmt.Fprintf(stdout, f, a...) },
		"Println": func(a ...any) (int, error) { return fmt.Fprintln(stdout, a...) },
		"Scan":    func(a ...any) (int, error) { return fmt.Fscan(stdin, a...) },
		"Scanf":   func(f string, a ...any) (int, error) { return fmt.Fscanf(stdin, f, a...) },
		"Scanln":  func(a ...any) (int, error) { return fmt.Fscanln(stdin, a...) },
	} {
		v := reflect.ValueOf(fn)
		types[v] = stdlib.MapTypes[fmtSyms[name]]
		fmtSyms[name] = v
	}
	return out
}

// wrappers returns the interface wrappers of a package's symbol table (the "_" names).
func wrappers(syms map[string]reflect.Value) map[string]reflect.Value {
	var out map[string]reflect.Value
	for name, v := range syms {
		if strings.HasPrefix(name, "_") {
			if out == nil {
				out = map[string]reflect.Value{}
			}
			out[name] = v
		}
	}
	return out
}

// sourceImports returns the import paths of a script's files, sorted and without
// duplicates; a file that does not parse adds none (its import fails with yaegi's message).
func sourceImports(files map[string][]byte) []string {
	out := []string{}
	for name, src := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			continue
		}
		for _, imp := range f.Imports {
			if p, err := strconv.Unquote(imp.Path.Value); err == nil {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// fullSymbols is the whole standard library, for an entry with `unrestricted: true`.
func fullSymbols() []interp.Exports { return []interp.Exports{stdlib.Symbols, unrestricted.Symbols} }

// SandboxPackages lists the import paths a sandboxed script may use, sorted (docs and tests).
func SandboxPackages() []string {
	out := append([]string{ImportPath}, sandboxPackages...)
	sort.Strings(out)
	return out
}
