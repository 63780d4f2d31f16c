// Package redirects is the site's `redirects`: an ordered list of {from, to, status} rules
// at core.StageRedirects (after authentication). `from` is a regular expression matched
// against the whole request path, with $N / ${name} captures expanded in `to`; the older
// `/blog/:slug` segment syntax is also accepted. The first matching rule wins and the query
// string is kept. See docs/http-shaping.md.
package redirects

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ID:          "http.handlers.redirects",
		Feature:     "redirects",
		Description: "redirect rules (regex or :param from, $N in to, 301/302/307/308)",
		Stage:       core.StageRedirects,
		SiteKeys:    []string{"redirects"},
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
		ConfigTypes: map[string]any{"redirects": []Rule{}},
	})
}

// Rule is one entry of `redirects`.
type Rule struct {
	// From is a regular expression for the whole path, or a /path/:param pattern.
	From string `json:"from" cfg:"required"`
	// To is the target, with $1, ${1}, ${name} (and :param for :param rules) expanded.
	To string `json:"to" cfg:"required"`
	// Status is 301 (default), 302, 307 or 308.
	Status *int `json:"status"`
}

// rule is a compiled Rule.
type rule struct {
	re     *regexp.Regexp
	prefix string // literal prefix every match starts with (a cheap first check)
	to     template
	status int
	// schemeRelative: the rule's own target starts with "//", so a Location starting with
	// "//" is what the configuration asked for.
	schemeRelative bool
}

// Instance is one site's redirect stage.
type Instance struct {
	rules []rule
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Instance)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var rules []Rule
	if !ctx.Decode("redirects", &rules) {
		return nil
	}
	in, _ := Compile(rules, ctx.Path("redirects"), ctx.Diag)
	if in == nil || len(in.rules) == 0 {
		return nil
	}
	return in
}

// Compile validates and compiles rules (found at path). It returns the instance and whether
// every rule compiled.
func Compile(rules []Rule, path string, d *config.Diagnostics) (*Instance, bool) {
	in := &Instance{}
	ok := true
	for i, r := range rules {
		p := config.Index(path, i)
		if r.From == "" || r.To == "" {
			if r.From == "" {
				d.Errorf(config.Join(p, "from"), "must not be empty")
			}
			if r.To == "" {
				d.Errorf(config.Join(p, "to"), "must not be empty")
			}
			ok = false
			continue
		}
		status := http.StatusMovedPermanently
		if r.Status != nil {
			switch *r.Status {
			case 301, 302, 307, 308:
				status = *r.Status
			default:
				d.Errorf(config.Join(p, "status"), "must be 301, 302, 307 or 308, got %d", *r.Status)
				ok = false
				continue
			}
		}
		if strings.ContainsAny(r.To, "\r\n\x00") {
			d.Errorf(config.Join(p, "to"), "must not contain CR, LF or NUL")
			ok = false
			continue
		}
		expr, to := r.From, r.To
		if params, isParam := paramPattern(r.From); isParam {
			expr = params
			to = paramTarget(r.To)
		}
		re, err := regexp.Compile(`^(?:` + expr + `)$`)
		if err != nil {
			d.Errorf(config.Join(p, "from"), "invalid regular expression: %v", err)
			ok = false
			continue
		}
		t, bad := compileTemplate(to, re)
		for _, ref := range bad {
			d.Warnf(config.Join(p, "to"), "%s refers to no capture group of from; it expands to \"\"", ref)
		}
		prefix, _ := re.LiteralPrefix()
		in.rules = append(in.rules, rule{re: re, prefix: prefix, to: t, status: status, schemeRelative: strings.HasPrefix(to, "//")})
	}
	return in, ok
}

// paramPattern converts the older segment syntax ("/blog/:slug", "/u/:id/posts") to a
// regular expression with named groups. It reports false when from is not in that syntax:
// it needs at least one whole ":name" segment and no regular-expression metacharacters.
func paramPattern(from string) (string, bool) {
	if strings.ContainsAny(from, `^$()[]{}\|+?*`) || !strings.HasPrefix(from, "/") {
		return "", false
	}
	segs := strings.Split(from, "/")
	var b strings.Builder
	found := false
	for i, s := range segs {
		if i > 0 {
			b.WriteByte('/')
		}
		if len(s) > 1 && s[0] == ':' && isIdent(s[1:]) {
			b.WriteString(`(?P<` + s[1:] + `>[^/]+)`)
			found = true
			continue
		}
		b.WriteString(regexp.QuoteMeta(s))
	}
	return b.String(), found
}

// paramTarget rewrites ":name" in a :param rule's target to "${name}". A ':' that does not
// start an identifier ("https://", ":8080") stays.
func paramTarget(to string) string {
	var b strings.Builder
	for i := 0; i < len(to); i++ {
		c := to[i]
		if c == ':' && i+1 < len(to) && identStart(to[i+1]) {
			j := i + 1
			for j < len(to) && identChar(to[j]) {
				j++
			}
			b.WriteString("${" + to[i+1:j] + "}")
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isIdent(s string) bool {
	if s == "" || !identStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !identChar(s[i]) {
			return false
		}
	}
	return true
}

func identStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func identChar(c byte) bool  { return identStart(c) || c >= '0' && c <= '9' }

// oneLeadingSlash collapses the run of slashes and backslashes at the start of a
// Location to one "/". Browsers read "//host" and "/\host" as another host, so a target
// written as a path ("/$1") must stay a path whatever the captured part of the request path
// starts with (GET /old//evil.example with "/old/(.*)" → "/$1").
func oneLeadingSlash(loc string) string {
	if len(loc) < 2 || loc[0] != '/' || loc[1] != '/' && loc[1] != '\\' {
		return loc
	}
	return "/" + strings.TrimLeft(loc, "/\\")
}

// Wrap implements core.Middleware.
func (in *Instance) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		for i := range in.rules {
			rl := &in.rules[i]
			if !strings.HasPrefix(path, rl.prefix) {
				continue
			}
			m := rl.re.FindStringSubmatchIndex(path)
			if m == nil {
				continue
			}
			loc := rl.to.expand(path, m, r.URL.RawQuery)
			if !rl.schemeRelative {
				loc = oneLeadingSlash(loc)
			}
			h := w.Header()
			h["Location"] = []string{loc}
			h["Content-Length"] = []string{"0"}
			w.WriteHeader(rl.status)
			return
		}
		next.ServeHTTP(w, r)
	})
}
