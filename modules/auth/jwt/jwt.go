// Package jwt is the `jwtAuth` guard: a request must carry `Authorization: Bearer <token>`
// with a JWT that verifies (see package jwtverify for the algorithms, the JWKS cache and the
// attacks it rejects). It sits at core.StageJWT; a missing or invalid token answers 401 with
// an RFC 6750 `WWW-Authenticate: Bearer` challenge. A verified token's claims go into the
// request state (core.RequestState.Claims), where `{{ jwt.<claim> }}` templates of
// requestTransform read them, and its `sub` becomes the request's Identity. Requests on
// skipPaths pass untouched: their tokens are never read, so templates stay empty there.
package jwt

import (
	"net/http"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
	"github.com/conduitproxy/conduit/modules/auth/internal/authutil"
	"github.com/conduitproxy/conduit/modules/auth/jwtverify"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"jwtAuth": Config{}},
		ID:          "http.auth.jwt",
		Feature:     "jwt",
		Description: "JWT bearer authentication (HS*, RS*, PS*, ES*, EdDSA; JWKS with caching and rotation)",
		Stage:       core.StageJWT,
		Guard:       true,
		SiteKeys:    []string{"jwtAuth"},
		SiteRoles:   core.RoleMiddleware | core.RoleHeaderInjector | core.RoleStopper,
		Site:        provision,
	})
}

// Config is the site's `jwtAuth` block.
type Config struct {
	// Secret is the HMAC secret (HS256/384/512); exclusive with JwksURL.
	Secret config.Secret `json:"secret"`
	// JwksURL is the JWK Set URL (RS*, PS*, ES*, EdDSA).
	JwksURL string `json:"jwksUrl"`
	// JwksRefreshSecs is the JWKS refresh interval (default 3600, minimum 60).
	JwksRefreshSecs *uint64 `json:"jwksRefreshSecs"`
	// Audience, when set, requires aud to hold one of the values.
	Audience jwtverify.StringList `json:"audience"`
	// Issuer, when set, requires iss to equal it.
	Issuer string `json:"issuer"`
	// SkipPaths are exempt paths.
	SkipPaths []string `json:"skipPaths"`
}

// Spec returns the key part of the block.
func (c *Config) Spec() jwtverify.Spec {
	return jwtverify.Spec{Secret: c.Secret, JwksURL: c.JwksURL, JwksRefreshSecs: c.JwksRefreshSecs, Audience: c.Audience, Issuer: c.Issuer}
}

// Guard is the provisioned jwtAuth stage.
type Guard struct {
	v      *jwtverify.Verifier
	skip   *skippaths.Matcher
	denied *telemetry.Metric
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Guard)(nil)
)

var (
	challengeMissing = []string{`Bearer realm="Conduit"`}
	challengeInvalid = []string{`Bearer realm="Conduit", error="invalid_token"`}
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("jwtAuth", &c) {
		return nil
	}
	p := ctx.Path("jwtAuth")
	g := &Guard{denied: authutil.Denied(ctx, "jwtAuth")}
	g.v = jwtverify.Build(ctx, c.Spec(), p)
	g.skip = skippaths.New(c.SkipPaths, p+".skipPaths", ctx.Diag)
	if g.v == nil {
		return nil
	}
	return g
}

// Wrap implements core.Middleware.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.skip.Match(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := authutil.BearerToken(r)
		if !ok {
			w.Header()["Www-Authenticate"] = challengeMissing
			authutil.Deny(w, r, http.StatusUnauthorized, g.denied)
			return
		}
		claims, err := g.v.Verify(r.Context(), tok)
		if err != nil {
			w.Header()["Www-Authenticate"] = challengeInvalid
			authutil.Deny(w, r, http.StatusUnauthorized, g.denied)
			return
		}
		if st := core.State(r); st != nil {
			st.Claims = claims
			if sub, ok := claims["sub"].(string); ok && st.Identity == "" {
				st.Identity = sub
			}
		}
		next.ServeHTTP(w, r)
	})
}
