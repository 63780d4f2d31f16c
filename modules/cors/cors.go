// Package cors is the site's `cors`: CORS preflight requests are answered at core.StageCORS,
// before rate limits and authentication, and allowed cross-origin responses carry
// Access-Control-Allow-Origin (with Vary: Origin when the origin is echoed). See
// docs/http-shaping.md.
package cors

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"cors": Config{}},
		ID:          "http.handlers.cors",
		Feature:     "cors",
		Description: "CORS: preflight before auth, origin lists and wildcards, credentials, max age",
		Stage:       core.StageCORS,
		SiteKeys:    []string{"cors"},
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
	})
}

// Config is the site's `cors` key: true, false, or
// {origins, methods, allowedHeaders, credentials, maxAgeSecs}.
type Config struct {
	// Enabled is false for `cors: false`.
	Enabled bool
	// Origins are the allowed origins; nil, empty or containing "*" means any.
	Origins []string
	// Methods are the allowed methods; nil means whatever the preflight asks for.
	Methods []string
	// AllowedHeaders are the allowed request headers; nil means whatever the preflight asks for.
	AllowedHeaders []string
	// Credentials sends Access-Control-Allow-Credentials: true.
	Credentials bool
	// MaxAgeSecs is the preflight cache time; nil sends no Access-Control-Max-Age.
	MaxAgeSecs *uint64
}

type object struct {
	Origins        []string `json:"origins"`
	Methods        []string `json:"methods"`
	AllowedHeaders []string `json:"allowedHeaders"`
	Credentials    bool     `json:"credentials"`
	MaxAgeSecs     *uint64  `json:"maxAgeSecs"`
	// Headers is a name some examples use for allowedHeaders; read as an alias.
	Headers []string `json:"headers"`
}

// UnmarshalConfig implements config.Unmarshaler.
func (c *Config) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	var o object
	if !config.DecodeToggle(n, path, d, "true, false or {origins, methods, allowedHeaders, credentials, maxAgeSecs}", &c.Enabled, &o) {
		return
	}
	c.Origins, c.Methods, c.AllowedHeaders, c.Credentials, c.MaxAgeSecs = o.Origins, o.Methods, o.AllowedHeaders, o.Credentials, o.MaxAgeSecs
	if o.Headers != nil {
		if o.AllowedHeaders == nil {
			c.AllowedHeaders = o.Headers
			d.Warnf(config.Join(path, "headers"), "unknown key \"headers\" in the current schema: read as allowedHeaders; rename it")
		} else {
			d.Warnf(config.Join(path, "headers"), "unknown key \"headers\" ignored (allowedHeaders is set)")
		}
	}
	for i, m := range c.Methods {
		if !core.IsToken(m) {
			d.Errorf(config.Index(config.Join(path, "methods"), i), "%q is not an HTTP method", m)
		}
		c.Methods[i] = strings.ToUpper(m)
	}
	hp := "allowedHeaders"
	if o.AllowedHeaders == nil && o.Headers != nil {
		hp = "headers"
	}
	for i, h := range c.AllowedHeaders {
		if !core.IsToken(h) && h != "*" {
			d.Errorf(config.Index(config.Join(path, hp), i), "%q is not a header name", h)
		}
	}
}

// origins is the compiled origin list.
type origins struct {
	any   bool
	exact []exactOrigin
	wild  []wildOrigin
}

type exactOrigin struct {
	origin string
	value  []string // the Access-Control-Allow-Origin value, built once
}

// wildOrigin is "scheme://prefix*suffix": the star stands for one or more characters other
// than '/' and ':', so "https://*.example.com" matches https://a.example.com and
// https://a.b.example.com but not https://example.com or another port.
type wildOrigin struct {
	prefix, suffix string
}

// compileOrigins validates and compiles the origins list.
func compileOrigins(list []string, path string, d *config.Diagnostics) origins {
	var o origins
	if len(list) == 0 {
		o.any = true
		return o
	}
	for i, raw := range list {
		p := config.Index(path, i)
		s := strings.ToLower(strings.TrimSpace(raw))
		if s == "*" {
			o.any = true
			continue
		}
		if s == "null" {
			o.exact = append(o.exact, exactOrigin{s, []string{s}})
			continue
		}
		if strings.HasSuffix(s, "/") && strings.Count(s, "/") == 3 {
			d.Warnf(p, "an origin has no trailing slash; read as %q", strings.TrimSuffix(s, "/"))
			s = strings.TrimSuffix(s, "/")
		}
		if err := checkOriginPattern(s); err != "" {
			d.Errorf(p, "%s, got %q", err, raw)
			continue
		}
		if pre, suf, ok := strings.Cut(s, "*"); ok {
			o.wild = append(o.wild, wildOrigin{pre, suf})
			continue
		}
		o.exact = append(o.exact, exactOrigin{s, []string{s}})
	}
	return o
}

// checkOriginPattern returns "" for scheme://host[:port] with at most one '*' in the host.
func checkOriginPattern(s string) string {
	const want = "must be an origin such as \"https://app.example.com\" or \"https://*.example.com\" (scheme://host[:port], no path)"
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || !core.IsToken(scheme) || rest == "" || strings.ContainsAny(rest, "/?#@ \\") {
		return want
	}
	if strings.Count(s, "*") > 1 {
		return "may hold at most one \"*\""
	}
	host := rest
	if h, port, has := strings.Cut(rest, ":"); has && !strings.HasPrefix(rest, "[") {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return want
		}
		host = h
	}
	if host == "" || strings.Contains(rest[len(host):], "*") {
		return want
	}
	return ""
}

