package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
)

// attempt sends one try to up. done means the client got its answer; retryable means the
// attempt failed in a way the retry policy covers and nothing was written yet.
func (rt *route) attempt(w http.ResponseWriter, r *http.Request, st *core.RequestState, up *upstream, h http.Header,
	trailers *requestTrailers, body []byte, upgrade bool, upType string, attempt int, last bool) (done, retryable bool) {
	outreq := rt.outboundRequest(r, up, h, trailers, body)
	base := r.Context()
	if st != nil {
		base = st.Base()
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
	deadline := rt.attemptDeadline(st, start)
	var resp *http.Response
	var err error
	if up.h1 != nil && h1Eligible(r.Method, outreq.ContentLength, outreq.Body != nil, upgrade) {
		resp, err = up.h1.roundTrip(r, base, outreq, deadline, start, w)
	} else {
		if _, ok := h["User-Agent"]; !ok {
			// Keep Go's Transport from adding its own User-Agent (the h1Client adds none).
			h["User-Agent"] = emptyValue
		}
		ctx, cancel := transportContext(base, w, up, upgrade, deadline)
		defer cancel() // after the response body has been copied
		resp, err = up.transport.RoundTrip(outreq.WithContext(ctx))
	}
	rt.recordAttempt(r, st, up, resp, err, start, attempt)
	if rec, ok := outreq.Body.(*bodyErrRecorder); ok && clientBodyFault(rec.failure()) {
		// The client's body broke a limit (too large, too slow) while streaming: the client
		// gets the limit's answer, whether the upstream answered early or the attempt was
		// cut short by it.
		if resp != nil {
			resp.Body.Close()
		}
		resp, err = nil, rec.failure()
	}
	return rt.finishAttempt(w, r, up, resp, err, upgrade, upType, last)
}

// outboundRequest builds the upstream request of one attempt: the outbound URL for up, the
// rewritten header h, and the body: the buffered copy when there is one, none for a request
// without a body, otherwise the client's body streamed once through the trailer filter and
// a bodyErrRecorder.
func (rt *route) outboundRequest(r *http.Request, up *upstream, h http.Header, trailers *requestTrailers, body []byte) *http.Request {
	out := &outbound{}
	outURL := &out.url
	rt.upstreamURL(outURL, up, r)
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
	out.req = http.Request{
		Method: r.Method, URL: outURL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: reqBody, ContentLength: contentLength, Host: r.Host, Trailer: outTrailer,
	}
	outreq := &out.req
	if outreq.ContentLength < 0 {
		outreq.ContentLength = -1
	}
	return outreq
}

// outbound is an upstream request and its URL, allocated together.
type outbound struct {
	req http.Request
	url url.URL
}

// attemptDeadline is the earlier of the request's deadline (limits) and the retry policy's
// per-try timeout from start; zero when neither applies.
func (rt *route) attemptDeadline(st *core.RequestState, start time.Time) time.Time {
	var deadline time.Time
	if st != nil {
		deadline = st.RequestDeadline
	}
	if rt.retry != nil && rt.retry.perTry > 0 {
		if d := start.Add(rt.retry.perTry); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	return deadline
}

// transportContext is the context of an attempt on net/http's Transport: 1xx responses
// forwarded (except for an upgrade), the upstream's send timeout, and the attempt deadline.
// The caller calls cancel once the response body has been copied.
func transportContext(base context.Context, w http.ResponseWriter, up *upstream, upgrade bool, deadline time.Time) (ctx context.Context, cancel context.CancelFunc) {
	ctx = base
	if !upgrade {
		ctx = httptrace.WithClientTrace(ctx, earlyHintsTrace(w))
	}
	if up.send > 0 {
		ctx = withSendDeadline(ctx, up.send)
	}
	if deadline.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// recordAttempt accounts for one attempt: the upstream's response counts and latency,
// passive health and outlier detection, the request state's upstream fields (for logs) and
// the site's attempt observers (metrics, traces).
func (rt *route) recordAttempt(r *http.Request, st *core.RequestState, up *upstream, resp *http.Response, err error, start time.Time, attempt int) {
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
}

// finishAttempt decides what an attempt's outcome means: a failure or 5xx the retry policy
// covers is discarded for another try (unless this is the last), any other failure is
// answered as an upstream error, a 101 switches protocols, and any other response is copied
// to the client.
func (rt *route) finishAttempt(w http.ResponseWriter, r *http.Request, up *upstream, resp *http.Response, err error, upgrade bool, upType string, last bool) (done, retryable bool) {
	if err != nil {
		cond := classify(err)
		if !last && rt.retry.covers(cond) && r.Context().Err() == nil && !clientBodyFault(err) {
			rt.metrics.retry(cond)
			return false, true
		}
		if status := rt.upstreamError(w, r, err); status >= 500 {
			rt.logFailure(r, up, status, err)
		}
		return true, false
	}
	status := resp.StatusCode
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
