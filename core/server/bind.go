package server

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
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

// ParseBindFlag splits the value of `conduit --bind`: a host ("127.0.0.1", "::1",
// "[::1]") or a host and port ("127.0.0.1:9000", "[::1]:9000", ":9000"). port is 0 without
// one.
func ParseBindFlag(v string) (host string, port int, err error) {
	h, p, splitErr := net.SplitHostPort(v)
	if splitErr != nil {
		// No port: a bare host, an IPv6 literal with or without brackets.
		return strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"), 0, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strings.Trim(p, "0123456789") != "" {
		return "", 0, fmt.Errorf("--bind %q: the port must be from 1 to 65535", v)
	}
	return h, n, nil
}

// overridePort gives every site without a bind key the port port (from `--bind host:port`),
// on a copy of sites. Those sites must share one port today: moving several listeners to one
// port would merge sites the file keeps apart, so that is an error naming the ports.
func overridePort(sites []map[string]config.Node, port int, d *config.Diagnostics) []map[string]config.Node {
	if port == 0 {
		return sites
	}
	var ports []string
	for _, raw := range sites {
		if _, bound := raw["bind"]; bound {
			continue
		}
		p := fmt.Sprint(raw["port"])
		if _, ok := raw["port"]; !ok {
			p = "80"
			if _, tls := raw["tls"]; tls {
				p = "443"
			}
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) > 1 {
		d.Errorf("sites", "--bind with port %d moves the listener of the sites without a bind key, but they listen on ports %s; give the other sites a bind key or leave the port out of --bind",
			port, strings.Join(ports, ", "))
		return sites
	}
	out := make([]map[string]config.Node, len(sites))
	for i, raw := range sites {
		if _, bound := raw["bind"]; bound {
			out[i] = raw
			continue
		}
		c := make(map[string]config.Node, len(raw)+1)
		for k, v := range raw {
			c[k] = v
		}
		c["port"] = float64(port)
		out[i] = c
	}
	return out
}
