// Package proxy is Conduit's reverse proxy: the `proxy` key in all its forms, routes[].proxy
// targets, upstream keep-alive pools, forwarded headers, request/response transforms, error
// masking and WebSocket upgrades.
package proxy

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/router"
)

func init() {
	core.Register(core.Module{
		ID:           "http.handlers.proxy",
		Feature:      "proxy",
		Description:  "reverse proxy: proxy map, routes[].proxy, upstream pools, transforms",
		SiteKeys:     []string{"proxy", "requestTransform", "responseTransform", "maskErrors", "allowDuplicateChunked", "outlierDetection"},
		HandlerKeys:  []string{"proxy"},
		RouteMapKeys: []string{"proxy"},
		AdminPaths:   []string{"GET /upstreams", "POST /upstreams/add", "POST /upstreams/remove", "POST /upstreams/weight", "POST /upstreams/drain", "POST /upstreams/undrain"},
		AdminUnused:  "no site has a proxy route",
		SiteRoles:    core.RoleRouter | core.RoleRouteCounter,
		Site:         provisionSite,
		Handler:      buildHandler,
		ConfigTypes:  configTypes,
	})
}

// siteSettings are the site-level keys the proxy owns; every route of the site shares them.
type siteSettings struct {
	requestTransform  *compiledTransform
	responseTransform *compiledTransform
	maskErrors        bool
	site              *core.Site
	log               *slog.Logger
	outlier           *outlierPolicy
	maxBodyBuffer     int64
	registry          *registry
	checkers          []*healthChecker
	routes            []*route
}

// site is the proxy's part of one site: the proxy map as a longest-prefix table.
type site struct {
	table router.PrefixTable[http.Handler]
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Router       = (*site)(nil)
	_ core.RouteCounter = (*site)(nil)
)

// Precedence implements core.Router.
func (s *site) Precedence() int { return core.RouterProxy }

// Route implements core.Router.
func (s *site) Route(r *http.Request) http.Handler {
	_, h, ok := s.table.Lookup(r.URL.Path)
	if !ok {
		return nil
	}
	return h
}

// RouteCount implements core.RouteCounter.
func (s *site) RouteCount() int { return s.table.Len() }

func loadSiteSettings(ctx *core.SiteContext) *siteSettings {
	ss := &siteSettings{site: ctx.Site, log: ctx.Logger, maxBodyBuffer: defaultMaxBodyBuffer}
	ss.registry = core.MemoOf(ctx.Global, "proxy.registry", func() *registry { return newRegistry(ctx.Shared, ctx.Global.Metrics) })
	ss.registry.addSite(ss)
	ctx.Upstreams().Add(ss)
	if v, ok := core.BodyBufferLimit.Get(ctx); ok {
		ss.maxBodyBuffer = v
	}
	var rq, rs Transform
	if ctx.Decode("requestTransform", &rq) {
		ss.requestTransform = compileTransform(&rq, ctx.Path("requestTransform"), true, ctx.Diag)
	}
	if ctx.Decode("responseTransform", &rs) {
		ss.responseTransform = compileTransform(&rs, ctx.Path("responseTransform"), false, ctx.Diag)
	}
	ctx.Decode("maskErrors", &ss.maskErrors)
	var dup bool
	if ctx.Decode("allowDuplicateChunked", &dup) && dup {
		ctx.Warnf(ctx.Path("allowDuplicateChunked"), "has no effect: Go's HTTP stack always normalises Transfer-Encoding")
	}
	var od OutlierConfig
	if ctx.Decode("outlierDetection", &od) {
		p := ctx.Path("outlierDetection")
		pol := &outlierPolicy{consecutive5xx: 5, base: 30 * time.Second, max: 300 * time.Second, maxPercent: 10}
		if od.Consecutive5xx != nil {
			if *od.Consecutive5xx == 0 {
				ctx.Errorf(p+".consecutive5xx", "must be ≥ 1")
			}
			pol.consecutive5xx = int64(*od.Consecutive5xx)
		}
		if od.BaseEjectionTimeSecs != nil {
			pol.base = time.Duration(*od.BaseEjectionTimeSecs) * time.Second
		}
		if od.MaxEjectionTimeSecs != nil {
			pol.max = time.Duration(*od.MaxEjectionTimeSecs) * time.Second
		}
		if pol.max < pol.base {
			ctx.Errorf(p+".maxEjectionTimeSecs", "must be ≥ baseEjectionTimeSecs")
		}
		if od.MaxEjectionPercent != nil {
			if *od.MaxEjectionPercent < 0 || *od.MaxEjectionPercent > 100 {
				ctx.Errorf(p+".maxEjectionPercent", "must be between 0 and 100")
			}
			pol.maxPercent = *od.MaxEjectionPercent
		}
		ss.outlier = pol
	}
	return ss
}

