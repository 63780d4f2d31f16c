// Package exampleheader is an example third-party Conduit module: it owns the site key
// `exampleHeader` and adds one response header to every response of the site.
//
//	exampleHeader:
//	  name: X-Example
//	  value: hello
//
// Build it into Conduit with
//
//	xbuild --with github.com/conduitproxy/conduit-example-header=./plugins/example-header
//
// It shows the whole contract of a module: register from init(), own a config key, decode it
// strictly with path diagnostics, sit at one pipeline stage, and do the work once per
// generation (Wrap), not per request.
package exampleheader

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

// Key is the site config key this module owns.
const Key = "exampleHeader"

func init() {
	core.Register(core.Module{
		ID:          "http.handlers.example_header",
		Feature:     "exampleheader",
		Description: "example third-party module: adds a fixed response header",
		Stage:       core.StageResponseHeaders,
		SiteKeys:    []string{Key},
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
	})
}

// Config is the `exampleHeader` section.
type Config struct {
	// Name is the header name; default X-Example.
	Name string `json:"name"`
	// Value is the header value; required.
	Value string `json:"value" cfg:"required"`
}

// Header is the module's site instance: a middleware that sets one response header.
type Header struct {
	name  string
	value []string
}

// provision decodes the section and validates it. Errors go to the diagnostics with the
// exact path, so `conduit validate` shows them all.
func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode(Key, &c) {
		return nil
	}
	path := ctx.Path(Key)
	if c.Name == "" {
		c.Name = "X-Example"
	}
	if !validToken(c.Name) {
		ctx.Errorf(path+".name", "%q is not a valid header name", c.Name)
		return nil
	}
	if strings.ContainsAny(c.Value, "\r\n") {
		ctx.Errorf(path+".value", "must not contain line breaks")
		return nil
	}
	return New(c.Name, c.Value)
}

// New returns the middleware for a header name and value.
func New(name, value string) *Header {
	// Canonicalise and allocate the value slice once; the request path only assigns it.
	return &Header{name: textproto.CanonicalMIMEHeaderKey(name), value: []string{value}}
}

// Wrap implements core.Middleware. The header is set before the inner handlers run, so they
// can still override it; it is on every response, errors included.
func (h *Header) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()[h.name] = h.value
		next.ServeHTTP(w, r)
	})
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Interface guard: a change to core.Middleware breaks the build, not a deployment.
var _ core.Middleware = (*Header)(nil)
