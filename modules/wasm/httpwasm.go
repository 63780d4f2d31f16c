package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/canonical"
	hwapi "github.com/http-wasm/http-wasm-host-go/api"
	hwhandler "github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/http-wasm/http-wasm-host-go/handler"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/net/http/httpguts"
)

// maxBufferedBody bounds a request or response body an http-wasm guest buffers
// (buffer_request, buffer_response).
const maxBufferedBody = 8 << 20

// httpWasmEntry is a `middleware[]` entry running an http-wasm guest through
// github.com/http-wasm/http-wasm-host-go's handler package, with this file's Host. The
// library keeps a pool of guest instances; an instance whose module was closed (a call
// that ran out of time, a guest that exited) poisons that pool, so the entry then builds a
// fresh one and closes the old one once its last request is done.
type httpWasmEntry struct {
	spec  *entrySpec
	code  []byte // the guest, instrumented (interrupt.go)
	facts guestFacts
	// noResponse: handle_response does nothing (analysis.go), so the instance goes back to
	// the pool before the next handler runs rather than after.
	noResponse bool
	logger     *slog.Logger
	eng        *engine
	cur        atomic.Pointer[hwPool]
	mu         sync.Mutex // serialises rebuilds
	closed     atomic.Bool
	states     sync.Pool // idle *hwState (newState)
}

// hwPool is one handler.Middleware (a runtime and its pool of instances) with the
// requests that use it.
type hwPool struct {
	mw       handler.Middleware
	inflight atomic.Int64
	retired  atomic.Bool
	once     sync.Once
}

var _ core.Middleware = (*httpWasmEntry)(nil)

// newHTTPWasmEntry prepares an http-wasm guest whose instrumented code is code; facts are
// analyse's of the guest as written.
func newHTTPWasmEntry(ctx *core.SiteContext, eng *engine, es *entrySpec, code []byte, facts guestFacts) (*httpWasmEntry, error) {
	h := &httpWasmEntry{spec: es, code: code, facts: facts, logger: ctx.Logger, eng: eng}
	_, h.noResponse = facts.consts[hwhandler.FuncHandleResponse]
	p, err := h.newPool()
	if err != nil {
		return nil, err
	}
	h.cur.Store(p)
	return h, nil
}

func (h *httpWasmEntry) newPool() (*hwPool, error) {
	ctx := context.Background()
	opts := []handler.Option{
		handler.Runtime(func(context.Context) (wazero.Runtime, error) {
			return newGuestRuntime(h.eng.cache, h.spec, h.facts.consts), nil
		}),
		handler.ModuleConfig(moduleConfig(h.spec)),
		handler.Logger(hwLogger{h.logger, h.spec.file}),
	}
	if h.spec.config != nil {
		opts = append(opts, handler.GuestConfig(h.spec.config))
	}
	mw, err := handler.NewMiddleware(ctx, h.code, hwHost{}, opts...)
	if err != nil {
		return nil, err
	}
	return &hwPool{mw: mw}, nil
}

// acquire returns the current pool with one more request on it.
func (h *httpWasmEntry) acquire() *hwPool {
	for {
		p := h.cur.Load()
		p.inflight.Add(1)
		if h.cur.Load() == p {
			return p
		}
		h.release(p)
	}
}

func (h *httpWasmEntry) release(p *hwPool) {
	if p.inflight.Add(-1) == 0 && p.retired.Load() {
		p.close()
	}
}

func (p *hwPool) close() { p.once.Do(func() { _ = p.mw.Close(context.Background()) }) }

// poisoned replaces p after one of its instances was closed under it.
func (h *httpWasmEntry) poisoned(p *hwPool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur.Load() != p || h.closed.Load() {
		return
	}
	np, err := h.newPool()
	if err != nil {
		h.logger.Warn("wasm: cannot rebuild the guest's instances; keeping the old ones", "guest", h.spec.file, "error", err)
		return
	}
	h.cur.Store(np)
	p.retired.Store(true)
	if p.inflight.Load() == 0 {
		p.close()
	}
}

