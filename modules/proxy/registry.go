package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// registry is the proxy's generation-wide state: every site's routes, their health checkers,
// the Admin API endpoints that list and change upstreams, and the mirror slots. It is a
// GlobalContext.Memo value, so the core starts, stops and serves it like an instance.
type registry struct {
	mu          sync.Mutex
	sites       []*siteSettings
	mirrorSlots chan struct{}
	shared      core.Shared
	metrics     *telemetry.Registry
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Starter        = (*registry)(nil)
	_ core.Stopper        = (*registry)(nil)
	_ core.StatusProvider = (*registry)(nil)
	_ core.AdminProvider  = (*registry)(nil)
)

func newRegistry(shared core.Shared, metrics *telemetry.Registry) *registry {
	return &registry{mirrorSlots: make(chan struct{}, maxMirrorsInFlight), shared: shared, metrics: metrics}
}

// activeGauge returns the in-flight gauge of an upstream URL.
func (g *registry) activeGauge(raw string) *telemetry.Metric {
	return activeGauge(g.metrics, raw)
}

// activeGauge is conduit_upstream_active_connections{upstream}.
func activeGauge(m *telemetry.Registry, raw string) *telemetry.Metric {
	return m.Gauge("conduit_upstream_active_connections", "Requests in flight to each upstream.", "upstream").With(raw)
}

// state returns the shared runtime state of an upstream URL.
func (g *registry) state(raw string) *upstreamState {
	return core.SharedOf(g.shared, "proxy.upstream|"+raw, func() *upstreamState { return newUpstreamState(raw) })
}

func (g *registry) addSite(ss *siteSettings) {
	g.mu.Lock()
	g.sites = append(g.sites, ss)
	g.mu.Unlock()
}

// Start implements core.Starter: it starts the active health checks and opens the
// prewarmed connections.
func (g *registry) Start(ctx context.Context) error {
	for _, ss := range g.sites {
		for _, c := range ss.checkers {
			c.start(ctx)
		}
		for _, rt := range ss.routes {
			rt.prewarm(ctx, ss.log)
		}
	}
	return nil
}

// prewarm fills the keep-alive pool of each of the route's HTTP/1.1 upstreams up to
// healthCheck.prewarmConnections idle connections, in the background; pools live across
// reloads, so after a reload only the missing connections are opened.
func (rt *route) prewarm(ctx context.Context, log *slog.Logger) {
	n := rt.pool.prewarm
	if n <= 0 {
		return
	}
	for _, u := range rt.allUpstreams() {
		if u.h1 == nil || u.self {
			continue
		}
		go func(u *upstream) {
			if err := u.h1.prewarm(ctx, n); err != nil && ctx.Err() == nil {
				log.Warn("prewarming upstream connections failed", "route", rt.name, "upstream", u.label, "error", err)
			}
		}(u)
	}
}

// Stop implements core.Stopper.
func (g *registry) Stop(context.Context) error {
	for _, ss := range g.sites {
		for _, c := range ss.checkers {
			c.stop()
		}
	}
	return nil
}

// AdminStatus implements core.StatusProvider.
func (g *registry) AdminStatus() map[string]any {
	configured, healthy, probed, retry := 0, 0, 0, int64(0)
	now := time.Now().UnixNano()
	seen := map[*upstreamState]bool{}
	for _, ss := range g.sites {
		for _, rt := range ss.routes {
			retry += rt.retryInflight.Load()
			for _, u := range rt.allUpstreams() {
				if seen[u.st] {
					continue
				}
				seen[u.st] = true
				configured++
				if u.healthy() && !u.isEjected(now) {
					healthy++
				}
				if u.st.probed.Load() {
					probed++
				}
			}
		}
	}
	return map[string]any{"configured_upstreams": configured, "healthy_upstreams": healthy,
		"total_probed_upstreams": probed, "retry_inflight": retry}
}

// RouteHealth implements core.UpstreamReporter: every route of the site with its upstreams
// (the backup last, marked).
func (ss *siteSettings) RouteHealth() []core.RouteHealth {
	now := time.Now().UnixNano()
	out := make([]core.RouteHealth, 0, len(ss.routes))
	for _, rt := range ss.routes {
		ups := rt.allUpstreams()
		rh := core.RouteHealth{Route: rt.name, Upstreams: make([]core.UpstreamHealth, 0, len(ups))}
		for _, u := range ups {
			h := u.health(now)
			h.Backup = u == rt.pool.backup
			rh.Upstreams = append(rh.Upstreams, h)
		}
		out = append(out, rh)
	}
	return out
}

