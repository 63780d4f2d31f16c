package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/h1engine"
)

// HTTP/1 engines (global.http1Engine).
const (
	// EngineConduit serves HTTP/1.x with core/h1engine, from the framing guard's parse.
	EngineConduit = "conduit"
	// EngineStd serves HTTP/1.x with net/http's server.
	EngineStd = "std"
)

// DefaultHTTP1Engine is global.http1Engine when the key is absent and the environment
// variable HTTP1EngineEnv is not set. EngineStd remains the fallback (http1Engine: std).
const DefaultHTTP1Engine = EngineConduit

// HTTP1EngineEnv names the environment variable that, when set, replaces DefaultHTTP1Engine
// for configurations without global.http1Engine; the test matrix runs the HTTP/1 test
// packages once per engine with it.
const HTTP1EngineEnv = "CONDUIT_HTTP1_ENGINE"

// checkHTTP1Engine validates global.http1Engine (or the environment default) and returns
// the engine to use.
func checkHTTP1Engine(v string, d *config.Diagnostics) string {
	if v == "" {
		env := os.Getenv(HTTP1EngineEnv)
		switch env {
		case "":
			return DefaultHTTP1Engine
		case EngineConduit, EngineStd:
			return env
		}
		d.Errorf("global.http1Engine", "the default from the environment variable %s must be conduit or std, got %q", HTTP1EngineEnv, env)
		return DefaultHTTP1Engine
	}
	switch v {
	case EngineConduit, EngineStd:
		return v
	}
	d.Errorf("global.http1Engine", "must be conduit or std, got %q", v)
	return DefaultHTTP1Engine
}

// HTTP1Engine returns the HTTP/1 engine the generation's listeners use.
func (g *Generation) HTTP1Engine() string { return g.http1Engine }

// useEngine reports whether port's HTTP/1 connections are served by core/h1engine: the
// generation asks for it and the guard runs (the engine trusts its framing checks). A port
// with h2c keeps net/http, which recognizes the HTTP/2 preface on a plain connection.
func (s *Server) useEngine(g *Generation, port int) bool {
	if g.http1Engine != EngineConduit || s.opts.DisableFramingGuard {
		return false
	}
	if pt := g.ports[port]; pt != nil && len(pt.sites) > 0 {
		if h2 := pt.sites[0].HTTP2; h2 != nil && h2.H2C && !pt.sites[0].Info.TLS {
			return false
		}
	}
	return true
}

// attachEngine makes l serve HTTP/1 with core/h1engine; srv keeps HTTP/2 over TLS and the
// failed TLS handshakes, which the guard hands over unguarded.
func (l *listener) attachEngine(srv *http.Server) {
	fb := &handoffListener{addr: l.ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	l.fallback = fb
	l.engine = &h1engine.Server{
		Handler:           srv.Handler,
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		IdleTimeout:       srv.IdleTimeout,
		MaxHeaderBytes:    srv.MaxHeaderBytes,
		ErrorLog:          srv.ErrorLog,
		ConnContext:       core.WithConnInfo,
		RequestContext:    core.BeginRequest,
		EndRequestContext: core.EndRequest,
		ConnState:         srv.ConnState,
		Fallback:          fb.deliver,
	}
}

// serveEngine serves l with the engine and its net/http companion.
func (l *listener) serveEngine() error {
	go func() { _ = l.srv.Serve(l.fallback) }()
	return l.engine.Serve(l.ln)
}

// shutdownEngine shuts the engine and its companion down within ctx.
func (l *listener) shutdownEngine(ctx context.Context) error {
	var wg sync.WaitGroup
	var stdErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if stdErr = l.srv.Shutdown(ctx); stdErr != nil {
			_ = l.srv.Close()
		}
	}()
	err := l.engine.Shutdown(ctx)
	if err != nil {
		_ = l.engine.Close()
	}
	wg.Wait()
	if err == nil {
		err = stdErr
	}
	if err != nil {
		return fmt.Errorf("port %d: %w", l.port, err)
	}
	return nil
}

// handoffListener passes the connections the engine does not serve to net/http's Serve.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

// deliver hands c to net/http, or closes it when net/http stopped accepting.
func (h *handoffListener) deliver(c net.Conn) {
	select {
	case h.ch <- c:
	case <-h.done:
		_ = c.Close()
	}
}

// Accept implements net.Listener.
func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (h *handoffListener) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

// Addr implements net.Listener.
func (h *handoffListener) Addr() net.Addr { return h.addr }

// ListenerEngine returns the HTTP/1 engine serving port's listener: EngineConduit,
// EngineStd, or "" when the port has no HTTP listener (none, or raw connections).
func (s *Server) ListenerEngine(port int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.listeners[port]
	switch {
	case !ok || l.conn != nil:
		return ""
	case l.engine != nil:
		return EngineConduit
	}
	return EngineStd
}
