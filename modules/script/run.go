package script

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/telemetry"
	"github.com/conduitproxy/conduit/modules/script/api"
)

// maxStuck is how many calls of one entry may run past their budget at once before the
// entry is disabled: a call that cannot be stopped keeps its goroutine (docs/scripting.md).
const maxStuck = 4

// entry is one built `middleware[]` entry of type script or traefik: the compiled program,
// the value its constructor returned, and the budget every call runs under.
type entry struct {
	name   string // the entry's config path, for logs and metrics
	budget time.Duration
	deny   bool // onError: deny answers 500 when the script fails
	log    *slog.Logger
	prog   *program

	handler  http.Handler                          // request phase: the script's handler
	next     *lateNext                             // the next handler the script was built with
	response func(*http.Request, *script.Response) // response phase
	config   script.Config

	m        entryMetrics
	wd       *watchdog // the budget's keeper and the workers' owner; nil without a budget
	stuck    atomic.Int64
	disabled atomic.Bool
	pool     sync.Pool // *call
	respPool sync.Pool // *respCall
}

// entryMetrics are one entry's metrics, labelled by site and entry.
type entryMetrics struct {
	calls, errors, timeouts *telemetry.Metric
	stuck                   *telemetry.Metric
	duration                *telemetry.Metric
}

// newEntryMetrics registers an entry's metrics.
func newEntryMetrics(reg *telemetry.Registry, site, name string) entryMetrics {
	return entryMetrics{
		calls:    reg.Counter("conduit_script_calls_total", "Calls of a middleware[] script or plugin entry.", "site", "entry").With(site, name),
		errors:   reg.Counter("conduit_script_errors_total", "Calls of a middleware[] script or plugin entry that panicked.", "site", "entry").With(site, name),
		timeouts: reg.Counter("conduit_script_timeouts_total", "Calls of a middleware[] script or plugin entry that ran past timeoutMs.", "site", "entry").With(site, name),
		stuck:    reg.Gauge("conduit_script_stuck_calls", "Calls of a middleware[] script or plugin entry that ran past timeoutMs and are still running.", "site", "entry").With(site, name),
		duration: reg.Histogram("conduit_script_duration_seconds", "Time spent in a middleware[] script or plugin entry per call, next handler included.", telemetry.DefaultBuckets, "site", "entry").With(site, name),
	}
}

// lateNext is the next handler a script's constructor receives at provision time; Wrap sets
// the real one. It also tells the call's watchdog when the script is inside next, where
// the budget does not run.
type lateNext struct{ h http.Handler }

// callKey finds the running call from the request a script hands to next.
type callKey struct{}

// downstreamPanic carries a panic of the rest of the pipeline through the script, so that
// it is raised again on the request's goroutine instead of counting as the script's.
type downstreamPanic struct{ v any }

// ServeHTTP implements http.Handler.
func (n *lateNext) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(downstreamPanic); ok {
				panic(p)
			}
			panic(downstreamPanic{p})
		}
	}()
	c, _ := r.Context().Value(callKey{}).(*call)
	if c == nil {
		n.h.ServeHTTP(w, r)
		return
	}
	w, ok := c.enterNext(w)
	if !ok {
		return // the call was abandoned: the request has been answered without it
	}
	defer c.leaveNext()
	n.h.ServeHTTP(w, r)
}

// reraise panics again with a panic of the rest of the pipeline, or one with which a
// handler aborts the response (http.ErrAbortHandler): net/http must see those on the
// request's goroutine, to close the connection so the client sees the response broken off.
func reraise(p any) {
	if d, ok := p.(downstreamPanic); ok {
		panic(d.v)
	}
	if isAbort(p) {
		panic(p)
	}
}

// Wrap implements core.Middleware.
func (e *entry) Wrap(next http.Handler) http.Handler {
	if e.response != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			core.OnHeader(r, e)
			next.ServeHTTP(w, r)
		})
	}
	e.next.h = next
	return http.HandlerFunc(e.serve)
}

// ResponsePhase implements core.ResponsePhase.
func (e *entry) ResponsePhase() bool { return e.response != nil }

// failed answers a request whose script failed (panic, timeout, disabled entry) before it
// answered or called next: 500 with onError: deny, else the request goes on without the
// script (the original's fail-open behaviour).
func (e *entry) failed(w http.ResponseWriter, r *http.Request) {
	if e.deny {
		core.Error(w, r, http.StatusInternalServerError, "")
		return
	}
	e.next.h.ServeHTTP(w, r)
}

