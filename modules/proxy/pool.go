package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// pool is a route's upstreams and everything that decides which one takes a request:
// the strategy, active health, outlier ejection, the circuit breaker, slow start, backup,
// groups and sticky sessions.
type pool struct {
	strategy *strategy
	// autoWeighted: no strategy was configured, so weights (from the file or set at run
	// time) switch the pool to weighted round-robin, as nginx users expect.
	autoWeighted bool
	weighted     *strategy
	set          atomic.Pointer[upstreamSet]
	backup       *upstream
	groups       []*group
	groupPick    *strategy
	groupSet     *upstreamSet // one pseudo-upstream per group, for the group strategy
	maxConns     int64
	slowStart    time.Duration
	sticky       *sticky
	outlier      *outlierPolicy
	prewarm      int        // healthCheck.prewarmConnections: idle connections opened per upstream
	mu           sync.Mutex // serialises run-time changes to set (reads stay lock-free)
}

// group is one named set of a two-level pool.
type group struct {
	name     string
	strategy *strategy
	set      *upstreamSet
}

// sticky is the sticky-session cookie policy.
type sticky struct {
	cookie string
	strict bool
	// signed maps the signed cookie value to its upstream (with a secret); without a
	// secret the cookie value is a consistent-hash key.
	secret []byte
}

// errOverloaded: every healthy upstream is at maxConnectionsPerUpstream.
type pickError int

const (
	pickOK pickError = iota
	pickOverloaded
	pickStickyDown
	pickNone
)

// available reports whether u can take a request now: actively healthy, not ejected, not
// drained, below the connection cap.
func (p *pool) available(u *upstream, now int64) bool {
	if !u.selectable(now) {
		return false
	}
	return p.maxConns <= 0 || u.st.active.Load() < p.maxConns
}

// pick chooses the upstream for r. exclude (the previous attempt's upstream, for retries) is
// skipped when another candidate exists. setCookie is non-empty when a sticky cookie must be
// (re)issued.
func (p *pool) pick(r *http.Request, exclude *upstream) (u *upstream, setCookie string, perr pickError) {
	now := time.Now().UnixNano()
	ups := p.set.Load()
	strat := p.strategy
	if p.autoWeighted && ups.weighted {
		strat = p.weighted
	}
	if len(p.groups) > 0 {
		g := p.pickGroup(r, now)
		if g == nil {
			return p.fallback(now)
		}
		ups, strat = g.set, g.strategy
	}
	if p.sticky != nil {
		if u, cookie, perr, done := p.pickSticky(r, ups, now); done {
			return u, cookie, perr
		}
	}
	sel := selector{p: p, now: now, exclude: exclude, single: len(ups.ups) == 1}
	if !strat.hashed() {
		sel.slowStart = p.slowStart
	}
	u = strat.pick(r, ups, &sel)
	if u == nil && sel.slowStart > 0 {
		// Slow start never empties the candidate list.
		sel.slowStart = 0
		u = strat.pick(r, ups, &sel)
	}
	if u == nil && exclude != nil {
		sel.only = exclude
		u = strat.pick(r, ups, &sel)
	}
	if u == nil {
		if sel.saturated {
			return nil, "", pickOverloaded
		}
		return p.fallback(now)
	}
	if p.sticky != nil && p.sticky.secret != nil {
		setCookie = p.sticky.sign(u)
	}
	return u, setCookie, pickOK
}

// fallback is used when no primary is available: the backup if it can take the request,
// otherwise (fail-open, as nginx does when every server is marked down) any primary,
// ignoring health.
func (p *pool) fallback(now int64) (*upstream, string, pickError) {
	if p.backup != nil && (p.maxConns <= 0 || p.backup.st.active.Load() < p.maxConns) {
		return p.backup, "", pickOK
	}
	set := p.set.Load()
	if len(set.ups) == 0 {
		return nil, "", pickNone
	}
	sel := selector{p: p, now: now, any: true}
	u := p.strategy.roundRobin(set, &sel)
	if u != nil && p.maxConns > 0 && u.st.active.Load() >= p.maxConns {
		return nil, "", pickOverloaded
	}
	return u, "", pickOK
}

func (p *pool) pickGroup(r *http.Request, now int64) *group {
	// A group is a candidate when at least one of its upstreams is available.
	// A group is a candidate when at least one of its upstreams is available; the group
	// strategy sees one pseudo-upstream per group, marked unhealthy when none is.
	for _, pu := range p.groupSet.ups {
		avail := false
		for _, u := range p.groups[pu.st.groupIndex].set.ups {
			if p.available(u, now) {
				avail = true
				break
			}
		}
		pu.st.unhealthy.Store(!avail)
	}
	sel := selector{p: p, now: now}
	pseudo := p.groupPick.pick(r, p.groupSet, &sel)
	if pseudo == nil {
		return nil
	}
	return p.groups[pseudo.st.groupIndex]
}

