// Package apikey is the `apiKey` guard: a request must carry one of the configured keys in
// a header (default X-API-Key) or in the `api_key` query parameter. Keys are compared in
// constant time (SHA-256 digests, every key compared, no early exit). It sits at
// core.StageAPIKey; a missing or wrong key answers 401.
package apikey

import (
	"net/http"
	"net/textproto"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
	"github.com/conduitproxy/conduit/modules/auth/internal/authutil"
	"github.com/conduitproxy/conduit/modules/auth/internal/creds"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"apiKey": Config{}},
		ID:          "http.auth.apikey",
		Feature:     "apikey",
		Description: "API key authentication (header or ?api_key=)",
		Stage:       core.StageAPIKey,
		Guard:       true,
		SiteKeys:    []string{"apiKey"},
		SiteRoles:   core.RoleMiddleware | core.RoleHeaderInjector | core.RoleStopper,
		Site:        provision,
	})
}

// Config is the site's `apiKey` block.
type Config struct {
	// Keys are the accepted keys.
	Keys []config.Secret `json:"keys" cfg:"required"`
	// Header carries the key; default X-API-Key.
	Header *string `json:"header"`
	// SkipPaths are exempt paths.
	SkipPaths []string `json:"skipPaths"`
}

// QueryParam is the query parameter a key is also accepted from.
const QueryParam = "api_key"

// Guard is the provisioned apiKey stage.
type Guard struct {
	keys   creds.KeySet
	header string // canonical header name
	skip   *skippaths.Matcher
	denied *telemetry.Metric
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Guard)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("apiKey", &c) {
		return nil
	}
	p := ctx.Path("apiKey")
	g := &Guard{header: "X-Api-Key", denied: authutil.Denied(ctx, "apiKey")}
	if c.Keys != nil && len(c.Keys) == 0 {
		ctx.Errorf(p+".keys", "must hold at least one key")
	}
	for i, k := range c.Keys {
		if k.Reveal() == "" {
			ctx.Errorf(config.Index(p+".keys", i), "must not be empty")
			continue
		}
		g.keys.Add(k.Reveal())
	}
	if c.Header != nil {
		if !core.IsToken(*c.Header) {
			ctx.Errorf(p+".header", "must be a valid header name, got %q", *c.Header)
		} else {
			g.header = textproto.CanonicalMIMEHeaderKey(*c.Header)
		}
	}
	g.skip = skippaths.New(c.SkipPaths, p+".skipPaths", ctx.Diag)
	return g
}

// Check reports whether r carries an accepted key (header first, then ?api_key=).
func (g *Guard) Check(r *http.Request) bool {
	if vv := r.Header[g.header]; len(vv) > 0 {
		return len(vv[0]) <= authutil.MaxCredentialBytes && g.keys.Index(vv[0]) >= 0
	}
	if v, ok := authutil.QueryParam(r.URL.RawQuery, QueryParam); ok {
		return len(v) <= authutil.MaxCredentialBytes && g.keys.Index(v) >= 0
	}
	return false
}

// Wrap implements core.Middleware.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.skip.Match(r.URL.Path) || g.Check(r) {
			next.ServeHTTP(w, r)
			return
		}
		authutil.Deny(w, r, http.StatusUnauthorized, g.denied)
	})
}
