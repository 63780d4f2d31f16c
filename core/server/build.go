// Package server turns a configuration document into a running Conduit: it builds generations
// (every module provisioned and validated, per site), owns the listeners, dispatches requests
// to sites by port and Host, swaps generations atomically and shuts down gracefully.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/canonical"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// coreSiteKeys are the site keys the core itself owns.
var coreSiteKeys = core.CoreSiteKeys()

// coreGlobalKeys are the global keys the core itself owns.
var coreGlobalKeys = []string{"workers", "backlog", "shutdownTimeoutSecs", "clientBodyTimeoutMs", "clientSendTimeoutMs", "http1Engine", "admin", "providers", "pathNormalization", "allowMissingFeatures", "pidFile"}

// CoreSiteKeys returns the site keys the core decodes itself (every other key belongs to a
// module).
func CoreSiteKeys() []string { return slices.Clone(coreSiteKeys) }

// CoreGlobalKeys returns the global keys the core decodes itself.
func CoreGlobalKeys() []string { return slices.Clone(coreGlobalKeys) }

// GlobalSettings are the core's global keys.
type GlobalSettings struct {
	// Workers is global.workers: GOMAXPROCS when set (cold).
	Workers int `json:"workers"`
	// Backlog is loaded with a warning and has no effect: the kernel's somaxconn applies
	// (docs/compatibility.md).
	Backlog *int `json:"backlog"`
	// ShutdownTimeoutSecs bounds graceful shutdown (cold). Default 30.
	ShutdownTimeoutSecs *int `json:"shutdownTimeoutSecs"`
	// ClientBodyTimeoutMs bounds the wait for the next bytes of a request body (nginx's
	// client_body_timeout); 0 turns it off. Default 60000.
	ClientBodyTimeoutMs *uint64 `json:"clientBodyTimeoutMs"`
	// ClientSendTimeoutMs bounds the wait for a client to accept response bytes (nginx's
	// send_timeout); 0 turns it off (cold). Default 60000.
	ClientSendTimeoutMs *uint64 `json:"clientSendTimeoutMs"`
	// HTTP1Engine is the HTTP/1 server: "conduit" (core/h1engine) or "std" (net/http);
	// cold. Absent means DefaultHTTP1Engine (see HTTP1EngineEnv).
	HTTP1Engine string `json:"http1Engine"`
	// Admin configures the Admin API.
	Admin *AdminSettings `json:"admin"`
	// Providers is reserved in the config schema for Consul/etcd discovery; it is not
	// implemented and loads with a warning (docs/compatibility.md).
	Providers config.Node `json:"providers" doc:"reserved (service discovery); not implemented: ignored with a warning"`
	// AllowMissingFeatures names features whose guards may be dropped when the binary lacks
	// them: a guard key of such a feature is a warning instead of an error (docs/features.md).
	AllowMissingFeatures []string `json:"allowMissingFeatures"`
	// PathNormalization is the request path policy (docs/security.md).
	PathNormalization *PathNormalization `json:"pathNormalization"`
	// PIDFile is global.pidFile: an absolute path the process writes its PID to at start,
	// and a binary upgrade's new process its own (cold; docs/deployment.md).
	PIDFile string `json:"pidFile"`
}

// PathNormalization is global.pathNormalization: how request paths are made canonical
// before dispatch (docs/security.md).
type PathNormalization struct {
	// EscapedSlashes is "reject" (default), "keep" or "unescape": what "%2F", "%5C" and a raw
	// backslash in a path do.
	EscapedSlashes string `json:"escapedSlashes"`
	// MergeSlashes merges empty path segments ("//"); default true.
	MergeSlashes *bool `json:"mergeSlashes"`
}