// pickSticky routes by the sticky cookie. done is false when normal balancing should run.
func (p *pool) pickSticky(r *http.Request, set *upstreamSet, now int64) (u *upstream, cookie string, perr pickError, done bool) {
	s := p.sticky
	c, err := r.Cookie(s.cookie)
	if s.secret == nil {
		// Without a secret the cookie value is a consistent-hash key set by the application.
		if err != nil || c.Value == "" {
			return nil, "", pickOK, false
		}
		sel := selector{p: p, now: now}
		u := hashPick(c.Value, set, &sel)
		return u, "", pickOK, u != nil
	}
	if err != nil {
		return nil, "", pickOK, false
	}
	for _, x := range set.ups {
		if !hmac.Equal([]byte(c.Value), []byte(s.sign(x))) {
			continue
		}
		switch {
		case x.selectable(now) && (p.maxConns <= 0 || x.st.active.Load() < p.maxConns):
			return x, "", pickOK, true
		case x.selectable(now):
			// Saturated pin: go elsewhere for this request, keep the cookie.
			return nil, "", pickOK, false
		case s.strict:
			return nil, "", pickStickyDown, true
		default:
			return nil, "", pickOK, false // unhealthy pin: rebalance and re-sign
		}
	}
	return nil, "", pickOK, false // forged or stale cookie: normal balancing
}

// sign is the cookie value for u: URL-safe base64 (no padding) of HMAC-SHA256(url, secret).
func (s *sticky) sign(u *upstream) string {
	if v := u.st.signed.Load(); v != nil && v.secret == string(s.secret) {
		return v.value
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(u.label))
	v := base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	u.st.signed.Store(&signedCookie{secret: string(s.secret), value: v})
	return v
}

// signedCookie caches a sticky cookie value for one secret.
type signedCookie struct {
	secret, value string
}

// stickyCookie renders the Set-Cookie value.
func (s *sticky) setCookieHeader(value string) string {
	return s.cookie + "=" + value + "; Path=/; HttpOnly; SameSite=Lax"
}

// outlierPolicy is the site's outlierDetection: consecutive 5xx (or connection errors)
// eject an upstream for base × 2^ejections (capped), at most maxEjectionPercent of a
// route's upstreams at once (at least one, as Envoy).
type outlierPolicy struct {
	consecutive5xx int64
	base, max      time.Duration
	maxPercent     float64
}

// observe feeds one attempt's outcome into passive health. status 0 is a connection error.
func (p *pool) observe(u *upstream, status int, now int64, policy *outlierPolicy, failStatus *[600]bool) {
	failed := status == 0 || (status < 600 && failStatus[status])
	st := u.st
	if !failed {
		st.consec5xx.Store(0)
		if st.halfOpen.Load() {
			// The half-open probe succeeded: restore and reset the backoff.
			st.ejectedUntil.Store(0)
			st.ejections.Store(0)
			st.halfOpen.Store(false)
			st.recoveredAt.Store(now)
		}
		return
	}
	n := st.consec5xx.Add(1)
	if policy == nil {
		return
	}
	if st.halfOpen.Load() {
		p.eject(u, now, policy) // the probe failed: next backoff level
		return
	}
	if n >= policy.consecutive5xx && st.ejectedUntil.Load() == 0 && p.canEject(now, policy) {
		p.eject(u, now, policy)
	}
}

func (p *pool) eject(u *upstream, now int64, policy *outlierPolicy) {
	st := u.st
	k := st.ejections.Add(1) - 1
	d := policy.base << min(k, 20)
	if d > policy.max || d <= 0 {
		d = policy.max
	}
	st.ejectedUntil.Store(now + int64(d))
	st.halfOpen.Store(false)
	st.consec5xx.Store(0)
}

func (p *pool) canEject(now int64, policy *outlierPolicy) bool {
	set := p.set.Load()
	n := len(set.ups)
	ejected := 0
	for _, u := range set.ups {
		if until := u.st.ejectedUntil.Load(); until != 0 && now < until {
			ejected++
		}
	}
	allowed := int(float64(n) * policy.maxPercent / 100)
	if allowed < 1 {
		allowed = 1
	}
	return ejected < allowed && ejected < n
}
