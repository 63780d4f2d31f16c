package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// Metric names and help texts of the request and upstream metrics (docs/observability.md).
const (
	RequestsTotal            = "conduit_requests_total"
	RequestsByProtocolTotal  = "conduit_requests_by_protocol_total"
	RequestDurationSeconds   = "conduit_request_duration_seconds"
	ActiveConnections        = "conduit_active_connections"
	UpstreamErrorsTotal      = "conduit_upstream_errors_total"
	UpstreamRequestsTotal    = "conduit_upstream_requests_total"
	UpstreamLatencySeconds   = "conduit_upstream_latency_seconds"
	UpstreamActive           = "conduit_upstream_active_connections"
	RetryAttemptsTotal       = "conduit_retry_attempts_total"
	RateLimitRejectedTotal   = "conduit_rate_limit_rejected_total"
	CacheHitsTotal           = "conduit_cache_hits_total"
	CacheMissesTotal         = "conduit_cache_misses_total"
	sharedRecorderKey        = "http.observe.metrics/recorder"
	maxStatus                = 1000 // net/http accepts status codes 100–999
	otherMethod              = "_OTHER"
	connectionErrorStatusIdx = 0 // status "0": no response from the upstream
)

// methods are the method label values with a slot of their own; any other method is
// recorded as "_OTHER" (the OpenTelemetry convention), so a client cannot grow the series.
var methods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
	http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace, otherMethod,
}

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodDelete:
		return 4
	case http.MethodPatch:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return len(methods) - 1
}

// protocols are the protocol label values of conduit_requests_by_protocol_total, OpenTelemetry's
// network.protocol.version spellings; protoIndex maps a request to one.
var protocols = [...]string{"1.0", "1.1", "2", "3"}

func protoIndex(r *http.Request) int {
	switch {
	case r.ProtoMajor == 3:
		return 3
	case r.ProtoMajor == 2:
		return 2
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return 0
	}
	return 1
}

// requestPair is the counter and histogram child of one (method, status) pair.
type requestPair struct {
	count    *telemetry.Metric
	duration *telemetry.Metric
}

// upstreamSet holds the children of one upstream label.
type upstreamSet struct {
	latency *telemetry.Metric
	status  [maxStatus]atomic.Pointer[telemetry.Metric]
}

// routeSet holds conduit_upstream_errors_total children of one route, for 500–599.
type routeSet struct {
	status [100]atomic.Pointer[telemetry.Metric]
}

// recorder holds the metric families and child tables. One recorder serves every site and
// every generation of a server (it lives in core.Shared, next to the process-wide registry),
// so a child is looked up with a lock at most once per process.
type recorder struct {
	requests, duration           *telemetry.Family
	upRequests, upLatency, upErr *telemetry.Family
	active                       *telemetry.Metric
	pairs                        [len(methods)][maxStatus]atomic.Pointer[requestPair]
	byProtocol                   [len(protocols)]*telemetry.Metric

	mu        sync.Mutex // serialises writers of upstreams and routes
	upstreams atomic.Pointer[map[string]*upstreamSet]
	routes    atomic.Pointer[map[string]*routeSet]
}

func recorderFor(ctx *core.SiteContext) *recorder {
	return core.SharedOf(ctx.Shared, sharedRecorderKey, func() *recorder { return newRecorder(ctx.Global.Metrics) })
}

