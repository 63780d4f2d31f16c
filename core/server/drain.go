package server

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drainListener wraps the raw TCP listener so that a shutdown can first accept every
// connection already queued in the kernel's accept backlog (closing the listener outright
// would reset them) and only then close.
type drainListener struct {
	*net.TCPListener
	draining atomic.Bool
	closed   atomic.Bool
	drained  chan struct{}
	once     sync.Once
}

// Close implements net.Listener; closing twice (drain, then net/http's Shutdown) is not an
// error.
func (d *drainListener) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.TCPListener.Close()
}

func newDrainListener(ln net.Listener) net.Listener {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return ln
	}
	return &drainListener{TCPListener: tl, drained: make(chan struct{})}
}

// Accept implements net.Listener. While draining, the first "would block" (a deadline in the
// past with an empty queue) ends accepting.
func (d *drainListener) Accept() (net.Conn, error) {
	c, err := d.TCPListener.Accept()
	if err != nil && d.draining.Load() {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			d.once.Do(func() { close(d.drained) })
			return nil, net.ErrClosed
		}
	}
	return c, err
}

// drain accepts what is queued (bounded by wait) and closes the listener.
func (d *drainListener) drain(wait time.Duration) {
	d.draining.Store(true)
	_ = d.TCPListener.SetDeadline(time.Now())
	select {
	case <-d.drained:
	case <-time.After(wait):
	}
	_ = d.Close()
}

// connTracker counts connections that were accepted but have not sent a request yet, so a
// shutdown can let them deliver it (net/http's own Shutdown drops a request that arrives
// after shutdown began, even the first one on a fresh connection). A connection counts from
// the moment the kernel hands it over (track wraps the innermost listener), not from
// net/http's StateNew hook: between the two lie the framing guard's accept goroutine, the
// TLS handshake and the Serve loop, and a shutdown that looked in between saw no fresh
// connection and dropped its request (found by TestGracefulShutdownUnderLoadCutsNoRequest,
// about 1 run in 10). It stops counting when net/http reports the connection active (its
// request is read) or closed. A connection closed before net/http saw it (the listener
// closed under the guard) stays counted; waitFresh's bound covers that.
type connTracker struct {
	seen sync.Map // net.Conn as net/http knows it → struct{}: reported new, not yet active or closed
	n    atomic.Int64
}

// track wraps the innermost listener, so that accepted connections count at once.
func (t *connTracker) track(ln net.Listener) net.Listener { return &trackingListener{ln, t} }

type trackingListener struct {
	net.Listener
	t *connTracker
}

// Accept implements net.Listener.
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.t.n.Add(1)
	}
	return c, err
}

func (t *connTracker) hook(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		t.seen.Store(c, struct{}{})
		return
	}
	if _, ok := t.seen.LoadAndDelete(c); ok {
		t.n.Add(-1)
	}
}

// waitFresh waits until no accepted connection is still waiting for its first request, or
// until max has passed.
func (t *connTracker) waitFresh(max time.Duration) {
	deadline := time.Now().Add(max)
	for t.n.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}
