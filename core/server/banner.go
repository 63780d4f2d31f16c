package server

import (
	"net"
	"slices"
	"strings"
)

// LogStarted logs, once g is serving, where each listener is reachable as a URL (https for a
// port of TLS sites, http otherwise, with the bound address), and each site with the modules
// active on it: a few lines a newcomer can read on a terminal, fields a JSON log can index.
func (s *Server) LogStarted(g *Generation, configPath string) {
	s.log.Info("conduit started", "config", configPath, "sites", len(g.Sites), "routes", g.Routes, "warnings", len(g.Warnings))
	for _, port := range append(g.Ports(), g.redirectPorts()...) {
		addr := s.Addr(port)
		if addr == nil {
			continue
		}
		url := listenURL(g.portTLS(port), addr)
		if g.ports[port].raw() {
			url = rawURL(g.portTLS(port), addr)
		}
		s.log.Info("listening on "+url, "bind", addr.String(), "sites", g.portSites(port))
	}
	for _, site := range g.Sites {
		s.log.Info("site "+site.Info.Label, "port", site.Info.Port, "tls", site.TLS != nil, "modules", strings.Join(site.features, ","))
	}
}

// listenURL is the URL of a listener bound to addr; an unspecified address (every
// interface) shows as bound, e.g. http://[::]:8080.
func listenURL(tls bool, addr net.Addr) string {
	if tls {
		return "https://" + addr.String()
	}
	return "http://" + addr.String()
}

// rawURL is the address of a listener of raw connections (a tcp site): tls://… when it
// terminates TLS, tcp://… otherwise.
func rawURL(tls bool, addr net.Addr) string {
	if tls {
		return "tls://" + addr.String()
	}
	return "tcp://" + addr.String()
}

// portTLS reports whether port serves TLS sites.
func (g *Generation) portTLS(port int) bool {
	pt := g.ports[port]
	return pt != nil && len(pt.sites) > 0 && pt.sites[0].TLS != nil
}

// portSites names the sites a listener serves: its own sites, or for a redirect port the TLS
// sites redirected from it.
func (g *Generation) portSites(port int) string {
	var names []string
	if pt := g.ports[port]; pt != nil {
		for _, s := range pt.sites {
			names = append(names, s.Info.Label)
		}
	} else {
		for _, s := range g.Sites {
			if s.TLS != nil && int(s.TLS.HTTPRedirectPort) == port {
				names = append(names, "redirect to "+s.Info.Label)
			}
		}
	}
	return strings.Join(slices.Compact(names), ", ")
}