// Close closes the entry's runtime (and its watchdog) when its generation is retired
// (when its last request is done).
func (h *httpWasmEntry) Close(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed.Store(true)
	p := h.cur.Load()
	p.retired.Store(true)
	if p.inflight.Load() == 0 {
		p.close()
	}
	return nil
}

// closedModule reports whether err says the guest's module was closed (a timeout,
// proc_exit), which leaves its instance unusable.
func closedModule(err error) bool {
	var ee *sys.ExitError
	return errors.As(err, &ee)
}

// hwKey finds the request's hwState in a guest call's context.
type hwKey struct{}

// hwState is one request through an http-wasm guest; it is the context of the guest's
// calls. Its parent is context.Background, not the request's context: the watchdog bounds
// the calls, and wazero reads the context's values on every call. States come from the
// entry's pool (newState, free).
type hwState struct {
	context.Context
	r        *http.Request
	w        http.ResponseWriter
	features hwhandler.Features
	reqBody  []byte // buffer_request: the whole request body
	reqErr   error  // buffer_request: the body could not be buffered
	// reqTooLarge: the body is larger than buffer_request holds; tooLargeRead: the guest
	// tried to read it (its read_body trapped), so the request is answered 413.
	reqTooLarge, tooLargeRead bool
	// start: when the guest's handle_request call began; bodyWait: the time the host spent
	// inside that call reading the request body from the client (buffer_request turned on
	// by the call, or read_body without it); bodyErr: a read of the client's body whose
	// bytes the guest asked for failed (clientFault).
	start    time.Time
	bodyWait time.Duration
	bodyErr  error
	afterNxt bool
	// Before next: the guest's own answer.
	status int
	body   bytes.Buffer
	// After next with buffer_response: the handler's answer.
	buf *bufferedResponse
	// hdrBytes counts the bytes of header names and values the guest gave the functions
	// that change headers (spendHeaderBytes).
	hdrBytes int
	// logs counts the log lines the guest wrote for the request (maxGuestLogLines).
	logs int
}

// spendHeaderBytes counts the bytes of a header change (a name and its value) against
// maxHeaderChangeBytes and panics past it (which the library turns into a trap).
func (s *hwState) spendHeaderBytes(name, value string) {
	if err := spendHeaderBytes(&s.hdrBytes, len(name)+len(value)); err != nil {
		panic(err)
	}
}

// Value implements context.Context.
func (s *hwState) Value(key any) any {
	if _, ok := key.(hwKey); ok {
		return s
	}
	return s.Context.Value(key)
}

// newState returns a state for r and w from h's pool.
func (h *httpWasmEntry) newState(w http.ResponseWriter, r *http.Request) *hwState {
	s, ok := h.states.Get().(*hwState)
	if !ok {
		s = new(hwState)
	}
	s.Context, s.r, s.w = context.Background(), r, w
	return s
}

// free clears s (keeping a body buffer of at most maxPooledBody) and returns it to h's
// pool. The http-wasm library may still hold s as a context (a guest finalizer logs with the
// context the guest was made with), so a freed state stays a valid context with no request:
// its parent is context.Background and its r is nil, which hwLogger checks.
func (h *httpWasmEntry) free(s *hwState) {
	body := s.body
	body.Reset()
	if body.Cap() > maxPooledBody {
		body = bytes.Buffer{}
	}
	*s = hwState{Context: context.Background(), body: body}
	h.states.Put(s)
}

func hwStateOf(ctx context.Context) *hwState {
	s, ok := ctx.Value(hwKey{}).(*hwState)
	if !ok {
		panic(errors.New("http-wasm host function called outside a request"))
	}
	return s
}

// Wrap implements core.Middleware.
func (h *httpWasmEntry) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := h.acquire()
		defer h.release(p)
		h.serve(p, w, r, next)
	})
}

