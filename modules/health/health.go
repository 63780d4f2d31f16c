// Package health serves the site health endpoint (/__health__ by default), which answers
// before every guard. It is on for every site unless `healthCheck: false`.
package health

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"healthCheck": Config{}},
		ID:          "http.handlers.health",
		Feature:     "health",
		Description: "site health endpoint (/__health__)",
		SiteKeys:    []string{"healthCheck"},
		AlwaysOn:    true,
		SiteRoles:   core.RoleEndpoints,
		Site:        provision,
	})
}

// DefaultPath is the health endpoint's path unless healthCheck.path overrides it.
const DefaultPath = "/__health__"

// Config is the site's healthCheck key: a boolean or {path, includeUpstreams}.
type Config struct {
	Enabled          bool
	Path             string `json:"path"`
	IncludeUpstreams bool   `json:"includeUpstreams"`
}

// UnmarshalConfig implements config.Unmarshaler.
func (c *Config) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	var o options
	if !config.DecodeToggle(n, path, d, "true, false or {path, includeUpstreams}", &c.Enabled, &o) {
		return
	}
	if o.Path != "" {
		if o.Path[0] != '/' {
			d.Errorf(config.Join(path, "path"), "must start with \"/\"")
		}
		c.Path = o.Path
	}
	c.IncludeUpstreams = o.IncludeUpstreams
}

type instance struct {
	path      string
	upstreams *core.SiteUpstreams // nil unless includeUpstreams
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.EndpointProvider = (*instance)(nil)
)

var okBody = []byte(`{"status":"ok"}`)

func provision(ctx *core.SiteContext) core.SiteInstance {
	cfg := Config{Enabled: true}
	ctx.Decode("healthCheck", &cfg)
	if !cfg.Enabled {
		return nil
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	inst := &instance{path: cfg.Path}
	if cfg.IncludeUpstreams {
		inst.upstreams = ctx.Upstreams()
	}
	return inst
}

// Endpoints implements core.EndpointProvider.
func (i *instance) Endpoints() []core.Endpoint {
	if i.upstreams != nil {
		return []core.Endpoint{{Path: i.path, Handler: http.HandlerFunc(i.serveUpstreams)}}
	}
	return []core.Endpoint{{Path: i.path, Handler: http.HandlerFunc(serve)}}
}

// upstreamsBody is the answer with includeUpstreams.
type upstreamsBody struct {
	Status string `json:"status"` // "ok", or "unhealthy" when a route has no available upstream
	// Upstreams lists each upstream of the site once.
	Upstreams []core.UpstreamHealth `json:"upstreams"`
	// Routes lists each proxy route with its upstreams.
	Routes []routeBody `json:"routes"`
}

type routeBody struct {
	Route string `json:"route"`
	// Healthy: at least one upstream of the route is healthy and not ejected.
	Healthy   bool                  `json:"healthy"`
	Upstreams []core.UpstreamHealth `json:"upstreams"`
}

// serveUpstreams answers with the health of every upstream of the site, per route, and 503
// when a route has no upstream that can take traffic.
func (i *instance) serveUpstreams(w http.ResponseWriter, r *http.Request) {
	body := upstreamsBody{Status: "ok", Upstreams: []core.UpstreamHealth{}, Routes: []routeBody{}}
	seen := map[string]bool{}
	for _, rh := range i.upstreams.Routes() {
		ok := rh.Available()
		if !ok {
			body.Status = "unhealthy"
		}
		body.Routes = append(body.Routes, routeBody{Route: rh.Route, Healthy: ok, Upstreams: rh.Upstreams})
		for _, u := range rh.Upstreams {
			if !seen[u.URL] {
				seen[u.URL] = true
				body.Upstreams = append(body.Upstreams, u)
			}
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		core.Error(w, r, http.StatusInternalServerError, "")
		return
	}
	status := http.StatusOK
	if body.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{"15"}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(okBody)
	}
}