func (rt *route) allUpstreams() []*upstream {
	var out []*upstream
	if len(rt.pool.groups) > 0 {
		for _, gr := range rt.pool.groups {
			out = append(out, gr.set.ups...)
		}
	} else {
		out = append(out, rt.pool.set.Load().ups...)
	}
	if rt.pool.backup != nil {
		out = append(out, rt.pool.backup)
	}
	return out
}

// AdminEndpoints implements core.AdminProvider.
func (g *registry) AdminEndpoints() []core.AdminEndpoint {
	return []core.AdminEndpoint{
		{Method: http.MethodGet, Path: "/upstreams", Handler: http.HandlerFunc(g.listUpstreams)},
		{Method: http.MethodPost, Path: "/upstreams/add", Handler: http.HandlerFunc(g.addUpstream)},
		{Method: http.MethodPost, Path: "/upstreams/remove", Handler: http.HandlerFunc(g.removeUpstream)},
		{Method: http.MethodPost, Path: "/upstreams/weight", Handler: http.HandlerFunc(g.setWeight)},
		{Method: http.MethodPost, Path: "/upstreams/drain", Handler: http.HandlerFunc(g.drain(true))},
		{Method: http.MethodPost, Path: "/upstreams/undrain", Handler: http.HandlerFunc(g.drain(false))},
	}
}

func (g *registry) listUpstreams(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	var ups []map[string]any
	var routes []map[string]any
	seen := map[*upstreamState]bool{}
	for _, ss := range g.sites {
		for _, rt := range ss.routes {
			var targets []map[string]any
			for _, u := range rt.allUpstreams() {
				st := u.st
				targets = append(targets, map[string]any{"url": u.label, "weight": u.weight.Load(), "healthy": u.healthy(), "drained": u.drained.Load(),
					"latency_ms": msOf(st.probeLatencyNs.Load()), "consecutive_failures": st.consecFails.Load(),
					"consecutive_successes": st.consecSuccesses.Load()})
				if seen[st] {
					continue
				}
				seen[st] = true
				var lastSecs any
				if ls := st.lastSelected.Load(); ls > 0 {
					lastSecs = float64(now-ls) / 1e9
				}
				ewma := u.peakEWMA(now)
				ups = append(ups, map[string]any{
					"url": u.label, "healthy": u.healthy(), "state": u.stateName(now, rt.pool.maxConns),
					"latency_ms": msOf(st.lastLatencyNs.Load()), "ewma_latency_ms": ewma * 1000,
					"consecutive_failures": st.consecFails.Load(), "consecutive_successes": st.consecSuccesses.Load(),
					"consecutive_5xx": st.consec5xx.Load(), "active_connections": st.active.Load(),
					"ejected":   u.isEjected(now),
					"responses": map[string]int64{"2xx": st.resp2xx.Load(), "4xx": st.resp4xx.Load(), "5xx": st.resp5xx.Load()},
					"selected":  map[string]any{"total": st.selected.Load(), "last_secs": lastSecs},
				})
			}
			strategy := strategyName(rt.pool.strategy)
			routes = append(routes, map[string]any{"site": ss.site.Label, "path": rt.name, "strategy": strategy, "targets": targets})
		}
	}
	core.AdminJSON(w, http.StatusOK, map[string]any{"upstreams": orEmpty(ups), "routes": orEmpty(routes)})
}

func orEmpty(v []map[string]any) []map[string]any {
	if v == nil {
		return []map[string]any{}
	}
	return v
}

func msOf(ns int64) float64 { return float64(ns) / 1e6 }

func strategyName(s *strategy) string {
	switch s.kind {
	case stratWeighted:
		return "weighted-round-robin"
	case stratRandom:
		return "random"
	case stratLeastConn:
		return "least-conn"
	case stratLeastResponseTime:
		return "least-response-time"
	case stratP2C:
		return "p2c"
	case stratHash:
		return "consistent-hash"
	}
	return "round-robin"
}

// upstreamChange is the body of /upstreams/add, /remove and /weight.
type upstreamChange struct {
	Route  string  `json:"route"`
	Target string  `json:"target"`
	Weight *uint32 `json:"weight"`
	Site   string  `json:"site"`
}

