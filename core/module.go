// Package core is Conduit's kernel: the module registry, the fixed request pipeline, the
// per-request state and the contexts modules are built with. It knows no feature; every
// feature (even the proxy) is a module that registers itself from init().
package core

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Stage is a module's fixed place in a site's request pipeline. Stages run in ascending order
// on the way in; response work done by a stage's wrapper therefore runs in descending order on
// the way out. A stage that no module fills costs nothing: it is simply not in the chain.
type Stage int

// The pipeline, in order. The guard order (IP filter … scripts) is the original Conduit's
// (docs/compatibility.md).
const (
	// StageNone marks a module that adds no request stage (a service, a config source, a
	// handler used only through routes).
	StageNone Stage = 0
	// StageObserve: access logs, metrics, tracing, tap. Sees every request and final response.
	StageObserve Stage = 100
	// StageResponseTime: X-Response-Time and Server-Timing.
	StageResponseTime Stage = 150
	// StageCompression: response compression.
	StageCompression Stage = 200
	// StageResponseHeaders: security headers and custom `headers` on every response.
	StageResponseHeaders Stage = 250
	// StageEndpoints is where core answers special paths (/__health__, metrics, hot
	// reload) before any guard runs. (ACME HTTP-01 challenges are answered on the
	// tls.httpRedirectPort listener, through HTTPChallengeHandler.)
	StageEndpoints Stage = 300
	// StageIPFilter: allow/deny lists → 403.
	StageIPFilter Stage = 400
	// StageCORS: preflight answered before auth and rate limits.
	StageCORS Stage = 450
	// StageLimits: in-flight, body and header limits → 503/413/431.
	StageLimits Stage = 500
	// StageRateLimit: the site-level rate limit → 429.
	StageRateLimit Stage = 550
	// StageConsumers identifies named consumers; runs before basic and API-key auth.
	StageConsumers Stage = 600
	// StageBasicAuth → 401.
	StageBasicAuth Stage = 650
	// StageAPIKey → 401.
	StageAPIKey Stage = 700
	// StageJWT → 401.
	StageJWT Stage = 750
	// StageForwardAuth: sub-request to an auth service.
	StageForwardAuth Stage = 800
	// StageRedirects: 301/302/307/308 rules.
	StageRedirects Stage = 850
	// StageFaults: fault injection.
	StageFaults Stage = 900
	// StageScripts is the site's `middleware[]` list (script, WASM and plugin entries, in
	// declaration order), composed by the core from the modules' MiddlewareEntry.
	StageScripts Stage = 950
	// StageRouting is where the site's routers are consulted; it is the end of the chain.
	StageRouting Stage = 1000
)

var stageNames = map[Stage]string{
	StageNone: "none", StageObserve: "observe", StageResponseTime: "responseTime",
	StageCompression: "compression", StageResponseHeaders: "responseHeaders",
	StageEndpoints: "endpoints", StageIPFilter: "ipFilter", StageCORS: "cors",
	StageLimits: "limits", StageRateLimit: "rateLimit", StageConsumers: "consumers",
	StageBasicAuth: "basicAuth", StageAPIKey: "apiKey", StageJWT: "jwtAuth",
	StageForwardAuth: "forwardAuth", StageRedirects: "redirects", StageFaults: "faults",
	StageScripts: "scripts", StageRouting: "routing",
}

// String names the stage.
func (s Stage) String() string {
	if n, ok := stageNames[s]; ok {
		return n
	}
	return fmt.Sprintf("stage(%d)", int(s))
}

// Router precedence inside StageRouting (docs/compatibility.md): upload first, then routes[],
// proxy, static and fallback.
const (
	// RouterUpload is the upload module's path prefix (modules/upload).
	RouterUpload = 100
	// RouterRoutes is the ordered routes[] list (core).
	RouterRoutes = 200
	// RouterProxy is the proxy map.
	RouterProxy = 300
	// RouterStatic is static file serving.
	RouterStatic = 400
	// RouterFallback answers whatever nothing else did.
	RouterFallback = 900
)

