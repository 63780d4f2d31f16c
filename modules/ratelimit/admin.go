package ratelimit

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/conduitproxy/conduit/core"
)

// Stats counts one limiter's decisions for GET /rate-limits. Counters start at zero with
// every generation, so a reload resets them (docs/rate-limiting.md, "Admin API").
type Stats struct {
	passed   atomic.Int64
	rejected atomic.Int64
}

// Passed is the number of requests the limiter let through (dry-run hits included).
func (s *Stats) Passed() int64 { return s.passed.Load() }

// Rejected is the number of requests refused with 429.
func (s *Stats) Rejected() int64 { return s.rejected.Load() }

// genState is the rate limiter's generation-wide state: the bucket cap, one memory store per
// scope (so consumer buckets are shared by every site) and the statistics served by the
// Admin API. It lives in GlobalContext.Memo, so a reload starts from empty buckets.
type genState struct {
	cap bucketCap

	mu    sync.Mutex
	mem   map[string]*memStore
	sites map[string]map[string]*Stats
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.AdminProvider = (*genState)(nil)
)

func generation(ctx *core.SiteContext) *genState {
	return core.MemoOf(ctx.Global, "ratelimit.generation", func() *genState {
		g := &genState{mem: map[string]*memStore{}, sites: map[string]map[string]*Stats{}}
		g.cap.max = MaxBuckets
		return g
	})
}

func (g *genState) memFor(scope string) *memStore {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.mem[scope]
	if !ok {
		m = newMemStore(&g.cap)
		g.mem[scope] = m
	}
	return m
}

// stats returns the counters of (site, route); limiters with the same name share them.
func (g *genState) stats(site, route string) *Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	routes, ok := g.sites[site]
	if !ok {
		routes = map[string]*Stats{}
		g.sites[site] = routes
	}
	s, ok := routes[route]
	if !ok {
		s = &Stats{}
		routes[route] = s
	}
	return s
}

type statsJSON struct {
	Passed   int64 `json:"passed"`
	Rejected int64 `json:"rejected"`
}

// snapshot renders { "<site label>": { "<route>": {passed, rejected} } }.
func (g *genState) snapshot() map[string]map[string]statsJSON {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]map[string]statsJSON, len(g.sites))
	for site, routes := range g.sites {
		m := make(map[string]statsJSON, len(routes))
		for name, s := range routes {
			m[name] = statsJSON{Passed: s.Passed(), Rejected: s.Rejected()}
		}
		out[site] = m
	}
	return out
}

// AdminEndpoints implements core.AdminProvider: GET /rate-limits.
func (g *genState) AdminEndpoints() []core.AdminEndpoint {
	return []core.AdminEndpoint{{Method: http.MethodGet, Path: "/rate-limits", Handler: http.HandlerFunc(g.serveStats)}}
}

func (g *genState) serveStats(w http.ResponseWriter, r *http.Request) {
	core.AdminJSON(w, http.StatusOK, g.snapshot())
}