// serve runs the request phase of one request.
func (e *entry) serve(w http.ResponseWriter, r *http.Request) {
	if e.disabled.Load() {
		e.failed(w, r)
		return
	}
	start := time.Now()
	e.m.calls.Inc()
	defer func() { e.m.duration.Observe(time.Since(start).Seconds()) }()
	if e.budget <= 0 {
		e.serveInline(w, r)
		return
	}
	c := e.acquire(w, r, start)
	e.wd.dispatch(c)
	<-c.done
	if c.finish() {
		e.release(c)
	}
}

// serveInline runs the script on the request's goroutine (timeoutMs: 0): no budget, a
// panic is still recovered.
func (e *entry) serveInline(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			reraise(p)
			e.panicked(p)
			if st := core.State(r); st != nil && st.Writer.Written() {
				return
			}
			e.failed(w, r)
		}
	}()
	e.handler.ServeHTTP(w, r)
}

// isAbort reports whether p is http.ErrAbortHandler, with which a handler (the proxy, on a
// broken upstream response) aborts the response; it must reach net/http so that the
// connection is closed and the client sees a truncated response as one.
func isAbort(p any) bool { return errors.Is(asError(p), http.ErrAbortHandler) }

// panicked counts and logs a script panic.
func (e *entry) panicked(p any) {
	if isAbort(p) {
		return
	}
	e.m.errors.Inc()
	e.log.Warn("script panicked", "entry", e.name, "panic", p)
}

// asError returns p as an error, or nil.
func asError(p any) error {
	err, _ := p.(error)
	return err
}

// timedOut counts a call that ran past its budget (the watchdog counted it as stuck) and
// disables the entry when too many are stuck; the program is then stopped, which ends the
// interpreted loops.
func (e *entry) timedOut() {
	e.m.timeouts.Inc()
	e.log.Warn("script ran past its budget; the request went on without it", "entry", e.name, "timeoutMs", e.budget.Milliseconds())
	if e.stuck.Load() >= maxStuck {
		e.disable("too many calls ran past their budget and are still running")
	}
}

// runaway disables the entry when a call past its budget keeps growing its goroutine's
// stack (an endless recursion, which would end the process): stopping the program ends it.
func (e *entry) runaway() {
	e.disable("a call past its budget keeps growing its stack (endless recursion?); stopping it before it ends the process")
}

// disable makes every request get the entry's onError behaviour until the next reload,
// and stops the program, which ends its interpreted loops and recursions.
func (e *entry) disable(why string) {
	if e.disabled.CompareAndSwap(false, true) {
		e.log.Error("script entry disabled: "+why, "entry", e.name, "stuck", e.stuck.Load(), "onError", map[bool]string{true: "deny", false: "continue"}[e.deny])
		e.prog.stop()
	}
}

// addStuck changes the count of calls still running past their budget.
func (e *entry) addStuck(n int64) int64 {
	v := e.stuck.Add(n)
	e.m.stuck.Set(float64(v))
	return v
}

// BeforeHeader implements core.HeaderHook: the response phase.
func (e *entry) BeforeHeader(r *http.Request, h http.Header, status int) {
	if e.disabled.Load() {
		return
	}
	start := time.Now()
	e.m.calls.Inc()
	defer func() { e.m.duration.Observe(time.Since(start).Seconds()) }()
	if e.budget <= 0 {
		func() {
			defer func() {
				if p := recover(); p != nil {
					e.panicked(p)
				}
			}()
			e.response(r, &script.Response{Status: status, Header: h, Config: e.config})
		}()
		return
	}
	c := e.acquireResponse(r, h, status, start)
	e.wd.dispatch(c)
	<-c.done
	if c.state == stateAbandoned { // written before done was signalled, final since
		e.timedOut() // the headers stay as they were: the entry fails open
		return
	}
	if c.panicked != nil {
		e.panicked(c.panicked)
	} else {
		clear(h)
		for k, v := range c.resp.Header {
			h[k] = v
		}
	}
	e.releaseResponse(c)
}

// respCall is one response-phase call under a budget. The script works on copies of the
// request and the header, so a call that runs past its budget touches nothing the request
// still uses; the header is taken over only when it returns in time.
type respCall struct {
	guard
	e    *entry
	req  http.Request
	url  url.URL
	hdr  http.Header // the header of the script's request, kept across calls
	resp script.Response
	out  http.Header // the response header the script changes, kept across calls
}

