package server

import (
	"crypto/rand"
	"crypto/tls"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/canonical"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/router"
)

// siteCore is the part of a site the core decodes itself.
type siteCore struct {
	Host  string      `json:"host"`
	Bind  string      `json:"bind"`
	Port  *int        `json:"port"`
	TLS   *TLSConfig  `json:"tls"`
	HTTP2 *HTTP2Bool  `json:"http2"`
	Route config.Node `json:"routes"`
	// Middleware is the `middleware[]` list, built by buildMiddlewareList.
	Middleware config.Node `json:"middleware"`
}

// HTTP2Bool is the `http2` key: an object, or (as older READMEs wrote) a boolean; true means
// "enable with defaults", false turns HTTP/2 off for the site's port.
type HTTP2Bool struct {
	Disabled             bool
	MaxConcurrentStreams uint32 `json:"maxConcurrentStreams"`
	InitialWindowSize    uint32 `json:"initialWindowSize"`
	H2C                  bool   `json:"h2c"`
}

// UnmarshalConfig implements config.Unmarshaler.
func (h *HTTP2Bool) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	switch v := n.(type) {
	case bool:
		h.Disabled = !v
	case map[string]config.Node:
		var o http2Options
		config.Decode(v, path, &o, d)
		h.H2C = o.H2C
		if o.MaxConcurrentStreams != nil {
			h.MaxConcurrentStreams = *o.MaxConcurrentStreams
		}
		if o.InitialWindowSize != nil {
			if *o.InitialWindowSize < 65535 || *o.InitialWindowSize > 1<<31-1 {
				d.Errorf(config.Join(path, "initialWindowSize"), "must be between 65535 and 2147483647")
			}
			h.InitialWindowSize = *o.InitialWindowSize
		}
	default:
		d.Errorf(path, "must be an object or a boolean, got %s", config.Describe(n))
	}
}

// routeEntryConfig is one routes[] entry.
type routeEntryConfig struct {
	Match  *matchConfig `json:"match" cfg:"required"`
	Proxy  config.Node  `json:"proxy"`
	Static config.Node  `json:"static"`
}

type matchConfig struct {
	Path    string            `json:"path"`
	Method  []string          `json:"method"`
	Headers map[string]string `json:"headers"`
	Query   map[string]string `json:"query"`
	Cookies map[string]string `json:"cookies"`
}

// Site is one built site: the core view, its pipeline and its instances.
type Site struct {
	// Info is the core view of the site.
	Info *core.Site
	// TLS is the site's tls block (nil without TLS).
	TLS *TLSConfig
	// HTTP2 is the site's http2 block (nil when absent).
	HTTP2 *HTTP2Bool

	cert       *tls.Certificate
	chain      http.Handler
	hostPolicy core.HostPolicy
	instances  []core.Instance
	features   []string // the features of the modules active on the site, in build order
	routes     int
	// logJSON reports that the site's access log is JSON lines (core.LogJSON).
	logJSON bool
	// bind is the canonical address the site's listener binds to; "" means the server's
	// default (every interface, or the --bind flag).
	bind string
	// bodyTimeout is global.clientBodyTimeoutMs, enforced on every request body.
	bodyTimeout time.Duration
	// sendTimeout is global.clientSendTimeoutMs, enforced here on HTTP/2 streams (the
	// framing guard enforces it on HTTP/1 connections).
	sendTimeout time.Duration
	// keys are the site's raw keys; conn is what its instances do with raw connections
	// (conn.go).
	keys map[string]config.Node
	conn connRoles
}

