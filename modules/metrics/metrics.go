// Package metrics records the request and upstream metrics of the sites that configure
// `metrics`, and serves the whole telemetry registry (every module's metrics, plus the Go
// runtime and process collectors) in the Prometheus text format at the site's metrics path
// (/__metrics__ by default), optionally behind a bearer token.
//
// Recording sits at core.StageObserve and costs a few atomic operations per request: the
// metric children are looked up once per (method, status) pair in fixed tables shared by
// every site and generation, so no label string is built on the request path.
package metrics

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"metrics": Config{}},
		ID:          "http.observe.metrics",
		Feature:     "metrics",
		Description: "Prometheus metrics endpoint and request/upstream metrics",
		Stage:       core.StageObserve,
		Order:       30, // inside tracing and tap, outside the access log
		SiteKeys:    []string{"metrics"},
		SiteRoles:   core.RoleMiddleware | core.RoleEndpoints | core.RoleAttemptObserver,
		Site:        provision,
	})
}

// DefaultPath is the metrics endpoint's path unless metrics.path overrides it.
const DefaultPath = "/__metrics__"

// Config is the site's `metrics` key: an object {path, token}, or true for the defaults
// (false turns metrics off for the site).
type Config struct {
	Enabled bool
	Path    string
	// Token, when set, requires `Authorization: Bearer <token>` on the endpoint.
	Token *config.Secret
}

// UnmarshalConfig implements config.Unmarshaler.
func (c *Config) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	var o options
	if !config.DecodeToggle(n, path, d, "an object {path, token} or a boolean", &c.Enabled, &o) {
		return
	}
	if o.Path != nil {
		switch p := *o.Path; {
		case p == "":
			d.Errorf(config.Join(path, "path"), "must not be empty")
		case p[0] != '/':
			d.Errorf(config.Join(path, "path"), "must start with \"/\" (got %q)", p)
		case strings.ContainsAny(p, "?# \t"):
			d.Errorf(config.Join(path, "path"), "must be a plain path without query, fragment or spaces")
		}
		c.Path = *o.Path
	}
	if o.Token != nil && o.Token.Reveal() == "" {
		d.Errorf(config.Join(path, "token"), "must not be empty (remove it to disable authentication)")
	}
	c.Token = o.Token
}

// site is one site's metrics instance: the recording middleware, the upstream-attempt
// observer and the endpoint.
type site struct {
	path     string
	token    []byte // nil: no authentication
	rec      *recorder
	endpoint http.Handler
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware       = (*site)(nil)
	_ core.EndpointProvider = (*site)(nil)
	_ core.AttemptObserver  = (*site)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var cfg Config
	ctx.Decode("metrics", &cfg)
	if !cfg.Enabled {
		return nil
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	s := &site{path: cfg.Path, rec: recorderFor(ctx)}
	if cfg.Token != nil && cfg.Token.Reveal() != "" {
		s.token = []byte(cfg.Token.Reveal())
	}
	s.endpoint = s.authorize(exposition(ctx))
	return s
}

// Endpoints implements core.EndpointProvider.
func (s *site) Endpoints() []core.Endpoint {
	return []core.Endpoint{{Path: s.path, Handler: s.endpoint}}
}

// Wrap implements core.Middleware: it records the request metrics of the site.
func (s *site) Wrap(next http.Handler) http.Handler { return s.rec.wrap(next) }

// ObserveAttempt implements core.AttemptObserver: it records the upstream metrics.
func (s *site) ObserveAttempt(r *http.Request, a *core.UpstreamAttempt) { s.rec.attempt(a) }

// authorize checks the bearer token (scheme case-insensitive, constant-time comparison) and
// allows only GET and HEAD.
func (s *site) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.token != nil && !bearerOK(r.Header.Get("Authorization"), s.token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			core.Deny(w, r, http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			core.Error(w, r, http.StatusMethodNotAllowed, "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerOK reports whether an Authorization header value carries the token. The scheme is
// matched case-insensitively; the token comparison takes the same time for every candidate
// of a given length.
func bearerOK(header string, token []byte) bool {
	const scheme = "bearer "
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return false
	}
	got := strings.TrimLeft(header[len(scheme):], " ")
	return subtle.ConstantTimeCompare([]byte(got), token) == 1
}
