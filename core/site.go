package core

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// Site is the core's typed view of one configured site: what the listeners and the dispatcher
// need. Everything else in a site belongs to modules.
type Site struct {
	// Index is the site's position in the file.
	Index int
	// Host is the virtual host, lower-cased, without port; "" for a catch-all site.
	Host string
	// Port is the listener port.
	Port int
	// TLS reports whether the site is served over TLS.
	TLS bool
	// Label names the site in APIs and metrics: "host:port", or "*" for a catch-all.
	Label string
	// Path is the diagnostic path prefix of the site ("sites[2]", or "" for the single shape).
	Path string
	// UpstreamRoots is the trust store for the site's https:// upstreams when tls.ca is set:
	// the system roots plus the certificates of that file. nil means the system roots.
	UpstreamRoots *x509.CertPool
	// UpstreamRootsID identifies UpstreamRoots' content (a SHA-256 of the tls.ca file), so
	// that connection pools built with different trust stores are never shared; "" without
	// tls.ca.
	UpstreamRootsID string
}

// Scheme is "https" for a TLS site and "http" otherwise.
func (s *Site) Scheme() string {
	if s.TLS {
		return "https"
	}
	return "http"
}

// HostPort names the site by host and port ("*:8080" for a catch-all), which tells sites
// apart even where the label does not.
func (s *Site) HostPort() string {
	host := s.Host
	if host == "" {
		host = "*"
	}
	return host + ":" + strconv.Itoa(s.Port)
}

// SiteLabel builds the label of a site: "host:port", or "*" for a catch-all.
func SiteLabel(host string, port int) string {
	if host == "" {
		return "*"
	}
	return host + ":" + strconv.Itoa(port)
}

// Instance is what a module's Global provisions. The roles it plays (Starter, Stopper,
// AttemptObserver…: see Role) are declared twice: in the module's registration
// (Module.GlobalRoles), which the server checks every instance against (CheckRoles), and by
// compile-time guards in the module (var _ core.Starter = (*T)(nil)), so a method whose
// signature drifts fails the build.
type Instance = any

// SiteInstance is a module's part of one site: besides the roles of Instance it may be a
// Middleware (placed at its module's Stage), Router, EndpointProvider, HostPolicy,
// RouteCounter, RequestHeaderInjector, Drainer or certificate source, declared in
// Module.SiteRoles and with guards like Instance's.
type SiteInstance = any

// Middleware wraps the rest of the pipeline. Wrap is called once per generation, never per
// request.
type Middleware interface {
	Wrap(next http.Handler) http.Handler
}

// MiddlewareFunc adapts a function to Middleware.
type MiddlewareFunc func(next http.Handler) http.Handler

// Wrap implements Middleware.
func (f MiddlewareFunc) Wrap(next http.Handler) http.Handler { return f(next) }

// Router is a module that can answer some requests at the end of the pipeline.
type Router interface {
	// Route returns the handler for r, or nil when r is not for this router. It must be
	// cheap: no allocation on the common path.
	Route(r *http.Request) http.Handler
	// Precedence orders routers in a site (see the Router* constants); lower goes first.
	Precedence() int
}

// Endpoint is a special path answered before any guard runs (health, metrics, ACME
// challenges, hot reload).
type Endpoint struct {
	// Path is matched against the request path, ignoring the query.
	Path string
	// Prefix makes Path match itself and everything below it.
	Prefix bool
	// Handler answers the request.
	Handler http.Handler
}

// EndpointProvider is a site instance that contributes endpoints.
type EndpointProvider interface {
	Endpoints() []Endpoint
}

// Starter is an instance with background work (health probes, watchers). Start runs after
// the whole generation is provisioned and validated, before it takes traffic.
type Starter interface {
	Start(ctx context.Context) error
}

// Stopper is an instance that must release resources when its generation is retired.
type Stopper interface {
	Stop(ctx context.Context) error
}

// HandlerOptions tells a handler module how a routes[] entry matched.
type HandlerOptions struct {
	// MatchPrefix is the literal prefix of the entry's match.path ("/api" for "/api/**",
	// the whole path for an exact path, "" when the entry has no path). A proxy target with
	// stripPrefix removes it.
	MatchPrefix string
	// Name labels the route in metrics and APIs ("routes[0]").
	Name string
}