// buildSite builds site i of doc from its raw keys: the core keys, the modules the site
// needs, their instances and the pipeline they form. It returns the site and its hooks.
func buildSite(g *core.GlobalContext, doc *config.Document, i int, raw map[string]config.Node, d *config.Diagnostics) (*Site, *core.SiteHooks) {
	s, sc := decodeSiteCore(doc, i, raw, d)
	fallback := &fallbackRouters{}
	ctx := core.NewSiteContext(g, s.Info, raw, g, fallback)
	var p sitePipeline
	for _, m := range siteModules(g, s.Info, raw, d) {
		inst := m.Site(ctx)
		if inst == nil {
			continue
		}
		if err := core.CheckRoles(m, inst, m.SiteRoles, "site"); err != nil {
			d.Errorf(s.Info.Path, "internal error: %v", err)
			continue
		}
		s.instances = append(s.instances, inst)
		s.features = append(s.features, m.Feature)
		p.collect(ctx, s, m, inst)
		s.noteConnRoles(m, inst, d)
	}
	if sc.Middleware != nil {
		missing := core.MissingPolicy{Allowed: g.AllowMissingFeatures, Site: s.Info.HostPort()}
		if mw := buildMiddlewareList(ctx, sc.Middleware, config.Join(s.Info.Path, "middleware"), missing); mw != nil {
			p.stages = append(p.stages, staged{core.StageScripts, 0, mw})
		}
	}
	s.checkRawSite(sc, d)
	if sc.Route != nil {
		rr := buildRoutes(ctx, sc.Route, config.Join(s.Info.Path, "routes"))
		if rr != nil {
			p.routers = append(p.routers, rr)
			s.routes += len(rr.entries)
		}
	}
	s.logJSON, _ = core.LogJSON.Get(ctx)
	main, fallbackRts := splitRouters(p.routers)
	fallback.routers = fallbackRts
	s.chain = p.chain(&terminal{routers: main, notFound: fallback})
	return s, ctx.Hooks()
}

// decodeSiteCore decodes the core keys of site i (host, bind, port, tls, http2, routes,
// middleware)
// into the core view of the site and loads its certificate.
func decodeSiteCore(doc *config.Document, i int, raw map[string]config.Node, d *config.Diagnostics) (*Site, *siteCore) {
	path := doc.SitePath(i)
	var sc siteCore
	coreRaw := map[string]config.Node{}
	for _, k := range coreSiteKeys {
		if v, ok := raw[k]; ok {
			coreRaw[k] = v
		}
	}
	config.Decode(coreRaw, path, &sc, d)
	info := &core.Site{Index: i, Path: path}
	info.Host = normalizeSiteHost(sc.Host, config.Join(path, "host"), d)
	if sc.TLS != nil {
		sc.TLS.validate(config.Join(path, "tls"), d)
		info.TLS = true
		info.UpstreamRoots, info.UpstreamRootsID = sc.TLS.upstreamRoots, sc.TLS.upstreamRootsID
	}
	info.Port = sitePort(sc.Port, info.TLS, config.Join(path, "port"), d)
	info.Label = core.SiteLabel(info.Host, info.Port)
	s := &Site{Info: info, TLS: sc.TLS, HTTP2: sc.HTTP2, bind: parseBind(sc.Bind, config.Join(path, "bind"), d), keys: raw}
	if sc.TLS != nil && sc.TLS.Cert != "" && sc.TLS.Key != "" {
		cert, err := sc.TLS.loadCertificate()
		if err != nil {
			d.Errorf(config.Join(path, "tls.cert"), "%v", err)
		}
		s.cert = cert
	}
	return s, &sc
}

// sitePort returns the configured port, or 443 for a TLS site and 80 otherwise.
func sitePort(port *int, tls bool, path string, d *config.Diagnostics) int {
	switch {
	case port != nil:
		if *port < 1 || *port > 65535 {
			d.Errorf(path, "must be between 1 and 65535")
		}
		return *port
	case tls:
		return 443
	default:
		return 80
	}
}

// siteModules returns the compiled-in modules the site needs (those owning one of its keys,
// and the AlwaysOn ones) in ID order. Keys of modules not compiled in and unknown keys are
// reported.
func siteModules(g *core.GlobalContext, info *core.Site, raw map[string]config.Node, d *config.Diagnostics) []*core.Module {
	missing := core.MissingPolicy{Allowed: g.AllowMissingFeatures, Site: info.HostPort()}
	need := map[*core.Module]bool{}
	for _, k := range config.SortedKeys(raw) {
		if slices.Contains(coreSiteKeys, k) {
			continue
		}
		if m, ok := core.ModuleForSiteKey(k); ok {
			need[m] = true
			continue
		}
		reportSiteKey(d, config.Join(info.Path, k), k, missing)
	}
	reportNestedKeys(d, info.Path, raw, missing)
	for _, m := range core.Modules() {
		if m.AlwaysOn && m.Site != nil {
			need[m] = true
		}
	}
	mods := make([]*core.Module, 0, len(need))
	for m := range need {
		if m.Site != nil {
			mods = append(mods, m)
		}
	}
	sort.Slice(mods, func(a, b int) bool { return mods[a].ID < mods[b].ID })
	return mods
}

