package proxy

import (
	"net/http"
	"net/url"
	"time"

	"github.com/conduitproxy/conduit/core"
)

// defaultMaxBodyBuffer is the request body size buffered for retries and the mirror when the
// site sets no limits.maxBodyBufferBytes (core.BodyBufferLimit): 1 MiB (docs/proxy.md).
const defaultMaxBodyBuffer = 1 << 20

// upstreamMaker builds one upstream of a route from its URL and weight.
type upstreamMaker func(raw string, weight uint32) (*upstream, error)

// newRoute builds one proxy route from its config: the transport settings its upstreams
// share, the pool (targets, groups, backup), the mirror, health checking, sticky sessions
// and the retry policy. The route is added to ss, so the site's health checkers and Admin
// API see it.
func newRoute(ctx *core.SiteContext, ss *siteSettings, rc *RouteConfig, matchPrefix, name string) (*route, error) {
	ts, perTry := routeTransportSettings(ctx.Site, rc)
	rt := &route{name: name, site: ss, rewrite: rc.Rewrite, websocket: rc.Websocket, hooks: ctx.Hooks(),
		maxBuffer: ss.maxBodyBuffer, failStatus: &defaultFailStatus, priority: 50}
	if rc.Priority != nil {
		rt.priority = int(*rc.Priority)
	}
	if rc.StripPrefix && matchPrefix != "/" {
		rt.stripPrefix = matchPrefix
	}
	mk := func(raw string, weight uint32) (*upstream, error) {
		return newUpstream(ctx, raw, weight, ts, rc.HTTP2)
	}
	p, err := newRoutePool(rc, ss.outlier, mk)
	if err != nil {
		return nil, err
	}
	if rc.Mirror != "" {
		u, err := mk(rc.Mirror, 1)
		if err != nil {
			return nil, err
		}
		rt.mirror = u
	}
	if hc := rc.HealthCheck; hc != nil {
		applyHealthCheck(p, hc, rc.Sticky == nil)
		if fs := failStatuses(hc.UnhealthyStatus); fs != nil {
			rt.failStatus = fs
		}
		ss.checkers = append(ss.checkers, newHealthChecker(hc, p, ctx.Logger))
	}
	if sk := rc.Sticky; sk != nil {
		applySticky(p, sk)
	}
	if r := rc.Retry; r != nil && r.Attempts != nil {
		rt.retry = newRetryPolicy(r, perTry)
	}
	rt.pool = p
	rt.metrics = newRouteMetrics(ctx, name)
	ss.routes = append(ss.routes, rt)
	return rt, nil
}

// routeTransportSettings compiles the route's timeout, pool and upstreamTls blocks over the
// defaults and the site's trust store. perTry is timeout.perTryMs (0 when unset), which the
// retry policy applies.
func routeTransportSettings(site *core.Site, rc *RouteConfig) (ts transportSettings, perTry time.Duration) {
	ts = transportSettings{
		connect:     defaultConnectTimeout,
		firstByte:   defaultReadTimeout,
		maxIdle:     defaultMaxIdlePerHost,
		idleTimeout: defaultIdleTimeout,
		http2:       rc.HTTP2,
		verify:      true,
		roots:       site.UpstreamRoots,
		rootsID:     site.UpstreamRootsID,
	}
	if t := rc.Timeout; t != nil {
		perTry = ts.applyTimeouts(t)
	}
	if p := rc.Pool; p != nil {
		ts.applyPool(p)
	}
	if u := rc.UpstreamTLS; u != nil {
		if u.Verify != nil {
			ts.verify = *u.Verify
		}
		ts.serverName = u.ServerName
	}
	return ts, perTry
}

// applyTimeouts sets the connect, send and first-byte timeouts of a `timeout` block
// (firstByteMs wins over its alias readMs) and returns perTryMs as a duration.
func (ts *transportSettings) applyTimeouts(t *Timeouts) (perTry time.Duration) {
	if t.ConnectMs != nil {
		ts.connect = ms(*t.ConnectMs)
	}
	if t.SendMs != nil {
		ts.send = ms(*t.SendMs)
	}
	if t.ReadMs != nil {
		ts.firstByte = ms(*t.ReadMs)
	}
	if t.FirstByteMs != nil {
		ts.firstByte = ms(*t.FirstByteMs)
	}
	if t.PerTryMs != nil {
		perTry = ms(*t.PerTryMs)
	}
	return perTry
}

// applyPool sets the keep-alive pool of a `pool` block; maxIdle 0 turns keep-alive to the
// upstreams off.
func (ts *transportSettings) applyPool(p *Pool) {
	if p.MaxIdle != nil {
		ts.maxIdle = int(*p.MaxIdle)
		if ts.maxIdle == 0 {
			ts.maxIdle = -1 // keep-alive to upstreams off
		}
	}
	if p.IdleTimeoutSecs != nil {
		ts.idleTimeout = time.Duration(*p.IdleTimeoutSecs) * time.Second
	}
}

