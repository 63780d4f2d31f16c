package tap

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the broker. A subscriber's queue holds DefaultQueue events; what does not fit is
// dropped and counted, never waited for.
const (
	// DefaultQueue is the number of events a subscriber may have waiting.
	DefaultQueue = 1024
	// MaxSubscribers is the number of taps that may be open at once (process-wide).
	MaxSubscribers = 32
)

// errTooMany is returned by subscribe past MaxSubscribers.
var errTooMany = errors.New("too many tap subscribers")

// Event is one finished request as the tap sees it. It is built only while somebody taps,
// shared by every subscriber that matches, and never changed after it is published.
type Event struct {
	// Time is when the request arrived.
	Time time.Time
	// Site is the label of the site that took the request ("host:port", "*").
	Site string
	// Method, Host, Path and Query are the request line as the client sent it, with the
	// values of credential query parameters replaced (core.RedactQuery).
	Method, Host, Path, Query string
	// Proto is the client's protocol ("HTTP/1.1", "HTTP/2.0", "HTTP/3.0").
	Proto string
	// Status is the response status (200 when the handler wrote nothing).
	Status int
	// Bytes is the response body size.
	Bytes int64
	// Duration is the time from arrival to the end of the response.
	Duration time.Duration
	// Route names the route that matched ("" when none did).
	Route string
	// Upstream is the upstream of the last attempt ("" for local handlers).
	Upstream string
	// UpstreamDuration is the time spent waiting on upstreams.
	UpstreamDuration time.Duration
	// RequestID is the X-Request-ID.
	RequestID string
	// ClientIP is the client address.
	ClientIP string
	// headerNames are the names captured (the union every subscriber asked for at publish
	// time); reqHeaders and respHeaders hold the values at the same index, "" when absent.
	headerNames []string
	reqHeaders  []string
	respHeaders []string
}

// header returns the captured request and response values of name (canonical form).
func (e *Event) header(name string) (req, resp string, ok bool) {
	for i, n := range e.headerNames {
		if n == name {
			return e.reqHeaders[i], e.respHeaders[i], true
		}
	}
	return "", "", false
}

// subscriber is one open tap.
type subscriber struct {
	f       *Filter
	ch      chan *Event
	dropped atomic.Int64  // since the last report
	lost    atomic.Int64  // since the subscription began
	stop    chan struct{} // closed when the process stops serving
}

// snapshot is the immutable subscriber list read on the request path.
type snapshot struct {
	subs    []*subscriber
	headers []string // union of the subscribers' header names
}

// broker fans events out to subscribers. It lives in core.Shared, so subscriptions survive
// reloads: every generation's tap stages publish into the same broker.
type broker struct {
	// active is the number of subscribers: the one atomic load a request pays while nobody
	// taps.
	active atomic.Int32
	snap   atomic.Pointer[snapshot]

	mu    sync.Mutex
	subs  []*subscriber
	queue int // queue length for new subscribers (tests shrink it)

	// live counts the started generations that use the broker; when it falls to zero the
	// process is shutting down and open taps are ended so the Admin API can close.
	live atomic.Int32
}

func newBroker() *broker {
	b := &broker{queue: DefaultQueue}
	b.snap.Store(&snapshot{})
	return b
}

// subscribe adds a subscriber for f.
func (b *broker) subscribe(f *Filter) (*subscriber, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) >= MaxSubscribers {
		return nil, errTooMany
	}
	s := &subscriber{f: f, ch: make(chan *Event, b.queue), stop: make(chan struct{})}
	b.subs = append(b.subs, s)
	b.publishSnapshot()
	return s, nil
}

// unsubscribe removes s (a no-op when it is already gone).
func (b *broker) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.subs {
		if x == s {
			b.subs = append(b.subs[:i:i], b.subs[i+1:]...)
			b.publishSnapshot()
			return
		}
	}
}

// closeAll ends every open tap (the process is stopping).
func (b *broker) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		close(s.stop)
	}
	b.subs = nil
	b.publishSnapshot()
}

// publishSnapshot rebuilds the request path's view; b.mu is held.
func (b *broker) publishSnapshot() {
	sn := &snapshot{subs: append([]*subscriber(nil), b.subs...)}
	for _, s := range b.subs {
		for _, h := range s.f.Headers {
			if !slices.Contains(sn.headers, h) {
				sn.headers = append(sn.headers, h)
			}
		}
	}
	b.snap.Store(sn)
	b.active.Store(int32(len(b.subs)))
}

// subscribers returns the number of open taps.
func (b *broker) subscribers() int { return int(b.active.Load()) }

// capture fills the header values of ev for the current snapshot's header union.
func (sn *snapshot) capture(ev *Event, req, resp http.Header) {
	if len(sn.headers) == 0 {
		return
	}
	ev.headerNames = sn.headers
	ev.reqHeaders = make([]string, len(sn.headers))
	ev.respHeaders = make([]string, len(sn.headers))
	for i, h := range sn.headers {
		ev.reqHeaders[i] = headerValue(req, h)
		ev.respHeaders[i] = headerValue(resp, h)
	}
}

// wantsSite reports whether some tap may want requests of the site labelled label.
func (sn *snapshot) wantsSite(label string) bool {
	for _, s := range sn.subs {
		if len(s.f.Sites) == 0 || s.f.matchSite(label) {
			return true
		}
	}
	return false
}

// publish hands ev to every matching subscriber without ever waiting: a full queue drops
// the event for that subscriber and counts it.
func (sn *snapshot) publish(ev *Event) {
	for _, s := range sn.subs {
		if !s.f.Match(ev) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
			s.lost.Add(1)
		}
	}
}
