package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/h1engine"
	"github.com/conduitproxy/conduit/core/h1guard"
	"github.com/conduitproxy/conduit/core/h2serve"
	"github.com/conduitproxy/conduit/core/telemetry"
)

// Defaults for every listener. They bound slow clients (slowloris) and header sizes; the
// limits module can tighten them per site.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Options configure a Server.
type Options struct {
	// BindHost is the address listeners of sites without a `bind` key bind to; "" means
	// every interface.
	BindHost string
	// BindPort, when not 0, is the port the sites without a `bind` key listen on instead of
	// their `port` key (`--bind host:port`); those sites must then share one port.
	BindPort int
	// Listen opens the listener for a configured port on host (the site's bind, else
	// BindHost). Nil means net.Listen on host:port. Tests use it to map configured ports to
	// ephemeral ones.
	Listen func(host string, port int) (net.Listener, error)
	// ListenPacket opens the UDP socket of a port with a core.PacketService on addr (the
	// address the port's TCP listener bound). Nil means net.ListenPacket. A binary upgrade
	// (core/handoff) uses it, with Listen, to adopt the sockets it was handed.
	ListenPacket func(addr string) (net.PacketConn, error)
	// Logger is the process logger; nil means slog.Default().
	Logger *slog.Logger
	// Source is where the configuration comes from; Reload loads every new generation from
	// it. Nil means the file of the running generation (FileSource of its ConfigPath).
	Source core.ConfigSource
	// DisableFramingGuard turns off the strict HTTP/1.1 framing guard (core/h1guard) that
	// otherwise wraps every listener. Only tests of the guard's absence should set it.
	DisableFramingGuard bool
}

// Server owns the listeners and the current generation.
type Server struct {
	opts    Options
	log     *slog.Logger
	current atomic.Pointer[Generation]
	shared  *core.SharedStore
	metrics *telemetry.Registry

	mu       sync.Mutex
	reloadMu sync.Mutex
	// generations counts the generations made current and started is when the first was
	// (history.go); both are guarded by mu. lastReload is the last reload's outcome.
	generations uint64
	started     time.Time
	lastReload  atomic.Pointer[ReloadResult]
	inflight    atomic.Int64
	listeners   map[int]*listener
	serveErr    chan error
	closed      bool
}

type listener struct {
	port  int
	ln    net.Listener
	base  net.Listener // the raw listener (a *drainListener for TCP)
	srv   *http.Server
	conns *connTracker
	// udp and packet are the port's UDP socket and its server, when a site of the port has
	// a core.PacketService (HTTP/3; packet.go); nil otherwise.
	udp    net.PacketConn
	packet core.PacketServer
	conn   *connServer // instead of srv on a port whose site serves raw connections (conn.go)
	// engine serves HTTP/1 instead of srv when global.http1Engine is conduit (h1serve.go);
	// srv then serves the connections it hands over through fallback (HTTP/2 over TLS).
	engine   *h1engine.Server
	fallback *handoffListener
}

// New returns a server with no generation and no listeners.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{opts: opts, log: log, shared: core.NewSharedStore(), metrics: telemetry.NewRegistry(), listeners: map[int]*listener{}, serveErr: make(chan error, 16)}
}

// Shared returns the store that lives across generations; pass it to Build.
func (s *Server) Shared() core.Shared { return s.shared }

// Metrics returns the process-wide metrics registry; pass it to Build.
func (s *Server) Metrics() *telemetry.Registry { return s.metrics }

// BuildOptions returns build options wired to this server's shared store and metrics.
func (s *Server) BuildOptions() BuildOptions {
	return BuildOptions{Logger: s.log, Shared: s.shared, Metrics: s.metrics, BindPort: s.opts.BindPort}
}

// Current returns the generation serving new requests.
func (s *Server) Current() *Generation { return s.current.Load() }

