package server

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

// portTable holds the sites of one listener port in file order.
type portTable struct {
	port  int
	sites []*Site
	// packet is the port's core.PacketService, the first site's that has one (packet.go).
	packet core.PacketService
}

// selectSite picks the site for a request that arrived on port with the given Host header
// (already stripped of its port), by these rules (the original's, docs/compatibility.md):
//  1. the first site with this host on this port;
//  2. the first site with this host on any port;
//  3. the first catch-all site on this port;
//  4. the first catch-all site;
//  5. the first site.
//
// It then applies Host validation: a site with a host accepts only that host (or its
// securityHeaders.allowedHosts); a catch-all accepts any. ok is false for a rejected Host.
func (g *Generation) selectSite(port int, host string) (s *Site, ok bool) {
	pt := g.ports[port]
	if pt != nil {
		for _, c := range pt.sites {
			if c.Info.Host != "" && strings.EqualFold(c.Info.Host, host) {
				return c, c.allows(host)
			}
		}
	}
	for _, c := range g.Sites {
		if c.Info.Host != "" && strings.EqualFold(c.Info.Host, host) {
			return c, c.allows(host)
		}
	}
	if pt != nil {
		for _, c := range pt.sites {
			if c.Info.Host == "" {
				return c, c.allows(host)
			}
		}
	}
	for _, c := range g.Sites {
		if c.Info.Host == "" {
			return c, c.allows(host)
		}
	}
	if pt != nil && len(pt.sites) > 0 {
		return pt.sites[0], pt.sites[0].allows(host)
	}
	if len(g.Sites) > 0 {
		return g.Sites[0], g.Sites[0].allows(host)
	}
	return nil, false
}

func (s *Site) allows(host string) bool {
	if s.hostPolicy != nil {
		return s.hostPolicy.AllowHost(host)
	}
	return s.Info.Host == "" || strings.EqualFold(s.Info.Host, host)
}

// enter pins the current generation for a request and counts it in flight; it answers 503
// and returns nil before the first generation is started. Pair it with leave.
func (s *Server) enter(w http.ResponseWriter, r *http.Request) *Generation {
	g := s.current.Load()
	if g == nil {
		core.Error(w, r, http.StatusServiceUnavailable, "starting")
		return nil
	}
	g.acquire()
	s.inflight.Add(1)
	return g
}

// leave ends what enter began.
func (s *Server) leave(g *Generation) {
	s.inflight.Add(-1)
	g.release()
}

// dispatcher is the http.Handler of one listener.
type dispatcher struct {
	srv  *Server
	port int
}

func (d *dispatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := d.srv.enter(w, r)
	if g == nil {
		return
	}
	defer d.srv.leave(g)
	host, nominated, ok := g.canonicalize(w, r)
	if !ok {
		return
	}
	site, ok := g.selectSite(d.port, host)
	if site == nil || !ok {
		badRequest(w, r, "unknown host")
		return
	}
	site.serve(w, r, nominated)
}

func badRequest(w http.ResponseWriter, r *http.Request, reason string) {
	w.Header().Set("Connection", "close")
	core.Error(w, r, http.StatusBadRequest, reason)
}

// checkAdminBind checks global.admin.bind: it must be host:port with a port from 1 to 65535
// (an empty or missing port would listen on a random port no client knows), and a
// non-loopback host (including an empty one, which means every interface) requires a token.
func checkAdminBind(bind string, hasToken bool) error {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return adminBindError("must be host:port, e.g. 127.0.0.1:2019")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
		return adminBindError("must name a port from 1 to 65535, e.g. 127.0.0.1:2019")
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if !hasToken {
		return errNonLoopbackAdmin
	}
	return nil
}

// adminBindError is why global.admin.bind was refused.
type adminBindError string

// Error implements error.
func (e adminBindError) Error() string { return string(e) }

var errNonLoopbackAdmin error = adminBindError("a non-loopback Admin API bind requires global.admin.token")