// reportSiteKey records a site key no compiled-in module owns: a catalog key whose module
// is not compiled in, a misspelt guard (an error), or an unknown key.
func reportSiteKey(d *config.Diagnostics, path, k string, missing core.MissingPolicy) {
	if _, known := core.LookupCatalog(k); known {
		core.ReportNotCompiled(d, path, k, missing)
		return
	}
	if s := config.Suggest(k, core.CatalogSiteKeys()); s != "" {
		if e, ok := core.LookupCatalog(s); ok && e.Guard {
			// Fail closed: a misspelt guard would otherwise leave the site unguarded.
			d.Errorf(path, "unknown key %q (did you mean %q?); a misspelt guard is an error, not a warning", k, s)
			return
		}
	}
	config.UnknownKey(d, path, k, core.CatalogSiteKeys())
}

// reportNestedKeys checks keys a module owns inside a core block ("tls.acme") like top-level
// ones: present without their module compiled in, they are reported.
func reportNestedKeys(d *config.Diagnostics, path string, raw map[string]config.Node, missing core.MissingPolicy) {
	for _, e := range core.CatalogEntries() {
		k := e.Key
		block, sub, nested := strings.Cut(k, ".")
		if !nested || !slices.Contains(coreSiteKeys, block) {
			continue
		}
		if m, ok := raw[block].(map[string]config.Node); ok && m[sub] != nil {
			if _, ok := core.ModuleForSiteKey(k); !ok {
				core.ReportNotCompiled(d, config.Join(path, k), k, missing)
			}
		}
	}
}

// staged is a middleware at its place in the pipeline.
type staged struct {
	stage core.Stage
	order int
	mw    core.Middleware
}

// sitePipeline collects what a site's instances contribute to its pipeline.
type sitePipeline struct {
	stages          []staged
	routers         []core.Router
	endpoints       map[string]http.Handler
	prefixEndpoints []core.Endpoint
}

// collect records every role inst (the instance of m) plays: middleware, router, endpoints,
// attempt observer, request header injector, host policy and route counter.
func (p *sitePipeline) collect(ctx *core.SiteContext, s *Site, m *core.Module, inst core.SiteInstance) {
	if mw, ok := inst.(core.Middleware); ok {
		p.stages = append(p.stages, staged{m.Stage, m.Order, mw})
	}
	if rt, ok := inst.(core.Router); ok {
		p.routers = append(p.routers, rt)
	}
	if ep, ok := inst.(core.EndpointProvider); ok {
		p.addEndpoints(ep.Endpoints())
	}
	if ao, ok := inst.(core.AttemptObserver); ok {
		ctx.Hooks().AddAttemptObserver(ao)
	}
	if hi, ok := inst.(core.RequestHeaderInjector); ok {
		ctx.Hooks().AddInjectedRequestHeaders(hi.InjectedRequestHeaders()...)
	}
	if hp, ok := inst.(core.HostPolicy); ok {
		s.hostPolicy = hp
	}
	if rc, ok := inst.(core.RouteCounter); ok {
		s.routes += rc.RouteCount()
	}
}

// addEndpoints records endpoints, exact paths by path and prefixes in order.
func (p *sitePipeline) addEndpoints(eps []core.Endpoint) {
	for _, e := range eps {
		if e.Prefix {
			p.prefixEndpoints = append(p.prefixEndpoints, e)
			continue
		}
		if p.endpoints == nil {
			p.endpoints = map[string]http.Handler{}
		}
		p.endpoints[e.Path] = e.Handler
	}
}