// Shared holds values that outlive one generation (upstream health, connection pools), keyed
// by a string the module chooses. A reload builds a new generation that can pick up the
// values of the old one.
type Shared interface {
	// Get returns the value for key, building it with build when absent.
	Get(key string, build func() any) any
}

// SiteContext is what a module sees while it provisions its part of one site.
type SiteContext struct {
	// Context is cancelled when the generation being built is stopped: after it was replaced
	// and its last request finished (or the shutdown timeout passed), or when it fails to
	// build.
	context.Context
	// Site is the core view of the site.
	Site *Site
	// Logger is scoped to the site.
	Logger *slog.Logger
	// Diag collects errors and warnings.
	Diag *config.Diagnostics
	// Shared survives reloads.
	Shared Shared
	// Global is the generation's global context.
	Global *GlobalContext

	raw      map[string]config.Node
	notFound http.Handler
	memo     map[string]any
	hooks    *SiteHooks
}

// Hooks returns the site's observer hooks. Handlers keep the pointer and call it per request;
// the core fills it in once every module of the generation is provisioned.
func (c *SiteContext) Hooks() *SiteHooks {
	if c.hooks == nil {
		c.hooks = &SiteHooks{}
	}
	return c.hooks
}

// Memo returns the value stored under key for this site of this generation, building it on
// first use. Modules use it to share one decoded section between their site instance and the
// handlers they build for routes[].
func (c *SiteContext) Memo(key string, build func() any) any {
	if v, ok := c.memo[key]; ok {
		return v
	}
	if c.memo == nil {
		c.memo = map[string]any{}
	}
	v := build()
	c.memo[key] = v
	return v
}

// NewSiteContext is used by the server to build a site and by tests of modules.
func NewSiteContext(ctx context.Context, site *Site, raw map[string]config.Node, g *GlobalContext, notFound http.Handler) *SiteContext {
	if g == nil {
		g = NewGlobalContext(ctx, nil, &config.Diagnostics{}, nil, nil)
	}
	return &SiteContext{
		Context: ctx, Site: site, Logger: g.Logger.With("site", site.Label),
		Diag: g.Diag, Shared: g.Shared, Global: g, raw: raw, notFound: notFound,
	}
}

// Section returns the raw node of a site key.
func (c *SiteContext) Section(key string) (config.Node, bool) {
	n, ok := c.raw[key]
	return n, ok
}

// Path returns the diagnostic path of a site key ("sites[0].proxy").
func (c *SiteContext) Path(key string) string { return config.Join(c.Site.Path, key) }

// Decode decodes the section of key into out, recording problems. It reports whether the key
// was present.
func (c *SiteContext) Decode(key string, out any) bool {
	n, ok := c.raw[key]
	if !ok {
		return false
	}
	config.Decode(n, c.Path(key), out, c.Diag)
	return true
}

// Errorf records an error at path.
func (c *SiteContext) Errorf(path, format string, args ...any) { c.Diag.Errorf(path, format, args...) }

// Warnf records a warning at path.
func (c *SiteContext) Warnf(path, format string, args ...any) { c.Diag.Warnf(path, format, args...) }

// NotFound returns the handler for a request nothing answered: the site's fallback chain.
// Handlers that decline late (a static file that does not exist) call it.
func (c *SiteContext) NotFound() http.Handler { return c.notFound }

// reportNotCompiled records a catalog key of this site whose module is not compiled in.
func (c *SiteContext) reportNotCompiled(path, key string) {
	ReportNotCompiled(c.Diag, path, key, MissingPolicy{Allowed: c.Global.AllowMissingFeatures, Site: c.Site.HostPort()})
}

// RouteStage builds the route-level stage a module provides for key (found inside a route
// object at path). It returns nil, false when the key's module is not compiled in; the
// warning (or, for a guard, the error) is recorded.
func (c *SiteContext) RouteStage(key string, node config.Node, path, route string) (Middleware, bool) {
	m, ok := ModuleForRouteKey(key)
	if !ok || m.Route == nil {
		c.reportNotCompiled(path, "route."+key)
		return nil, false
	}
	mw := m.Route(c, key, node, path, route)
	return mw, mw != nil
}

