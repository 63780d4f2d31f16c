// Package ipfilter is the site's `ipFilter`: allow and deny lists of IPs and CIDRs checked
// at core.StageIPFilter, before CORS, rate limits and every auth guard, answering 403 (with
// core.Deny's JSON body when the client accepts JSON). It also keeps the runtime deny
// list of the Admin API (POST/DELETE /ip-deny), which survives reloads and applies to every
// site, with or without an ipFilter block.
//
// See docs/rate-limiting.md for the rules (allow wins over deny; which X-Forwarded-For hop
// trustProxy believes).
package ipfilter

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/telemetry"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"ipFilter": Config{}},
		ID:          "http.guards.ipfilter",
		Feature:     "ipfilter",
		Description: "IP allow/deny lists (CIDR) and the Admin API's runtime deny list",
		Stage:       core.StageIPFilter,
		Guard:       true,
		SiteKeys:    []string{"ipFilter"},
		AdminPaths:  []string{"POST /ip-deny", "DELETE /ip-deny", "GET /ip-deny"},
		AdminUnused: "no site has ipFilter",
		AlwaysOn:    true, // the runtime deny list applies to every site
		SiteRoles:   core.RoleMiddleware | core.RoleConnFilter,
		Site:        provision,
	})
}

// Config is the site's ipFilter block.
type Config struct {
	Allow      []string   `json:"allow"`
	Deny       []string   `json:"deny"`
	TrustProxy TrustProxy `json:"trustProxy"`
	DryRun     bool       `json:"dryRun"`
}

// TrustProxy is `trustProxy`: false (default: the TCP peer is the client), true (believe
// X-Forwarded-For when it comes from a private or loopback address), or a list of the
// proxies' CIDRs to believe (nginx's set_real_ip_from, Traefik's trustedIPs).
type TrustProxy struct {
	// Enabled is true for `true` and for a list.
	Enabled bool
	// CIDRs is the list form; nil for `true`.
	CIDRs []string
	// List reports the list form.
	List bool
}

// UnmarshalConfig implements config.Unmarshaler.
func (t *TrustProxy) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	switch v := n.(type) {
	case bool:
		t.Enabled = v
	case []config.Node:
		t.Enabled, t.List = true, true
		config.Decode(v, path, &t.CIDRs, d)
	default:
		d.Errorf(path, "must be true, false or a list of proxy CIDRs, got %s", config.Describe(n))
	}
}

// DefaultTrustedProxies are the proxies `trustProxy: true` believes: loopback, private
// (RFC 1918, RFC 4193), shared (RFC 6598) and link-local addresses.
var DefaultTrustedProxies = []string{
	"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
	"100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10",
}

type filter struct {
	allow, deny prefixList
	trusted     *prefixList // nil: X-Forwarded-For is ignored
	dryRun      bool
	rt          *runtimeDeny
	denied      *telemetry.Metric
	logger      *slog.Logger
	lastLog     atomic.Int64
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*filter)(nil)
	_ core.ConnFilter = (*filter)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	rt := runtimeList(ctx.Shared)
	ctx.Global.Memo("ipfilter.admin", func() any { return &adminAPI{rt: rt} })
	f := &filter{
		rt:     rt,
		denied: ctx.Global.Metrics.Counter("conduit_ip_filter_denied_total", "Requests refused with 403 by the IP filter or the runtime deny list.", "site").With(ctx.Site.Label),
		logger: ctx.Logger,
	}
	var c Config
	if !ctx.Decode("ipFilter", &c) {
		return f // runtime deny list only
	}
	path := ctx.Path("ipFilter")
	parseList(ctx, config.Join(path, "allow"), c.Allow, &f.allow)
	parseList(ctx, config.Join(path, "deny"), c.Deny, &f.deny)
	if c.TrustProxy.Enabled {
		f.trusted = &prefixList{}
		if c.TrustProxy.List {
			parseList(ctx, config.Join(path, "trustProxy"), c.TrustProxy.CIDRs, f.trusted)
			if f.trusted.empty() {
				ctx.Warnf(config.Join(path, "trustProxy"), "is an empty list: X-Forwarded-For is never believed")
			}
		} else {
			for _, s := range DefaultTrustedProxies {
				p, _, _ := ParseCIDR(s)
				f.trusted.add(p)
			}
		}
	}
	if raw, _ := core.RawConnections.Get(ctx); raw && c.TrustProxy.Enabled {
		ctx.Errorf(config.Join(path, "trustProxy"), "has nothing to read on a site that serves raw connections (a tcp site): a raw connection carries no X-Forwarded-For; remove it")
	}
	f.dryRun = c.DryRun
	if !f.allow.empty() && !f.deny.empty() {
		ctx.Warnf(config.Join(path, "deny"), "has no effect alongside allow: addresses outside allow are refused anyway, and allow wins over deny")
	}
	return f
}

