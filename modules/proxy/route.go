package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/router"
)

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

// retryPolicy is a compiled retry block.
type retryPolicy struct {
	attempts      int
	on5xx         bool
	onConnError   bool
	onTimeout     bool
	backoff       time.Duration
	jitter        bool
	budgetPercent float64 // < 0: unlimited
	perTry        time.Duration
}

// defaultMaxBodyBuffer is limits.maxBodyBufferBytes's default (the original's code comment).
const defaultMaxBodyBuffer = 1 << 20

func newRoute(ctx *core.SiteContext, ss *siteSettings, rc *RouteConfig, matchPrefix, name string) (*route, error) {
	ts := transportSettings{
		connect:     defaultConnectTimeout,
		firstByte:   defaultReadTimeout,
		maxIdle:     defaultMaxIdlePerHost,
		idleTimeout: defaultIdleTimeout,
		http2:       rc.HTTP2,
		verify:      true,
		roots:       ctx.Site.UpstreamRoots,
		rootsID:     ctx.Site.UpstreamRootsID,
	}
	var perTry time.Duration
	if t := rc.Timeout; t != nil {
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
	}
	if p := rc.Pool; p != nil {
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
	if u := rc.UpstreamTLS; u != nil {
		if u.Verify != nil {
			ts.verify = *u.Verify
		}
		ts.serverName = u.ServerName
	}
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
	p := &pool{outlier: ss.outlier}
	strategyName := rc.Strategy
	var primaries []*upstream
	for _, t := range rc.Targets {
		u, err := mk(t.URL, t.Weight)
		if err != nil {
			return nil, err
		}
		primaries = append(primaries, u)
	}
	p.strategy = newStrategy(strategyName, rc.HashKey)
	if strategyName == "" {
		// Weights given without a strategy are honoured, as nginx does.
		p.autoWeighted = true
		p.weighted = newStrategy("weighted-round-robin", "")
	}
	if len(rc.Groups) > 0 {
		p.groupPick = newStrategy(rc.GroupStrategy, rc.HashKey)
		var pseudo []*upstream
		primaries = primaries[:0]
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
	}
	p.set.Store(newUpstreamSet(primaries))
	if rc.Backup != "" {
		u, err := mk(rc.Backup, 1)
		if err != nil {
			return nil, err
		}
		p.backup = u
	}
	if rc.Mirror != "" {
		u, err := mk(rc.Mirror, 1)
		if err != nil {
			return nil, err
		}
		rt.mirror = u
	}
	if hc := rc.HealthCheck; hc != nil {
		if hc.MaxConnectionsPerUpstream != nil {
			p.maxConns = int64(min(*hc.MaxConnectionsPerUpstream, 1<<62))
		}
		if hc.PrewarmConnections != nil {
			p.prewarm = int(*hc.PrewarmConnections)
		}
		if !p.strategy.hashed() && rc.Sticky == nil {
			p.slowStart = time.Duration(hc.SlowStartSecs) * time.Second
		}
		if len(hc.UnhealthyStatus) > 0 {
			fs := new([600]bool)
			for _, st := range hc.UnhealthyStatus {
				if st < 600 {
					fs[st] = true
				}
			}
			rt.failStatus = fs
		}
		ss.checkers = append(ss.checkers, newHealthChecker(hc, p, ctx.Logger))
	}
	if sk := rc.Sticky; sk != nil {
		p.sticky = &sticky{cookie: sk.Cookie, strict: sk.Strict}
		if sk.Secret != nil {
			p.sticky.secret = []byte(sk.Secret.Reveal())
		} else {
			p.strategy = &strategy{kind: stratHash, key: clientIP}
		}
	}
	if r := rc.Retry; r != nil && r.Attempts != nil {
		rp := &retryPolicy{attempts: int(*r.Attempts), backoff: ms(r.BackoffMs), jitter: r.BackoffJitter, budgetPercent: -1, perTry: perTry}
		for _, c := range r.Conditions {
			switch c {
			case "5xx":
				rp.on5xx = true
			case "connection_error":
				rp.onConnError = true
			case "timeout":
				rp.onTimeout = true
			}
		}
		if r.BudgetPercent != nil {
			rp.budgetPercent = *r.BudgetPercent
		}
		rt.retry = rp
	}
	rt.pool = p
	rt.metrics = newRouteMetrics(ctx, name)
	ss.routes = append(ss.routes, rt)
	return rt, nil
}

// defaultFailStatus are the statuses passive health counts as failures without
// healthCheck.unhealthyStatus (the original's code default).
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
	tr := ctx.Shared.Get(ts.key(), func() any { return newTransport(ts) }).(*http.Transport)
	st := ctx.Shared.Get("proxy.upstream|"+raw, func() any { return newUpstreamState(raw) }).(*upstreamState)
	up := &upstream{url: u, label: raw, self: isSelf(u, []int{ctx.Site.Port}), transport: tr, send: ts.send, st: st,
		active: activeGauge(ctx.Global.Metrics, raw)}
	if (u.Scheme == "http" || u.Scheme == "https") && !ts.http2 && !ts.h2c {
		up.h1 = ctx.Shared.Get(ts.key()+"|h1", func() any { return newH1Client(ts) }).(*h1Client).poolFor(u)
	}
	if ts.h2c {
		up.send = 0 // h2c multiplexes: HTTP2Config.WriteByteTimeout bounds its writes
	}
	up.weight.Store(max(weight, 1))
	return up, nil
}

