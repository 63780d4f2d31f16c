package core

import (
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// DefaultAdminPort is the Admin API port that AimsAtAdmin guards when global.admin.bind is
// not set (the documented default).
const DefaultAdminPort = "2019"

// AdminBind returns global.admin.bind, or "" when the Admin API is not configured.
func (c *SiteContext) AdminBind() string {
	if c.Global == nil {
		return ""
	}
	n, ok := c.Global.Section("admin")
	if !ok {
		return ""
	}
	m, ok := n.(map[string]config.Node)
	if !ok {
		return ""
	}
	s, _ := m["bind"].(string)
	return s
}

// AimsAtAdmin reports whether u reaches the Admin API bound at bind: the admin port on a
// loopback address, localhost, an unspecified address (0.0.0.0, [::]) or the bind host
// itself. Without a bind, DefaultAdminPort is guarded. shown is the address to name in a
// diagnostic.
func AimsAtAdmin(u *url.URL, bind string) (shown string, hit bool) {
	adminHost, adminPort := "", DefaultAdminPort
	if bind != "" {
		h, p, err := net.SplitHostPort(bind)
		if err != nil {
			return "", false
		}
		adminHost, adminPort = h, p
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	if port != adminPort {
		return "", false
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	shown = net.JoinHostPort(adminHost, adminPort)
	if adminHost == "" {
		shown = "port " + adminPort
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || host == strings.ToLower(adminHost) {
		return shown, true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsUnspecified() {
			return shown, true
		}
		if a, err := netip.ParseAddr(adminHost); err == nil && a.Unmap() == ip {
			return shown, true
		}
	}
	return "", false
}