// Module describes one compiled-in feature. A module registers exactly once, from init().
type Module struct {
	// ID is a dotted, namespaced identifier such as "http.handlers.proxy".
	ID string
	// Feature is the short name used by bundles and xbuild ("proxy", "jwt").
	Feature string
	// Description is one line for `conduit version` and `conduit features`.
	Description string
	// Stage is where the module's site middleware sits in the pipeline (StageNone for
	// modules that only route, serve endpoints or provide services).
	Stage Stage
	// Order places the module among others at the same Stage: a lower Order runs earlier on
	// the way in (its wrapper is outside the others'). Modules that share a stage must set
	// distinct values; the ID only breaks a tie between modules that do not (third-party
	// modules that did not coordinate).
	Order int
	// SiteKeys are the site-level config keys this module owns.
	SiteKeys []string
	// GlobalKeys are the keys under `global` this module owns.
	GlobalKeys []string
	// RouteKeys are keys inside a proxy route object this module owns (e.g. "cache").
	RouteKeys []string
	// HandlerKeys are keys this module can build a request handler from inside routes[]
	// entries ("proxy", "static").
	HandlerKeys []string
	// AdminPaths are the Admin API endpoints ("METHOD /path") the module's instances serve.
	// A binary without the module answers them 501 naming the feature (core/admin).
	AdminPaths []string
	// AdminUnused says why a binary with the module has no instance serving AdminPaths, as
	// the 409 answer words it ("no route has a cache"); empty gives a generic reason.
	AdminUnused string
	// StoreSchemes are the URL schemes of `store:` values (rate limit, cache) the module
	// provides, such as "redis"; `conduit features` names the module for them.
	StoreSchemes []string
	// RouteMapKeys are the module's site and handler keys whose value is a proxy route
	// object or a map of path prefix → route object (the proxy's "proxy"). `conduit
	// features` looks inside them for the RouteKeys of other modules (cache, rateLimit).
	RouteMapKeys []string
	// StoreValued reports that the module's sections take a `store:` URL (rate limit,
	// cache), whose scheme may need another module (see StoreSchemes).
	StoreValued bool
	// Guard marks a module whose keys restrict access (IP filter, rate limit, auth). A
	// config that uses a guard's key in a binary without the module is refused, since
	// nothing would enforce it, unless global.allowMissingFeatures lists the feature (see
	// docs/features.md).
	Guard bool

	// Package is the Go import path of the package that registered the module; Register
	// fills it in. `conduit version` maps it to a module version from the build info.
	Package string

	// SiteRoles are the roles (core.Role) the module's site instances may play; GlobalRoles
	// those of its global instance. The server refuses an instance implementing a role its
	// module does not declare (CheckRoles), so every role is visible in the registration.
	SiteRoles, GlobalRoles Role

	// Site provisions the module for one site. It is called when at least one of SiteKeys is
	// present in the site (or always, when AlwaysOn). It decodes its sections from ctx,
	// records problems in ctx, and returns the site instance or nil.
	Site func(ctx *SiteContext) SiteInstance
	// AlwaysOn makes Site run for every site even without its keys (health endpoint).
	AlwaysOn bool
	// Global provisions the module once per generation from its global keys, recording
	// problems in ctx; it returns the global instance or nil.
	Global func(ctx *GlobalContext) Instance
	// Route builds a route-level stage from one of RouteKeys found in a route object at
	// path; route is that route's name as the handler module that owns the route object
	// names it (the proxy: "/api", "routes[3]"), for metrics labels and the Admin API.
	// Problems are recorded in ctx; nil means no stage.
	Route func(ctx *SiteContext, key string, node any, path, route string) Middleware
	// Handler builds a handler for a routes[] entry from one of HandlerKeys, recording
	// problems in ctx; nil makes a matching request go to the site's NotFound.
	Handler func(ctx *SiteContext, key string, node any, path string, opts HandlerOptions) http.Handler
	// Provides computes the site values other modules read from this module's keys (see
	// SiteValue); each value has one provider in a binary.
	Provides []SiteValueProvider
	// MiddlewareTypes are the `type` values of site `middleware[]` entries the module builds
	// ("script", "wasm"); each type has one module in a binary.
	MiddlewareTypes []string
	// MiddlewareEntry builds one `middleware[]` entry whose type is one of MiddlewareTypes,
	// recording problems in ctx at spec.Path; nil means the entry adds nothing (an error was
	// recorded, or the entry is disabled). The core composes the entries of a site in
	// declaration order at StageScripts (see MiddlewareSpec).
	MiddlewareEntry func(ctx *SiteContext, spec MiddlewareSpec) Middleware
	// ConfigTypes maps some of the module's keys (site, global, route or handler keys, and
	// "middleware.<type>" for a `middleware[]` entry of one of MiddlewareTypes) to a value of
	// the type its constructor decodes that key into (`"responseTime": ResponseTime{}`);
	// `conduit schema` reflects over it (config.Schema). A handler key whose routes[] value
	// differs from the site key's has its own entry, "handler.<key>". A key without an entry
	// is in the schema with any value.
	ConfigTypes map[string]any
}

// registry holds every module registered in this binary. It is the one piece of global
// mutable state: written only from init(), read afterwards.
var registry = struct {
	sync.RWMutex
	byID   map[string]*Module
	byKey  map[string]*Module // site keys
	global map[string]*Module
	route  map[string]*Module
	handle map[string]*Module
	mwType map[string]*Module            // middleware[] entry types
	values map[string]registeredProvider // site values, by name
}{
	byID: map[string]*Module{}, byKey: map[string]*Module{}, global: map[string]*Module{},
	route: map[string]*Module{}, handle: map[string]*Module{}, mwType: map[string]*Module{},
	values: map[string]registeredProvider{},
}