// acquireResponse takes a response call from the pool and copies what the script sees.
func (e *entry) acquireResponse(r *http.Request, h http.Header, status int, start time.Time) *respCall {
	c, _ := e.respPool.Get().(*respCall)
	if c == nil {
		c = &respCall{e: e, guard: guard{done: make(chan struct{}, 1)}, out: http.Header{}}
	}
	c.state, c.start = stateRunning, e.wd.since(start)
	c.panicked = nil
	c.req = *r
	c.url = *r.URL
	c.req.URL = &c.url
	if c.hdr == nil {
		c.hdr = make(http.Header, len(r.Header))
	}
	clear(c.hdr)
	for k, v := range r.Header {
		c.hdr[k] = v[:len(v):len(v)] // an append by the script copies
	}
	c.req.Header = c.hdr
	c.req.Body = http.NoBody
	clear(c.out)
	for k, v := range h {
		c.out[k] = v[:len(v):len(v)]
	}
	c.resp = script.Response{Status: status, Header: c.out, Config: e.config}
	return c
}

// releaseResponse returns a finished response call to the pool; its header maps are reused.
func (e *entry) releaseResponse(c *respCall) {
	c.req = http.Request{}
	e.respPool.Put(c)
}

// budget implements job.
func (c *respCall) budget() *guard { return &c.guard }

// run implements job: it runs the script's Response function for one call.
func (c *respCall) run(wk *worker) (inTime bool) {
	defer func() { inTime = c.e.ended(&c.guard, wk, recover()) }()
	c.e.response(&c.req, &c.resp)
	return true
}

// ended records that a call's script returned, having panicked with p (or nil), and
// reports whether it returned within its budget. A call in time frees its worker and wakes
// its request; an abandoned one is no longer stuck, and nobody waits for it.
func (e *entry) ended(g *guard, wk *worker, p any) bool {
	if !g.returned() {
		e.addStuck(-1)
		if p != nil {
			e.panicked(p)
		}
		return false
	}
	g.panicked = p
	e.wd.finished(g, wk)
	g.done <- struct{}{}
	return true
}

// call is one request-phase call that runs under a budget: the script runs on its own
// goroutine with a copy of the request and a guarded writer, so that when it overruns, the
// request completes without it and nothing the script still does reaches the client.
type call struct {
	guard
	e    *entry
	w    http.ResponseWriter
	r    *http.Request // the request as it came in
	ctx  context.Context
	req  http.Request // the script's copy
	url  url.URL
	hdr  http.Header // the header of the script's copy, kept across calls
	gw   guardWriter
	body guardBody

	nextCalled bool // under mu
}

// Deadline implements context.Context.
func (c *call) Deadline() (time.Time, bool) { return c.ctx.Deadline() }

// Done implements context.Context.
func (c *call) Done() <-chan struct{} { return c.ctx.Done() }

// Err implements context.Context.
func (c *call) Err() error { return c.ctx.Err() }

// Value implements context.Context; the call answers for callKey.
func (c *call) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return c
	}
	return c.ctx.Value(key)
}

// acquire takes a call from the pool and prepares the script's copy of the request.
func (e *entry) acquire(w http.ResponseWriter, r *http.Request, start time.Time) *call {
	c, _ := e.pool.Get().(*call)
	if c == nil {
		c = &call{e: e, guard: guard{done: make(chan struct{}, 1)}}
		c.gw.c, c.body.c = c, c
		c.gw.hdr = http.Header{}
	}
	c.w, c.r, c.ctx = w, r, r.Context()
	c.state, c.start = stateRunning, e.wd.since(start)
	c.nextCalled, c.panicked = false, nil
	c.req = *r.WithContext(c)
	c.url = *r.URL
	c.req.URL = &c.url
	if c.hdr == nil {
		c.hdr = make(http.Header, len(r.Header))
	}
	clear(c.hdr)
	for k, v := range r.Header {
		c.hdr[k] = v[:len(v):len(v)] // an append by the script copies
	}
	c.req.Header = c.hdr
	if r.Body != nil && r.Body != http.NoBody {
		c.body.rc = r.Body
		c.req.Body = &c.body
	}
	clear(c.gw.hdr)
	for k, v := range w.Header() {
		c.gw.hdr[k] = v[:len(v):len(v)]
	}
	c.gw.wrote = false
	return c
}

// release returns a call whose script has returned to the pool. Its header map is reused by
// the next call: like any handler, a script must not keep the request once it returned.
func (e *entry) release(c *call) {
	c.w, c.r, c.ctx, c.req, c.body.rc = nil, nil, nil, http.Request{}, nil
	e.pool.Put(c)
}

// budget implements job.
func (c *call) budget() *guard { return &c.guard }

