package core

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// RequestState is the per-request state every stage shares: one pooled object per request,
// reachable from the request's context without a chain of context.WithValue calls. The
// state is itself the request's context (it delegates to the connection's context).
//
// A RequestState is recycled when the request ends; code that outlives the request (a
// mirror, a background refresh) must copy what it needs.
type RequestState struct {
	parent context.Context

	// ID is the X-Request-ID (received or generated).
	ID string
	// Start is when the request entered the pipeline.
	Start time.Time
	// Site is the site that took the request.
	Site *Site
	// Route names the route that matched ("/api", "routes[0]"); "" before routing.
	Route string
	// Upstream is the upstream URL of the last attempt, "" for local handlers.
	Upstream string
	// UpstreamDuration is the time spent waiting on upstreams.
	UpstreamDuration time.Duration
	// Identity is the authenticated user or consumer, "" if none.
	Identity string
	// Claims are verified JWT claims, nil without a token.
	Claims map[string]any
	// Writer records the response status and size.
	Writer ResponseWriter
	// RequestDeadline, when set, bounds the whole request (limits.timeoutSecs); handlers that call
	// upstreams apply it to their outbound contexts.
	RequestDeadline time.Time
	// Shedding is set when the site is loaded past limits.priorityThreshold: routes whose
	// effective priority is below 50 answer 503.
	Shedding bool
	// MaskedError is set when the response is an upstream 5xx whose body maskErrors
	// replaced; response-phase WASM middleware does not run on it (docs/wasm.md).
	MaskedError bool

	// Nominated are the canonical header names the client's Connection header nominated;
	// the entry removed those fields (docs/security.md), and the proxy drops request
	// trailers of these names too. Nil in the common case.
	Nominated []string

	clientIP    netip.Addr
	peerTrusted bool      // the TCP peer is a proxy the site trusts (SetPeerTrusted)
	conn        *connInfo // the connection's state, looked up on first use
	begun       bool      // taken by BeginRequest: EndRequest, not ReleaseState, returns it
	acquired    bool      // AcquireState filled it in
}

type stateKey struct{}

// Deadline implements context.Context.
func (s *RequestState) Deadline() (time.Time, bool) { return s.parent.Deadline() }

// Done implements context.Context.
func (s *RequestState) Done() <-chan struct{} { return s.parent.Done() }

// Err implements context.Context.
func (s *RequestState) Err() error { return s.parent.Err() }

// AfterFunc arranges for f to run after the state's parent is done, through the parent's
// own AfterFunc when it has one (core/h1engine's request context does): the context package
// then attaches a context derived from the state without a goroutine of its own, and runs
// its cancellation while the engine ends the request, before EndRequest recycles the state.
func (s *RequestState) AfterFunc(f func()) (stop func() bool) {
	if a, ok := s.parent.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(s.parent, f)
}

// Value implements context.Context; the state answers for its own key.
func (s *RequestState) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return s
	}
	return s.parent.Value(key)
}

var statePool = sync.Pool{New: func() any { return new(RequestState) }}

// AcquireState takes a state from the pool for a request arriving on site, wraps w, and
// returns the request rebound to the state. Call ReleaseState when the request is done.
// When r's context is a state that BeginRequest made and no stage acquired yet, that state
// is filled in and r is returned as it is (no request copy).
func AcquireState(w http.ResponseWriter, r *http.Request, site *Site, now time.Time) (*RequestState, *http.Request) {
	if st, ok := r.Context().(*RequestState); ok && st.begun && !st.acquired {
		st.acquired = true
		st.Start = now
		st.Site = site
		st.Writer.reset(w)
		return st, r
	}
	st := statePool.Get().(*RequestState)
	st.parent = r.Context()
	st.Start = now
	st.Site = site
	st.Writer.reset(w)
	return st, r.WithContext(st)
}

// ReleaseState returns st to the pool. A late caller that still holds the state as a
// context sees a plain background context, never a nil parent. A state made by
// BeginRequest is left to EndRequest.
func ReleaseState(st *RequestState) {
	if st.begun {
		return
	}
	*st = RequestState{parent: context.Background()}
	statePool.Put(st)
}

// BeginRequest takes a state from the pool to be the context of a request a server is
// about to build, over parent (the request's cancellable context): the server builds the
// request with it, so that AcquireState need not copy the request to attach a state. The
// server calls EndRequest with the returned context once the handler has returned.
// core/h1engine does (Server.RequestContext).
func BeginRequest(parent context.Context) context.Context {
	st := statePool.Get().(*RequestState)
	st.parent = parent
	st.begun = true
	return st
}