// match returns the Access-Control-Allow-Origin value for origin, or nil when the origin is
// not allowed. Only a wildcard match allocates.
func (o *origins) match(origin string) []string {
	for i := range o.exact {
		if strings.EqualFold(o.exact[i].origin, origin) {
			return o.exact[i].value
		}
	}
	for _, w := range o.wild {
		if len(origin) > len(w.prefix)+len(w.suffix) &&
			strings.EqualFold(origin[:len(w.prefix)], w.prefix) &&
			strings.EqualFold(origin[len(origin)-len(w.suffix):], w.suffix) &&
			!strings.ContainsAny(origin[len(w.prefix):len(origin)-len(w.suffix)], "/:") {
			return []string{origin}
		}
	}
	return nil
}

// Instance is one site's CORS stage.
type Instance struct {
	origins     origins
	star        bool     // answer "*" (any origin, no credentials)
	credentials bool     // Access-Control-Allow-Credentials: true
	methods     []string // Access-Control-Allow-Methods value, nil to echo the request
	headers     []string // Access-Control-Allow-Headers value, nil to echo the request
	maxAge      []string // Access-Control-Max-Age value, nil for none
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Instance)(nil)
)

var (
	starValue = []string{"*"}
	trueValue = []string{"true"}
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("cors", &c) || !c.Enabled {
		return nil
	}
	p := ctx.Path("cors")
	in := &Instance{origins: compileOrigins(c.Origins, config.Join(p, "origins"), ctx.Diag), credentials: c.Credentials}
	if c.Credentials && in.origins.any {
		ctx.Errorf(config.Join(p, "credentials"), "credentials: true needs an explicit origins list; browsers refuse credentials with Access-Control-Allow-Origin: * (origins is unset, empty or contains \"*\")")
	}
	in.star = in.origins.any && !c.Credentials
	if c.Methods != nil {
		in.methods = []string{strings.Join(c.Methods, ", ")}
	}
	if c.AllowedHeaders != nil {
		in.headers = []string{strings.Join(c.AllowedHeaders, ", ")}
		if c.Credentials && strings.Contains(in.headers[0], "*") {
			ctx.Warnf(config.Join(p, "allowedHeaders"), "\"*\" is not a wildcard for requests with credentials; list the headers")
		}
	}
	if c.MaxAgeSecs != nil {
		in.maxAge = []string{strconv.FormatUint(*c.MaxAgeSecs, 10)}
	}
	return in
}

// Wrap implements core.Middleware.
func (in *Instance) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			in.preflight(w, r, origin)
			return
		}
		if origin == "" && in.star {
			next.ServeHTTP(w, r) // "*" does not depend on the request: nothing to add
			return
		}
		core.OnHeader(r, in)
		next.ServeHTTP(w, r)
	})
}

// preflight answers an OPTIONS preflight directly with 204. A disallowed origin gets the
// 204 without CORS headers, so the browser blocks the real request (as rs/cors).
func (in *Instance) preflight(w http.ResponseWriter, r *http.Request, origin string) {
	h := w.Header()
	h["Vary"] = append(h["Vary"], "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	if in.allowOrigin(h, origin) {
		if in.methods != nil {
			h["Access-Control-Allow-Methods"] = in.methods
		} else {
			h["Access-Control-Allow-Methods"] = r.Header["Access-Control-Request-Method"][:1:1]
		}
		if in.headers != nil {
			h["Access-Control-Allow-Headers"] = in.headers
		} else if req := r.Header["Access-Control-Request-Headers"]; len(req) > 0 {
			h["Access-Control-Allow-Headers"] = req[:len(req):len(req)]
		}
		if in.maxAge != nil {
			h["Access-Control-Max-Age"] = in.maxAge
		}
	}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusNoContent)
}

// BeforeHeader implements core.HeaderHook: the CORS response headers are added when the
// final response header is written, so they also reach 401/403/429 answers of later guards
// (browsers need them to read the error).
func (in *Instance) BeforeHeader(r *http.Request, h http.Header, _ int) {
	if origin := r.Header.Get("Origin"); origin != "" {
		in.allowOrigin(h, origin)
	}
	if !in.star {
		addVary(h, "Origin")
	}
}

// allowOrigin sets Access-Control-Allow-Origin (and -Credentials when configured) for an
// allowed origin and reports whether it was allowed.
func (in *Instance) allowOrigin(h http.Header, origin string) bool {
	allow := starValue
	if !in.star {
		allow = in.origins.match(origin)
	}
	if allow == nil {
		return false
	}
	h["Access-Control-Allow-Origin"] = allow
	if in.credentials {
		h["Access-Control-Allow-Credentials"] = trueValue
	}
	return true
}

// addVary adds token to Vary unless it (or "*") is already listed.
func addVary(h http.Header, token string) {
	for _, v := range h["Vary"] {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			item = strings.TrimSpace(item)
			if strings.EqualFold(item, token) || item == "*" {
				return
			}
		}
	}
	h["Vary"] = append(h["Vary"], token)
}