// newRecorder registers the families this module records (and declares the shapes of the
// other metrics docs/observability.md lists, so a module that records them later must use the same labels).
func newRecorder(reg *telemetry.Registry) *recorder {
	rec := &recorder{
		requests:   reg.Counter(RequestsTotal, "Requests answered, by method and status.", "method", "status"),
		duration:   reg.Histogram(RequestDurationSeconds, "Request duration in seconds, by method and status.", telemetry.DefaultBuckets, "method", "status"),
		active:     reg.Gauge(ActiveConnections, "Requests in flight on sites that record metrics.").With(),
		upRequests: reg.Counter(UpstreamRequestsTotal, "Upstream attempts (retries included), by upstream and status; status 0 is a connection error.", "upstream", "status"),
		upLatency:  reg.Histogram(UpstreamLatencySeconds, "Upstream attempt latency to the response header, in seconds.", telemetry.DefaultBuckets, "upstream"),
		upErr:      reg.Counter(UpstreamErrorsTotal, "Upstream 5xx responses, by route and status.", "route", "status"),
	}
	byProto := reg.Counter(RequestsByProtocolTotal, "Requests answered, by the client's HTTP version (1.0, 1.1, 2, 3).", "protocol")
	for i, p := range protocols {
		rec.byProtocol[i] = byProto.With(p)
	}
	reg.Gauge(UpstreamActive, "Requests in flight to each upstream.", "upstream")
	reg.Counter(RetryAttemptsTotal, "Retries, by route and condition (5xx, connection_error, timeout).", "route", "condition")
	reg.Counter(RateLimitRejectedTotal, "Requests rejected by rate limits, by site.", "site")
	reg.Counter(CacheHitsTotal, "Proxy cache hits, by route.", "route")
	reg.Counter(CacheMissesTotal, "Proxy cache misses (miss or expired), by route.", "route")
	empty := map[string]*upstreamSet{}
	rec.upstreams.Store(&empty)
	routes := map[string]*routeSet{}
	rec.routes.Store(&routes)
	return rec
}

// pair returns the children for a method index and status, creating them on first use.
func (rec *recorder) pair(mi, status int) *requestPair {
	slot := &rec.pairs[mi][status]
	if p := slot.Load(); p != nil {
		return p
	}
	code := strconv.Itoa(status)
	p := &requestPair{count: rec.requests.With(methods[mi], code), duration: rec.duration.With(methods[mi], code)}
	slot.CompareAndSwap(nil, p)
	return slot.Load()
}

// wrap is the recording middleware.
func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := core.State(r)
		var start time.Time
		if st != nil {
			start = st.Start
		} else {
			start = time.Now()
		}
		rec.active.Inc()
		defer rec.done(w, r, st, start)
		next.ServeHTTP(w, r)
	})
}

// done records one finished request (also when the handler panicked, e.g. an aborted
// upstream body, so that in-flight never leaks).
func (rec *recorder) done(w http.ResponseWriter, r *http.Request, st *core.RequestState, start time.Time) {
	rec.active.Dec()
	status := 0
	if st != nil {
		status = st.Writer.Status
	} else if cw, ok := w.(*core.ResponseWriter); ok {
		status = cw.Status
	}
	if status == 0 {
		status = http.StatusOK // net/http sends 200 when nothing was written
	}
	if status < 0 || status >= maxStatus {
		status = 0
	}
	p := rec.pair(methodIndex(r.Method), status)
	p.count.Inc()
	rec.byProtocol[protoIndex(r)].Inc()
	p.duration.Observe(time.Since(start).Seconds())
}

// upstream returns the children of an upstream label, creating them on first use.
func (rec *recorder) upstream(name string) *upstreamSet {
	if u, ok := (*rec.upstreams.Load())[name]; ok {
		return u
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	old := *rec.upstreams.Load()
	if u, ok := old[name]; ok {
		return u
	}
	u := &upstreamSet{latency: rec.upLatency.With(name)}
	next := make(map[string]*upstreamSet, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = u
	rec.upstreams.Store(&next)
	return u
}

func (rec *recorder) route(name string) *routeSet {
	if rs, ok := (*rec.routes.Load())[name]; ok {
		return rs
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	old := *rec.routes.Load()
	if rs, ok := old[name]; ok {
		return rs
	}
	rs := &routeSet{}
	next := make(map[string]*routeSet, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = rs
	rec.routes.Store(&next)
	return rs
}

// attempt records one upstream attempt.
func (rec *recorder) attempt(a *core.UpstreamAttempt) {
	u := rec.upstream(a.Upstream)
	status := a.Status
	if a.Err != nil || status < 0 || status >= maxStatus {
		status = connectionErrorStatusIdx
	}
	slot := &u.status[status]
	c := slot.Load()
	if c == nil {
		slot.CompareAndSwap(nil, rec.upRequests.With(a.Upstream, strconv.Itoa(status)))
		c = slot.Load()
	}
	c.Inc()
	u.latency.Observe(a.Duration.Seconds())
	if status >= 500 && status <= 599 {
		rs := rec.route(a.Route)
		es := &rs.status[status-500]
		e := es.Load()
		if e == nil {
			es.CompareAndSwap(nil, rec.upErr.With(a.Route, strconv.Itoa(status)))
			e = es.Load()
		}
		e.Inc()
	}
}