// Start opens a listener for every port of g, starts g and serves it. It returns once the
// listeners are open; serving errors are reported by Wait.
func (s *Server) Start(g *Generation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.Global.Workers > 0 {
		runtime.GOMAXPROCS(g.Global.Workers)
	}
	if err := g.Start(); err != nil {
		return fmt.Errorf("start modules: %w", err)
	}
	var opened []*listener
	for _, port := range g.Ports() {
		l, err := s.openListener(g, port)
		if err == nil {
			if err = s.openPacket(g, l); err != nil {
				_ = l.ln.Close()
			}
		}
		if err != nil {
			for _, o := range opened {
				_ = o.ln.Close()
				o.closePacket()
			}
			g.Stop(context.Background())
			return err
		}
		opened = append(opened, l)
	}
	for _, port := range g.redirectPorts() {
		l, err := s.openRedirectListener(g, port)
		if err != nil {
			for _, o := range opened {
				_ = o.ln.Close()
				o.closePacket()
			}
			g.Stop(context.Background())
			return err
		}
		opened = append(opened, l)
	}
	s.activate(g)
	s.current.Store(g)
	for _, l := range opened {
		s.listeners[l.port] = l
		go s.serve(l)
		if l.packet != nil {
			go s.servePacket(l)
		}
	}
	return nil
}

func (s *Server) serve(l *listener) {
	var err error
	if l.conn != nil {
		err = l.conn.serve(l.ln)
	} else if l.engine != nil {
		err = l.serveEngine()
	} else {
		err = l.srv.Serve(l.ln)
	}
	if s.isClosed() {
		return
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.serveErr <- fmt.Errorf("listener :%d: %w", l.port, err)
	}
}

// Wait blocks until a listener fails or ctx is done.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case err := <-s.serveErr:
		return err
	case <-ctx.Done():
		return nil
	}
}

// Addr returns the bound address of a configured port's listener.
func (s *Server) Addr(port int) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.listeners[port]; ok {
		return l.ln.Addr()
	}
	return nil
}

// listen opens the listener of port on bind (a site's bind key; "" means Options.BindHost).
func (s *Server) listen(bind string, port int) (net.Listener, error) {
	host := bind
	if host == "" {
		host = s.opts.BindHost
	}
	var ln net.Listener
	var err error
	if s.opts.Listen != nil {
		ln, err = s.opts.Listen(host, port)
	} else {
		ln, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	return ln, nil
}

func (s *Server) newHTTPServer(h http.Handler, conns *connTracker) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
		ConnContext:       core.WithConnInfo,
		ConnState:         conns.hook,
	}
}

// guard wraps ln in the HTTP/1.1 framing guard, which also enforces sendTimeout
// (global.clientSendTimeoutMs) on every write to a client.
func (s *Server) guard(ln net.Listener, sendTimeout time.Duration) net.Listener {
	if s.opts.DisableFramingGuard {
		return ln
	}
	// After TLS: the guard must see plaintext. HTTP/2 connections pass through it.
	return h1guard.Wrap(ln, h1guard.Options{
		MaxHeaderBytes: DefaultMaxHeaderBytes,
		WriteTimeout:   sendTimeout,
		OnReject: func(remote net.Addr, err *h1guard.Error) {
			s.log.Debug("refused malformed request", "remote", remote.String(), "status", err.Status, "reason", err.Reason)
		},
	})
}

// openRedirectListener opens a tls.httpRedirectPort listener: plain HTTP/1.1 answering ACME
// HTTP-01 challenges and redirecting everything else to HTTPS.
func (s *Server) openRedirectListener(g *Generation, port int) (*listener, error) {
	ln, err := s.listen(g.redirectBind(port), port)
	if err != nil {
		return nil, err
	}
	ln = newDrainListener(ln)
	base := ln
	conns := &connTracker{}
	srv := s.newHTTPServer(&redirector{srv: s, port: port}, conns)
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	srv.Protocols = protos
	l := &listener{port: port, ln: s.guard(conns.track(ln), g.Global.ClientSendTimeout()), base: base, srv: srv, conns: conns}
	if s.useEngine(g, port) {
		l.attachEngine(srv)
	}
	return l, nil
}