// options returns the canonical.PathOptions of the settings, reporting a bad spelling at
// global.pathNormalization.
func (p *PathNormalization) options(d *config.Diagnostics) canonical.PathOptions {
	var o canonical.PathOptions
	if p == nil {
		return o
	}
	if p.EscapedSlashes != "" {
		pol, ok := canonical.ParseSlashPolicy(p.EscapedSlashes)
		if !ok {
			d.Errorf("global.pathNormalization.escapedSlashes", "must be reject, keep or unescape, got %q", p.EscapedSlashes)
		}
		o.Slashes = pol
	}
	if p.MergeSlashes != nil && !*p.MergeSlashes {
		o.KeepEmptySegments = true
	}
	if o.Slashes == canonical.KeepSlashes {
		d.Warnf("global.pathNormalization.escapedSlashes", "keep: checks see %%2F as \"/\" while the upstream receives it encoded; use it only when every upstream treats %%2F as data")
	}
	return o
}

// AdminSettings is global.admin.
type AdminSettings struct {
	// Bind is the Admin API address, e.g. "127.0.0.1:2019"; empty means no Admin API (cold).
	Bind string `json:"bind"`
	// Token, when set, is required as a bearer token on every endpoint.
	Token *config.Secret `json:"token"`
}

// ShutdownTimeout returns the graceful shutdown bound.
func (g *GlobalSettings) ShutdownTimeout() time.Duration {
	if g.ShutdownTimeoutSecs == nil {
		return 30 * time.Second
	}
	return time.Duration(*g.ShutdownTimeoutSecs) * time.Second
}

// DefaultClientTimeout is the default of global.clientBodyTimeoutMs and
// global.clientSendTimeoutMs, nginx's default for client_body_timeout and send_timeout.
const DefaultClientTimeout = 60 * time.Second

// ClientBodyTimeout returns global.clientBodyTimeoutMs as a duration (0: off).
func (g *GlobalSettings) ClientBodyTimeout() time.Duration {
	return msOrDefault(g.ClientBodyTimeoutMs, DefaultClientTimeout)
}

// ClientSendTimeout returns global.clientSendTimeoutMs as a duration (0: off).
func (g *GlobalSettings) ClientSendTimeout() time.Duration {
	return msOrDefault(g.ClientSendTimeoutMs, DefaultClientTimeout)
}

// msOrDefault reads an optional millisecond setting.
func msOrDefault(ms *uint64, def time.Duration) time.Duration {
	if ms == nil {
		return def
	}
	return time.Duration(min(*ms, uint64(math.MaxInt64/time.Millisecond))) * time.Millisecond
}

// Generation is one fully provisioned configuration. Requests hold the generation they
// started on until they finish; a reload builds the next generation beside it.
type Generation struct {
	// Doc is the document it was built from.
	Doc *config.Document
	// Global holds the core global settings.
	Global GlobalSettings
	// http1Engine is global.http1Engine resolved (EngineConduit or EngineStd; h1serve.go).
	http1Engine string
	// Sites are the built sites in file order.
	Sites []*Site
	// Warnings are the non-fatal diagnostics of the build.
	Warnings []config.Diagnostic
	// Routes counts routes over all sites (routes[] entries and proxy prefixes).
	Routes int
	// ConfigPath is the file the generation was loaded from ("" when built from memory).
	ConfigPath string
	// Paths is the request path policy every request of the generation is held to.
	Paths canonical.PathOptions

	ports     map[int]*portTable
	instances []core.Instance
	// shared is the generation's hold on the server's shared store, released when the
	// generation stops (nil when Build was given another core.Shared).
	shared *core.SharedUse
	ctx    context.Context
	cancel context.CancelFunc

	// number and activeSince are set once when the server makes the generation current
	// (history.go).
	number      uint64
	activeSince time.Time

	inflight atomic.Int64
	retired  atomic.Bool
	drained  chan struct{}
	drainMu  sync.Once
}