func ms(n uint64) time.Duration { return time.Duration(n) * time.Millisecond }

// maxViaHops bounds how many Conduit hops a request may already have passed; beyond it the
// request is treated as a loop (421).
const maxViaHops = 8

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// overloadedBody is the contract's circuit-breaker answer.
const overloadedReason = "upstream_overloaded"

// ServeHTTP proxies r to an upstream, retrying as the route's policy allows.
func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := core.State(r)
	if st != nil && st.Route == "" {
		st.Route = rt.name
	}
	upType, upgrade := isUpgrade(r.Header)
	if upgrade && !rt.websocket {
		core.Error(w, r, http.StatusBadGateway, "protocol upgrade not enabled for this route (websocket: true)")
		return
	}
	if viaHops(r.Header) >= maxViaHops {
		core.Error(w, r, http.StatusMisdirectedRequest, "proxy loop detected")
		return
	}
	if st != nil && st.Shedding && rt.effectivePriority(r) < 50 {
		w.Header().Set("Retry-After", "1")
		core.Error(w, r, http.StatusServiceUnavailable, "load shedding")
		return
	}
	rt.inflight.Add(1)
	defer rt.inflight.Add(-1)

	// The body is buffered when a retry or the mirror may need it again.
	var body []byte
	replayable := true
	hasBody := r.ContentLength != 0 || len(r.TransferEncoding) > 0
	if hasBody && (rt.retry != nil || rt.mirror != nil) && !upgrade {
		b, complete, err := bufferBody(r, rt.maxBuffer)
		if err != nil {
			rt.upstreamError(w, r, err)
			return
		}
		if complete {
			body = b
		} else {
			replayable = false
		}
	}
	if rt.mirror != nil {
		rt.sendMirror(r, body, hasBody && !replayable)
	}
	retries := 0
	if rt.retry != nil && replayable && (body != nil || !hasBody) {
		retries = rt.retry.attempts
		if body == nil && !idempotent(r.Method) && hasBody {
			retries = 0
		}
	}

	trailers := rt.newRequestTrailers(r) // before upstreamHeader drops Connection
	outHeader := rt.upstreamHeader(r, st, upgrade, upType)
	var prev *upstream
	for attempt := 0; ; attempt++ {
		up, cookie, perr := rt.pool.pick(r, prev)
		switch perr {
		case pickOverloaded:
			core.JSONError(w, http.StatusServiceUnavailable, "Service Unavailable", overloadedReason)
			return
		case pickStickyDown:
			core.Error(w, r, http.StatusServiceUnavailable, "pinned upstream unavailable")
			return
		case pickNone:
			core.Error(w, r, http.StatusBadGateway, "no upstream")
			return
		}
		if up.self {
			core.Error(w, r, http.StatusMisdirectedRequest, "upstream is this Conduit (proxy loop)")
			return
		}
		if cookie != "" {
			w.Header().Add("Set-Cookie", rt.pool.sticky.setCookieHeader(cookie))
		}
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

// attempt sends one try to up. done means the client got its answer; retryable means the
// attempt failed in a way the retry policy covers and nothing was written yet.
func (rt *route) attempt(w http.ResponseWriter, r *http.Request, st *core.RequestState, up *upstream, h http.Header,
	trailers *requestTrailers, body []byte, upgrade bool, upType string, attempt int, last bool) (done, retryable bool) {
	outURL := rt.upstreamURL(up, r)
	outTrailer := trailers.header()
	var reqBody io.ReadCloser
	contentLength := r.ContentLength
	switch {
	case body != nil:
		reqBody = io.NopCloser(bytes.NewReader(body))
		contentLength = int64(len(body))
	case r.ContentLength == 0 && len(r.TransferEncoding) == 0:
		reqBody = nil
	default:
		reqBody = &bodyErrRecorder{ReadCloser: trailers.body(r.Body, outTrailer)}
	}
	base := r.Context()
	if st != nil {
		base = st.Base()
	}
	outreq := &http.Request{
		Method: r.Method, URL: outURL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: reqBody, ContentLength: contentLength, Host: r.Host, Trailer: outTrailer,
	}
	if outreq.ContentLength < 0 {
		outreq.ContentLength = -1
	}
	if attempt > 0 {
		rt.retryInflight.Add(1)
		defer rt.retryInflight.Add(-1)
	}
	up.begin()
	defer up.end()
	up.st.selected.Add(1)
	start := time.Now()
	up.st.lastSelected.Store(start.UnixNano())
	var deadline time.Time
	if st != nil {
		deadline = st.RequestDeadline
	}
	if rt.retry != nil && rt.retry.perTry > 0 {
		if d := start.Add(rt.retry.perTry); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	var resp *http.Response
	var err error
	if up.h1 != nil && h1Eligible(r.Method, contentLength, reqBody != nil, upgrade) {
		resp, err = up.h1.roundTrip(r, base, outreq, deadline, start, w)
	} else {
		ctx := base
		if !upgrade {
			ctx = httptrace.WithClientTrace(ctx, earlyHintsTrace(w))
		}
		if up.send > 0 {
			ctx = withSendDeadline(ctx, up.send)
		}
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		resp, err = up.transport.RoundTrip(outreq.WithContext(ctx))
	}
	elapsed := time.Since(start)
	now := start.UnixNano() + int64(elapsed)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		up.countResponse(status)
		up.observeLatency(elapsed, now)
	}
	rt.pool.observe(up, status, now, rt.pool.outlier, rt.failStatus)
	if st != nil {
		st.Upstream = up.label
		st.UpstreamDuration += elapsed
	}
	if rt.hooks.HasAttemptObservers() {
		a := core.UpstreamAttempt{Route: rt.name, Upstream: up.label, Status: status, Err: err, Start: start, Duration: elapsed, Retry: attempt > 0}
		rt.hooks.Attempt(r, &a)
	}
	if rec, ok := reqBody.(*bodyErrRecorder); ok && clientBodyFault(rec.failure()) {
		// The client's body broke a limit (too large, too slow) while streaming: the client
		// gets the limit's answer, whether the upstream answered early or the attempt was
		// cut short by it.
		if resp != nil {
			resp.Body.Close()
		}
		resp, err = nil, rec.failure()
	}
	if err != nil {
		cond := classify(err)
		if !last && rt.retry.covers(cond) && r.Context().Err() == nil && !clientBodyFault(err) {
			rt.metrics.retry(cond)
			return false, true
		}
		rt.upstreamError(w, r, err)
		return true, false
	}
	if status >= 500 {
		if !last && rt.retry.covers("5xx") && !upgrade {
			rt.metrics.retry("5xx")
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return false, true
		}
	}
	if status == http.StatusSwitchingProtocols {
		rt.switchProtocols(w, r, resp, upType)
		return true, false
	}
	defer resp.Body.Close()
	rt.writeResponse(w, r, resp)
	return true, false
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

// bodyErrRecorder remembers the first error reading the client's body produced, so that a
// limit hit while streaming is reported even when the upstream answered early.
// The transport may still be reading the body (HTTP/2 writes it from its own goroutine)
// when RoundTrip returns, so the error is kept atomically.
type bodyErrRecorder struct {
	io.ReadCloser
	err atomic.Pointer[error]
}

// Read implements io.Reader.
func (b *bodyErrRecorder) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// failure returns the first read error, nil if none.
func (b *bodyErrRecorder) failure() error {
	if p := b.err.Load(); p != nil {
		return *p
	}
	return nil
}

// clientBodyFault reports whether err is a request-body limit the client broke.
func clientBodyFault(err error) bool {
	if err == nil {
		return false
	}
	var tooLarge *http.MaxBytesError
	return errors.Is(err, core.ErrUploadTooSlow) || errors.As(err, &tooLarge)
}

// classify maps a transport error to a retry condition.
func classify(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "timeout"
	}
	return "connection_error"
}

// covers reports whether the policy retries on cond; a nil policy retries nothing.
func (p *retryPolicy) covers(cond string) bool {
	if p == nil {
		return false
	}
	switch cond {
	case "5xx":
		return p.on5xx
	case "timeout":
		return p.onTimeout
	default:
		return p.onConnError
	}
}

// retryBudgetOK applies budgetPercent: retries in flight may be at most that share of the
// route's requests in flight (a soft cap, as the original).
func (rt *route) retryBudgetOK() bool {
	b := rt.retry.budgetPercent
	if b < 0 {
		return true
	}
	inflight := rt.inflight.Load()
	if inflight <= 0 {
		return true
	}
	return float64(rt.retryInflight.Load()+1)*100 <= b*float64(inflight)
}

// backoff waits between attempts (fixed, or drawn from [ms/2, 3ms/2) with jitter). It
// reports false when the client went away meanwhile.
func (rt *route) backoff(r *http.Request) bool {
	d := rt.retry.backoff
	if d <= 0 {
		return true
	}
	if rt.retry.jitter {
		d = d/2 + time.Duration(rand.Int64N(int64(d)))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// bufferBody reads up to max bytes of the request body. complete reports whether the whole
// body fit; when it did not, r.Body is replaced by one that replays what was read followed
// by the rest, so the request still streams through once.
func bufferBody(r *http.Request, max int64) (data []byte, complete bool, err error) {
	if max <= 0 {
		return nil, false, nil
	}
	if r.ContentLength > max {
		return nil, false, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(buf)) > max {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return nil, false, nil
	}
	return buf, true, nil
}

// earlyHintsTrace forwards 1xx interim responses (103 Early Hints, 100 from the upstream is
// handled by net/http) to the client.
func earlyHintsTrace(w http.ResponseWriter) *httptrace.ClientTrace {
	return &httptrace.ClientTrace{Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
		if code == http.StatusSwitchingProtocols || code == http.StatusContinue {
			return nil
		}
		forward1xx(w, code, header)
		return nil
	}}
}

// forward1xx sends an informational response (103 Early Hints, say) to the client with the
// upstream's header fields, which do not stay on the final response.
func forward1xx(w http.ResponseWriter, code int, header textproto.MIMEHeader) {
	h := w.Header()
	for k, vv := range header {
		h[k] = vv
	}
	w.WriteHeader(code)
	for k := range header {
		delete(h, k)
	}
}

// upstreamURL builds the outbound URL: the target's scheme and host, the target's base path
// joined with the (stripped, rewritten) request path, and the query.
func (rt *route) upstreamURL(up *upstream, r *http.Request) *url.URL {
	path, rawPath := r.URL.Path, r.URL.RawPath
	query := r.URL.RawQuery
	if rt.stripPrefix != "" {
		path = router.StripPrefix(path, rt.stripPrefix)
		if rawPath != "" {
			if router.HasPathPrefix(rawPath, rt.stripPrefix) {
				rawPath = router.StripPrefix(rawPath, rt.stripPrefix)
			} else {
				rawPath = ""
			}
		}
	}
	for _, rw := range rt.rewrite {
		if rw.re != nil && rw.re.MatchString(path) {
			path = rw.re.ReplaceAllString(path, rw.To)
			rawPath = ""
			if p, q, ok := strings.Cut(path, "?"); ok {
				path = p
				if query != "" {
					query = q + "&" + query
				} else {
					query = q
				}
			}
			break
		}
	}
	u := &url.URL{Scheme: up.url.Scheme, Host: up.url.Host, RawQuery: query}
	if bp := up.url.Path; bp != "" && bp != "/" {
		u.Path = joinPath(bp, path)
		if rawPath != "" {
			u.RawPath = joinPath(up.url.EscapedPath(), rawPath)
		}
	} else {
		u.Path, u.RawPath = path, rawPath
	}
	return u
}

func joinPath(a, b string) string {
	as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case as && bs:
		return a + b[1:]
	case !as && !bs:
		return a + "/" + b
	}
	return a + b
}

// upstreamHeader turns the client's header map into the upstream request's, in place (the
// proxy is the end of the pipeline, so nothing later needs the original; the mirror copies it
// first): hop-by-hop fields go, the forwarding headers (X-Forwarded-*, X-Real-IP, Forwarded,
// Via) are added, then requestTransform runs.
func (rt *route) upstreamHeader(r *http.Request, st *core.RequestState, upgrade bool, upType string) http.Header {
	h := r.Header
	keepTrailers := false
	for _, v := range h["Te"] {
		// gRPC and others rely on "TE: trailers"; it is the one TE value forwarded.
		if strings.EqualFold(textproto.TrimString(v), "trailers") {
			keepTrailers = true
		}
	}
	eachConnectionToken(h, func(name string) bool {
		delete(h, name)
		return true
	})
	for _, k := range hopHeaders {
		delete(h, k)
	}
	delete(h, "Expect")
	if keepTrailers {
		h["Te"] = teTrailers
	}
	if upgrade {
		h["Connection"] = connUpgrade
		h["Upgrade"] = []string{upType}
	}
	if ip := clientIP(r); ip != "" {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			h["X-Forwarded-For"] = []string{ip}
		}
	}
	if rt.site.site != nil && rt.site.site.TLS || r.TLS != nil {
		h["X-Forwarded-Proto"] = protoHTTPS
	} else {
		h["X-Forwarded-Proto"] = protoHTTP
	}
	h["X-Forwarded-Host"] = []string{r.Host}
	rt.setClientIdentity(r, h, h["X-Forwarded-Proto"][0])
	// mTLS: the verified client certificate's identity, never a client-sent copy.
	delete(h, "X-Client-Cert-Subject")
	delete(h, "X-Client-Cert-Fingerprint")
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		leaf := r.TLS.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		h["X-Client-Cert-Subject"] = []string{sanitizeHeaderValue(leaf.Subject.String())}
		h["X-Client-Cert-Fingerprint"] = []string{hex.EncodeToString(sum[:])}
	}
	via := viaFor(r)
	if prior := h["Via"]; len(prior) > 0 {
		h["Via"] = []string{strings.Join(prior, ", ") + ", " + via}
	} else {
		h["Via"] = viaValues(via)
	}
	if _, ok := h["User-Agent"]; !ok {
		// Keep Go's transport from adding its own User-Agent.
		h["User-Agent"] = emptyValue
	}
	if tr := rt.site.requestTransform; tr != nil {
		var claims map[string]any
		if st != nil {
			claims = st.Claims
		}
		tr.apply(h, claims)
	}
	return h
}

