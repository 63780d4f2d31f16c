package proxy

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/conduitproxy/conduit/core/config"
)

// Strategies are the load-balancing strategy names of the schema.
var Strategies = []string{"round-robin", "weighted-round-robin", "random", "least-conn",
	"least-response-time", "ip-hash", "consistent-hash", "p2c"}

// implementedStrategies are the strategies this build balances with; the others are
// accepted and fall back to round-robin with a warning.
var implementedStrategies = []string{"round-robin", "weighted-round-robin", "random"}

// Target is one upstream: a URL string or {url, weight}.
type Target struct {
	URL    string `json:"url" cfg:"required"`
	Weight uint32 `json:"weight"`
}

// UnmarshalConfig implements config.Unmarshaler.
func (t *Target) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	if s, ok := n.(string); ok {
		t.URL, t.Weight = s, 1
		return
	}
	if _, ok := n.(map[string]config.Node); !ok {
		d.Errorf(path, "must be a URL string or {url, weight}, got %s", config.Describe(n))
		return
	}
	type plain Target
	p := plain{Weight: 1}
	config.Decode(n, path, &p, d)
	if p.Weight < 1 {
		d.Errorf(config.Join(path, "weight"), "must be ≥ 1")
	}
	*t = Target(p)
}

// Timeouts is a route's `timeout` block, in milliseconds.
type Timeouts struct {
	ConnectMs   *uint64 `json:"connectMs"`
	SendMs      *uint64 `json:"sendMs"`
	ReadMs      *uint64 `json:"readMs"`
	FirstByteMs *uint64 `json:"firstByteMs"`
	PerTryMs    *uint64 `json:"perTryMs"`
}

// Pool is a route's upstream keep-alive pool.
type Pool struct {
	MaxIdle         *uint32 `json:"maxIdle"`
	IdleTimeoutSecs *uint64 `json:"idleTimeoutSecs"`
}

// UpstreamTLS is `upstreamTls`.
type UpstreamTLS struct {
	// Verify checks the upstream certificate (default true; the original's docs table says
	// false, its code and schema say true).
	Verify     *bool  `json:"verify"`
	ServerName string `json:"serverName"`
}

// RewriteRule is one `rewrite` entry: a regular expression and its replacement ($1..$N).
type RewriteRule struct {
	From string `json:"from" cfg:"required"`
	To   string `json:"to" cfg:"required"`

	re *regexp.Regexp
}

// RouteConfig is a full proxy route object (the original's ProxyRouteConfig).
type RouteConfig struct {
	Targets       []Target       `json:"targets"`
	Strategy      string         `json:"strategy"`
	HashKey       string         `json:"hashKey"`
	StripPrefix   bool           `json:"stripPrefix"`
	Rewrite       []*RewriteRule `json:"rewrite"`
	HTTP2         bool           `json:"http2"`
	Timeout       *Timeouts      `json:"timeout"`
	Pool          *Pool          `json:"pool"`
	Websocket     bool           `json:"websocket"`
	UpstreamTLS   *UpstreamTLS   `json:"upstreamTls"`
	Backup        string         `json:"backup"`
	Mirror        string         `json:"mirror"`
	Priority      *uint8         `json:"priority"`
	GroupStrategy string         `json:"groupStrategy"`

	// Reliability keys implemented by the upstream-resilience work; accepted and checked
	// for shape here.
	Retry       config.Node `json:"retry"`
	HealthCheck config.Node `json:"healthCheck"`
	Sticky      config.Node `json:"sticky"`
	Groups      config.Node `json:"groups"`

	// Route-level stages owned by other modules (cache, rateLimit).
	Cache     config.Node `json:"cache"`
	RateLimit config.Node `json:"rateLimit"`

	// targetPaths are the diagnostic paths of Targets, which depend on the form used.
	targetPaths []string
}

// routeObjectKeys are the keys of RouteConfig, used to recognise the `proxy: {targets: …}`
// shorthand.
var routeObjectKeys = config.KnownKeys(&RouteConfig{})

// decodeTarget decodes one proxy-map value or a routes[].proxy value: a URL string, an array
// of URL strings (round-robin), or a route object.
func decodeTarget(n config.Node, path string, d *config.Diagnostics) *RouteConfig {
	switch v := n.(type) {
	case string:
		return &RouteConfig{Targets: []Target{{URL: v, Weight: 1}}, targetPaths: []string{path}}
	case []config.Node:
		rc := &RouteConfig{}
		config.Decode(v, path, &rc.Targets, d)
		for i := range rc.Targets {
			rc.targetPaths = append(rc.targetPaths, config.Index(path, i))
		}
		return rc
	case map[string]config.Node:
		rc := &RouteConfig{}
		config.Decode(v, path, rc, d)
		return rc
	default:
		d.Errorf(path, "must be a URL, an array of URLs or a route object, got %s", config.Describe(n))
		return nil
	}
}