// Handler builds a handler from a routes[] key ("proxy", "static") found at path.
func (c *SiteContext) Handler(key string, node config.Node, path string, opts HandlerOptions) (http.Handler, bool) {
	m, ok := ModuleForHandlerKey(key)
	if !ok || m.Handler == nil {
		c.reportNotCompiled(path, "handler."+key)
		return nil, false
	}
	h := m.Handler(c, key, node, path, opts)
	return h, h != nil
}

// GlobalContext is what a module sees while it provisions its global part, and what every
// site context of one generation shares.
type GlobalContext struct {
	// Context is cancelled when the generation is retired.
	context.Context
	// Logger is the process logger.
	Logger *slog.Logger
	// Diag collects errors and warnings.
	Diag *config.Diagnostics
	// Shared survives reloads.
	Shared Shared
	// Metrics is the process-wide metrics registry (it survives reloads).
	Metrics *telemetry.Registry
	// AllowMissingFeatures are the features of global.allowMissingFeatures: guards of these
	// features that are not compiled in are dropped with a warning instead of refusing the
	// config (see ReportNotCompiled).
	AllowMissingFeatures []string

	raw       map[string]config.Node
	observers []AttemptObserver
	memo      map[string]any
	memoOrder []string
}

// Memo returns the generation-wide value stored under key, building it on first use. Use it
// for a module's generation-wide state shared by its site instances, such as an aggregator
// that serves one Admin API endpoint for every site. Values that implement Starter, Stopper
// or AdminProvider are started, stopped and served like instances.
func (c *GlobalContext) Memo(key string, build func() any) any {
	if v, ok := c.memo[key]; ok {
		return v
	}
	if c.memo == nil {
		c.memo = map[string]any{}
	}
	v := build()
	c.memo[key] = v
	c.memoOrder = append(c.memoOrder, key)
	return v
}

// MemoValues returns the memoised values in creation order (the core collects them).
func (c *GlobalContext) MemoValues() []any {
	out := make([]any, 0, len(c.memoOrder))
	for _, k := range c.memoOrder {
		out = append(out, c.memo[k])
	}
	return out
}

// AddAttemptObserver registers an observer of every upstream attempt on every site of the
// generation (tracing uses it).
func (c *GlobalContext) AddAttemptObserver(o AttemptObserver) { c.observers = append(c.observers, o) }

// AttemptObservers returns the generation-wide attempt observers.
func (c *GlobalContext) AttemptObservers() []AttemptObserver { return c.observers }

// NewGlobalContext builds a global context. A nil shared store or registry gives a fresh one.
func NewGlobalContext(ctx context.Context, raw map[string]config.Node, d *config.Diagnostics, shared Shared, metrics *telemetry.Registry) *GlobalContext {
	if shared == nil {
		shared = NewSharedStore()
	}
	if metrics == nil {
		metrics = telemetry.NewRegistry()
	}
	return &GlobalContext{Context: ctx, Logger: slog.Default(), Diag: d, Shared: shared, Metrics: metrics, raw: raw}
}

// Section returns the raw node of a global key.
func (c *GlobalContext) Section(key string) (config.Node, bool) {
	n, ok := c.raw[key]
	return n, ok
}

// Decode decodes global.<key> into out, reporting whether the key was present.
func (c *GlobalContext) Decode(key string, out any) bool {
	n, ok := c.raw[key]
	if !ok {
		return false
	}
	config.Decode(n, config.Join("global", key), out, c.Diag)
	return true
}

// HostPolicy is a site instance that decides which Host headers the site accepts (the
// securityHeaders.allowedHosts list). Without one, a site with a host accepts only that host,
// and a catch-all site accepts any.
type HostPolicy interface {
	AllowHost(host string) bool
}

// RouteCounter is a router that reports how many routes it holds, for `conduit validate`.
type RouteCounter interface {
	RouteCount() int
}

