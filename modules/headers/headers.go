// Package headers owns the site keys `securityHeaders` and `headers`: security headers and
// custom headers on every response of the site, and the securityHeaders.allowedHosts Host
// allowlist (a core.HostPolicy). The headers are applied when the response header is
// written, so they reach proxied, static, fallback, error and endpoint responses alike and
// override an upstream's values (as Caddy's `header` directive with `defer`). See
// docs/http-shaping.md.
package headers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"securityHeaders": Security{}, "headers": Custom{}},
		ID:          "http.handlers.headers",
		Feature:     "headers",
		Description: "security headers, custom response headers and the allowedHosts Host allowlist",
		Stage:       core.StageResponseHeaders,
		Order:       20, // after hotreload
		SiteKeys:    []string{"securityHeaders", "headers"},
		SiteRoles:   core.RoleMiddleware | core.RoleHostPolicy,
		Site:        provision,
	})
}

// field is one header to set, with its canonical name and a shared value slice (never
// modified in place; responses get a fresh slice from net/http's Header methods).
type field struct {
	key   string
	value []string
}

// Instance is one site's response-header stage.
type Instance struct {
	set []field
	del []string
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Instance)(nil)
	_ core.Middleware = (*hostInstance)(nil)
	_ core.HostPolicy = (*hostInstance)(nil)
)

// hostInstance is an Instance that also decides which Host headers the site accepts.
type hostInstance struct {
	*Instance
	own   string // the site's host ("" for a catch-all)
	any   bool
	exact []string
	wild  []string // suffixes ".example.com" of "*.example.com"
}

func provision(ctx *core.SiteContext) core.SiteInstance {
	var sec Security
	ctx.Decode("securityHeaders", &sec)
	var custom Custom
	ctx.Decode("headers", &custom)
	inst := &Instance{}
	if sec.Enabled {
		inst.set = append(inst.set, securityFields(&sec)...)
	}
	set, del := compileCustom(custom, ctx.Path("headers"), ctx.Diag)
	inst.set = mergeFields(inst.set, set)
	inst.del = del
	if sec.Enabled && sec.AllowedHosts != nil {
		return newHostInstance(inst, ctx.Site.Host, sec.AllowedHosts)
	}
	if len(inst.set) == 0 && len(inst.del) == 0 {
		return nil
	}
	return inst
}

// securityFields turns the securityHeaders settings into headers. nosniff and
// X-XSS-Protection are always set, in both forms.
func securityFields(s *Security) []field {
	out := []field{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Xss-Protection", []string{"1; mode=block"}},
		{"X-Frame-Options", []string{s.XFrameOptions}},
		{"Referrer-Policy", []string{s.ReferrerPolicy}},
	}
	if s.HSTSMaxAge > 0 {
		v := "max-age=" + strconv.FormatUint(s.HSTSMaxAge, 10)
		if s.HSTSIncludeSubDomains {
			v += "; includeSubDomains"
		}
		if s.HSTSPreload {
			v += "; preload"
		}
		out = append(out, field{"Strict-Transport-Security", []string{v}})
	}
	if s.CSP != "" {
		out = append(out, field{"Content-Security-Policy", []string{s.CSP}})
	}
	if s.PermissionsPolicy != "" {
		out = append(out, field{"Permissions-Policy", []string{s.PermissionsPolicy}})
	}
	return out
}

// mergeFields appends custom headers; a custom header replaces a security header of the same
// name (custom `headers` win).
func mergeFields(base, custom []field) []field {
	for _, c := range custom {
		replaced := false
		for i := range base {
			if base[i].key == c.key {
				base[i] = c
				replaced = true
			}
		}
		if !replaced {
			base = append(base, c)
		}
	}
	return base
}

func newHostInstance(inst *Instance, own string, hosts []string) *hostInstance {
	hi := &hostInstance{Instance: inst, own: strings.TrimSuffix(strings.TrimPrefix(own, "["), "]")} // own is canonical (core)
	for _, h := range hosts {
		switch {
		case h == "*":
			hi.any = true
		case strings.HasPrefix(h, "*."):
			hi.wild = append(hi.wild, h[1:])
		default:
			hi.exact = append(hi.exact, h)
		}
	}
	return hi
}

// AllowHost implements core.HostPolicy: the site's own host, any listed host, and for
// "*.example.com" any single label below example.com (as Caddy's host matcher). "*" allows
// every Host. host arrives without its port.
func (h *hostInstance) AllowHost(host string) bool {
	if h.any {
		return true
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if h.own != "" && strings.EqualFold(host, h.own) {
		return true
	}
	for _, e := range h.exact {
		if strings.EqualFold(host, e) {
			return true
		}
	}
	for _, suf := range h.wild {
		if len(host) > len(suf) && strings.EqualFold(host[len(host)-len(suf):], suf) &&
			!strings.Contains(host[:len(host)-len(suf)], ".") {
			return true
		}
	}
	return false
}

// Wrap implements core.Middleware.
func (in *Instance) Wrap(next http.Handler) http.Handler {
	if len(in.set) == 0 && len(in.del) == 0 {
		return next // only an allowedHosts policy
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		core.OnHeader(r, in)
		next.ServeHTTP(w, r)
	})
}

// BeforeHeader implements core.HeaderHook: the headers are applied once, just before the
// final response header is sent, so they also reach answers written by later stages and
// replace an upstream's values.
func (in *Instance) BeforeHeader(_ *http.Request, h http.Header, _ int) { in.apply(h) }

// apply writes the configured headers into h.
func (in *Instance) apply(h http.Header) {
	for _, f := range in.set {
		h[f.key] = f.value[:1:1]
	}
	for _, k := range in.del {
		delete(h, k)
	}
}