// Ports returns the listener ports of the generation, sorted.
func (g *Generation) Ports() []int {
	out := make([]int, 0, len(g.ports))
	for p := range g.ports {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// BuildOptions tune Build.
type BuildOptions struct {
	// Logger receives provisioning logs; nil means slog.Default().
	Logger *slog.Logger
	// Shared is the cross-generation store; nil makes a fresh one. A *core.SharedStore is
	// read through a core.SharedUse that the generation releases when it stops, freeing
	// the values no other generation uses.
	Shared core.Shared
	// Metrics is the process-wide metrics registry; nil makes a fresh one.
	Metrics *telemetry.Registry
	// BindPort is Options.BindPort: when not 0, the port of every site without a bind key.
	BindPort int
}

// Build provisions every module of every site of doc and validates the result. It opens no
// sockets. On errors the returned generation is nil and every error is in the diagnostics.
func Build(ctx context.Context, doc *config.Document, opts BuildOptions) (*Generation, *config.Diagnostics) {
	d := &config.Diagnostics{}
	d.TrackDocument(doc)
	gctx, cancel := context.WithCancel(ctx)
	g := &Generation{Doc: doc, ctx: gctx, cancel: cancel, ports: map[int]*portTable{}, drained: make(chan struct{})}
	shared := opts.Shared
	if shared == nil {
		shared = core.NewSharedStore()
	}
	if st, ok := shared.(*core.SharedStore); ok {
		g.shared = st.Use()
		shared = g.shared
	}
	globalCtx := core.NewGlobalContext(gctx, doc.Global, d, shared, opts.Metrics)
	if opts.Logger != nil {
		globalCtx.Logger = opts.Logger
	}

	g.buildGlobal(globalCtx, d)
	seen := map[string]int{}
	var hooks []*core.SiteHooks
	for i, raw := range overridePort(sitesOrDefault(doc, d), opts.BindPort, d) {
		s, h := buildSite(globalCtx, doc, i, raw, d)
		hooks = append(hooks, h)
		if s == nil {
			continue
		}
		key := s.Info.Label
		if s.Info.Host == "" {
			key = "*:" + strconv.Itoa(s.Info.Port)
		}
		if prev, dup := seen[key]; dup {
			d.Errorf(config.Join(s.Info.Path, "host"), "duplicate site %s (also sites[%d])", key, prev)
		}
		seen[key] = i
		s.bodyTimeout = g.Global.ClientBodyTimeout()
		s.sendTimeout = g.Global.ClientSendTimeout()
		g.Sites = append(g.Sites, s)
		g.Routes += s.routes
		g.instances = append(g.instances, s.instances...)
		pt := g.ports[s.Info.Port]
		if pt == nil {
			pt = &portTable{port: s.Info.Port}
			g.ports[s.Info.Port] = pt
		}
		pt.sites = append(pt.sites, s)
	}
	for _, h := range hooks {
		for _, o := range globalCtx.AttemptObservers() {
			h.AddAttemptObserver(o)
		}
	}
	// Generation-wide memo values (aggregators) are instances too; they go first so that
	// their admin endpoints win over per-site ones.
	g.instances = append(globalCtx.MemoValues(), g.instances...)
	g.ConfigPath = doc.Path
	g.checkPorts(d)
	g.checkBinds(d)
	g.Warnings = d.Warnings()
	if d.HasErrors() {
		cancel()
		g.stopInstances(context.Background())
		return nil, d
	}
	return g, d
}

// EmptyConfigPort is the port a configuration without sites listens on (one catch-all site
// with no keys: the health endpoint, 404 for the rest; docs/configuration.md, "No sites").
const EmptyConfigPort = 8080

// sitesOrDefault returns the document's sites, or, when it has none, the default site on
// EmptyConfigPort with a warning.
func sitesOrDefault(doc *config.Document, d *config.Diagnostics) []map[string]config.Node {
	if len(doc.Sites) > 0 {
		return doc.Sites
	}
	d.Warnf("sites", "no sites configured: listening on port %d with an empty catch-all site (the health endpoint, 404 for everything else)", EmptyConfigPort)
	return []map[string]config.Node{{"port": float64(EmptyConfigPort)}}
}

func (g *Generation) buildGlobal(ctx *core.GlobalContext, d *config.Diagnostics) {
	raw := g.Doc.Global
	coreRaw := map[string]config.Node{}
	for _, k := range coreGlobalKeys {
		if v, ok := raw[k]; ok {
			coreRaw[k] = v
		}
	}
	config.Decode(coreRaw, "global", &g.Global, d)
	ctx.AllowMissingFeatures = checkAllowMissing(g.Global.AllowMissingFeatures, d)
	moduleKeys := map[*core.Module]bool{}
	for _, k := range config.SortedKeys(raw) {
		if slices.Contains(coreGlobalKeys, k) {
			continue
		}
		if m, ok := core.ModuleForGlobalKey(k); ok {
			moduleKeys[m] = true
			continue
		}
		if _, known := core.LookupCatalog("global." + k); known {
			core.ReportNotCompiled(d, config.Join("global", k), "global."+k, core.MissingPolicy{Allowed: ctx.AllowMissingFeatures})
			continue
		}
		config.UnknownKey(d, config.Join("global", k), k, append(slices.Clone(coreGlobalKeys), core.CatalogGlobalKeys()...))
	}
	gs := &g.Global
	if gs.Workers < 0 || (raw["workers"] != nil && gs.Workers == 0) {
		d.Errorf("global.workers", "must be ≥ 1")
	}
	if gs.Backlog != nil {
		d.Warnf("global.backlog", "is ignored (the kernel's somaxconn applies)")
	}
	if gs.ShutdownTimeoutSecs != nil && *gs.ShutdownTimeoutSecs < 0 {
		d.Errorf("global.shutdownTimeoutSecs", "must not be negative")
	}
	g.Paths = gs.PathNormalization.options(d)
	checkPIDFile(raw, gs.PIDFile, d)
	g.http1Engine = checkHTTP1Engine(gs.HTTP1Engine, d)
	if gs.Providers != nil {
		d.Warnf("global.providers", "is reserved and not implemented; ignored")
	}
	if a := gs.Admin; a != nil {
		if a.Token != nil {
			checkAdminToken(d, a.Token.Reveal())
		}
		if a.Bind != "" {
			if err := checkAdminBind(a.Bind, a.Token != nil); err != nil {
				d.Errorf("global.admin.bind", "%v", err)
			} else if a.Token == nil {
				d.Warnf("global.admin.token", "is not set: any local process or user can reload, reconfigure and stop this server through the Admin API on %s", a.Bind)
			}
		}
	}
	mods := make([]*core.Module, 0, len(moduleKeys))
	for m := range moduleKeys {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].ID < mods[j].ID })
	for _, m := range mods {
		if m.Global == nil {
			continue
		}
		if inst := m.Global(ctx); inst != nil {
			if err := core.CheckRoles(m, inst, m.GlobalRoles, "global"); err != nil {
				d.Errorf("global", "internal error: %v", err)
				continue
			}
			g.instances = append(g.instances, inst)
		}
	}
}