// serve runs the guest for one request. Its state goes back to the pool when serve returns
// normally (a panic, such as http.ErrAbortHandler from the next handler, drops it).
func (h *httpWasmEntry) serve(p *hwPool, w http.ResponseWriter, r *http.Request, next http.Handler) {
	s := h.newState(w, r)
	s.enable(p.mw.Features())
	s.start, s.bodyWait = time.Now(), 0 // a body buffered before the call is not the call's
	outCtx, ctxNext, err := p.mw.HandleRequest(s)
	if err != nil {
		if status, reason := s.clientFault(err, h.spec.timeout); status != 0 {
			// The guest could not decide on the request because of its client: the request
			// may not pass uninspected (whatever onError says), and the guest is not at
			// fault. An instance the watchdog stopped is still unusable.
			h.logger.Warn("wasm: the guest could not inspect the request because of its client; answering "+strconv.Itoa(status),
				"guest", h.spec.file, "reason", reason, "error", err)
			if closedModule(err) {
				h.poisoned(p)
			}
			h.free(s)
			w.Header().Set("Connection", "close") // the rest of the body is not read
			core.Error(w, r, status, reason)
			return
		}
		h.failed(p, err)
		if h.spec.deny {
			h.free(s)
			core.Error(w, r, http.StatusInternalServerError, "wasm middleware failed")
			return
		}
		s.restoreBody()
		h.free(s)
		next.ServeHTTP(w, r)
		return
	}
	if uint32(ctxNext) == 0 {
		status := s.status
		if status == 0 {
			status = http.StatusOK
		}
		writeBody(w, r, status, s.body.Bytes())
		h.free(s)
		return
	}
	s.afterNxt = true
	s.restoreBody()
	if h.noResponse && !s.features.IsEnabled(hwhandler.FeatureBufferResponse) {
		// handle_response does nothing: the library's HandleResponse returns the instance
		// to the pool (without calling the guest, see guestFunction) before next runs.
		_ = p.mw.HandleResponse(outCtx, uint32(ctxNext>>32), nil)
		h.free(s)
		next.ServeHTTP(w, r)
		return
	}
	out := w
	if s.features.IsEnabled(hwhandler.FeatureBufferResponse) {
		s.buf = &bufferedResponse{header: w.Header()}
		out = s.buf
	}
	next.ServeHTTP(out, r)
	var nextErr error
	if s.buf != nil && s.buf.overflow {
		nextErr = fmt.Errorf("the response body is larger than the %d bytes buffer_response holds", maxBufferedBody)
	}
	if err := p.mw.HandleResponse(outCtx, uint32(ctxNext>>32), nextErr); err != nil {
		h.failed(p, err)
		if s.buf != nil && h.spec.deny {
			clear(w.Header())
			h.free(s)
			core.Error(w, r, http.StatusInternalServerError, "wasm middleware failed")
			return
		}
	}
	if s.buf != nil {
		if s.buf.overflow {
			clear(w.Header())
			h.free(s)
			core.Error(w, r, http.StatusBadGateway, "response too large for the wasm middleware")
			return
		}
		status := s.buf.status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Del("Content-Length")
		writeBody(w, r, status, s.buf.body.Bytes())
	}
	h.free(s)
}

// clientFault returns the answer to a handle_request call that failed with err because of
// the client rather than the guest, and its reason, or 0 when the guest is at fault (onError
// applies). The client is at fault when:
//   - the guest read a body larger than buffer_request holds: 413;
//   - a read of the client's body whose bytes the guest asked for failed: 408 when the body
//     arrived too slowly (global.clientBodyTimeoutMs, limits.minUploadRateBytesPerSec), 413
//     past limits.maxBodyBytes, 400 otherwise;
//   - the call ran out of time (timeoutMs) after the host waited inside it for the client's
//     body, and the guest's own time (the call's time less that wait) was within timeout:
//     the client's wait pushed the call past its limit, 408.
//
// A guest that runs out of time on its own, with or without a body to read, is at fault.
func (s *hwState) clientFault(err error, timeout time.Duration) (int, string) {
	switch {
	case s.tooLargeRead:
		return http.StatusRequestEntityTooLarge, "request body too large for the wasm middleware"
	case s.bodyErr != nil && errors.Is(s.bodyErr, core.ErrUploadTooSlow):
		return http.StatusRequestTimeout, "request body too slow"
	case s.bodyErr != nil && errors.As(s.bodyErr, new(*http.MaxBytesError)):
		return http.StatusRequestEntityTooLarge, "" // limits.maxBodyBytes
	case s.bodyErr != nil:
		return http.StatusBadRequest, "request body unreadable"
	case s.bodyWait > 0 && errors.Is(err, errInterrupted) && time.Since(s.start)-s.bodyWait < timeout:
		return http.StatusRequestTimeout, "request body too slow for the wasm middleware"
	}
	return 0, ""
}