func parseList(ctx *core.SiteContext, path string, entries []string, into *prefixList) {
	for i, s := range entries {
		p, hostBits, err := ParseCIDR(s)
		ep := config.Index(path, i)
		if err != nil {
			ctx.Errorf(ep, "%v", err)
			continue
		}
		if hostBits {
			ctx.Warnf(ep, "%q has host bits set; read as %s", s, p)
		}
		into.add(p)
	}
}

// Wrap implements core.Middleware.
func (f *filter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := core.ClientIP(r)
		if f.trusted != nil {
			if f.trusted.contains(ip) {
				// The proxy module extends this peer's Forwarded header instead of
				// replacing it.
				core.SetPeerTrusted(r)
			}
			ip = RealIP(ip, r.Header["X-Forwarded-For"], f.trusted.contains)
			// Later stages (rate limits keyed by IP, per-IP limits, logs) see the real
			// client, not the proxy in front.
			core.SetClientIP(r, ip)
		}
		if f.allowed(ip) {
			next.ServeHTTP(w, r)
			return
		}
		if f.dryRun {
			f.logDenied(ip, "ipFilter would refuse this client (dryRun: let through)")
			next.ServeHTTP(w, r)
			return
		}
		f.denied.Inc()
		core.Deny(w, r, http.StatusForbidden)
	})
}

// AllowConn implements core.ConnFilter: the same rules for a raw connection (a tcp site),
// checked against its TCP peer before any byte is read. trustProxy is refused on such a
// site (core.RawConnections): a raw connection carries no X-Forwarded-For.
func (f *filter) AllowConn(ip netip.Addr) bool {
	if f.allowed(ip) {
		return true
	}
	if f.dryRun {
		f.logDenied(ip, "ipFilter would refuse this connection (dryRun: let through)")
		return true
	}
	f.denied.Inc()
	return false
}

// allowed applies the rules: an address in allow passes (allow wins over every deny list);
// with an allow list nothing else passes; otherwise the static and runtime deny lists
// refuse.
func (f *filter) allowed(ip netip.Addr) bool {
	if f.allow.contains(ip) {
		return true
	}
	if !f.allow.empty() {
		return false
	}
	if f.deny.contains(ip) {
		return false
	}
	if rl := f.rt.cur.Load(); rl != nil && rl.contains(ip) {
		return false
	}
	return true
}

func (f *filter) logDenied(ip netip.Addr, msg string) {
	now := time.Now().UnixNano()
	last := f.lastLog.Load()
	if last != 0 && now-last < int64(10*time.Second) {
		return
	}
	if f.lastLog.CompareAndSwap(last, now) {
		f.logger.Warn(msg, "client", ip.String())
	}
}

// RealIP returns the client address for a request from peer carrying the X-Forwarded-For
// header lines xff. Only a trusted peer's header is believed (nginx's set_real_ip_from);
// the header is then read from the right, skipping trusted proxies, and the first untrusted
// address is the client (nginx's real_ip_recursive on; Traefik's trusted-IP strategy). A
// malformed entry stops the walk at the last good hop; when every hop is trusted, the
// leftmost is the client. IPv4-mapped addresses are unmapped.
func RealIP(peer netip.Addr, xff []string, trusted func(netip.Addr) bool) netip.Addr {
	if len(xff) == 0 || !trusted(peer) {
		return peer
	}
	ip := peer
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for {
			j := strings.LastIndexByte(v, ',')
			part := strings.TrimSpace(v[j+1:])
			if part != "" {
				a, ok := parseHop(part)
				if !ok {
					return ip
				}
				ip = a
				if !trusted(a) {
					return a
				}
			}
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return ip
}

// parseHop parses one X-Forwarded-For entry: an address, optionally with a port
// ("1.2.3.4:5678", "[2001:db8::1]:443") as some proxies write it.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
