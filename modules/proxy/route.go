package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/conduitproxy/conduit/core"
)

// This file holds the route and its request path: admission, the body a retry or the mirror
// replays, and the attempt loop. Building a route is in route_build.go, one attempt in
// route_attempt.go, the retry policy in route_retry.go, the outbound URL and header in
// upstream_request.go and the response copy in route_response.go.

// route is one proxy route: its pool of upstreams, path handling, retry policy and
// settings. ServeHTTP is the proxy's hot path.
type route struct {
	name        string
	site        *siteSettings
	pool        *pool
	stripPrefix string // "" when stripPrefix is off
	rewrite     []*RewriteRule
	websocket   bool
	hooks       *core.SiteHooks
	retry       *retryPolicy
	failStatus  *[600]bool // statuses counted as failures by passive health
	mirror      *upstream
	maxBuffer   int64 // request bodies up to this size are buffered for replay and mirroring
	metrics     *routeMetrics
	priority    int // 0–100, default 50

	inflight      atomic.Int64
	retryInflight atomic.Int64
}

// maxViaHops bounds how many Conduit hops a request may already have passed; beyond it the
// request is treated as a loop (421).
const maxViaHops = 8

// overloadedReason is the `reason` of the JSON 503 a route answers when every healthy
// upstream is at healthCheck.maxConnectionsPerUpstream (the circuit breaker).
const overloadedReason = "upstream_overloaded"

// ServeHTTP proxies r to an upstream, retrying as the route's policy allows.
func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := core.State(r)
	if st != nil && st.Route == "" {
		st.Route = rt.name
	}
	upType, upgrade := isUpgrade(r.Header)
	if rt.refuse(w, r, st, upgrade) {
		return
	}
	rt.inflight.Add(1)
	defer rt.inflight.Add(-1)

	body, hasBody, replayable, ok := rt.replayBody(w, r, upgrade)
	if !ok {
		return
	}
	if rt.mirror != nil {
		rt.sendMirror(r, body, hasBody && !replayable)
	}
	retries := rt.retriesFor(r, body, hasBody, replayable)

	trailers := rt.newRequestTrailers(r) // before upstreamHeader drops Connection
	outHeader := rt.upstreamHeader(r, st, upgrade, upType)
	var prev *upstream
	for attempt := 0; ; attempt++ {
		up, ok := rt.pickUpstream(w, r, prev)
		if !ok {
			return
		}
		rt.logRouting(r, up, attempt)
		last := attempt >= retries
		done, retryable := rt.attempt(w, r, st, up, outHeader, trailers, body, upgrade, upType, attempt, last)
		if done {
			return
		}
		if !retryable || r.Context().Err() != nil || !rt.retryBudgetOK() {
			return
		}
		if !rt.backoff(r) {
			return
		}
		prev = up
	}
}

// refuse answers the requests the route does not send upstream at all: an upgrade on a route
// without websocket (502), a request that already passed maxViaHops Conduits (421), and a
// request below priority 50 while the site sheds load (503). It reports whether it answered.
func (rt *route) refuse(w http.ResponseWriter, r *http.Request, st *core.RequestState, upgrade bool) bool {
	switch {
	case upgrade && !rt.websocket:
		core.Error(w, r, http.StatusBadGateway, "protocol upgrade not enabled for this route (websocket: true)")
	case viaHops(r.Header) >= maxViaHops:
		core.Error(w, r, http.StatusMisdirectedRequest, "proxy loop detected")
	case st != nil && st.Shedding && rt.effectivePriority(r) < 50:
		w.Header().Set("Retry-After", "1")
		core.Error(w, r, http.StatusServiceUnavailable, "load shedding")
	default:
		return false
	}
	return true
}

// replayBody buffers the request body when a retry or the mirror may need it again (never
// for an upgrade). body is the whole body when it fit in the route's buffer; replayable is
// false when a body was there but did not fit. ok is false when reading the body failed and
// the client has been answered.
func (rt *route) replayBody(w http.ResponseWriter, r *http.Request, upgrade bool) (body []byte, hasBody, replayable, ok bool) {
	replayable = true
	hasBody = r.ContentLength != 0 || len(r.TransferEncoding) > 0
	if hasBody && (rt.retry != nil || rt.mirror != nil) && !upgrade {
		b, complete, err := bufferBody(r, rt.maxBuffer)
		if err != nil {
			rt.upstreamError(w, r, err)
			return nil, hasBody, false, false
		}
		if complete {
			body = b
		} else {
			replayable = false
		}
	}
	return body, hasBody, replayable, true
}

// pickUpstream picks the upstream of the next attempt (prev is the previous attempt's, which
// a retry avoids when it can) and sets the sticky cookie the pick asks for. When no upstream
// can take the request it answers the client (503 overloaded or pinned upstream down, 502
// none, 421 for an upstream that is this Conduit) and reports false.
func (rt *route) pickUpstream(w http.ResponseWriter, r *http.Request, prev *upstream) (*upstream, bool) {
	up, cookie, perr := rt.pool.pick(r, prev)
	switch perr {
	case pickOverloaded:
		core.JSONError(w, http.StatusServiceUnavailable, "Service Unavailable", overloadedReason)
		return nil, false
	case pickStickyDown:
		core.Error(w, r, http.StatusServiceUnavailable, "pinned upstream unavailable")
		return nil, false
	case pickNone:
		core.Error(w, r, http.StatusBadGateway, "no upstream")
		return nil, false
	}
	if up.self {
		core.Error(w, r, http.StatusMisdirectedRequest, "upstream is this Conduit (proxy loop)")
		return nil, false
	}
	if cookie != "" {
		w.Header().Add("Set-Cookie", rt.pool.sticky.setCookieHeader(cookie))
	}
	return up, true
}

// effectivePriority is the route's priority, lowered (never raised: a client must not be
// able to escape shedding) by an `X-Priority: 0–100` header or an RFC 9218
// `Priority: u=N` header (u=N maps to 100 − 14·N).
func (rt *route) effectivePriority(r *http.Request) int {
	p := rt.priority
	if v := r.Header.Get("X-Priority"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 && n < p {
			p = n
		}
	}
	if v := r.Header.Get("Priority"); v != "" {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if u, ok := strings.CutPrefix(part, "u="); ok {
				if n, err := strconv.Atoi(u); err == nil && n >= 0 && n <= 7 {
					p = min(p, 100-14*n)
				}
			}
		}
	}
	return p
}