// chain wraps end in the collected stages, the endpoint stage included: the lowest stage,
// and within a stage the lowest Order, outermost (modules were provisioned in ID order,
// which breaks remaining ties).
func (p *sitePipeline) chain(end http.Handler) http.Handler {
	stages := p.stages
	if len(p.endpoints) > 0 || len(p.prefixEndpoints) > 0 {
		stages = append(stages, staged{core.StageEndpoints, 0, &endpointStage{exact: p.endpoints, prefix: p.prefixEndpoints}})
	}
	// Innermost first.
	sort.SliceStable(stages, func(a, b int) bool {
		if stages[a].stage != stages[b].stage {
			return stages[a].stage > stages[b].stage
		}
		return stages[a].order > stages[b].order
	})
	h := end
	for _, st := range stages {
		h = st.mw.Wrap(h)
	}
	return h
}

// splitRouters orders routers by precedence and splits them into the main ones and the
// fallback ones (precedence core.RouterFallback and above), which answer what nothing else
// did.
func splitRouters(routers []core.Router) (main, fallback []core.Router) {
	sort.SliceStable(routers, func(a, b int) bool { return routers[a].Precedence() < routers[b].Precedence() })
	for _, rt := range routers {
		if rt.Precedence() >= core.RouterFallback {
			fallback = append(fallback, rt)
		} else {
			main = append(main, rt)
		}
	}
	return main, fallback
}

// fallbackRouters answers a request nothing else answered: the first fallback router that
// takes it, or 404. It is the site's SiteContext.NotFound.
type fallbackRouters struct {
	routers []core.Router
}

// ServeHTTP asks the fallback routers in turn and answers 404 when none takes the request.
func (f *fallbackRouters) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, rt := range f.routers {
		if h := rt.Route(r); h != nil {
			h.ServeHTTP(w, r)
			return
		}
	}
	core.Error(w, r, http.StatusNotFound, "")
}

// normalizeSiteHost returns a configured host in the canonical form requests are compared
// in (canonical.Hostname: lower case, no trailing dot, IDNA A-labels) and maps "*" to the
// catch-all "".
func normalizeSiteHost(h, path string, d *config.Diagnostics) string {
	h = strings.TrimSpace(h)
	if h == "*" || h == "" {
		return ""
	}
	c, err := canonical.Hostname(h)
	if err != nil {
		d.Errorf(path, "%q is not a valid host name", h)
		return strings.ToLower(h)
	}
	return c
}

// terminal is the end of a site's pipeline: it asks each router in turn.
type terminal struct {
	routers  []core.Router
	notFound http.Handler
}

func (t *terminal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, rt := range t.routers {
		if h := rt.Route(r); h != nil {
			h.ServeHTTP(w, r)
			return
		}
	}
	t.notFound.ServeHTTP(w, r)
}

// endpointStage answers special paths before any guard.
type endpointStage struct {
	exact  map[string]http.Handler
	prefix []core.Endpoint
}