// Register adds a module to the registry. It panics on an empty ID or Feature, a duplicate
// ID, a key already owned by another module (or listed twice by this one) or a site value
// another module already provides, since all are programming errors found at start-up. A
// refused module leaves the registry as it was.
func Register(m Module) {
	if m.ID == "" || m.Feature == "" {
		panic("core.Register: module needs an ID and a Feature")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.byID[m.ID]; dup {
		panic("core.Register: duplicate module " + m.ID)
	}
	mm := m
	if mm.Package == "" {
		mm.Package = callerPackage(2)
	}
	tables := []struct {
		table map[string]*Module
		keys  []string
		what  string
	}{
		{registry.byKey, m.SiteKeys, "site"},
		{registry.global, m.GlobalKeys, "global"},
		{registry.route, m.RouteKeys, "route"},
		{registry.handle, m.HandlerKeys, "handler"},
		{registry.mwType, m.MiddlewareTypes, "middleware type"},
	}
	for _, tb := range tables {
		checkKeys(tb.table, tb.keys, tb.what, m.ID)
	}
	if len(m.MiddlewareTypes) > 0 && m.MiddlewareEntry == nil {
		panic("core.Register: " + m.ID + " declares MiddlewareTypes without a MiddlewareEntry constructor")
	}
	checkProviders(&mm)
	for _, tb := range tables {
		for _, k := range tb.keys {
			tb.table[k] = &mm
		}
	}
	claimProviders(&mm)
	registry.byID[m.ID] = &mm
}

// checkKeys panics when one of keys is already in table or appears twice in keys.
func checkKeys(table map[string]*Module, keys []string, what, id string) {
	for i, k := range keys {
		if prev, ok := table[k]; ok {
			panic(fmt.Sprintf("core.Register: %s key %q is owned by both %s and %s", what, k, prev.ID, id))
		}
		if slices.Contains(keys[:i], k) {
			panic(fmt.Sprintf("core.Register: %s key %q is listed twice by %s", what, k, id))
		}
	}
}

// Modules returns every registered module, sorted by ID.
func Modules() []*Module {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]*Module, 0, len(registry.byID))
	for _, m := range registry.byID {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Features returns the sorted feature names compiled into this binary.
func Features() []string {
	var out []string
	for _, m := range Modules() {
		if !slices.Contains(out, m.Feature) {
			out = append(out, m.Feature)
		}
	}
	sort.Strings(out)
	return out
}

// ModuleForSiteKey returns the module that owns a site key, if it is compiled in.
func ModuleForSiteKey(key string) (*Module, bool) { return lookup(registry.byKey, key) }

// ModuleForGlobalKey returns the module that owns a global key, if it is compiled in.
func ModuleForGlobalKey(key string) (*Module, bool) { return lookup(registry.global, key) }

// ModuleForRouteKey returns the module that owns a route-object key, if it is compiled in.
func ModuleForRouteKey(key string) (*Module, bool) { return lookup(registry.route, key) }

// ModuleForAdminPath returns the compiled-in module that declares an Admin API endpoint
// ("METHOD /path") in its AdminPaths.
func ModuleForAdminPath(methodPath string) (*Module, bool) {
	for _, m := range Modules() {
		if slices.Contains(m.AdminPaths, methodPath) {
			return m, true
		}
	}
	return nil, false
}

// ModuleForMiddlewareType returns the module that builds `middleware[]` entries of a type,
// if it is compiled in.
func ModuleForMiddlewareType(typ string) (*Module, bool) { return lookup(registry.mwType, typ) }

// MiddlewareTypes lists the `middleware[]` entry types compiled into this binary, sorted.
func MiddlewareTypes() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.mwType))
	for t := range registry.mwType {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ModuleForHandlerKey returns the module that builds handlers for a routes[] key.
func ModuleForHandlerKey(key string) (*Module, bool) { return lookup(registry.handle, key) }

func lookup(table map[string]*Module, key string) (*Module, bool) {
	registry.RLock()
	defer registry.RUnlock()
	m, ok := table[key]
	return m, ok
}

// callerPackage returns the import path of the package skip frames up the stack.
func callerPackage(skip int) string {
	pc, _, _, ok := runtime.Caller(skip)
	if !ok {
		return ""
	}
	fn := runtime.FuncForPC(pc)
	if fn == nil {
		return ""
	}
	name := fn.Name() // e.g. "github.com/acme/conduit-geoip.init.0"
	slash := strings.LastIndexByte(name, '/')
	if dot := strings.IndexByte(name[slash+1:], '.'); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}
