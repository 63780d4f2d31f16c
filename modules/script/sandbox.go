package script

import (
	"reflect"
	"sort"
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
// process-wide state.
var sandboxDenied = map[string][]string{
	"net/http": {
		"Client", "DefaultClient", "DefaultTransport", "Transport", "Get", "Head", "Post",
		"PostForm", "ListenAndServe", "ListenAndServeTLS", "Serve", "ServeTLS", "Server",
		"FileServer", "FileServerFS", "Dir", "FS", "ServeFile", "ServeFileFS", "ServeContent",
		"NewFileTransport", "NewFileTransportFS", "DefaultServeMux", "Handle", "HandleFunc",
		"ProxyFromEnvironment", "NewResponseController", "ResponseController",
	},
}

// scriptSymbols is the conduit/script package keyed by the import path scripts use.
func scriptSymbols() interp.Exports {
	out := interp.Exports{}
	for k, v := range symbols.Symbols {
		out[ImportPath+"/"+k[strings.LastIndex(k, "/")+1:]] = v
	}
	return out
}

// sandboxSymbols builds the symbol set of a sandboxed script from yaegi's standard-library
// tables: the allowed packages, less the denied symbols.
func sandboxSymbols() interp.Exports {
	out := interp.Exports{}
	for _, p := range sandboxPackages {
		key := p + "/" + p[strings.LastIndex(p, "/")+1:]
		syms, ok := stdlib.Symbols[key]
		if !ok {
			continue
		}
		m := make(map[string]reflect.Value, len(syms))
		for name, v := range syms {
			m[name] = v
		}
		for _, name := range sandboxDenied[p] {
			delete(m, name)
			delete(m, "_"+name)
		}
		out[key] = m
	}
	// The wrappers yaegi uses for interfaces with special behaviour (fmt.Stringer …).
	if mt, ok := stdlib.Symbols["."]; ok {
		out["."] = mt
	}
	return out
}

// fullSymbols is the whole standard library, for an entry with `unrestricted: true`.
func fullSymbols() []interp.Exports { return []interp.Exports{stdlib.Symbols, unrestricted.Symbols} }

// SandboxPackages lists the import paths a sandboxed script may use, sorted (docs and tests).
func SandboxPackages() []string {
	out := append([]string{ImportPath}, sandboxPackages...)
	sort.Strings(out)
	return out
}