// UpstreamAttempt describes one try of an upstream request, for metrics and traces.
type UpstreamAttempt struct {
	// Route names the route ("/api", "routes[0]").
	Route string
	// Upstream is the target URL as configured.
	Upstream string
	// Status is the upstream's status code, 0 when no response arrived.
	Status int
	// Err is the transport error, nil when a response arrived.
	Err error
	// Start is when the attempt began.
	Start time.Time
	// Duration is the time to the response header (or the error).
	Duration time.Duration
	// Retry is true for every attempt after the first.
	Retry bool
}

// AttemptObserver is told about every upstream attempt. Site instances that implement it
// are registered with their site's hooks; global instances register through
// GlobalContext.AddAttemptObserver.
type AttemptObserver interface {
	ObserveAttempt(r *http.Request, a *UpstreamAttempt)
}

// RequestHeaderInjector is implemented by site instances that add request headers an
// upstream trusts (the consumers guard's idHeader and consumer headers, forwardAuth's
// responseHeaders). The core collects the names into the site's hooks; the proxy never
// forwards a client's request trailer under one of them.
type RequestHeaderInjector interface {
	// InjectedRequestHeaders returns the canonical names the instance may set on requests.
	InjectedRequestHeaders() []string
}

// SiteHooks fans events out to the observers of one site and records the request header
// names its guards inject. The zero value has none, and calling it then costs one length
// check.
type SiteHooks struct {
	attempt  []AttemptObserver
	injected map[string]struct{}
}

// AddInjectedRequestHeaders records names a guard of the site sets on requests (the core
// does this after provisioning).
func (h *SiteHooks) AddInjectedRequestHeaders(names ...string) {
	if h.injected == nil {
		h.injected = make(map[string]struct{}, len(names))
	}
	for _, n := range names {
		h.injected[http.CanonicalHeaderKey(n)] = struct{}{}
	}
}

// InjectsRequestHeader reports whether a guard of the site sets the request header name
// (canonical form).
func (h *SiteHooks) InjectsRequestHeader(name string) bool {
	if h == nil {
		return false
	}
	_, ok := h.injected[name]
	return ok
}

// AddAttemptObserver registers o (the core does this after provisioning).
func (h *SiteHooks) AddAttemptObserver(o AttemptObserver) { h.attempt = append(h.attempt, o) }

// HasAttemptObservers reports whether anybody listens, so callers can skip building events.
func (h *SiteHooks) HasAttemptObservers() bool { return h != nil && len(h.attempt) > 0 }

// Attempt reports one upstream attempt.
func (h *SiteHooks) Attempt(r *http.Request, a *UpstreamAttempt) {
	if h == nil {
		return
	}
	for _, o := range h.attempt {
		o.ObserveAttempt(r, a)
	}
}

// AdminEndpoint is an Admin API route a module contributes (the cache module adds
// DELETE /cache/purge, the rate limiter GET /rate-limits). The Admin API checks the bearer
// token before calling Handler.
type AdminEndpoint struct {
	// Method is the HTTP method ("GET", "POST", "DELETE").
	Method string
	// Path is the exact path ("/cache/purge").
	Path string
	// Handler answers; it writes JSON.
	Handler http.Handler
}

// AdminProvider is a global instance, a GlobalContext.Memo value or a site instance that
// contributes Admin API endpoints. The Admin API collects them from the current generation,
// so a build without the module answers 501 for its documented endpoints. When several
// providers offer the same method and path, the first wins (global instances, then memo
// values, then sites in file order): an endpoint that reports on every site should live in
// a GlobalContext.Memo aggregator, not in each site instance.
type AdminProvider interface {
	AdminEndpoints() []AdminEndpoint
}

// StatusProvider is an instance that adds fields to the Admin API's GET /status answer
// (the proxy reports configured_upstreams, healthy_upstreams, retry_inflight). Numeric
// fields of several providers with the same name are added up.
type StatusProvider interface {
	AdminStatus() map[string]any
}

// Drainer is an instance with long-lived responses (event streams, live reload) that must
// end for a graceful shutdown to finish: Drain is called when the server starts shutting
// down, before it waits for requests in flight.
type Drainer interface {
	Drain()
}
