package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// A site whose instance is a core.ConnHandler serves raw connections: its port gets a
// connServer instead of an http.Server. This file holds what that takes: the roles found
// while a site is built, the checks (the site's other keys, its port to itself) and the
// accept loop with its shutdown.

// connRoles is what a site's instances contribute to serving raw connections.
type connRoles struct {
	handler core.ConnHandler
	// module is the module of handler, named in messages.
	module *core.Module
	// filters decide whether a connection is served at all.
	filters []core.ConnFilter
	// roles are the modules whose instance plays a connection role on the site.
	roles []*core.Module
}

// noteConnRoles records the connection roles inst (the instance of m) plays on s.
func (s *Site) noteConnRoles(m *core.Module, inst core.SiteInstance, d *config.Diagnostics) {
	role := false
	if h, ok := inst.(core.ConnHandler); ok {
		if s.conn.handler != nil {
			d.Errorf(s.moduleKeyPath(m), "cannot be combined with %s: both serve the raw connections of the port", s.conn.module.Feature)
		} else {
			s.conn.handler, s.conn.module = h, m
		}
		role = true
	}
	if f, ok := inst.(core.ConnFilter); ok {
		s.conn.filters = append(s.conn.filters, f)
		role = true
	}
	if _, ok := inst.(core.CertificateSource); ok {
		role = true
	}
	if role {
		s.conn.roles = append(s.conn.roles, m)
	}
}

// moduleKeyPath returns the path of the first of m's keys the site has.
func (s *Site) moduleKeyPath(m *core.Module) string {
	for _, k := range m.SiteKeys {
		if _, ok := s.keys[k]; ok {
			return config.Join(s.Info.Path, k)
		}
	}
	return s.Info.Path
}

// checkRawSite reports the keys of a raw-connection site that would configure HTTP: core
// keys other than host, bind, port and tls (and tls.httpRedirectPort), and keys of modules
// whose instance plays no connection role. Keys of modules not compiled in were reported
// already.
func (s *Site) checkRawSite(sc *siteCore, d *config.Diagnostics) {
	if s.conn.handler == nil {
		return
	}
	feature := s.conn.module.Feature
	for _, k := range config.SortedKeys(s.keys) {
		switch {
		case k == "host" || k == "bind" || k == "port" || k == "tls":
			continue
		case slices.Contains(coreSiteKeys, k): // http2, routes: every other core key is HTTP's
			d.Errorf(config.Join(s.Info.Path, k), "cannot be combined with %s: a %s site serves raw connections, not HTTP", feature, feature)
			continue
		}
		m, ok := core.ModuleForSiteKey(k)
		if !ok {
			continue
		}
		found := false
		for _, r := range s.conn.roles {
			if r == m {
				found = true
				break
			}
		}
		if !found {
			d.Errorf(config.Join(s.Info.Path, k), "cannot be combined with %s: a %s site serves raw connections, not HTTP", feature, feature)
		}
	}
	if sc.TLS != nil && sc.TLS.HTTPRedirectPort != 0 {
		d.Errorf(config.Join(s.Info.Path, "tls.httpRedirectPort"), "cannot be combined with %s: a %s site serves raw connections, not HTTP", feature, feature)
	}
}

// raw reports whether the port's site serves raw connections.
func (pt *portTable) raw() bool {
	return pt != nil && len(pt.sites) > 0 && pt.sites[0].conn.handler != nil
}

// checkRawPorts requires a raw-connection site to have its port to itself, and no
// tls.httpRedirectPort to name its port.
func (g *Generation) checkRawPorts(d *config.Diagnostics) {
	for port, pt := range g.ports {
		var owner *Site
		for _, s := range pt.sites {
			if s.conn.handler != nil {
				owner = s
				break
			}
		}
		if owner == nil {
			continue
		}
		for _, s := range pt.sites {
			if s != owner {
				d.Errorf(config.Join(s.Info.Path, "port"), "port %d is the %s port of %s; a %s site has its port to itself (use another port)",
					port, owner.conn.module.Feature, siteName(owner), owner.conn.module.Feature)
			}
		}
	}
	for _, s := range g.Sites {
		if s.TLS == nil || s.TLS.HTTPRedirectPort == 0 {
			continue
		}
		if pt := g.ports[int(s.TLS.HTTPRedirectPort)]; pt.raw() {
			d.Errorf(config.Join(s.Info.Path, "tls.httpRedirectPort"), "port %d is the %s port of %s", s.TLS.HTTPRedirectPort, pt.sites[0].conn.module.Feature, siteName(pt.sites[0]))
		}
	}
}

