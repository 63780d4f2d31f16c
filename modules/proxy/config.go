package proxy

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// Strategies are the load-balancing strategy names of the schema.
var Strategies = []string{"round-robin", "weighted-round-robin", "random", "least-conn",
	"least-response-time", "ip-hash", "consistent-hash", "p2c"}

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
	// Verify checks the upstream certificate (default true; docs/configuration.md, "Decisions
	// where the original is unclear", row upstreamTls.verify).
	Verify     *bool  `json:"verify"`
	ServerName string `json:"serverName"`
}

// RewriteRule is one `rewrite` entry: a regular expression and its replacement ($1..$N).
type RewriteRule struct {
	From string `json:"from" cfg:"required"`
	To   string `json:"to" cfg:"required"`

	re *regexp.Regexp
}

// RouteConfig is a full proxy route object: a path prefix's value under `proxy`, or a
// routes[] entry's `proxy` (docs/proxy.md).
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
	Priority      *uint8         `json:"priority" maximum:"100" doc:"load-shedding priority, 0–100 (default 50)"`
	GroupStrategy string         `json:"groupStrategy"`

	Retry       *RetryConfig       `json:"retry"`
	HealthCheck *HealthCheckConfig `json:"healthCheck"`
	Sticky      *StickyConfig      `json:"sticky"`
	Groups      []*GroupConfig     `json:"groups"`

	// Route-level stages owned by other modules (cache, rateLimit, extAuthz).
	Cache     config.Node `json:"cache"`
	RateLimit config.Node `json:"rateLimit"`
	ExtAuthz  config.Node `json:"extAuthz"`

	// targetPaths are the diagnostic paths of Targets, which depend on the form used.
	targetPaths []string
}

// RetryConfig is a route's `retry` block.
type RetryConfig struct {
	Attempts      *uint32  `json:"attempts" cfg:"required" minimum:"1"`
	Conditions    []string `json:"conditions" cfg:"required"`
	BackoffMs     uint64   `json:"backoffMs"`
	BackoffJitter bool     `json:"backoffJitter"`
	BudgetPercent *float64 `json:"budgetPercent" minimum:"0" maximum:"100"`
}

// HealthCheckConfig is a route's `healthCheck` block: active probes, passive failure
// statuses, slow start and the circuit breaker.
type HealthCheckConfig struct {
	Path                      string   `json:"path"`
	IntervalSecs              *uint64  `json:"intervalSecs" minimum:"1"`
	TimeoutMs                 *uint64  `json:"timeoutMs"`
	UnhealthyThreshold        *uint32  `json:"unhealthyThreshold" minimum:"1"`
	HealthyThreshold          *uint32  `json:"healthyThreshold" minimum:"1"`
	SlowStartSecs             uint64   `json:"slowStartSecs"`
	MaxConnectionsPerUpstream *uint64  `json:"maxConnectionsPerUpstream"`
	PrewarmConnections        *uint8   `json:"prewarmConnections" maximum:"8"`
	UnhealthyStatus           []uint16 `json:"unhealthyStatus"`
	UnhealthyLatencyMs        *uint64  `json:"unhealthyLatencyMs"`
}

// StickyConfig is a route's `sticky` block.
type StickyConfig struct {
	Cookie string         `json:"cookie" cfg:"required"`
	Secret *config.Secret `json:"secret"`
	Strict bool           `json:"strict"`
}

// GroupConfig is one entry of a route's `groups`.
type GroupConfig struct {
	Name     string   `json:"name" cfg:"required"`
	Targets  []Target `json:"targets" cfg:"required"`
	Strategy string   `json:"strategy"`
}

// OutlierConfig is the site's `outlierDetection` block.
type OutlierConfig struct {
	Consecutive5xx       *uint32  `json:"consecutive5xx" minimum:"1" default:"5"`
	BaseEjectionTimeSecs *uint64  `json:"baseEjectionTimeSecs" default:"30"`
	MaxEjectionTimeSecs  *uint64  `json:"maxEjectionTimeSecs" default:"300"`
	MaxEjectionPercent   *float64 `json:"maxEjectionPercent" minimum:"0" maximum:"100" default:"10"`
}

// maxPrewarm bounds healthCheck.prewarmConnections (docs/proxy.md: at most 8, the bound of
// the original Conduit's schema, docs/compatibility.md).
const maxPrewarm = 8

// retryConditions are the values retry.conditions accepts.
var retryConditions = []string{"connection_error", "5xx", "timeout"}

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

// localAddrs are this Conduit's own addresses an upstream URL is checked against.
type localAddrs struct {
	ports     []int  // the site's port: a target there loops
	adminBind string // global.admin.bind, "" without an Admin API
}