// checkAdminToken reports an empty token, one that is only a variable reference ($NAME or
// ${NAME}: a placeholder that was not expanded, which anyone reading the file or the
// docs can guess) and a short one. An unset variable was already reported when the Secret
// was decoded.
func checkAdminToken(d *config.Diagnostics, tok string) {
	switch {
	case tok == "":
		d.Errorf("global.admin.token", "must not be empty (remove it to disable authentication)")
	case len(d.Unset(tok)) > 0:
	case config.LooksLikeReference(tok):
		d.Errorf("global.admin.token", "is the text of a variable reference ($NAME), not a token: set the variable so that it expands")
	case len(tok) < 16:
		d.Warnf("global.admin.token", "is shorter than 16 characters")
	}
}

func (g *Generation) checkPorts(d *config.Diagnostics) {
	for port, pt := range g.ports {
		tlsSites, plain := 0, 0
		for _, s := range pt.sites {
			if s.Info.TLS {
				tlsSites++
			} else {
				plain++
			}
		}
		if tlsSites > 0 && plain > 0 {
			d.Errorf(pt.sites[0].Info.Path, "port %d mixes TLS and plain-HTTP sites; use separate ports", port)
		}
	}
	for _, s := range g.Sites {
		if s.TLS == nil {
			continue
		}
		if rp := s.TLS.HTTPRedirectPort; rp != 0 {
			if pt, ok := g.ports[int(rp)]; ok && pt.sites[0].Info.TLS {
				d.Errorf(config.Join(s.Info.Path, "tls.httpRedirectPort"), "port %d is a TLS port", rp)
			}
		}
	}
	g.checkTLSPorts(d)
	g.checkPacketPorts(d)
	g.checkRawPorts(d)
}

