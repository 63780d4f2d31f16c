package core

// UpstreamHealth is one upstream of a route as the site health endpoint reports it (with
// `healthCheck.includeUpstreams`); the field names are those of docs/observability.md.
type UpstreamHealth struct {
	// URL is the upstream as configured.
	URL string `json:"url"`
	// Healthy is the active health view: true until probes fail.
	Healthy bool `json:"healthy"`
	// LatencyMs is the latest response time observed, in milliseconds (0 before any).
	LatencyMs float64 `json:"latency_ms"`
	// Ejected reports that passive outlier detection keeps the upstream out of rotation.
	Ejected bool `json:"ejected"`
	// Consecutive5xx counts the failed responses in a row (passive health).
	Consecutive5xx int64 `json:"consecutive_5xx"`
	// Backup marks the route's backup upstream.
	Backup bool `json:"backup,omitempty"`
}

// Available reports whether the upstream can take traffic: healthy and not ejected.
func (u UpstreamHealth) Available() bool { return u.Healthy && !u.Ejected }

// RouteHealth is one proxy route of a site and the health of its upstreams.
type RouteHealth struct {
	// Route names the route: its proxy-map prefix or "routes[N]".
	Route string `json:"route"`
	// Upstreams are the route's upstreams, the backup last.
	Upstreams []UpstreamHealth `json:"upstreams"`
}

// Available reports whether at least one upstream of the route can take traffic.
func (r RouteHealth) Available() bool {
	for _, u := range r.Upstreams {
		if u.Available() {
			return true
		}
	}
	return false
}

// UpstreamReporter is implemented by a module that sends a site's requests to upstreams
// (the proxy), so that the health endpoint can list their health.
type UpstreamReporter interface {
	RouteHealth() []RouteHealth
}

// SiteUpstreams is where modules that have upstreams publish them for one site of one
// generation. Reporters are added while the site is provisioned and only read once the
// generation serves, so it needs no lock.
type SiteUpstreams struct {
	reporters []UpstreamReporter
}

// Add registers a reporter (at provisioning time).
func (s *SiteUpstreams) Add(r UpstreamReporter) { s.reporters = append(s.reporters, r) }

// Routes returns the health of every route of every reporter.
func (s *SiteUpstreams) Routes() []RouteHealth {
	var out []RouteHealth
	for _, r := range s.reporters {
		out = append(out, r.RouteHealth()...)
	}
	return out
}

// Upstreams returns the site's upstream reporters, shared by every module of the site.
func (c *SiteContext) Upstreams() *SiteUpstreams {
	return MemoOf(c, "core.upstreams", func() *SiteUpstreams { return &SiteUpstreams{} })
}