func (s *Server) openListener(g *Generation, port int) (*listener, error) {
	if g.ports[port].raw() {
		return s.openConnListener(g, port)
	}
	ln, err := s.listen(g.portBind(port), port)
	if err != nil {
		return nil, err
	}
	ln = newDrainListener(ln)
	base := ln
	conns := &connTracker{}
	ln = conns.track(ln)
	pt := g.ports[port]
	first := pt.sites[0]
	srv := s.newHTTPServer(&dispatcher{srv: s, port: port}, conns)
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	h2 := first.HTTP2
	h2on := h2 == nil || !h2.Disabled
	if first.Info.TLS {
		if h2on {
			protos.SetHTTP2(true)
		}
		tc, err := s.tlsConfig(port, first, h2on)
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		srv.TLSConfig = tc
		ln = tls.NewListener(ln, tc)
	} else if h2 != nil && h2.H2C {
		protos.SetUnencryptedHTTP2(true)
	}
	sendTimeout := g.Global.ClientSendTimeout()
	ln = s.guard(ln, sendTimeout)
	if protos.UnencryptedHTTP2() {
		// net/http reads h2c frames straight from the connection: buffer them (core/h2serve).
		ln = h2serve.WrapListener(ln)
	}
	srv.Protocols = protos
	// HTTP/2 over TLS bypasses the guard: its connection writes get the same bound.
	srv.HTTP2 = &http.HTTP2Config{WriteByteTimeout: sendTimeout}
	if h2 != nil {
		srv.HTTP2.MaxConcurrentStreams = int(h2.MaxConcurrentStreams)
		srv.HTTP2.MaxReceiveBufferPerStream = int(h2.InitialWindowSize)
	}
	l := &listener{port: port, ln: ln, base: base, srv: srv, conns: conns}
	if s.useEngine(g, port) {
		l.attachEngine(srv)
	}
	if protos.HTTP2() || protos.UnencryptedHTTP2() {
		// After attachEngine: the HTTP/1 engine keeps the plain handler.
		srv.Handler = h2serve.Handler(srv.Handler)
	}
	return l, nil
}

// tlsConfig builds the listener's TLS configuration. Each handshake takes the port's
// configuration from the current generation (GetConfigForClient), and the certificate is
// chosen per handshake by SNI, so a reload, a changed certificate file or an ACME renewal
// applies to new handshakes while established connections continue. Versions, ciphers and
// clientAuth are the port's first TLS site's.
func (s *Server) tlsConfig(port int, first *Site, h2 bool) (*tls.Config, error) {
	t := first.TLS
	if t.ClientAuth != nil && t.clientPool == nil {
		pool, err := t.clientCAs()
		if err != nil {
			return nil, err
		}
		t.clientPool = pool
	}
	tc := &tls.Config{MinVersion: t.minVersion, MaxVersion: t.maxVersion, CipherSuites: t.cipherIDs}
	if h2 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	} else {
		tc.NextProtos = []string{"http/1.1"}
	}
	tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		g := s.current.Load()
		if g == nil {
			return nil, errors.New("no configuration")
		}
		return g.handshakeConfig(port, h2)
	}
	return tc, nil
}

// Swap makes g the current generation: new requests use it at once, requests in flight finish
// on the old one, which is stopped when they are done. Cold fields (the set of ports, their
// TLS mode, bind and UDP socket and whether they serve raw connections; the
// tls.httpRedirectPort listeners; global.workers, global.shutdownTimeoutSecs,
// global.clientSendTimeoutMs, global.http1Engine, global.pidFile, global.admin.bind) must
// not change.
func (s *Server) Swap(g *Generation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.current.Load()
	if old != nil {
		if fields := coldChanges(old, g); len(fields) > 0 {
			return &ColdFieldsError{Fields: fields}
		}
	}
	if err := g.Start(); err != nil {
		return fmt.Errorf("start modules: %w", err)
	}
	s.activate(g)
	s.current.Store(g)
	if old != nil {
		old.retire()
		go func() {
			select {
			case <-old.Drained():
			case <-time.After(old.Global.ShutdownTimeout()):
			}
			old.Stop(context.Background())
		}()
	}
	return nil
}

// ColdFieldsError is a reload refused because fields that need a restart changed.
type ColdFieldsError struct {
	Fields []string
}

