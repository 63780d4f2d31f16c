package core

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUploadTooSlow is returned by request bodies that stall for longer than
// global.clientBodyTimeoutMs or arrive slower than limits.minUploadRateBytesPerSec;
// handlers answer it with 408 (or close the connection when the response has started).
var ErrUploadTooSlow = errors.New("request body arrived too slowly")

// maxDeadlineSlack bounds how late a body deadline may fire: the connection's read
// deadline is moved at most once per slack (one second, or a quarter of a shorter
// timeout), not on every read.
const maxDeadlineSlack = time.Second

// readDeadliner is the part of http.ResponseController a body guard needs.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// GuardedBody enforces the client body timeouts on a request body: a read that waits for
// longer than the body timeout, or a body that falls behind the minimum upload rate (a leaky
// bucket with one second of burst), fails with ErrUploadTooSlow. It works with the
// connection's read deadline (HTTP/1 connection, HTTP/2 stream), which it moves only when
// the deadline it set is about to be too early, so a fast upload costs a clock read per Read
// and a deadline change per second.
type GuardedBody struct {
	io.ReadCloser
	rd      readDeadliner
	timeout time.Duration
	minRate float64 // bytes per second; 0: off
	slack   time.Duration
	start   time.Time
	n       int64
	set     time.Time   // the read deadline this body set; zero when none is set
	ended   atomic.Bool // the handler returned: the connection may serve another request
	// mu is held while the body moves the connection's read deadline and while End marks
	// the end, so that no deadline is set once End returned: net/http's HTTP/2 response
	// writer panics when used after its handler finished, and an upstream transport may
	// still be sending the body then.
	mu sync.Mutex
}

// GuardBody wraps r's body (when it has one) so that it enforces timeout between the start
// of a read and its first byte. w is the connection's response writer (or a wrapper that
// unwraps to it). It returns nil when timeout is not positive, r has no body or the
// connection cannot take read deadlines. Call End when the handler returns.
func GuardBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) *GuardedBody {
	if timeout <= 0 {
		return nil
	}
	return guardBody(w, r, timeout)
}

func guardBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) *GuardedBody {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	rd := findReadDeadliner(w)
	if rd == nil {
		return nil
	}
	b := &GuardedBody{ReadCloser: r.Body, rd: rd}
	b.setTimeout(timeout)
	r.Body = b
	return b
}

// SetMinUploadRate makes r's body enforce a minimum upload rate in bytes per second. A body
// that GuardBody wrapped is reused; otherwise the body is guarded now and the returned body
// (nil when r has no body or the connection takes no deadlines) must be ended by the caller
// when its handler returns.
func SetMinUploadRate(w http.ResponseWriter, r *http.Request, bytesPerSec float64) (added *GuardedBody) {
	b, ok := r.Body.(*GuardedBody)
	if !ok {
		if b = guardBody(w, r, 0); b == nil {
			return nil
		}
		added = b
	}
	b.minRate = bytesPerSec
	return added
}

// setTimeout sets the progress timeout and the slack derived from it.
func (b *GuardedBody) setTimeout(d time.Duration) {
	b.timeout = d
	b.slack = maxDeadlineSlack
	if d > 0 && d/4 < b.slack {
		b.slack = d / 4
	}
}

// End marks the end of the handler: later reads (a transport still sending the body) no
// longer touch the connection's deadlines, which then belong to the next request.
func (b *GuardedBody) End() {
	if b != nil {
		b.mu.Lock()
		b.ended.Store(true)
		b.mu.Unlock()
	}
}

// setDeadline moves the connection's read deadline to t unless the handler ended (ok false).
func (b *GuardedBody) setDeadline(t time.Time) (ok bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended.Load() {
		return false, nil
	}
	return true, b.rd.SetReadDeadline(t)
}

