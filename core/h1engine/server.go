package h1engine

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close (it is net/http's, so that
// callers treat both engines alike).
var ErrServerClosed = http.ErrServerClosed

// Server serves HTTP/1.x on connections accepted from a listener wrapped by core/h1guard.
// Its fields mirror the http.Server fields Conduit uses; set them before Serve.
type Server struct {
	// Handler answers every request; it must not be nil.
	Handler http.Handler
	// ReadHeaderTimeout bounds the reading of a request head, from its first byte. Zero
	// means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive connection (and for
	// the first one on a new connection). Zero means ReadHeaderTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request head, request line included (plus 4 KiB, as
	// net/http does); longer heads are answered 431. Zero means http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// ConnContext, when set, derives each connection's base context (as
	// http.Server.ConnContext); core.WithConnInfo registers client-gone reports here.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// BaseContext, when set, is the base of every connection's context.
	BaseContext func(net.Listener) context.Context
	// ConnState, when set, is told about each connection's state changes with
	// net/http's states (http.Server.ConnState).
	ConnState func(net.Conn, http.ConnState)
	// Fallback, when set, receives every accepted connection the engine does not serve:
	// a *tls.Conn returned by the guard (ALPN "h2", or a failed handshake). Without it such
	// connections are closed.
	Fallback func(net.Conn)
	// RequestContext, when set, wraps each request's context (cancelled when the handler
	// returns or the client goes away) into the context the request is built with;
	// core/server installs core.BeginRequest, so that the pipeline's request state is the
	// request's context without a second request copy.
	RequestContext func(ctx context.Context) context.Context
	// EndRequestContext, when set, is given what RequestContext returned once the handler
	// has returned and the request's context is cancelled (core.EndRequest).
	EndRequestContext func(ctx context.Context)
	// ErrorLog receives handler panics; nil means the log package's standard logger.
	ErrorLog *log.Logger

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	inShutdown atomic.Bool
	noKeep     atomic.Bool
	watch      *watcher
	watchOnce  sync.Once
}

// SetKeepAlivesEnabled switches keep-alive on or off; off, every connection closes after its
// current response (Connection: close).
func (s *Server) SetKeepAlivesEnabled(v bool) {
	s.noKeep.Store(!v)
	if !v {
		s.closeIdle()
	}
}

func (s *Server) keepAlives() bool { return !s.noKeep.Load() && !s.inShutdown.Load() }

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes + 4096
	}
	return http.DefaultMaxHeaderBytes + 4096
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadHeaderTimeout
}

// Serve accepts connections from ln and serves each on its own goroutine until ln fails or
// the server is shut down (ErrServerClosed).
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(&ln, true) {
		return ErrServerClosed
	}
	defer s.track(&ln, false)
	base := context.Background()
	if s.BaseContext != nil {
		base = s.BaseContext(ln)
	}
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if !isGuarded(nc) {
			if s.Fallback != nil {
				s.Fallback(nc)
			} else {
				_ = nc.Close()
			}
			continue
		}
		c := s.newConn(nc)
		go c.serve(base)
	}
}

func isTemporary(err error) bool {
	te, ok := err.(interface{ Temporary() bool })
	return ok && te.Temporary()
}

func (s *Server) track(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = map[*net.Listener]struct{}{}
		}
		s.listeners[ln] = struct{}{}
		return true
	}
	delete(s.listeners, ln)
	return true
}

func (s *Server) trackConn(c *conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.conns == nil {
			s.conns = map[*conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		return
	}
	delete(s.conns, c)
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for ln := range s.listeners {
		if err := (*ln).Close(); err != nil && first == nil && !errors.Is(err, net.ErrClosed) {
			first = err
		}
	}
	return first
}

// closeIdle closes the connections waiting for a request, and new connections that did
// not send one within 5 seconds (net/http's rule); it reports whether no connection is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	quiescent := true
	for c := range s.conns {
		if !c.closeIfIdle() {
			quiescent = false
		}
	}
	return quiescent
}

// Shutdown closes the listeners, then closes idle connections until none is left: requests
// in flight finish and their connections close after the response. When ctx ends first,
// the remaining connections stay open and ctx's error is returned (Close ends them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.inShutdown.Store(true)
	lnErr := s.closeListeners()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() {
			s.stopWatch()
			return lnErr
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.inShutdown.Store(true)
	err := s.closeListeners()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.rwc.Close()
	}
	s.stopWatch()
	return err
}
