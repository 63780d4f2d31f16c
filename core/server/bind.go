package server

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// parseBind checks a site's `bind` value, an IP address literal (IPv6 with or without
// brackets, with a zone for link-local addresses), and returns its canonical form: the
// spelling that decides whether two sites of a port agree. "" means every interface.
func parseBind(v, path string, d *config.Diagnostics) string {
	if v == "" {
		return ""
	}
	s := v
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		d.Errorf(path, "must be an IP address such as 127.0.0.1 or ::1 (the port is the site's port key)")
		return ""
	}
	return ip.String()
}

// bindName describes a bind value in messages.
func bindName(b string) string {
	if b == "" {
		return "every interface"
	}
	return b
}

// checkBinds requires every site of a port, and every TLS site that names the same
// tls.httpRedirectPort, to use the same bind: one listener serves them all.
func (g *Generation) checkBinds(d *config.Diagnostics) {
	for _, pt := range g.ports {
		first := pt.sites[0]
		for _, s := range pt.sites[1:] {
			if s.bind != first.bind {
				d.Errorf(config.Join(s.Info.Path, "bind"), "is %s but %s binds port %d to %s; every site of a port must use the same bind",
					bindName(s.bind), siteName(first), pt.port, bindName(first.bind))
			}
		}
	}
	firstByPort := map[int]*Site{}
	for _, s := range g.Sites {
		if s.TLS == nil || s.TLS.HTTPRedirectPort == 0 {
			continue
		}
		p := int(s.TLS.HTTPRedirectPort)
		first, seen := firstByPort[p]
		if !seen {
			firstByPort[p] = s
			continue
		}
		if s.bind != first.bind {
			d.Errorf(config.Join(s.Info.Path, "bind"), "is %s but %s, which also redirects from port %d, binds to %s; sites sharing a tls.httpRedirectPort must use the same bind",
				bindName(s.bind), siteName(first), p, bindName(first.bind))
		}
	}
}

// portBind returns the bind of a site port's listener.
func (g *Generation) portBind(port int) string {
	if pt := g.ports[port]; pt != nil {
		return pt.sites[0].bind
	}
	return ""
}

// redirectBind returns the bind of a tls.httpRedirectPort listener: that of the first TLS
// site that names the port.
func (g *Generation) redirectBind(port int) string {
	for _, s := range g.Sites {
		if s.TLS != nil && int(s.TLS.HTTPRedirectPort) == port {
			return s.bind
		}
	}
	return ""
}

// coldBindChanges lists the listeners whose bind changed between old and g (a restart is
// needed to move a listener).
func coldBindChanges(old, g *Generation) []string {
	var out []string
	for port, npt := range g.ports {
		if _, ok := old.ports[port]; ok && old.portBind(port) != g.portBind(port) {
			out = append(out, config.Join(npt.sites[0].Info.Path, "bind"))
		}
	}
	for _, port := range g.redirectPorts() {
		if ob, nb := old.redirectBind(port), g.redirectBind(port); ob != nb {
			out = append(out, fmt.Sprintf("tls.httpRedirectPort %d bind %s → %s", port, bindName(ob), bindName(nb)))
		}
	}
	return out
}