// validate checks a decoded route and compiles what it can.
func (rc *RouteConfig) validate(path string, local localAddrs, d *config.Diagnostics) {
	if len(rc.Targets) == 0 && len(rc.Groups) == 0 {
		d.Errorf(config.Join(path, "targets"), "needs at least one upstream URL")
	}
	for i, t := range rc.Targets {
		p := config.Index(config.Join(path, "targets"), i)
		if i < len(rc.targetPaths) {
			p = rc.targetPaths[i]
		}
		checkUpstreamURL(t.URL, p, local, d)
	}
	if rc.Strategy != "" && !slices.Contains(Strategies, rc.Strategy) {
		msg := fmt.Sprintf("unknown strategy %q (one of %s)", rc.Strategy, strings.Join(Strategies, ", "))
		if s := config.Suggest(rc.Strategy, Strategies); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		d.Errorf(config.Join(path, "strategy"), "%s", msg)
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
		checkUpstreamURL(rc.Backup, config.Join(path, "backup"), local, d)
	}
	if rc.Mirror != "" {
		checkUpstreamURL(rc.Mirror, config.Join(path, "mirror"), local, d)
	}
	if rt := rc.Retry; rt != nil {
		p := config.Join(path, "retry")
		if rt.Attempts != nil && *rt.Attempts == 0 {
			d.Errorf(config.Join(p, "attempts"), "must be > 0")
		}
		for i, c := range rt.Conditions {
			if !slices.Contains(retryConditions, c) {
				d.Errorf(config.Index(config.Join(p, "conditions"), i), "unknown condition %q (one of %s)", c, strings.Join(retryConditions, ", "))
			}
		}
		if b := rt.BudgetPercent; b != nil && (*b < 0 || *b > 100) {
			d.Errorf(config.Join(p, "budgetPercent"), "must be between 0 and 100")
		}
	}
	if hc := rc.HealthCheck; hc != nil {
		p := config.Join(path, "healthCheck")
		if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
			d.Errorf(config.Join(p, "path"), "must start with \"/\"")
		}
		if hc.IntervalSecs != nil && *hc.IntervalSecs == 0 {
			d.Errorf(config.Join(p, "intervalSecs"), "must be ≥ 1")
		}
		if hc.UnhealthyThreshold != nil && *hc.UnhealthyThreshold == 0 {
			d.Errorf(config.Join(p, "unhealthyThreshold"), "must be ≥ 1")
		}
		if hc.HealthyThreshold != nil && *hc.HealthyThreshold == 0 {
			d.Errorf(config.Join(p, "healthyThreshold"), "must be ≥ 1")
		}
		for i, st := range hc.UnhealthyStatus {
			if st < 100 || st > 599 {
				d.Errorf(config.Index(config.Join(p, "unhealthyStatus"), i), "must be an HTTP status (100–599)")
			}
		}
		if n := hc.PrewarmConnections; n != nil && *n > maxPrewarm {
			d.Errorf(config.Join(p, "prewarmConnections"), "must be at most %d", maxPrewarm)
		}
		if n := hc.PrewarmConnections; n != nil && *n > 0 && rc.HTTP2 {
			d.Warnf(config.Join(p, "prewarmConnections"), "has no effect with http2: true (HTTP/2 connections are opened on demand)")
		}
	}
	if sk := rc.Sticky; sk != nil && sk.Secret != nil && sk.Secret.Reveal() == "" {
		d.Errorf(config.Join(path, "sticky.secret"), "must not be empty (remove it for unsigned sticky cookies)")
	}
	for i, g := range rc.Groups {
		if g == nil {
			continue
		}
		p := config.Index(config.Join(path, "groups"), i)
		if len(g.Targets) == 0 {
			d.Errorf(config.Join(p, "targets"), "needs at least one upstream URL")
		}
		for j, t := range g.Targets {
			checkUpstreamURL(t.URL, config.Index(config.Join(p, "targets"), j), local, d)
		}
		if g.Strategy != "" && !slices.Contains(Strategies, g.Strategy) {
			d.Errorf(config.Join(p, "strategy"), "unknown strategy %q", g.Strategy)
		}
	}
	if len(rc.Groups) > 0 && len(rc.Targets) > 0 {
		d.Warnf(config.Join(path, "targets"), "ignored because groups is set")
	}
	slow := rc.HealthCheck != nil && rc.HealthCheck.SlowStartSecs > 0
	if slow && (rc.Strategy == "ip-hash" || rc.Strategy == "consistent-hash" || rc.Sticky != nil) {
		d.Warnf(config.Join(path, "healthCheck.slowStartSecs"), "is ignored for hash strategies and sticky routes")
	}
}

// checkUpstreamURL validates an upstream URL: http or https, a host, no user info. A URL
// that reaches this site's own port or the Admin API is warned about.
func checkUpstreamURL(raw, path string, local localAddrs, d *config.Diagnostics) *url.URL {
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
	if isSelf(u, local.ports) {
		d.Warnf(path, "points back at this site's own port %s: requests to it would loop and get 421", u.Port())
	}
	if local.adminBind != "" {
		if shown, hit := core.AimsAtAdmin(u, local.adminBind); hit {
			d.Warnf(path, "points at the Admin API (%s): the site would expose the Admin API to its clients (global.admin.bind)", shown)
		}
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
	SetHeaders    map[string]string `json:"setHeaders" doc:"headers to set: name → value"`
	RemoveHeaders []string          `json:"removeHeaders" doc:"header names to remove"`
}