// EndRequest returns a context made by BeginRequest to the pool; any other context is left
// alone. Until the pool hands the state out again, it reads as a cancelled context.
func EndRequest(ctx context.Context) {
	if st, ok := ctx.(*RequestState); ok && st.begun {
		*st = RequestState{parent: endedContext}
		statePool.Put(st)
	}
}

// endedContext is the parent of a state EndRequest recycled: a late caller that still holds
// the state sees an ended context (Err is context.Canceled), never a nil parent or an error
// of nil after Done.
var endedContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Base returns the connection-level request context the state wraps. Hand it (not the state)
// to anything that may outlive the handler, such as an HTTP transport.
func (s *RequestState) Base() context.Context { return s.parent }

// State returns the request's state. It is nil only for requests that did not come through
// the pipeline (tests of a single handler).
func State(r *http.Request) *RequestState {
	if st, ok := r.Context().(*RequestState); ok {
		return st
	}
	st, _ := r.Context().Value(stateKey{}).(*RequestState)
	return st
}

// ClientIP returns the address of the TCP peer (not a forwarded header; the IP filter's
// trustProxy decides about those).
func ClientIP(r *http.Request) netip.Addr {
	if st := State(r); st != nil && st.clientIP.IsValid() {
		return st.clientIP
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var ip netip.Addr
	if err == nil {
		ip = ap.Addr().Unmap()
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip, _ = netip.ParseAddr(host)
	}
	// A link-local peer's address carries its interface zone (fe80::1%eth0); no prefix
	// contains a zoned address, so an IP filter's deny entry fe80::/10 would not match it.
	// The zone names our interface, not the client: drop it (the tcp path does the same).
	ip = ip.WithZone("")
	if st := State(r); st != nil {
		st.clientIP = ip
	}
	return ip
}

// connInfo is per-connection state, attached to the connection's context by the server.
type connInfo struct {
	requests atomic.Int64

	mu      sync.Mutex
	gone    bool          // a read on the connection failed: the client closed or reset it
	watcher ClientWatcher // told when the client goes; see WatchClient
}

type connInfoKey struct{}

// WithConnInfo attaches per-connection state to a connection's context; the server installs
// it as http.Server.ConnContext. When the connection can report its read errors (the
// framing guard's connections can), the state learns when the client goes away.
func WithConnInfo(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{}
	if rc, ok := c.(interface{ OnReadError(func(error)) }); ok {
		rc.OnReadError(ci.readFailed)
	}
	return context.WithValue(ctx, connInfoKey{}, ci)
}

// readFailed records a failed read on the client connection. Deadlines are not the client
// going away: net/http ends its background read with one after every request.
func (ci *connInfo) readFailed(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	ci.mu.Lock()
	if ci.gone {
		ci.mu.Unlock()
		return
	}
	ci.gone = true
	w := ci.watcher
	ci.mu.Unlock()
	if w != nil {
		w.ClientGone()
	}
}

// ClientWatcher is told that the client of the request it watches went away.
type ClientWatcher interface {
	// ClientGone is called at most once, from the connection's reading goroutine; it must
	// not block (an upstream client sets a past deadline on its connection).
	ClientGone()
}

// WatchClient asks that w be told when the client of the HTTP/1 request r closes or resets
// its connection while r is served — what cancelling r's context would tell, without the
// allocations of context.AfterFunc on every request. It returns false when it cannot watch
// (HTTP/2, a connection without read-error reports, another watcher registered, or a
// client already gone): use context.AfterFunc on the request's context then. Every true
// return must be paired with UnwatchClient.
func WatchClient(r *http.Request, w ClientWatcher) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	ci := stateConnInfo(r)
	if ci == nil {
		return false
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.gone || ci.watcher != nil {
		return false
	}
	ci.watcher = w
	return true
}

// UnwatchClient ends a WatchClient registration. gone reports that the client went away
// while w was registered (w's ClientGone has run or is about to).
func UnwatchClient(r *http.Request, w ClientWatcher) (gone bool) {
	ci := stateConnInfo(r)
	if ci == nil {
		return false
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.watcher == w {
		ci.watcher = nil
	}
	return ci.gone
}

// stateConnInfo returns r's connection state, cached in the request state.
func stateConnInfo(r *http.Request) *connInfo {
	st := State(r)
	if st != nil && st.conn != nil {
		return st.conn
	}
	ci, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	if st != nil {
		st.conn = ci
	}
	return ci
}

// ConnRequestNumber counts r on its connection and returns its position (1 for the first
// request of a connection); 0 when the connection has no such state.
func ConnRequestNumber(r *http.Request) int64 {
	ci, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	if ci == nil {
		return 0
	}
	return ci.requests.Add(1)
}

// SetClientIP records the real client address for the rest of the pipeline (the IP filter
// calls it after resolving X-Forwarded-For behind a trusted proxy), so rate limits and
// per-IP limits key on the client rather than on the proxy in front.
func SetClientIP(r *http.Request, ip netip.Addr) {
	if st := State(r); st != nil {
		st.clientIP = ip.Unmap()
	}
}

// SetPeerTrusted records that the TCP peer is a proxy the site trusts (the IP filter's
// trustProxy), so the forwarding headers it sent (X-Forwarded-For, Forwarded) are believed
// and extended rather than replaced.
func SetPeerTrusted(r *http.Request) {
	if st := State(r); st != nil {
		st.peerTrusted = true
	}
}

// PeerTrusted reports whether SetPeerTrusted was called for r; false for requests outside
// the pipeline.
func PeerTrusted(r *http.Request) bool {
	st := State(r)
	return st != nil && st.peerTrusted
}

// HeaderHook adds or changes response headers just before the final response header is
// sent (a status ≥ 200, or 101), whoever writes it: a handler, a guard's denial, an upstream
// answer. Stages register one per request with ResponseWriter.OnHeader; the hook is
// normally the module instance itself, so registering allocates nothing.
type HeaderHook interface {
	BeforeHeader(r *http.Request, h http.Header, status int)
}

// maxHeaderHooks bounds the hooks of one request (security headers, CORS, timing, …).
const maxHeaderHooks = 8

// ResponseWriter wraps the connection's writer and records what was written. It keeps
// Flush, Hijack and Unwrap working through the wrapper, and runs the request's header hooks.
type ResponseWriter struct {
	http.ResponseWriter
	// Status is the status code sent, 0 before the header is written.
	Status int
	// Bytes counts body bytes written.
	Bytes int64

	hooks    [maxHeaderHooks]HeaderHook
	hookReqs [maxHeaderHooks]*http.Request
	nhooks   int
	hooked   bool

	send sendGuard // the HTTP/2 stream's send timeout; see GuardSend
}

func (w *ResponseWriter) reset(rw http.ResponseWriter) {
	w.ResponseWriter = rw
	w.Status = 0
	w.Bytes = 0
	for i := range w.nhooks {
		w.hooks[i], w.hookReqs[i] = nil, nil
	}
	w.nhooks = 0
	w.hooked = false
	w.send = sendGuard{}
}

// OnHeader registers h to run (with r) just before the final response header is sent.
// Hooks run in registration order, that is in pipeline order. It reports false when the
// header is already sent or the request has too many hooks.
func (w *ResponseWriter) OnHeader(r *http.Request, h HeaderHook) bool {
	if w.hooked || w.nhooks == maxHeaderHooks {
		return false
	}
	w.hooks[w.nhooks], w.hookReqs[w.nhooks] = h, r
	w.nhooks++
	return true
}

func (w *ResponseWriter) runHooks(status int) {
	if w.hooked {
		return
	}
	w.hooked = true
	if w.nhooks == 0 {
		return
	}
	h := w.ResponseWriter.Header()
	for i := range w.nhooks {
		w.hooks[i].BeforeHeader(w.hookReqs[i], h, status)
	}
}

// WriteHeader implements http.ResponseWriter.
func (w *ResponseWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.runHooks(code)
		if w.Status == 0 || w.Status == http.StatusSwitchingProtocols {
			w.Status = code
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *ResponseWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.runHooks(http.StatusOK)
		w.Status = http.StatusOK
	}
	if w.send.timeout > 0 {
		return w.guardedWrite(b)
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (w *ResponseWriter) Flush() {
	if w.Status == 0 {
		w.runHooks(http.StatusOK)
		w.Status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker. Hooks do not run on a hijacked connection.
func (w *ResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hooked = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// OnHeader registers a header hook on the request's state; it reports false for a request
// that did not come through the pipeline.
func OnHeader(r *http.Request, h HeaderHook) bool {
	st := State(r)
	if st == nil {
		return false
	}
	return st.Writer.OnHeader(r, h)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *ResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Written reports whether the response header has been sent.
func (w *ResponseWriter) Written() bool { return w.Status != 0 }

// WithState wraps h so that each request runs with a fresh request state (and its header
// hooks), as the server's sites do. It is for unit tests of single stages and for embedding.
func WithState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, r := AcquireState(w, r, &Site{Label: "*"}, time.Now())
		defer ReleaseState(st)
		h.ServeHTTP(&st.Writer, r)
	})
}