// validate checks a decoded route and compiles what it can.
func (rc *RouteConfig) validate(path string, ports []int, d *config.Diagnostics) {
	if len(rc.Targets) == 0 && rc.Groups == nil {
		d.Errorf(config.Join(path, "targets"), "needs at least one upstream URL")
	}
	for i, t := range rc.Targets {
		p := config.Index(config.Join(path, "targets"), i)
		if i < len(rc.targetPaths) {
			p = rc.targetPaths[i]
		}
		checkUpstreamURL(t.URL, p, ports, d)
	}
	if rc.Strategy != "" && !slices.Contains(Strategies, rc.Strategy) {
		msg := fmt.Sprintf("unknown strategy %q (one of %s)", rc.Strategy, strings.Join(Strategies, ", "))
		if s := config.Suggest(rc.Strategy, Strategies); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		d.Errorf(config.Join(path, "strategy"), "%s", msg)
	} else if rc.Strategy != "" && !slices.Contains(implementedStrategies, rc.Strategy) {
		d.Warnf(config.Join(path, "strategy"), "strategy %q is not implemented in this build yet; round-robin is used", rc.Strategy)
	}
	if rc.GroupStrategy != "" && !slices.Contains(Strategies, rc.GroupStrategy) {
		d.Errorf(config.Join(path, "groupStrategy"), "unknown strategy %q", rc.GroupStrategy)
	}
	if hk := rc.HashKey; hk != "" && hk != "ip" && hk != "url" && !strings.HasPrefix(hk, "header:") {
		d.Errorf(config.Join(path, "hashKey"), "must be \"ip\", \"url\" or \"header:<Name>\"")
	}
	for i, rw := range rc.Rewrite {
		if rw == nil {
			continue
		}
		re, err := regexp.Compile(rw.From)
		if err != nil {
			d.Errorf(config.Join(config.Index(config.Join(path, "rewrite"), i), "from"), "invalid regular expression: %v", err)
			continue
		}
		rw.re = re
	}
	if rc.Priority != nil && *rc.Priority > 100 {
		d.Errorf(config.Join(path, "priority"), "must be between 0 and 100")
	}
	if rc.Backup != "" {
		checkUpstreamURL(rc.Backup, config.Join(path, "backup"), ports, d)
	}
	if rc.Mirror != "" {
		checkUpstreamURL(rc.Mirror, config.Join(path, "mirror"), ports, d)
	}
	for key, n := range map[string]config.Node{"retry": rc.Retry, "healthCheck": rc.HealthCheck, "sticky": rc.Sticky, "groups": rc.Groups} {
		if n != nil {
			d.Warnf(config.Join(path, key), "%s is not implemented in this build yet (upstream resilience); ignored", key)
		}
	}
	if rc.Backup != "" {
		d.Warnf(config.Join(path, "backup"), "backup failover needs health checks, which are not implemented in this build yet; ignored")
	}
	if rc.Mirror != "" {
		d.Warnf(config.Join(path, "mirror"), "traffic mirroring is not implemented in this build yet; ignored")
	}
}

// checkUpstreamURL validates an upstream URL: http or https, a host, no user info.
func checkUpstreamURL(raw, path string, ports []int, d *config.Diagnostics) *url.URL {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		d.Errorf(path, "must be an absolute http:// or https:// URL, got %s", config.Describe(raw))
		return nil
	}
	if u.User != nil {
		d.Errorf(path, "must not contain credentials (use requestTransform to send an Authorization header)")
		return nil
	}
	if u.RawQuery != "" || u.Fragment != "" {
		d.Warnf(path, "the query and fragment of an upstream URL are ignored")
	}
	if isSelf(u, ports) {
		d.Warnf(path, "points back at this site's own port %s: requests to it would loop and get 421", u.Port())
	}
	return u
}

// isSelf reports whether u addresses a local interface on one of the given ports (the
// site's own port: a direct proxy loop). Longer loops through other sites or proxies are
// caught at run time by counting Via hops.
func isSelf(u *url.URL, ports []int) bool {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	host := u.Hostname()
	local := host == "localhost" || host == "0.0.0.0" || host == "::"
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		local = true
	}
	if !local {
		return false
	}
	for _, p := range ports {
		if fmt.Sprint(p) == port {
			return true
		}
	}
	return false
}

// Transform is requestTransform / responseTransform.
type Transform struct {
	SetHeaders    map[string]string `json:"setHeaders"`
	RemoveHeaders []string          `json:"removeHeaders"`
}