// instantiated marks the start of the guest's handle_request call again when ctx is a
// request's (the host library made an instance for it inside HandleRequest): the time the
// instance took to make, and a body its start functions had buffered, are not the call's.
func instantiated(ctx context.Context) {
	if s, ok := ctx.Value(hwKey{}).(*hwState); ok && s.r != nil {
		s.start, s.bodyWait = time.Now(), 0
	}
}

func (h *httpWasmEntry) failed(p *hwPool, err error) {
	action := "the request passes (onError: allow)"
	if h.spec.deny {
		action = "answering 500 (onError: deny)"
	}
	h.logger.Warn("wasm: guest failed; "+action, "guest", h.spec.file, "error", err)
	if closedModule(err) {
		h.poisoned(p)
	}
}

// enable turns features on for this request.
func (s *hwState) enable(f hwhandler.Features) hwhandler.Features {
	f &^= hwhandler.FeatureTrailers
	if f.IsEnabled(hwhandler.FeatureBufferRequest) && !s.features.IsEnabled(hwhandler.FeatureBufferRequest) {
		s.bufferRequest()
	}
	s.features |= f
	return s.features
}

// bufferRequest reads the request body (at most maxBufferedBody) so the guest can read it
// and the next handler still gets it.
func (s *hwState) bufferRequest() {
	if s.r.Body == nil || s.r.Body == http.NoBody {
		return
	}
	t := time.Now()
	b, err := io.ReadAll(io.LimitReader(s.r.Body, maxBufferedBody+1))
	s.bodyWait += time.Since(t)
	s.reqBody = b
	switch {
	case err != nil:
		s.reqErr = fmt.Errorf("reading the request body: %w", err)
	case len(b) > maxBufferedBody:
		s.reqErr = fmt.Errorf("the request body is larger than the %d bytes buffer_request holds", maxBufferedBody)
		s.reqTooLarge = true
	}
	s.r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(b), s.r.Body), closer: s.r.Body}
}

// restoreBody hands the next handler the buffered request body again from its start.
func (s *hwState) restoreBody() {
	if rb, ok := s.r.Body.(*replayBody); ok && s.reqErr == nil {
		rb.Reader = bytes.NewReader(s.reqBody)
	}
}

// replayBody is a request body read (partly) into memory, then replayed.
type replayBody struct {
	io.Reader
	closer io.Closer
}

// Close implements io.Closer.
func (b *replayBody) Close() error { return b.closer.Close() }

// bufferedResponse holds the next handler's answer for the guest's handle_response.
type bufferedResponse struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

// Header implements http.ResponseWriter.
func (b *bufferedResponse) Header() http.Header { return b.header }

// WriteHeader implements http.ResponseWriter; informational statuses are not kept.
func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 && code >= 200 {
		b.status = code
	}
}

// Write implements http.ResponseWriter.
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.overflow || b.body.Len()+len(p) > maxBufferedBody {
		b.overflow = true
		return 0, errors.New("response too large for buffer_response")
	}
	return b.body.Write(p)
}

// hwHost implements the http-wasm host functions on net/http with Conduit's rules: header
// names must be tokens and values valid field values, framing headers (Content-Length,
// Transfer-Encoding, Connection, Host, …) cannot be changed, a new URI must be an
// origin-form path that is canonical (core/canonical), and trailers are not offered.
type hwHost struct{}

var _ hwhandler.Host = hwHost{}

// EnableFeatures implements hwhandler.Host.
func (hwHost) EnableFeatures(ctx context.Context, f hwhandler.Features) hwhandler.Features {
	if s, ok := ctx.Value(hwKey{}).(*hwState); ok {
		return s.enable(f)
	}
	return f &^ hwhandler.FeatureTrailers
}

