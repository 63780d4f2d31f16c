// Package health serves the site health endpoint (/__health__ by default), which answers
// before every guard. It is on for every site unless `healthCheck: false`.
package health

import (
	"net/http"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ID:          "http.handlers.health",
		Feature:     "health",
		Description: "site health endpoint (/__health__)",
		SiteKeys:    []string{"healthCheck"},
		AlwaysOn:    true,
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
	var o struct {
		Path             string `json:"path"`
		IncludeUpstreams bool   `json:"includeUpstreams"`
	}
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
	path string
}

var okBody = []byte(`{"status":"ok"}`)

func provision(ctx *core.SiteContext) (core.SiteInstance, error) {
	cfg := Config{Enabled: true}
	ctx.Decode("healthCheck", &cfg)
	if !cfg.Enabled {
		return nil, nil
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.IncludeUpstreams {
		ctx.Warnf(ctx.Path("healthCheck.includeUpstreams"), "upstream health is not implemented in this build yet; the endpoint reports only the site status")
	}
	return &instance{path: cfg.Path}, nil
}

// Endpoints implements core.EndpointProvider.
func (i *instance) Endpoints() []core.Endpoint {
	return []core.Endpoint{{Path: i.path, Handler: http.HandlerFunc(serve)}}
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