// run implements job: it runs the script for one call.
func (c *call) run(wk *worker) (inTime bool) {
	defer func() { inTime = c.e.ended(&c.guard, wk, recover()) }()
	c.e.handler.ServeHTTP(&c.gw, &c.req)
	return true
}

// finish completes a call once done was signalled; it reports whether the call can be
// reused. An abandoned call gets the entry's error behaviour unless the script had
// answered or called next; a panic before any answer gets it too; header changes of a
// script that wrote nothing are kept. The state, wrote and nextCalled were last written
// before done was signalled (an abandoned call's script changes none of them).
func (c *call) finish() bool {
	answered := c.gw.wrote || c.nextCalled
	if c.state == stateAbandoned {
		c.e.timedOut()
		if !answered {
			c.e.failed(c.w, c.r)
		}
		return false
	}
	if c.panicked != nil {
		reraise(c.panicked) // on the request's goroutine, where net/http expects it
		c.e.panicked(c.panicked)
		if !answered {
			c.e.failed(c.w, c.r)
		}
		return true
	}
	if !answered {
		c.gw.flushHeader()
	}
	return true
}

// enterNext is called when the script calls next: the script's header changes go to the
// real writer, which next gets directly when the script passed its own writer on.
func (c *call) enterNext(w http.ResponseWriter) (http.ResponseWriter, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateAbandoned {
		return nil, false
	}
	c.state, c.nextCalled = stateInNext, true
	if w == &c.gw {
		if !c.gw.wrote {
			c.gw.flushHeader()
			c.gw.wrote = true
		}
		return c.w, true
	}
	return w, true
}

// leaveNext is called when next returns to the script: its budget starts again.
func (c *call) leaveNext() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateInNext {
		c.state, c.start = stateRunning, restartAtTick
	}
}

// guardWriter is the ResponseWriter a script gets when it runs under a budget: its header
// is private until the script writes, and once the call is abandoned nothing it writes
// reaches the client.
type guardWriter struct {
	c     *call
	hdr   http.Header
	wrote bool
}

var errAbandoned = errors.New("script call abandoned: it ran past its budget")

// Header implements http.ResponseWriter.
func (g *guardWriter) Header() http.Header { return g.hdr }

// flushHeader makes the real header the script's header. c.mu is held or the script has
// returned.
func (g *guardWriter) flushHeader() {
	h := g.c.w.Header()
	clear(h)
	for k, v := range g.hdr {
		h[k] = v
	}
}

// WriteHeader implements http.ResponseWriter.
func (g *guardWriter) WriteHeader(code int) {
	g.c.mu.Lock()
	defer g.c.mu.Unlock()
	if g.c.state == stateAbandoned {
		return
	}
	if !g.wrote {
		g.flushHeader()
		if code >= 200 {
			g.wrote = true
		}
	}
	g.c.w.WriteHeader(code)
}

// claim locks the call for a write that sends the header, sending the script's header
// first; it reports false (and holds no lock) when the call was abandoned.
func (g *guardWriter) claim() bool {
	g.c.mu.Lock()
	if g.c.state == stateAbandoned {
		g.c.mu.Unlock()
		return false
	}
	if !g.wrote {
		g.flushHeader()
		g.wrote = true
	}
	return true
}

// Write implements http.ResponseWriter.
func (g *guardWriter) Write(b []byte) (int, error) {
	if !g.claim() {
		return 0, errAbandoned
	}
	defer g.c.mu.Unlock()
	return g.c.w.Write(b)
}

// Flush implements http.Flusher.
func (g *guardWriter) Flush() {
	if !g.claim() {
		return
	}
	defer g.c.mu.Unlock()
	if f, ok := g.c.w.(http.Flusher); ok {
		f.Flush()
	}
}

// guardBody is the request body a script reads when it runs under a budget; an abandoned
// call reads nothing more (the request may already be going upstream without it).
type guardBody struct {
	c  *call
	rc io.ReadCloser
}

// Read implements io.Reader.
func (b *guardBody) Read(p []byte) (int, error) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if b.c.state == stateAbandoned || b.rc == nil {
		return 0, errAbandoned
	}
	return b.rc.Read(p)
}

// Close implements io.Closer; the server closes the real body.
func (b *guardBody) Close() error { return nil }

var (
	_ core.Middleware    = (*entry)(nil)
	_ core.ResponsePhase = (*entry)(nil)
	_ core.HeaderHook    = (*entry)(nil)
	_ http.Flusher       = (*guardWriter)(nil)
)