func (g *registry) decodeChange(w http.ResponseWriter, r *http.Request, needWeight bool) (*upstreamChange, *route, bool) {
	var c upstreamChange
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&c); err != nil || c.Route == "" || c.Target == "" {
		core.AdminError(w, http.StatusBadRequest, "body must be {\"route\", \"target\"[, \"weight\", \"site\"]}")
		return nil, nil, false
	}
	if needWeight && (c.Weight == nil || *c.Weight < 1) {
		core.AdminError(w, http.StatusBadRequest, "weight must be ≥ 1")
		return nil, nil, false
	}
	if c.Site == "" {
		c.Site = "*"
	}
	rt := g.findRoute(c.Site, c.Route)
	if rt == nil {
		core.AdminError(w, http.StatusNotFound, "no route "+c.Route+" on site "+c.Site)
		return nil, nil, false
	}
	if len(rt.pool.groups) > 0 {
		core.AdminError(w, http.StatusBadRequest, "routes with groups cannot be changed at run time")
		return nil, nil, false
	}
	return &c, rt, true
}

// findRoute finds a route by name on the site with that label ("*" = the first site that
// has the route).
func (g *registry) findRoute(site, name string) *route {
	for _, ss := range g.sites {
		if site != "*" && ss.site.Label != site {
			continue
		}
		for _, rt := range ss.routes {
			if rt.name == name {
				return rt
			}
		}
	}
	return nil
}

func (g *registry) addUpstream(w http.ResponseWriter, r *http.Request) {
	c, rt, ok := g.decodeChange(w, r, false)
	if !ok {
		return
	}
	weight := uint32(1)
	if c.Weight != nil && *c.Weight > 0 {
		weight = *c.Weight
	}
	if err := rt.addTarget(c.Target, weight); err != nil {
		core.AdminError(w, http.StatusBadRequest, err.Error())
		return
	}
	core.AdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "site": c.Site, "route": c.Route, "target": c.Target, "weight": weight})
}

func (g *registry) removeUpstream(w http.ResponseWriter, r *http.Request) {
	c, rt, ok := g.decodeChange(w, r, false)
	if !ok {
		return
	}
	switch err := rt.removeTarget(c.Target); {
	case errors.Is(err, errNoTarget):
		core.AdminError(w, http.StatusNotFound, "no target "+c.Target+" on route "+c.Route)
		return
	case err != nil:
		core.AdminError(w, http.StatusConflict, c.Target+" is the last target of route "+c.Route+"; it cannot be removed")
		return
	}
	core.AdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "removed": true, "site": c.Site, "route": c.Route, "target": c.Target})
}

func (g *registry) setWeight(w http.ResponseWriter, r *http.Request) {
	c, rt, ok := g.decodeChange(w, r, true)
	if !ok {
		return
	}
	if !rt.setWeight(c.Target, *c.Weight) {
		core.AdminError(w, http.StatusNotFound, "no target "+c.Target+" on route "+c.Route)
		return
	}
	core.AdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "site": c.Site, "route": c.Route, "target": c.Target, "weight": *c.Weight})
}

// drain serves POST /upstreams/drain (on: no new requests for the target on the route, the
// ones in flight finish) and POST /upstreams/undrain (off). A reload clears it, as it
// clears run-time weights.
func (g *registry) drain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, rt, ok := g.decodeChange(w, r, false)
		if !ok {
			return
		}
		if !rt.setDrained(c.Target, on) {
			core.AdminError(w, http.StatusNotFound, "no target "+c.Target+" on route "+c.Route)
			return
		}
		core.AdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "site": c.Site, "route": c.Route, "target": c.Target, "drained": on})
	}
}

// routeMetrics are the proxy's own counters for one route.
type routeMetrics struct {
	retries map[string]*telemetry.Metric
}

func newRouteMetrics(ctx *core.SiteContext, route string) *routeMetrics {
	f := ctx.Global.Metrics.Counter("conduit_retry_attempts_total", "Upstream retries by route and condition.", "route", "condition")
	m := &routeMetrics{retries: map[string]*telemetry.Metric{}}
	for _, c := range retryConditions {
		m.retries[c] = f.With(route, c)
	}
	return m
}

func (m *routeMetrics) retry(cond string) {
	if c := m.retries[cond]; c != nil {
		c.Inc()
	}
}
