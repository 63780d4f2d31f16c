// Package script is the package Go scripts import as "conduit/script" (docs/scripting.md).
// Its symbols reach the interpreter through the tables in ./symbols, generated with
// `yaegi extract` (go generate ./modules/script/api/symbols).
//
// Everything here is safe to call from a script: nothing opens files or sockets.
package script

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/conduitproxy/conduit/core/canonical"
)

// Config is a `middleware[]` entry's `config` value and the entry's name, handed to a
// script's New or NewResponse constructor.
type Config struct {
	// Name is the entry's config path ("sites[0].middleware[1]").
	Name string
	raw  []byte
}

// NewConfig builds a Config from the JSON text of the entry's `config` ("null" without one).
func NewConfig(name string, raw []byte) Config { return Config{Name: name, raw: raw} }

// Decode decodes the entry's config into v (a pointer to a struct, a map or any value) the
// way encoding/json does: a struct field matches a key by its `json` tag or by name, case
// insensitively. A missing config leaves v unchanged.
func (c Config) Decode(v any) error {
	if len(c.raw) == 0 || string(c.raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(c.raw, v); err != nil {
		return fmt.Errorf("%s.config: %w", c.Name, err)
	}
	return nil
}

// Map returns the config as a map (nil when the config is absent or not an object).
func (c Config) Map() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(c.raw, &m)
	return m
}

// JSON returns the config's JSON text ("null" without one).
func (c Config) JSON() string {
	if len(c.raw) == 0 {
		return "null"
	}
	return string(c.raw)
}

// Response is what a response-phase entry's function sees: the status the upstream (or the
// handler) chose and the response header, which it may change before the header is sent.
type Response struct {
	// Status is the response status; it cannot be changed in the response phase.
	Status int
	// Header is the response header; Set, Del and Add change what the client receives.
	Header http.Header
	// Config is the entry's config.
	Config Config
}

// Abort answers the request with status, a text/plain body and no further processing: call
// it and return without calling next. It is Rhai's `response.status = …; return false`.
func Abort(w http.ResponseWriter, status int, body string) {
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// ErrPath is returned by SetPath for a path that has no canonical form.
var ErrPath = errors.New("invalid path")

// SetPath replaces the request's path with p (decoded, starting with "/", no query). The
// path is held to the same canonical form every request path has at entry (dot-segments
// removed, empty segments merged, escapes normalised; docs/security.md), so the routing and
// the upstream see one value. A path without a canonical form is refused with ErrPath and
// the request is unchanged.
func SetPath(r *http.Request, p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: %q does not start with /", ErrPath, p)
	}
	u := *r.URL
	u.Path, u.RawPath = p, ""
	escaped, decoded, err := canonical.Path(u.EscapedPath(), canonical.PathOptions{})
	if err != nil {
		return fmt.Errorf("%w: %q", ErrPath, p)
	}
	r.URL.Path = decoded
	r.URL.RawPath = ""
	if escaped != decoded {
		r.URL.RawPath = escaped
	}
	r.RequestURI = r.URL.RequestURI()
	return nil
}

// SetQuery replaces the request's query string with q (already encoded, without "?").
func SetQuery(r *http.Request, q string) {
	r.URL.RawQuery = q
	r.URL.ForceQuery = false
	r.RequestURI = r.URL.RequestURI()
}