// newRoutePool builds the route's pool: its targets and strategy, its groups (which replace
// the targets as the primaries when present) and its backup.
func newRoutePool(rc *RouteConfig, outlier *outlierPolicy, mk upstreamMaker) (*pool, error) {
	p := &pool{outlier: outlier}
	var primaries []*upstream
	for _, t := range rc.Targets {
		u, err := mk(t.URL, t.Weight)
		if err != nil {
			return nil, err
		}
		primaries = append(primaries, u)
	}
	p.strategy = newStrategy(rc.Strategy, rc.HashKey)
	if rc.Strategy == "" {
		// Weights given without a strategy are honoured, as nginx does.
		p.autoWeighted = true
		p.weighted = newStrategy("weighted-round-robin", "")
	}
	if len(rc.Groups) > 0 {
		var err error
		if primaries, err = addGroups(p, rc, primaries[:0], mk); err != nil {
			return nil, err
		}
	}
	p.set.Store(newUpstreamSet(primaries))
	if rc.Backup != "" {
		u, err := mk(rc.Backup, 1)
		if err != nil {
			return nil, err
		}
		p.backup = u
	}
	return p, nil
}

// addGroups builds the route's groups into p: each group's upstreams and strategy, and one
// pseudo-upstream per group for the group strategy to pick from. It returns primaries with
// every group's upstreams appended.
func addGroups(p *pool, rc *RouteConfig, primaries []*upstream, mk upstreamMaker) ([]*upstream, error) {
	p.groupPick = newStrategy(rc.GroupStrategy, rc.HashKey)
	var pseudo []*upstream
	for i, gc := range rc.Groups {
		g := &group{name: gc.Name, strategy: newStrategy(gc.Strategy, rc.HashKey)}
		var ups []*upstream
		for _, t := range gc.Targets {
			u, err := mk(t.URL, t.Weight)
			if err != nil {
				return nil, err
			}
			ups = append(ups, u)
			primaries = append(primaries, u)
		}
		g.set = newUpstreamSet(ups)
		p.groups = append(p.groups, g)
		pu := &upstream{label: "group:" + gc.Name, st: newUpstreamState("group:" + gc.Name)}
		pu.st.groupIndex = i
		pu.weight.Store(1)
		pseudo = append(pseudo, pu)
	}
	p.groupSet = newUpstreamSet(pseudo)
	return primaries, nil
}

// applyHealthCheck sets the pool's circuit breaker (maxConnectionsPerUpstream), prewarmed
// connections and slow start from a healthCheck block. Slow start applies only when
// slowStartAllowed (no sticky block) and the strategy does not hash.
func applyHealthCheck(p *pool, hc *HealthCheckConfig, slowStartAllowed bool) {
	if hc.MaxConnectionsPerUpstream != nil {
		p.maxConns = int64(min(*hc.MaxConnectionsPerUpstream, 1<<62))
	}
	if hc.PrewarmConnections != nil {
		p.prewarm = int(*hc.PrewarmConnections)
	}
	if !p.strategy.hashed() && slowStartAllowed {
		p.slowStart = time.Duration(hc.SlowStartSecs) * time.Second
	}
}

// failStatuses compiles healthCheck.unhealthyStatus into a lookup table, nil when the list
// is empty (the route then uses defaultFailStatus). Codes of 600 and above are ignored.
func failStatuses(codes []uint16) *[600]bool {
	if len(codes) == 0 {
		return nil
	}
	fs := new([600]bool)
	for _, st := range codes {
		if st < 600 {
			fs[st] = true
		}
	}
	return fs
}

// applySticky sets the pool's sticky-session cookie. Without a secret the cookie value is a
// consistent-hash key (pool.pickSticky), and a request without the cookie is hashed by client
// IP.
func applySticky(p *pool, sk *StickyConfig) {
	p.sticky = &sticky{cookie: sk.Cookie, strict: sk.Strict}
	if sk.Secret != nil {
		p.sticky.secret = []byte(sk.Secret.Reveal())
	} else {
		p.strategy = &strategy{kind: stratHash, key: clientIP}
	}
}

// defaultFailStatus are the statuses passive health counts as failures without
// healthCheck.unhealthyStatus: 500, 502, 503 and 504.
var defaultFailStatus = func() (fs [600]bool) {
	for _, s := range []int{500, 502, 503, 504} {
		fs[s] = true
	}
	return fs
}()

// newUpstream builds an upstream whose state (health, latency, in-flight count) is shared by
// URL across routes and reloads, and whose transport is shared by settings.
func newUpstream(ctx *core.SiteContext, raw string, weight uint32, ts transportSettings, http2 bool) (*upstream, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "http" && http2 {
		ts.h2c = true
	}
	tr := core.SharedOf(ctx.Shared, ts.key(), func() *http.Transport { return newTransport(ts) })
	st := core.SharedOf(ctx.Shared, "proxy.upstream|"+raw, func() *upstreamState { return newUpstreamState(raw) })
	up := &upstream{url: u, label: raw, self: isSelf(u, []int{ctx.Site.Port}), transport: tr, send: ts.send, st: st,
		active: activeGauge(ctx.Global.Metrics, raw)}
	if (u.Scheme == "http" || u.Scheme == "https") && !ts.http2 && !ts.h2c {
		up.h1 = core.SharedOf(ctx.Shared, ts.key()+"|h1", func() *h1Client { return newH1Client(ts) }).poolFor(u)
	}
	if ts.h2c {
		up.send = 0 // h2c multiplexes: HTTP2Config.WriteByteTimeout bounds its writes
	}
	up.weight.Store(max(weight, 1))
	return up, nil
}

func ms(n uint64) time.Duration { return time.Duration(n) * time.Millisecond }