// Read implements io.Reader; a missed deadline becomes ErrUploadTooSlow.
func (b *GuardedBody) Read(p []byte) (int, error) {
	if (b.timeout <= 0 && b.minRate <= 0) || b.ended.Load() {
		return b.ReadCloser.Read(p)
	}
	now := time.Now()
	if b.start.IsZero() {
		b.start = now
	}
	if due := b.due(now); b.set.IsZero() || b.set.Before(due) {
		b.set = due.Add(b.slack)
		ok, err := b.setDeadline(b.set)
		if !ok {
			return b.ReadCloser.Read(p) // the handler ended meanwhile
		}
		if err != nil {
			b.timeout, b.minRate = 0, 0 // the connection takes no deadlines: no enforcement
			return b.ReadCloser.Read(p)
		}
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == nil {
		return n, nil
	}
	b.timeout, b.minRate = 0, 0 // the body is over: later reads pass through
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The expired deadline stays: net/http's attempt to drain the rest of the body
		// fails at once and the connection closes.
		return n, ErrUploadTooSlow
	}
	_, _ = b.setDeadline(time.Time{}) // net/http's next read (keep-alive) sets its own
	b.set = time.Time{}
	return n, err
}

// due is the time by which the read that starts at now must have returned a byte.
func (b *GuardedBody) due(now time.Time) time.Time {
	var due time.Time
	if b.timeout > 0 {
		due = now.Add(b.timeout)
	}
	if b.minRate > 0 {
		byRate := b.start.Add(time.Second + time.Duration(float64(b.n+1)/b.minRate*float64(time.Second)))
		if due.IsZero() || byRate.Before(due) {
			due = byRate
		}
	}
	return due
}

// findReadDeadliner unwraps w (as http.ResponseController does) to the writer that can set
// the connection's read deadline.
func findReadDeadliner(w http.ResponseWriter) readDeadliner {
	for w != nil {
		if rd, ok := w.(readDeadliner); ok {
			return rd
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// writeDeadliner is the part of http.ResponseController a send guard needs.
type writeDeadliner interface {
	SetWriteDeadline(time.Time) error
}

// sendChunk is the largest piece of a response written under one write deadline.
const sendChunk = 64 << 10

// sendGuard enforces global.clientSendTimeoutMs on one HTTP/2 or HTTP/3 stream (HTTP/1
// connections are guarded by the framing guard's connection, core/h1guard).
type sendGuard struct {
	wd      writeDeadliner
	timeout time.Duration
	slack   time.Duration
	set     time.Time // the stream write deadline last set
}

// GuardSend makes w bound every write on an HTTP/2 or HTTP/3 stream to timeout without
// progress: a client that stops granting flow-control window for that long has its stream
// reset (modules/http3 resets an HTTP/3 stream whose write failed). Large
// writes go out in 64 KiB pieces, each under a deadline at least timeout away, moved at most
// once per second (or a quarter of a shorter timeout). HTTP/1 requests are left alone: their
// connection enforces the same bound. raw is the connection's writer.
func (w *ResponseWriter) GuardSend(r *http.Request, raw http.ResponseWriter, timeout time.Duration) {
	if timeout <= 0 || r.ProtoMajor < 2 {
		return
	}
	for raw != nil {
		if wd, ok := raw.(writeDeadliner); ok {
			w.send = sendGuard{wd: wd, timeout: timeout, slack: min(maxDeadlineSlack, timeout/4)}
			return
		}
		u, ok := raw.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		raw = u.Unwrap()
	}
}

// guardedWrite writes b in pieces, each under a write deadline at least the send timeout
// away.
func (w *ResponseWriter) guardedWrite(b []byte) (int, error) {
	var n int
	for len(b) > 0 {
		k := min(len(b), sendChunk)
		if now := time.Now(); w.send.set.Before(now.Add(w.send.timeout)) {
			w.send.set = now.Add(w.send.timeout + w.send.slack)
			if err := w.send.wd.SetWriteDeadline(w.send.set); err != nil {
				w.send.timeout = 0 // the stream takes no deadlines: no enforcement
			}
		}
		m, err := w.ResponseWriter.Write(b[:k])
		n += m
		w.Bytes += int64(m)
		if err != nil {
			return n, err
		}
		b = b[k:]
	}
	return n, nil
}