// settingsFor decodes the site-level proxy keys once per site, so that routes[] handlers and
// the proxy map share them.
func settingsFor(ctx *core.SiteContext) *siteSettings {
	return core.MemoOf(ctx, "proxy.settings", func() *siteSettings { return loadSiteSettings(ctx) })
}

func provisionSite(ctx *core.SiteContext) core.SiteInstance {
	ss := settingsFor(ctx)
	node, ok := ctx.Section("proxy")
	if !ok {
		return nil
	}
	path := ctx.Path("proxy")
	s := &site{}
	switch v := node.(type) {
	case string, []config.Node:
		if h := buildRoute(ctx, ss, v, path, "/", "/"); h != nil {
			s.table.Add("/", h)
		}
	case map[string]config.Node:
		if looksLikeRouteObject(v) {
			// `proxy: {targets: [...]}` (as in testdata/compat/file-upload.yaml, docs/compatibility.md):
			// one route for every path, rather than a route keyed "targets".
			ctx.Warnf(path, "read as a single route object for \"/\" (the original parses it as a route named %q)", firstKey(v))
			if h := buildRoute(ctx, ss, v, path, "/", "/"); h != nil {
				s.table.Add("/", h)
			}
			break
		}
		for _, prefix := range config.SortedKeys(v) {
			p := config.Join(path, prefix)
			norm := prefix
			if !strings.HasPrefix(prefix, "/") {
				ctx.Errorf(p, "a proxy prefix must start with \"/\"")
				continue
			}
			if h := buildRoute(ctx, ss, v[prefix], p, norm, norm); h != nil {
				s.table.Add(norm, h)
			}
		}
	default:
		ctx.Errorf(path, "must be a URL, or an object mapping path prefixes to targets, got %s", config.Describe(node))
		return nil
	}
	return s
}

func looksLikeRouteObject(m map[string]config.Node) bool {
	for k := range m {
		if strings.HasPrefix(k, "/") {
			return false
		}
	}
	for k := range m {
		for _, rk := range routeObjectKeys {
			if k == rk {
				return true
			}
		}
	}
	return false
}

func firstKey(m map[string]config.Node) string {
	keys := config.SortedKeys(m)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// buildHandler builds the handler of a routes[] entry's proxy target.
func buildHandler(ctx *core.SiteContext, key string, node any, path string, opts core.HandlerOptions) http.Handler {
	ss := settingsFor(ctx)
	h := buildRoute(ctx, ss, node, path, opts.MatchPrefix, opts.Name)
	if h == nil {
		return nil
	}
	return h
}

// buildRoute decodes, validates and builds one route; stripPrefix removes matchPrefix.
func buildRoute(ctx *core.SiteContext, ss *siteSettings, node config.Node, path, matchPrefix, name string) http.Handler {
	rc := decodeTarget(node, path, ctx.Diag)
	if rc == nil {
		return nil
	}
	before := len(ctx.Diag.Errors())
	rc.validate(path, localAddrs{ports: []int{ctx.Site.Port}, adminBind: ctx.AdminBind()}, ctx.Diag)
	if len(ctx.Diag.Errors()) > before {
		return nil
	}
	rt, err := newRoute(ctx, ss, rc, matchPrefix, name)
	if err != nil {
		ctx.Errorf(path, "%v", err)
		return nil
	}
	var h http.Handler = rt
	if rc.Cache != nil {
		if mw, ok := ctx.RouteStage("cache", rc.Cache, config.Join(path, "cache"), name); ok {
			h = mw.Wrap(h)
		}
	}
	// extAuthz wraps the cache (a cached answer is served only to an authorized request)
	// and sits inside the route's rate limit, as the site stages are ordered.
	if rc.ExtAuthz != nil {
		if mw, ok := ctx.RouteStage("extAuthz", rc.ExtAuthz, config.Join(path, "extAuthz"), name); ok {
			h = mw.Wrap(h)
		}
	}
	if rc.RateLimit != nil {
		if mw, ok := ctx.RouteStage("rateLimit", rc.RateLimit, config.Join(path, "rateLimit"), name); ok {
			h = mw.Wrap(h)
		}
	}
	return h
}