func (e *endpointStage) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := e.exact[r.URL.Path]; ok {
			h.ServeHTTP(w, r)
			return
		}
		for _, ep := range e.prefix {
			if router.HasPathPrefix(r.URL.Path, ep.Path) {
				ep.Handler.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// routesRouter is the ordered routes[] list: the first entry that matches answers, and its
// answer is final.
type routesRouter struct {
	entries []routeEntry
}

type routeEntry struct {
	match   router.Match
	handler http.Handler
}

func (rr *routesRouter) Precedence() int { return core.RouterRoutes }

func (rr *routesRouter) Route(r *http.Request) http.Handler {
	for i := range rr.entries {
		if rr.entries[i].match.Matches(r) {
			return rr.entries[i].handler
		}
	}
	return nil
}

// namedRoute records the matched route's name in the request state.
type namedRoute struct {
	name string
	next http.Handler
}

func (n *namedRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if st := core.State(r); st != nil && st.Route == "" {
		st.Route = n.name
	}
	n.next.ServeHTTP(w, r)
}

func buildRoutes(ctx *core.SiteContext, node config.Node, path string) *routesRouter {
	list, ok := node.([]config.Node)
	if !ok {
		ctx.Errorf(path, "must be an array of {match, proxy|static}")
		return nil
	}
	rr := &routesRouter{}
	for i, item := range list {
		p := config.Index(path, i)
		var ec routeEntryConfig
		config.Decode(item, p, &ec, ctx.Diag)
		if ec.Match == nil {
			continue
		}
		var e routeEntry
		mc := ec.Match
		opts := core.HandlerOptions{Name: config.Index("routes", i)}
		if mc.Path != "" {
			gl, err := router.CompileGlob(mc.Path)
			if err != nil {
				ctx.Errorf(config.Join(p, "match.path"), "%v", err)
				continue
			}
			e.match.Path = gl
			opts.MatchPrefix = gl.LiteralPrefix()
		}
		for _, m := range mc.Method {
			e.match.Methods = append(e.match.Methods, strings.ToUpper(m))
		}
		e.match.Headers = compileValues(mc.Headers)
		e.match.Query = compileValues(mc.Query)
		e.match.Cookies = compileValues(mc.Cookies)
		var h http.Handler
		switch {
		case ec.Proxy != nil && ec.Static != nil:
			ctx.Warnf(p, "both proxy and static are set; proxy answers and static is ignored")
			fallthrough
		case ec.Proxy != nil:
			h, _ = ctx.Handler("proxy", ec.Proxy, config.Join(p, "proxy"), opts)
		case ec.Static != nil:
			h, _ = ctx.Handler("static", ec.Static, config.Join(p, "static"), opts)
		default:
			ctx.Errorf(p, "needs proxy or static")
			continue
		}
		if h == nil {
			// The module is missing (warned) or failed (error recorded): a match still
			// ends routing and goes to the fallback, so a later entry never takes a request
			// meant for this one (docs/configuration.md, routes[]).
			h = ctx.NotFound()
		}
		e.handler = &namedRoute{name: opts.Name, next: h}
		rr.entries = append(rr.entries, e)
	}
	return rr
}

func compileValues(m map[string]string) map[string]router.ValueMatcher {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]router.ValueMatcher, len(m))
	for k, v := range m {
		out[k] = router.NewValueMatcher(v)
	}
	return out
}

// ServeHTTP runs the site's pipeline with a fresh request state.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serve(w, r, nil) }

// serve runs the site's pipeline; nominated are the header names the client's Connection
// header nominated, which the entry removed (RequestState.Nominated).
func (s *Site) serve(w http.ResponseWriter, r *http.Request, nominated []string) {
	st, r := core.AcquireState(w, r, s.Info, time.Now())
	defer core.ReleaseState(st)
	st.Nominated = nominated
	// The canonical key is written out: Header.Get/Set would canonicalise "X-Request-ID"
	// (an allocation each) on every request.
	ids := r.Header[requestIDKey]
	if len(ids) == 0 || ids[0] == "" || len(ids[0]) > 200 {
		ids = newRequestID()
		r.Header[requestIDKey] = ids
	} else if len(ids) > 1 {
		ids = ids[:1:1]
	}
	st.ID = ids[0]
	w.Header()[requestIDKey] = ids // one shared, never modified slice
	body := core.GuardBody(w, r, s.bodyTimeout)
	defer body.End() // also when the handler panics (http.ErrAbortHandler): see GuardedBody.mu
	st.Writer.GuardSend(r, w, s.sendTimeout)
	s.chain.ServeHTTP(&st.Writer, r)
}

// requestIDKey is X-Request-ID in net/http's canonical form.
const requestIDKey = "X-Request-Id"

// requestID is a generated X-Request-ID and the one-element value slice that holds it,
// in one allocation.
type requestID struct {
	vals [1]string
	text [36]byte
}

// newRequestID returns a random UUID v4 as a header value slice. Its string points into the
// same allocation as the slice; the bytes are written before the string is made and never
// after.
func newRequestID() []string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	const hexdig = "0123456789abcdef"
	id := new(requestID)
	b := &id.text
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j] = hexdig[c>>4]
		b[j+1] = hexdig[c&0xf]
		j += 2
	}
	id.vals[0] = unsafe.String(&b[0], len(b))
	return id.vals[:]
}
