package proxy

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// upstreamState is the runtime state of one upstream URL. It lives in the server's shared
// store keyed by URL, so health, ejections, latency and in-flight counts survive reloads
// and are shared by every route that names the same URL.
type upstreamState struct {
	url string

	active atomic.Int64 // requests in flight

	// Active health (probes).
	probed          atomic.Bool
	unhealthy       atomic.Bool
	consecFails     atomic.Int64
	consecSuccesses atomic.Int64
	probeLatencyNs  atomic.Int64

	// Passive health (outlier detection).
	consec5xx    atomic.Int64
	ejections    atomic.Int64
	ejectedUntil atomic.Int64 // unix ns; 0 = not ejected
	halfOpen     atomic.Bool  // one probe request in flight after an ejection expired

	recoveredAt atomic.Int64 // unix ns of the last recovery, for slow start

	// Peak-EWMA latency for p2c.
	ewmaBits  atomic.Uint64
	ewmaStamp atomic.Int64

	urlHash       atomic.Uint64
	signed        atomic.Pointer[signedCookie]
	groupIndex    int // for the pseudo-upstreams that stand for groups
	lastLatencyNs atomic.Int64
	resp2xx       atomic.Int64
	resp4xx       atomic.Int64
	resp5xx       atomic.Int64
	selected      atomic.Int64
	lastSelected  atomic.Int64
}

func newUpstreamState(u string) *upstreamState {
	s := &upstreamState{url: u}
	s.ewmaBits.Store(math.Float64bits(-1))
	return s
}

// upstream is one target of a route: its URL, weight and shared state.
type upstream struct {
	url    *url.URL
	label  string
	weight atomic.Uint32
	// drained keeps the upstream out of this route's selection (Admin API POST
	// /upstreams/drain) while its requests in flight finish; a reload clears it.
	drained   atomic.Bool
	self      bool // points back at this site (a direct loop)
	transport *http.Transport
	send      time.Duration // timeout.sendMs for requests on transport; 0 = none
	h1        *h1Pool       // bodyless HTTP/1.1 requests (h1client.go); nil: the transport serves all
	st        *upstreamState
	active    *telemetry.Metric // conduit_upstream_active_connections{upstream}; nil in tests
	failLog   logLimiter        // rate limit of the route's "upstream failed" lines for this upstream
}

// begin and end count a request in flight to u (circuit breaker, least-conn, the gauge).
func (u *upstream) begin() {
	u.st.active.Add(1)
	if u.active != nil {
		u.active.Inc()
	}
}

func (u *upstream) end() {
	u.st.active.Add(-1)
	if u.active != nil {
		u.active.Dec()
	}
}

// ejected reports whether outlier detection currently keeps u out of rotation. When an
// ejection has expired, exactly one caller wins the half-open probe slot.
func (u *upstream) ejected(now int64) bool {
	until := u.st.ejectedUntil.Load()
	if until == 0 {
		return false
	}
	if now < until {
		return true
	}
	// Expired: half-open. The first request after expiry is the probe; the rest wait.
	return !u.st.halfOpen.CompareAndSwap(false, true)
}

// healthy reports the active-probe view (true when never probed).
func (u *upstream) healthy() bool { return !u.st.unhealthy.Load() }

// selectable reports whether the route may send u a new request at now: actively healthy,
// not ejected by outlier detection, not drained.
func (u *upstream) selectable(now int64) bool {
	return u.healthy() && !u.ejected(now) && !u.drained.Load()
}

// isEjected reports whether outlier detection keeps u out of rotation at now, without
// taking the half-open slot (ejected does, for the request that asks).
func (u *upstream) isEjected(now int64) bool {
	until := u.st.ejectedUntil.Load()
	return until != 0 && now < until
}

// health is u's entry in the health endpoint.
func (u *upstream) health(now int64) core.UpstreamHealth {
	st := u.st
	return core.UpstreamHealth{URL: u.label, Healthy: u.healthy(), LatencyMs: msOf(st.lastLatencyNs.Load()),
		Ejected: u.isEjected(now), Consecutive5xx: st.consec5xx.Load()}
}

// peakEWMA returns the decayed peak-EWMA latency in seconds; an upstream never measured
// counts as 0, so it is tried (and measured) first. Counting it as 30 ms instead (the original
// Conduit's choice: docs/configuration.md, "p2c" row) starves it for good once the others are
// measured faster.
func (u *upstream) peakEWMA(now int64) float64 {
	v := math.Float64frombits(u.st.ewmaBits.Load())
	if v < 0 {
		return 0
	}
	// Decay toward zero with a 10 s time constant while no sample arrives, so an upstream
	// that was slow once gets traffic again.
	dt := float64(now-u.st.ewmaStamp.Load()) / 1e9
	if dt > 0 {
		v *= math.Exp(-dt / 10)
	}
	return v
}

// p2cCost is what p2c compares: the peak-EWMA latency weighted by the requests in flight
// (Finagle's and Linkerd's peak-EWMA load), so a slow upstream with a queue loses to a fast
// idle one, and equal latencies fall back to the lighter load.
func (u *upstream) p2cCost(now int64) float64 {
	return (u.peakEWMA(now) + 1e-6) * float64(u.st.active.Load()+1)
}

// observeLatency folds a sample into the peak-EWMA: a sample above the average replaces it
// (peak), one below is averaged in with α = 0.1.
func (u *upstream) observeLatency(d time.Duration, now int64) {
	s := d.Seconds()
	u.st.lastLatencyNs.Store(int64(d))
	for {
		oldBits := u.st.ewmaBits.Load()
		old := math.Float64frombits(oldBits)
		nv := s
		if old >= 0 && s < old {
			nv = old + 0.1*(s-old)
		}
		if u.st.ewmaBits.CompareAndSwap(oldBits, math.Float64bits(nv)) {
			u.st.ewmaStamp.Store(now)
			return
		}
	}
}

// slowStartAdmit decides whether a recovering upstream takes part in this pick: the chance
// rises linearly from 0 to 1 over the window after recovery.
func (u *upstream) slowStartAdmit(window time.Duration, now int64) bool {
	if window <= 0 {
		return true
	}
	rec := u.st.recoveredAt.Load()
	if rec == 0 {
		return true
	}
	elapsed := time.Duration(now - rec)
	if elapsed >= window {
		return true
	}
	return rand.Float64() < float64(elapsed)/float64(window)
}

func (u *upstream) countResponse(status int) {
	switch {
	case status >= 500:
		u.st.resp5xx.Add(1)
	case status >= 400:
		u.st.resp4xx.Add(1)
	case status >= 200:
		u.st.resp2xx.Add(1)
	}
}

// stateName is the Admin API's state: healthy, busy, unhealthy, half-open, ejected.
func (u *upstream) stateName(now int64, maxConns int64) string {
	switch {
	case u.st.unhealthy.Load():
		return "unhealthy"
	case u.st.ejectedUntil.Load() != 0 && now < u.st.ejectedUntil.Load():
		return "ejected"
	case u.st.ejectedUntil.Load() != 0:
		return "half-open"
	case u.st.active.Load() > 0 || (maxConns > 0 && u.st.active.Load() >= maxConns):
		return "busy"
	}
	return "healthy"
}