// Error implements error with the message docs/configuration.md quotes ("reload of cold
// fields").
func (e *ColdFieldsError) Error() string {
	msg := "cold fields changed — restart required: "
	for i, f := range e.Fields {
		if i > 0 {
			msg += ", "
		}
		msg += f
	}
	return msg
}

func coldChanges(old, g *Generation) []string {
	var out []string
	if old.Global.Workers != g.Global.Workers {
		out = append(out, "global.workers")
	}
	if old.Global.ShutdownTimeout() != g.Global.ShutdownTimeout() {
		out = append(out, "global.shutdownTimeoutSecs")
	}
	if old.Global.ClientSendTimeout() != g.Global.ClientSendTimeout() {
		out = append(out, "global.clientSendTimeoutMs")
	}
	if old.http1Engine != g.http1Engine {
		out = append(out, "global.http1Engine")
	}
	ob, nb := "", ""
	if old.Global.Admin != nil {
		ob = old.Global.Admin.Bind
	}
	if g.Global.Admin != nil {
		nb = g.Global.Admin.Bind
	}
	if ob != nb {
		out = append(out, "global.admin.bind")
	}
	for port, npt := range g.ports {
		opt, ok := old.ports[port]
		if !ok {
			out = append(out, npt.sites[0].Info.Path+".port")
			continue
		}
		if opt.sites[0].Info.TLS != npt.sites[0].Info.TLS {
			out = append(out, config.Join(npt.sites[0].Info.Path, "tls"))
		}
	}
	out = append(out, coldBindChanges(old, g)...)
	out = append(out, coldPIDFileChange(old, g)...)
	out = append(out, coldPacketChanges(old, g)...)
	out = append(out, coldRawChanges(old, g)...)
	if or, nr := old.redirectPorts(), g.redirectPorts(); !sameInts(or, nr) {
		out = append(out, fmt.Sprintf("tls.httpRedirectPort listeners %v → %v", or, nr))
	}
	for port, opt := range old.ports {
		if _, ok := g.ports[port]; !ok {
			out = append(out, fmt.Sprintf("port %d removed (%s.port)", port, opt.sites[0].Info.Path))
		}
	}
	return out
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops accepting, lets requests in flight finish within the generation's
// shutdownTimeoutSecs (or ctx), then stops the modules. No request that reached Conduit is
// cut: keep-alive is switched off (each connection closes after its current answer), the
// kernel's accept queue is drained rather than reset, connections that were accepted get to
// send their request, and only then does net/http's Shutdown wait out the rest (and send
// HTTP/2 GOAWAY). A port's UDP server (HTTP/3) is shut down beside its TCP listener: it
// sends GOAWAY and waits for its requests within the same bound.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ls := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	g := s.current.Load()
	timeout := 30 * time.Second
	if g != nil {
		timeout = g.Global.ShutdownTimeout()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if g != nil {
		for _, inst := range g.instances {
			if d, ok := inst.(core.Drainer); ok {
				d.Drain()
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(ls))
	for _, l := range ls {
		if l.packet != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := l.shutdownPacket(ctx); err != nil {
					errs <- err
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.conn != nil {
				if err := l.conn.shutdown(ctx, l.base); err != nil {
					errs <- fmt.Errorf("port %d: %w", l.port, err)
				}
				return
			}
			l.srv.SetKeepAlivesEnabled(false)
			if l.engine != nil {
				l.engine.SetKeepAlivesEnabled(false)
			}
			if d, ok := l.base.(*drainListener); ok {
				d.drain(time.Second)
			}
			l.conns.waitFresh(2 * time.Second)
			if l.engine != nil {
				if err := l.shutdownEngine(ctx); err != nil {
					errs <- err
				}
				return
			}
			if err := l.srv.Shutdown(ctx); err != nil {
				_ = l.srv.Close()
				errs <- fmt.Errorf("port %d: %w", l.port, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if g != nil {
		g.Stop(context.Background())
	}
	var first error
	for err := range errs {
		if first == nil {
			first = err
		}
	}
	return first
}

// LoadAndBuild reads a config file and builds a generation from it.
func LoadAndBuild(ctx context.Context, path string, opts BuildOptions) (*Generation, *config.Diagnostics, error) {
	return LoadSource(ctx, FileSource(path), opts)
}
