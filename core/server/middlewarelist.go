package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// reservedMiddlewareTypes are `type` values the original Conduit's schema accepts for
// `middleware[]` entries without implementing them (docs/compatibility.md), with the site
// key that does the job here. An entry of a guard's name is an error (a config that relies
// on it would otherwise be served unguarded); a `headers` entry is a warning.
var reservedMiddlewareTypes = map[string]struct {
	key   string
	guard bool
}{
	"ipFilter": {"ipFilter", true}, "rateLimit": {"rateLimit", true},
	"auth": {"basicAuth, apiKey or jwtAuth", true}, "headers": {"headers", false},
}

// IsReservedMiddlewareType reports whether typ is a reserved `middleware[]` entry type
// (reservedMiddlewareTypes), which no module builds and `validate` reports itself.
func IsReservedMiddlewareType(typ string) bool {
	_, ok := reservedMiddlewareTypes[typ]
	return ok
}

// buildMiddlewareList builds the site's `middleware[]` list at path: each entry goes to the
// module registered for its `type` (core.MiddlewareSpec), and the results are composed in
// declaration order. It returns nil when no entry produced a middleware.
func buildMiddlewareList(ctx *core.SiteContext, node config.Node, path string, missing core.MissingPolicy) core.Middleware {
	list, ok := node.([]config.Node)
	if !ok {
		ctx.Errorf(path, "must be an array of {type, ...} entries, got %s", config.Describe(node))
		return nil
	}
	var ml middlewareList
	for i, item := range list {
		p := config.Index(path, i)
		entry, ok := item.(map[string]config.Node)
		if !ok {
			ctx.Errorf(p, "must be an object with a type, got %s", config.Describe(item))
			continue
		}
		typ, ok := entry["type"].(string)
		if !ok || typ == "" {
			ctx.Errorf(config.Join(p, "type"), "is required: one of %s", strings.Join(knownMiddlewareTypes(), ", "))
			continue
		}
		m, compiled := core.ModuleForMiddlewareType(typ)
		if !compiled {
			reportMiddlewareType(ctx, config.Join(p, "type"), typ, missing)
			continue
		}
		mw := m.MiddlewareEntry(ctx, core.MiddlewareSpec{Type: typ, Index: i, Path: p, Node: entry})
		if mw == nil {
			continue
		}
		if rp, ok := mw.(core.ResponsePhase); ok && rp.ResponsePhase() {
			ml.response = append(ml.response, mw)
		} else {
			ml.request = append(ml.request, mw)
		}
	}
	if len(ml.request) == 0 && len(ml.response) == 0 {
		return nil
	}
	return &ml
}

// reportMiddlewareType records an entry type no compiled-in module builds: a type of a
// first-party module that is not compiled in (an error, since the entry may refuse
// requests, unless global.allowMissingFeatures lists its feature), a reserved name, or an
// unknown type (an error: a misspelt entry must not leave the site without it).
func reportMiddlewareType(ctx *core.SiteContext, path, typ string, missing core.MissingPolicy) {
	if _, known := core.LookupCatalog(core.MiddlewareCatalogKey(typ)); known {
		core.ReportNotCompiled(ctx.Diag, path, core.MiddlewareCatalogKey(typ), missing)
		return
	}
	if r, ok := reservedMiddlewareTypes[typ]; ok {
		if r.guard {
			ctx.Errorf(path, "%q is a reserved middleware type that does nothing; refusing to serve a site that may rely on it (configure the site key %s instead)", typ, r.key)
		} else {
			ctx.Warnf(path, "%q is a reserved middleware type that does nothing; ignored (configure the site key %s instead)", typ, r.key)
		}
		return
	}
	msg := "unknown middleware type %q (known: %s)"
	if s := config.Suggest(typ, knownMiddlewareTypes()); s != "" {
		msg = "unknown middleware type %q (did you mean %q?)"
		ctx.Errorf(path, msg, typ, s)
		return
	}
	ctx.Errorf(path, msg, typ, strings.Join(knownMiddlewareTypes(), ", "))
}

// knownMiddlewareTypes lists the entry types of this binary and of the catalog.
func knownMiddlewareTypes() []string {
	types := core.CatalogMiddlewareTypes()
	for _, t := range core.MiddlewareTypes() {
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	return types
}

// middlewareList is a site's built `middleware[]` list: request-phase entries outermost in
// declaration order, then the response-phase entries, wrapped so that they see the response
// in declaration order too (core.MiddlewareSpec).
type middlewareList struct {
	request, response []core.Middleware
}

// Wrap implements core.Middleware.
func (l *middlewareList) Wrap(next http.Handler) http.Handler {
	h := next
	// The first response-phase entry wraps next directly: it sees the response first.
	for _, mw := range l.response {
		h = mw.Wrap(h)
	}
	for i := len(l.request) - 1; i >= 0; i-- {
		h = l.request[i].Wrap(h)
	}
	return h
}