// GetMethod implements hwhandler.Host.
func (hwHost) GetMethod(ctx context.Context) string { return hwStateOf(ctx).r.Method }

// SetMethod implements hwhandler.Host.
func (hwHost) SetMethod(ctx context.Context, method string) {
	if !core.IsToken(method) {
		panic(fmt.Errorf("invalid method %q", method))
	}
	hwStateOf(ctx).r.Method = method
}

// GetURI implements hwhandler.Host.
func (hwHost) GetURI(ctx context.Context) string {
	u := hwStateOf(ctx).r.URL
	uri := u.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	if u.ForceQuery || u.RawQuery != "" {
		uri += "?" + u.RawQuery
	}
	return uri
}

// SetURI implements hwhandler.Host.
func (hwHost) SetURI(ctx context.Context, uri string) {
	r := hwStateOf(ctx).r
	if uri == "" {
		uri = "/"
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(uri, "/") {
		panic(fmt.Errorf("invalid URI %q: must be a path with an optional query", uri))
	}
	escaped, decoded, err := canonical.Path(u.EscapedPath(), canonical.PathOptions{})
	if err != nil {
		panic(fmt.Errorf("invalid URI %q: %w", uri, err))
	}
	r.URL.Path, r.URL.RawPath = decoded, ""
	if escaped != decoded {
		r.URL.RawPath = escaped
	}
	r.URL.RawQuery, r.URL.ForceQuery = u.RawQuery, u.ForceQuery
	r.RequestURI = r.URL.RequestURI()
}

// GetProtocolVersion implements hwhandler.Host.
func (hwHost) GetProtocolVersion(ctx context.Context) string { return hwStateOf(ctx).r.Proto }

// GetRequestHeaderNames implements hwhandler.Host.
func (hwHost) GetRequestHeaderNames(ctx context.Context) []string {
	r := hwStateOf(ctx).r
	names := make([]string, 0, len(r.Header)+1)
	if r.Host != "" {
		names = append(names, "Host")
	}
	for k := range r.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// GetRequestHeaderValues implements hwhandler.Host.
func (hwHost) GetRequestHeaderValues(ctx context.Context, name string) []string {
	r := hwStateOf(ctx).r
	if strings.EqualFold(name, "host") {
		return []string{r.Host}
	}
	return r.Header.Values(name)
}

// checkedName returns the canonical form of a header name a guest may change, or panics
// (which the library turns into a trap).
func checkedName(name string) string {
	if !core.IsToken(name) {
		panic(fmt.Errorf("invalid header name %q", name))
	}
	canon := http.CanonicalHeaderKey(name)
	if slices.Contains(framingHeaders, canon) {
		panic(fmt.Errorf("the header %s cannot be changed", canon))
	}
	return canon
}

func checkedValue(v string) string {
	if !httpguts.ValidHeaderFieldValue(v) {
		panic(errors.New("invalid header value"))
	}
	return v
}

// SetRequestHeaderValue implements hwhandler.Host.
func (hwHost) SetRequestHeaderValue(ctx context.Context, name, value string) {
	s := hwStateOf(ctx)
	s.spendHeaderBytes(name, value)
	s.r.Header[checkedName(name)] = []string{checkedValue(value)}
}

// AddRequestHeaderValue implements hwhandler.Host.
func (hwHost) AddRequestHeaderValue(ctx context.Context, name, value string) {
	s := hwStateOf(ctx)
	s.spendHeaderBytes(name, value)
	h := s.r.Header
	n := checkedName(name)
	h[n] = append(h[n], checkedValue(value))
}

// RemoveRequestHeader implements hwhandler.Host.
func (hwHost) RemoveRequestHeader(ctx context.Context, name string) {
	s := hwStateOf(ctx)
	s.spendHeaderBytes(name, "")
	delete(s.r.Header, checkedName(name))
}

// RequestBodyReader implements hwhandler.Host.
func (hwHost) RequestBodyReader(ctx context.Context) io.ReadCloser {
	s := hwStateOf(ctx)
	if s.reqErr != nil {
		s.tooLargeRead = s.reqTooLarge
		if !s.reqTooLarge {
			s.bodyErr = s.reqErr
		}
		panic(s.reqErr)
	}
	if s.reqBody != nil {
		return io.NopCloser(bytes.NewReader(s.reqBody))
	}
	if s.r.Body == nil {
		return http.NoBody
	}
	return clientBody{ReadCloser: s.r.Body, s: s}
}

// clientBody is the request body a guest reads without buffer_request: the host reads it
// from the client inside the guest's call, and counts the time it waits and a failed read
// (clientFault).
type clientBody struct {
	io.ReadCloser
	s *hwState
}

// Read implements io.Reader.
func (b clientBody) Read(p []byte) (int, error) {
	t := time.Now()
	n, err := b.ReadCloser.Read(p)
	b.s.bodyWait += time.Since(t)
	if err != nil && err != io.EOF {
		b.s.bodyErr = fmt.Errorf("reading the request body: %w", err)
	}
	return n, err
}

// RequestBodyWriter implements hwhandler.Host: the guest replaces the request body.
func (hwHost) RequestBodyWriter(ctx context.Context) io.Writer {
	s := hwStateOf(ctx)
	if s.r.Body != nil {
		_ = s.r.Body.Close()
	}
	w := &requestBodyWriter{r: s.r}
	s.r.Body, s.reqBody, s.reqErr = io.NopCloser(&w.buf), nil, nil
	s.r.ContentLength = 0
	s.r.Header.Del("Content-Length")
	return w
}

// requestBodyWriter is a replaced request body; it keeps the request's ContentLength.
type requestBodyWriter struct {
	r   *http.Request
	buf bytes.Buffer
}

// Write implements io.Writer.
func (w *requestBodyWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > maxBufferedBody {
		return 0, errors.New("request body too large")
	}
	n, err := w.buf.Write(p)
	w.r.ContentLength = int64(w.buf.Len())
	return n, err
}

// GetRequestTrailerNames implements hwhandler.Host; trailers are not offered.
func (hwHost) GetRequestTrailerNames(context.Context) []string { return nil }

// GetRequestTrailerValues implements hwhandler.Host.
func (hwHost) GetRequestTrailerValues(context.Context, string) []string { return nil }

// SetRequestTrailerValue implements hwhandler.Host.
func (hwHost) SetRequestTrailerValue(context.Context, string, string) {}

// AddRequestTrailerValue implements hwhandler.Host.
func (hwHost) AddRequestTrailerValue(context.Context, string, string) {}

// RemoveRequestTrailer implements hwhandler.Host.
func (hwHost) RemoveRequestTrailer(context.Context, string) {}

// GetStatusCode implements hwhandler.Host.
func (hwHost) GetStatusCode(ctx context.Context) uint32 {
	s := hwStateOf(ctx)
	st := s.status
	if s.buf != nil {
		st = s.buf.status
	}
	if st == 0 {
		return http.StatusOK
	}
	return uint32(st)
}

// SetStatusCode implements hwhandler.Host; a status outside 200–999 is refused.
func (hwHost) SetStatusCode(ctx context.Context, code uint32) {
	if code < 200 || code > 999 {
		panic(fmt.Errorf("invalid status code %d", code))
	}
	s := hwStateOf(ctx)
	if s.buf != nil {
		s.buf.status = int(code)
		return
	}
	s.status = int(code)
}

// GetResponseHeaderNames implements hwhandler.Host.
func (hwHost) GetResponseHeaderNames(ctx context.Context) []string {
	h := hwStateOf(ctx).w.Header()
	names := make([]string, 0, len(h))
	for k := range h {
		if !strings.HasPrefix(k, http.TrailerPrefix) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// GetResponseHeaderValues implements hwhandler.Host.
func (hwHost) GetResponseHeaderValues(ctx context.Context, name string) []string {
	return hwStateOf(ctx).w.Header().Values(name)
}

// SetResponseHeaderValue implements hwhandler.Host.
func (hwHost) SetResponseHeaderValue(ctx context.Context, name, value string) {
	s := hwStateOf(ctx)
	s.spendHeaderBytes(name, value)
	s.w.Header()[checkedName(name)] = []string{checkedValue(value)}
}

// AddResponseHeaderValue implements hwhandler.Host.
func (hwHost) AddResponseHeaderValue(ctx context.Context, name, value string) {
	s := hwStateOf(ctx)
	s.spendHeaderBytes(name, value)
	h := s.w.Header()
	n := checkedName(name)
	h[n] = append(h[n], checkedValue(value))
}

// RemoveResponseHeader implements hwhandler.Host.
func (hwHost) RemoveResponseHeader(ctx context.Context, name string) {
	s := hwStateOf(ctx)
	s.spendHeaderBytes(name, "")
	delete(s.w.Header(), checkedName(name))
}

// ResponseBodyReader implements hwhandler.Host.
func (hwHost) ResponseBodyReader(ctx context.Context) io.ReadCloser {
	s := hwStateOf(ctx)
	if s.buf != nil {
		return io.NopCloser(bytes.NewReader(s.buf.body.Bytes()))
	}
	return io.NopCloser(bytes.NewReader(s.body.Bytes()))
}

// ResponseBodyWriter implements hwhandler.Host: the guest (re)writes the body.
func (hwHost) ResponseBodyWriter(ctx context.Context) io.Writer {
	s := hwStateOf(ctx)
	if s.buf != nil {
		s.buf.body.Reset()
		s.buf.overflow = false
		return &limitedWriter{&s.buf.body}
	}
	s.body.Reset()
	return &limitedWriter{&s.body}
}

// limitedWriter refuses to grow a body past maxBufferedBody.
type limitedWriter struct{ b *bytes.Buffer }

// Write implements io.Writer.
func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > maxBufferedBody {
		return 0, errors.New("response body too large")
	}
	return w.b.Write(p)
}

// GetResponseTrailerNames implements hwhandler.Host; trailers are not offered.
func (hwHost) GetResponseTrailerNames(context.Context) []string { return nil }

// GetResponseTrailerValues implements hwhandler.Host.
func (hwHost) GetResponseTrailerValues(context.Context, string) []string { return nil }

// SetResponseTrailerValue implements hwhandler.Host.
func (hwHost) SetResponseTrailerValue(context.Context, string, string) {}

// AddResponseTrailerValue implements hwhandler.Host.
func (hwHost) AddResponseTrailerValue(context.Context, string, string) {}

// RemoveResponseTrailer implements hwhandler.Host.
func (hwHost) RemoveResponseTrailer(context.Context, string) {}

// GetSourceAddr implements hwhandler.Host.
func (hwHost) GetSourceAddr(ctx context.Context) string { return hwStateOf(ctx).r.RemoteAddr }

// hwLogger sends an http-wasm guest's log lines to the site's logger.
type hwLogger struct {
	l    *slog.Logger
	file string
}

var hwLevels = map[hwapi.LogLevel]slog.Level{
	hwapi.LogLevelDebug: slog.LevelDebug, hwapi.LogLevelInfo: slog.LevelInfo,
	hwapi.LogLevelWarn: slog.LevelWarn, hwapi.LogLevelError: slog.LevelError,
}

// IsEnabled implements hwapi.Logger.
func (l hwLogger) IsEnabled(level hwapi.LogLevel) bool {
	sl, ok := hwLevels[level]
	return ok && l.l.Enabled(context.Background(), sl)
}

// Log implements hwapi.Logger.
func (l hwLogger) Log(ctx context.Context, level hwapi.LogLevel, msg string) {
	sl, ok := hwLevels[level]
	if !ok {
		return
	}
	if len(msg) > maxLogBytes {
		msg = msg[:maxLogBytes]
	}
	if s, ok := ctx.Value(hwKey{}).(*hwState); ok {
		if r := s.r; r != nil {
			ctx = r.Context() // the request's values for the log handler
			if !l.l.Enabled(ctx, sl) || !guestLogAllowed(ctx, l.l, &s.logs, l.file) {
				return
			}
		} else {
			ctx = context.Background() // a freed state (see free)
		}
	}
	l.l.Log(ctx, sl, "wasm guest: "+strings.ToValidUTF8(msg, "\uFFFD"), "guest", l.file)
}
