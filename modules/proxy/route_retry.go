package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// This file is the retry policy: which failures a route retries, how many times, its retry
// budget and backoff, and the request bodies that can be replayed.

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

// newRetryPolicy compiles a retry block; perTry is timeout.perTryMs.
func newRetryPolicy(r *RetryConfig, perTry time.Duration) *retryPolicy {
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
	return rp
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
// route's requests in flight. The cap is soft: the check and the attempt it admits are
// not atomic, so concurrent requests can overshoot it by a few.
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

// retriesFor is how many retries r may have: the policy's attempts when r has no body or its
// body was buffered whole (replayBody), none otherwise.
func (rt *route) retriesFor(r *http.Request, body []byte, hasBody, replayable bool) int {
	retries := 0
	if rt.retry != nil && replayable && (body != nil || !hasBody) {
		retries = rt.retry.attempts
		if body == nil && !idempotent(r.Method) && hasBody {
			retries = 0
		}
	}
	return retries
}

// idempotent reports whether method is idempotent (RFC 9110 §9.2.2), so a retry cannot
// repeat a side effect.
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
