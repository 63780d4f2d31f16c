// Package tap is "tcpdump for microservices": the Admin API's GET /tap streams a summary of
// every finished request (time, method, host, path, status, latency, route, upstream,
// request id and chosen headers) as NDJSON, filtered by site, route, path prefix, method or
// status class. `conduit tap` prints the stream and `conduit top` turns it into live
// per-route and per-upstream rates, success rates and latency percentiles.
//
// The recording stage sits at core.StageObserve on every site of a config that has an Admin
// API (no config key). While nobody taps it costs one atomic load per request; events are
// built only while a tap is open, and a slow tap never blocks a request: its bounded queue
// drops events and the stream reports how many.
//
// Taps survive reloads: the broker lives in core.Shared, and each generation's stages publish
// into it. See docs/tap.md.
package tap

import (
	"context"
	"net/http"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ID:          "http.observe.tap",
		Feature:     "tap",
		Description: "live request inspection: Admin API GET /tap and GET /top, `conduit tap`, `conduit top`",
		Stage:       core.StageObserve,
		Order:       20, // after tracing, before metrics and the access log
		AlwaysOn:    true,
		AdminPaths:  []string{"GET /tap", "GET /top"},
		AdminUnused: "no site has tap",
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
	})
}

// sharedKey names the broker in core.Shared; memoKey the generation's Admin API provider.
const (
	sharedKey = "http.observe.tap/broker"
	memoKey   = "http.observe.tap/service"
)

// brokerOf returns the process-wide broker.
func brokerOf(s core.Shared) *broker {
	return core.SharedOf(s, sharedKey, newBroker)
}

// provision adds the recording stage to every site of a config that has an Admin API: without
// one nobody can tap, so the stage is left out of the chain.
func provision(ctx *core.SiteContext) core.SiteInstance {
	if !adminConfigured(ctx.Global) {
		return nil
	}
	b := brokerOf(ctx.Shared)
	ctx.Global.Memo(memoKey, func() any { return &service{b: b} })
	return &stage{b: b, site: ctx.Site.HostPort()}
}

// adminConfigured reports whether global.admin.bind is set (the core decodes and validates
// it; this only peeks).
func adminConfigured(g *core.GlobalContext) bool {
	n, ok := g.Section("admin")
	if !ok {
		return false
	}
	m, ok := n.(map[string]config.Node)
	if !ok {
		return false
	}
	bind, _ := m["bind"].(string)
	return bind != ""
}

// service is the generation's part of the tap: the Admin API endpoint, and the count of
// started generations that tells a reload (a new generation starts before the old one
// stops) from the process stopping.
type service struct {
	b       *broker
	started bool
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Starter       = (*service)(nil)
	_ core.Stopper       = (*service)(nil)
	_ core.AdminProvider = (*service)(nil)
	_ core.Middleware    = (*stage)(nil)
)

// Start implements core.Starter.
func (s *service) Start(context.Context) error {
	if !s.started {
		s.started = true
		s.b.live.Add(1)
	}
	return nil
}

// Stop implements core.Stopper: when the last started generation stops, open taps end.
func (s *service) Stop(context.Context) error {
	if s.started {
		s.started = false
		if s.b.live.Add(-1) == 0 {
			s.b.closeAll()
		}
	}
	return nil
}

// AdminEndpoints implements core.AdminProvider.
func (s *service) AdminEndpoints() []core.AdminEndpoint {
	return []core.AdminEndpoint{
		{Method: http.MethodGet, Path: "/tap", Handler: http.HandlerFunc(s.b.serveTap)},
		{Method: http.MethodGet, Path: "/top", Handler: http.HandlerFunc(s.b.serveTop)},
	}
}

// stage is the recording middleware of one site.
type stage struct {
	b    *broker
	site string
}

// Wrap implements core.Middleware.
func (s *stage) Wrap(next http.Handler) http.Handler { return &recorder{stage: s, next: next} }

// recorder is the per-site handler; a named type rather than a closure so the idle path is
// a load, a compare and a call.
type recorder struct {
	*stage
	next http.Handler
}

// ServeHTTP implements http.Handler.
func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.b.active.Load() == 0 {
		h.next.ServeHTTP(w, r)
		return
	}
	h.record(w, r)
}

// record serves r and publishes its summary. The request line is read before the rest of
// the pipeline runs, so a rewrite further in does not change what the tap shows.
func (h *recorder) record(w http.ResponseWriter, r *http.Request) {
	if !h.b.snap.Load().wantsSite(h.site) {
		h.next.ServeHTTP(w, r) // every open tap filters this site out
		return
	}
	ev := &Event{Site: h.site, Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: core.RedactQuery(r.URL.RawQuery), Proto: r.Proto}
	start := time.Now()
	reqHeader := r.Header
	h.next.ServeHTTP(w, r)
	st := core.State(r)
	ev.Time = start
	if st != nil {
		if !st.Start.IsZero() {
			ev.Time = st.Start
		}
		ev.Status, ev.Bytes = st.Writer.Status, st.Writer.Bytes
		ev.Route, ev.Upstream, ev.UpstreamDuration, ev.RequestID = st.Route, st.Upstream, st.UpstreamDuration, st.ID
	}
	if ev.Status == 0 {
		ev.Status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	ev.Duration = time.Since(ev.Time)
	if ip := core.ClientIP(r); ip.IsValid() {
		ev.ClientIP = ip.String()
	}
	sn := h.b.snap.Load()
	sn.capture(ev, reqHeader, w.Header())
	sn.publish(ev)
}