// viaValues returns a shared one-element slice for the common Via values.
func viaValues(v string) []string {
	switch v {
	case via11:
		return via11Values
	case via20:
		return via20Values
	}
	return []string{v}
}

// Shared header values. The transport never modifies a request's header slices, so one
// slice can serve every request.
var (
	protoHTTPS  = []string{"https"}
	protoHTTP   = []string{"http"}
	emptyValue  = []string{""}
	teTrailers  = []string{"trailers"}
	connUpgrade = []string{"Upgrade"}
	via11       = "1.1 conduit"
	via20       = "2.0 conduit"
	via11Values = []string{via11}
	via20Values = []string{via20}
)

func viaFor(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return via20
	}
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return "1.0 conduit"
	}
	return via11
}

// viaHops counts the Conduit entries in Via.
func viaHops(h http.Header) int {
	n := 0
	for _, v := range h["Via"] {
		n += strings.Count(v, " conduit")
	}
	return n
}

// clientIP is the TCP peer address without port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// writeResponse copies the upstream response to the client, streaming the body.
func (rt *route) writeResponse(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	dst := w.Header()
	eachConnectionToken(resp.Header, func(name string) bool {
		resp.Header.Del(name)
		return true
	})
	for k, vv := range resp.Header {
		if isHopHeader(k) || k == "Server" {
			continue
		}
		dst[k] = vv
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			if responseTrailerAllowed(resp.Header, k) {
				names = append(names, k)
			}
		}
		if len(names) > 0 {
			dst["Trailer"] = []string{strings.Join(names, ", ")}
		}
		// Trailers need a chunked HTTP/1.1 response: an HTTP/2 upstream's Content-Length
		// would make the server drop them.
		delete(dst, "Content-Length")
	}
	if tr := rt.site.responseTransform; tr != nil {
		tr.apply(dst, nil)
	}
	if rt.site.maskErrors && resp.StatusCode >= 500 {
		for k := range dst {
			if k != "X-Request-Id" && k != "Vary" {
				delete(dst, k)
			}
		}
		dst["Content-Type"] = []string{"application/json"}
		dst["Content-Length"] = []string{strconv.Itoa(len(maskedBody))}
		w.WriteHeader(resp.StatusCode)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, maskedBody)
		}
		return
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp.Body, resp.ContentLength == -1); err != nil {
		if errors.Is(err, errClientWrite) {
			return // the client went away; nothing left to tell it
		}
		// The upstream failed mid-body: abort so the client sees a broken response rather
		// than a clean but truncated one.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		if responseTrailerAllowed(resp.Header, k) {
			dst[http.TrailerPrefix+k] = vv
		}
	}
}

var errClientWrite = errors.New("write to client failed")

// copyBody streams src to w with a pooled buffer, flushing after every read when the
// response is streamed (no Content-Length: SSE, chunked APIs).
func copyBody(w http.ResponseWriter, src io.Reader, flush bool) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errClientWrite
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return errClientWrite
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// upstreamError answers a failed upstream attempt: 504 for timeouts, 502 otherwise, nothing
// when the client itself went away.
func (rt *route) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, core.ErrUploadTooSlow) {
		w.Header().Set("Connection", "close")
		core.Error(w, r, http.StatusRequestTimeout, "request body too slow")
		return
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		w.Header().Set("Connection", "close")
		core.Error(w, r, http.StatusRequestEntityTooLarge, "")
		return
	}
	if r.Context().Err() != nil {
		if st := core.State(r); st != nil {
			st.Writer.Status = 499 // client closed request (nginx's code), for logs
		}
		return
	}
	status := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		status = http.StatusGatewayTimeout
	}
	core.Error(w, r, status, "")
}