// Start starts every instance's background work. On an error, what started is stopped.
func (g *Generation) Start() error {
	var started []core.Instance
	for _, inst := range g.instances {
		if st, ok := inst.(core.Starter); ok {
			if err := st.Start(g.ctx); err != nil {
				g.cancel()
				for _, s := range started {
					if sp, ok := s.(core.Stopper); ok {
						_ = sp.Stop(context.Background())
					}
				}
				g.releaseShared(context.Background())
				return err
			}
		}
		started = append(started, inst)
	}
	return nil
}

// Stop cancels the generation's context and stops its instances.
func (g *Generation) Stop(ctx context.Context) {
	g.cancel()
	g.stopInstances(ctx)
}

// stopInstances stops the instances in reverse order, then releases the generation's hold
// on the shared store.
func (g *Generation) stopInstances(ctx context.Context) {
	for i := len(g.instances) - 1; i >= 0; i-- {
		if sp, ok := g.instances[i].(core.Stopper); ok {
			if err := sp.Stop(ctx); err != nil {
				slog.Warn("stopping module instance", "err", err)
			}
		}
	}
	g.releaseShared(ctx)
}

// releaseShared lets go of the shared values the generation used: those no other
// generation uses are freed.
func (g *Generation) releaseShared(ctx context.Context) {
	if g.shared != nil {
		g.shared.Release(ctx)
	}
}

func (g *Generation) acquire() { g.inflight.Add(1) }

func (g *Generation) release() {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.drainMu.Do(func() { close(g.drained) })
	}
}

// retire marks the generation as replaced; Drained closes once no request uses it.
func (g *Generation) retire() {
	g.retired.Store(true)
	if g.inflight.Load() == 0 {
		g.drainMu.Do(func() { close(g.drained) })
	}
}

// Drained is closed when a retired generation has no request left.
func (g *Generation) Drained() <-chan struct{} { return g.drained }

// Inflight returns the number of requests running on this generation.
func (g *Generation) Inflight() int64 { return g.inflight.Load() }

var _ http.Handler = (*Site)(nil)

// ProcessLogJSON reports that a site of g writes its access log as JSON lines (`logging:
// json`): the process log should then be JSON too, so one collector parses both.
func (g *Generation) ProcessLogJSON() bool {
	for _, s := range g.Sites {
		if s.logJSON {
			return true
		}
	}
	return false
}

// Instances returns every provisioned instance (global, memo and site) in start order.
func (g *Generation) Instances() []core.Instance { return g.instances }

// checkAllowMissing validates global.allowMissingFeatures: every entry must be a feature the
// catalog knows (a typo would otherwise leave a guard's error in place, or, worse, read as
// if it had been allowed). It returns the valid names.
func checkAllowMissing(names []string, d *config.Diagnostics) []string {
	known := make([]string, 0, len(core.CatalogFeatures()))
	for _, f := range core.CatalogFeatures() {
		known = append(known, f.Name)
	}
	for _, m := range core.Modules() {
		if !slices.Contains(known, m.Feature) {
			known = append(known, m.Feature)
		}
	}
	var out []string
	for i, n := range names {
		n = core.CanonicalFeature(n) // "rhai" is the original's name of "script"
		if !slices.Contains(known, n) {
			msg := fmt.Sprintf("unknown feature %q", n)
			if s := config.Suggest(n, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.Errorf(config.Index("global.allowMissingFeatures", i), "%s; features: %s", msg, strings.Join(known, ", "))
			continue
		}
		out = append(out, n)
	}
	return out
}