// coldRawChanges lists the ports that switch between raw connections and HTTP.
func coldRawChanges(old, g *Generation) []string {
	var out []string
	for port, npt := range g.ports {
		if opt, ok := old.ports[port]; ok && opt.raw() != npt.raw() {
			out = append(out, fmt.Sprintf("%s.port %d switches between raw connections and HTTP", npt.sites[0].Info.Path, port))
		}
	}
	return out
}

// handshakeTimeout bounds the TLS handshake of a raw connection.
const handshakeTimeout = DefaultReadHeaderTimeout

// connServer serves the raw connections of one port: each accepted connection is filtered,
// admitted (core.ConnAdmitter), gets its TLS handshake when the port is a TLS port, and goes
// to the ConnHandler of the port's site in the generation current at that moment, which it
// keeps until it ends.
type connServer struct {
	srv     *Server
	port    int
	tls     *tls.Config // nil for a plain port
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	stopped bool
}

// openConnListener opens the listener of a raw-connection port.
func (s *Server) openConnListener(g *Generation, port int) (*listener, error) {
	ln, err := s.listen(g.portBind(port), port)
	if err != nil {
		return nil, err
	}
	ln = newDrainListener(ln)
	cs := &connServer{srv: s, port: port, conns: map[net.Conn]struct{}{}}
	cs.ctx, cs.cancel = context.WithCancel(context.Background())
	if first := g.ports[port].sites[0]; first.Info.TLS {
		tc, err := s.tlsConfig(port, first, false)
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		cs.tls = tc
	}
	return &listener{port: port, ln: ln, base: ln, conn: cs}, nil
}

// serve accepts connections until the listener closes.
func (cs *connServer) serve(ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil // a drain ended
			}
			// Out of file descriptors and the like: wait as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			cs.srv.log.Warn("accept failed", "port", cs.port, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !cs.add(c) {
			_ = c.Close()
			continue
		}
		go cs.handle(c)
	}
}

// add tracks c; it reports false once shutdown closed the connections.
func (cs *connServer) add(c net.Conn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.stopped {
		return false
	}
	cs.conns[c] = struct{}{}
	return true
}

func (cs *connServer) remove(c net.Conn) {
	cs.mu.Lock()
	delete(cs.conns, c)
	cs.mu.Unlock()
}

// handle serves one connection on the current generation.
func (cs *connServer) handle(c net.Conn) {
	defer cs.remove(c)
	g := cs.srv.current.Load()
	pt := (*portTable)(nil)
	if g != nil {
		pt = g.ports[cs.port]
	}
	if !pt.raw() {
		_ = c.Close()
		return
	}
	g.acquire()
	defer g.release()
	site := pt.sites[0]
	if len(site.conn.filters) > 0 {
		ta, ok := c.RemoteAddr().(*net.TCPAddr)
		if !ok {
			_ = c.Close() // no address to filter on: fail closed
			return
		}
		// No zone: netip.Prefix.Contains never matches a zoned address, deny lists included.
		addr := ta.AddrPort().Addr().Unmap().WithZone("")
		for _, f := range site.conn.filters {
			if !f.AllowConn(addr) {
				_ = c.Close()
				return
			}
		}
	}
	if a, ok := site.conn.handler.(core.ConnAdmitter); ok {
		release, ok := a.AdmitConn(c)
		if !ok {
			_ = c.Close()
			return
		}
		defer release()
	}
	if cs.tls != nil {
		tc := tls.Server(c, cs.tls)
		ctx, cancel := context.WithTimeout(cs.ctx, handshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			cs.srv.log.Debug("TLS handshake failed", "port", cs.port, "remote", c.RemoteAddr().String(), "err", err)
			_ = c.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol != "" {
			// A raw port negotiates no protocol but a certificate source's own (an ACME
			// TLS-ALPN-01 challenge), which ends with the handshake.
			_ = c.Close()
			return
		}
		c = tc
	}
	site.conn.handler.ServeConn(cs.ctx, c)
}

// shutdown stops accepting (the connections already queued in the kernel are accepted and
// served), waits for the connections to end until ctx is done, then cancels the handlers'
// context and closes what is left.
func (cs *connServer) shutdown(ctx context.Context, base net.Listener) error {
	if d, ok := base.(*drainListener); ok {
		d.drain(time.Second)
	} else {
		_ = base.Close()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	defer cs.cancel()
	for {
		cs.mu.Lock()
		n := len(cs.conns)
		if n == 0 || ctx.Err() != nil {
			cs.stopped = true
			for c := range cs.conns {
				_ = c.Close()
			}
		}
		cs.mu.Unlock()
		if n == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("closed %d connections at the shutdown timeout: %w", n, ctx.Err())
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}
