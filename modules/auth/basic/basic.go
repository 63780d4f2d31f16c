// Package basic is the `basicAuth` guard: HTTP Basic authentication against a map of users
// whose passwords are plaintext (usually "$ENV") or htpasswd-style hashes (bcrypt $2y$/$2a$/
// $2b$, {SHA}, {SSHA}, Apache $apr1$ MD5, $1$, $5$, $6$). It sits at core.StageBasicAuth,
// after the consumers guard and before the API-key guard. A failure answers 401 with
// `WWW-Authenticate: Basic realm="…"` (unless challenge is false).
package basic

import (
	"net/http"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
	"github.com/conduitproxy/conduit/modules/auth/internal/authutil"
	"github.com/conduitproxy/conduit/modules/auth/internal/creds"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"basicAuth": Config{}},
		ID:          "http.auth.basic",
		Feature:     "basicauth",
		Description: "HTTP Basic authentication (plaintext, bcrypt and htpasswd hashes)",
		Stage:       core.StageBasicAuth,
		Guard:       true,
		SiteKeys:    []string{"basicAuth"},
		SiteRoles:   core.RoleMiddleware | core.RoleHeaderInjector | core.RoleStopper,
		Site:        provision,
	})
}

// Config is the site's `basicAuth` block.
type Config struct {
	// Users maps user names to passwords (plaintext or an htpasswd hash).
	Users map[string]config.Secret `json:"users" cfg:"required"`
	// Realm is the realm of the challenge; default "Conduit".
	Realm *string `json:"realm"`
	// Challenge sends WWW-Authenticate on a 401; default true.
	Challenge *bool `json:"challenge"`
	// SkipPaths are exempt paths.
	SkipPaths []string `json:"skipPaths"`
}

// Guard is the provisioned basicAuth stage.
type Guard struct {
	users     map[string]*creds.Password
	decoy     *creds.Password // checked for unknown users (creds.Decoy)
	challenge []string        // the WWW-Authenticate value, nil when challenge is false
	skip      *skippaths.Matcher
	denied    *telemetry.Metric
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*Guard)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("basicAuth", &c) {
		return nil
	}
	return New(ctx, c, ctx.Path("basicAuth"))
}

// New builds the guard from a decoded block, recording problems at path.
func New(ctx *core.SiteContext, c Config, path string) *Guard {
	g := &Guard{users: make(map[string]*creds.Password, len(c.Users)), denied: authutil.Denied(ctx, "basicAuth")}
	if c.Users != nil && len(c.Users) == 0 {
		ctx.Errorf(path+".users", "must name at least one user")
	}
	for name, pw := range c.Users {
		p := config.Join(path+".users", name)
		if name == "" || strings.ContainsAny(name, ":") {
			ctx.Errorf(p, "a user name must be non-empty and must not contain \":\"")
			continue
		}
		if pw.Reveal() == "" {
			ctx.Errorf(p, "password must not be empty")
			continue
		}
		stored, err := creds.ParsePassword(pw.Reveal())
		if err != nil {
			ctx.Errorf(p, "%v", err)
			continue
		}
		g.users[name] = stored
	}
	passwords := make([]*creds.Password, 0, len(g.users))
	for _, p := range g.users {
		passwords = append(passwords, p)
	}
	g.decoy = creds.Decoy(passwords...)
	realm := "Conduit"
	if c.Realm != nil {
		realm = *c.Realm
		if strings.ContainsAny(realm, "\r\n") {
			ctx.Errorf(path+".realm", "must not contain line breaks")
			realm = "Conduit"
		}
	}
	if c.Challenge == nil || *c.Challenge {
		g.challenge = []string{`Basic realm="` + quoteEscape(realm) + `", charset="UTF-8"`}
	}
	g.skip = skippaths.New(c.SkipPaths, path+".skipPaths", ctx.Diag)
	return g
}

func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// Check reports whether r carries the credentials of a configured user, and which.
func (g *Guard) Check(r *http.Request) (string, bool) {
	user, pass, ok := authutil.BasicCredentials(r)
	if !ok {
		return "", false
	}
	stored, known := g.users[user]
	if !known {
		g.decoy.Match(pass) // an unknown user costs what a wrong password of the costliest user costs
		return "", false
	}
	return user, stored.Match(pass)
}

// Wrap implements core.Middleware.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.skip.Match(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		user, ok := g.Check(r)
		if !ok {
			if g.challenge != nil {
				w.Header()["Www-Authenticate"] = g.challenge
			}
			authutil.Deny(w, r, http.StatusUnauthorized, g.denied)
			return
		}
		if st := core.State(r); st != nil && st.Identity == "" {
			st.Identity = user
		}
		next.ServeHTTP(w, r)
	})
}
