// Package consumers is the `consumers` guard: it identifies the client as one of a list of
// named consumers and refuses (401) requests it cannot identify. It sits at
// core.StageConsumers, before basicAuth and apiKey, so a consumer match wins.
//
// Identification, over consumers[] in order (the first match wins):
//   - V1: the consumer's apiKey in the apiKeyHeader (default x-api-key), or its basicAuth
//     password with the consumer's username as the Basic user;
//   - V2: a Bearer JWT that verifies with the consumer's own jwt block;
//   - V3: a Bearer JWT that verifies with sharedJwt, whose usernameClaim (default "sub")
//     equals the consumer's username.
//
// The identified consumer's username is injected upstream under idHeader (default
// x-consumer-id) and becomes the request's Identity; its `headers` are injected too; a
// verified JWT's claims feed `{{ jwt.* }}` templates. Client-sent copies of idHeader and of
// every header any consumer injects are removed from every request first (also on
// skipPaths), so a client cannot pose as a consumer. A consumer's rateLimit is enforced by
// the ratelimit module's limiter, keyed by username, shared by every site.
package consumers

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/skippaths"
	"github.com/conduitproxy/conduit/core/telemetry"
	"github.com/conduitproxy/conduit/modules/auth/internal/authutil"
	"github.com/conduitproxy/conduit/modules/auth/internal/creds"
	"github.com/conduitproxy/conduit/modules/auth/jwtverify"
	"github.com/conduitproxy/conduit/modules/ratelimit"
)

func init() {
	core.Register(core.Module{
		ID:          "http.auth.consumers",
		Feature:     "consumers",
		Description: "named API consumers (API key, Basic, per-consumer and shared JWT) with per-consumer headers and rate limits",
		Stage:       core.StageConsumers,
		Guard:       true,
		SiteKeys:    []string{"consumers"},
		SiteRoles:   core.RoleMiddleware | core.RoleHeaderInjector | core.RoleStopper,
		Site:        provision,
		ConfigTypes: map[string]any{"consumers": schemaConfig{}},
	})
}

// Config is the site's `consumers` block.
type Config struct {
	// IDHeader carries the identified username upstream; default x-consumer-id.
	IDHeader *string `json:"idHeader"`
	// APIKeyHeader carries API keys; default x-api-key.
	APIKeyHeader *string `json:"apiKeyHeader"`
	// SkipPaths are exempt paths.
	SkipPaths []string `json:"skipPaths"`
	// SharedJWT identifies consumers by a claim of a token verified with shared keys (V3).
	SharedJWT *SharedJWT `json:"sharedJwt"`
	// Consumers are evaluated in order.
	Consumers []Consumer `json:"consumers"`
}

// JWT is a consumer's own token verification (V2).
type JWT struct {
	Secret          config.Secret        `json:"secret"`
	JwksURL         string               `json:"jwksUrl"`
	JwksRefreshSecs *uint64              `json:"jwksRefreshSecs"`
	Audience        jwtverify.StringList `json:"audience"`
	Issuer          string               `json:"issuer"`
}

func (j *JWT) spec() jwtverify.Spec {
	return jwtverify.Spec{Secret: j.Secret, JwksURL: j.JwksURL, JwksRefreshSecs: j.JwksRefreshSecs, Audience: j.Audience, Issuer: j.Issuer}
}

// SharedJWT is `sharedJwt`.
type SharedJWT struct {
	JWT
	// UsernameClaim names the claim matched against usernames; default "sub".
	UsernameClaim *string `json:"usernameClaim"`
}

// sharedFlat is SharedJWT as the strict decoder sees it (it does not flatten embedding).
type sharedFlat struct {
	Secret          config.Secret        `json:"secret"`
	JwksURL         string               `json:"jwksUrl"`
	JwksRefreshSecs *uint64              `json:"jwksRefreshSecs"`
	Audience        jwtverify.StringList `json:"audience"`
	Issuer          string               `json:"issuer"`
	UsernameClaim   *string              `json:"usernameClaim"`
}

// UnmarshalConfig implements config.Unmarshaler.
func (s *SharedJWT) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	var f sharedFlat
	config.Decode(n, path, &f, d)
	*s = SharedJWT{JWT: JWT{Secret: f.Secret, JwksURL: f.JwksURL, JwksRefreshSecs: f.JwksRefreshSecs, Audience: f.Audience, Issuer: f.Issuer}, UsernameClaim: f.UsernameClaim}
}

// Basic is a consumer's Basic credential; the user name is the consumer's username.
type Basic struct {
	Password config.Secret `json:"password" cfg:"required"`
}

// Consumer is one entry of consumers[].
type Consumer struct {
	Username  string            `json:"username" cfg:"required"`
	APIKey    config.Secret     `json:"apiKey"`
	BasicAuth *Basic            `json:"basicAuth"`
	JWT       *JWT              `json:"jwt"`
	RateLimit config.Node       `json:"rateLimit"`
	Headers   map[string]string `json:"headers"`
	// AllowedPaths is the consumer's route ACL: when set, the consumer may only reach these
	// paths (exact, or "/prefix/**"); anything else is 403 (docs/auth.md,
	// "Consumer route ACLs"; an addition, see docs/compatibility.md).
	AllowedPaths []string `json:"allowedPaths"`
}

type consumer struct {
	name    string
	nameV   []string // {name}, the idHeader value
	keyIdx  int      // index in the key set, -1 without apiKey
	basic   *creds.Password
	jwt     *jwtverify.Verifier
	headers []header
	limit   *ratelimit.Limiter
	allowed *skippaths.Matcher // nil: every path
}

type header struct {
	name  string
	value []string
}

// Guard is the provisioned consumers stage.
type Guard struct {
	consumers   []*consumer
	byName      map[string]*consumer
	keys        creds.KeySet
	keyOwner    []*consumer // key index → consumer
	idHeader    string
	keyHeader   string
	strip       []string // idHeader and every injected header name
	anyBasic    bool
	decoy       *creds.Password // checked for an unknown basicAuth user (creds.Decoy)
	anyBearer   bool
	shared      *jwtverify.Verifier
	sharedClaim string
	skip        *skippaths.Matcher
	denied      *telemetry.Metric
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware            = (*Guard)(nil)
	_ core.RequestHeaderInjector = (*Guard)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("consumers", &c) {
		return nil
	}
	p := ctx.Path("consumers")
	g := &Guard{idHeader: "X-Consumer-Id", keyHeader: "X-Api-Key", byName: map[string]*consumer{}, denied: authutil.Denied(ctx, "consumers")}
	if c.IDHeader != nil {
		if h, ok := headerName(ctx, *c.IDHeader, p+".idHeader"); ok {
			g.idHeader = h
		}
	}
	if c.APIKeyHeader != nil {
		if h, ok := headerName(ctx, *c.APIKeyHeader, p+".apiKeyHeader"); ok {
			g.keyHeader = h
		}
	}
	g.strip = []string{g.idHeader}
	if c.SharedJWT != nil {
		sp := p + ".sharedJwt"
		g.shared = jwtverify.Build(ctx, c.SharedJWT.spec(), sp)
		g.sharedClaim = "sub"
		if c.SharedJWT.UsernameClaim != nil {
			if *c.SharedJWT.UsernameClaim == "" {
				ctx.Errorf(sp+".usernameClaim", "must not be empty")
			}
			g.sharedClaim = *c.SharedJWT.UsernameClaim
		}
		g.anyBearer = g.anyBearer || g.shared != nil
	}
	if len(c.Consumers) == 0 {
		ctx.Errorf(p+".consumers", "must list at least one consumer")
	}
	for i, cc := range c.Consumers {
		cp := config.Index(p+".consumers", i)
		cons := g.consumer(ctx, cc, cp, c.SharedJWT != nil)
		if cons == nil {
			continue
		}
		g.consumers = append(g.consumers, cons)
	}
	passwords := make([]*creds.Password, 0, len(g.consumers))
	for _, cons := range g.consumers {
		passwords = append(passwords, cons.basic)
	}
	g.decoy = creds.Decoy(passwords...)
	g.skip = skippaths.New(c.SkipPaths, p+".skipPaths", ctx.Diag)
	return g
}

func (g *Guard) consumer(ctx *core.SiteContext, cc Consumer, cp string, shared bool) *consumer {
	if cc.Username == "" {
		// Absent: the decoder recorded "is required". Present but empty: say so.
		if !hasError(ctx.Diag, cp+".username") {
			ctx.Errorf(cp+".username", "must not be empty")
		}
		return nil
	}
	if strings.ContainsAny(cc.Username, "\r\n\x00") {
		ctx.Errorf(cp+".username", "must not contain control characters")
		return nil
	}
	if _, dup := g.byName[cc.Username]; dup {
		ctx.Errorf(cp+".username", "duplicate consumer %q", cc.Username)
		return nil
	}
	cons := &consumer{name: cc.Username, nameV: []string{cc.Username}, keyIdx: -1}
	g.byName[cc.Username] = cons
	creds0 := 0
	if k := cc.APIKey.Reveal(); k != "" {
		if i := g.keys.Index(k); i >= 0 {
			ctx.Errorf(cp+".apiKey", "is also the apiKey of consumer %q; keys must identify one consumer", g.keyOwner[i].name)
		}
		cons.keyIdx = g.keys.Add(k)
		g.keyOwner = append(g.keyOwner, cons)
		creds0++
	}
	if cc.BasicAuth != nil {
		if strings.Contains(cc.Username, ":") {
			ctx.Errorf(cp+".username", "must not contain \":\" when the consumer uses basicAuth")
		}
		pw := cc.BasicAuth.Password.Reveal()
		bp := cp + ".basicAuth.password"
		if pw == "" {
			ctx.Errorf(bp, "must not be empty")
		} else {
			stored, err := creds.ParsePassword(pw)
			if err != nil {
				ctx.Errorf(bp, "%v", err)
			}
			cons.basic = stored
			g.anyBasic = true
		}
		creds0++
	}
	if cc.JWT != nil {
		cons.jwt = jwtverify.Build(ctx, cc.JWT.spec(), cp+".jwt")
		g.anyBearer = g.anyBearer || cons.jwt != nil
		creds0++
	}
	if creds0 == 0 && !shared {
		ctx.Errorf(cp, "consumer %q has no credential (apiKey, basicAuth or jwt) and there is no sharedJwt to identify it", cc.Username)
	}
	for _, name := range config.SortedKeys(toNodes(cc.Headers)) {
		hp := config.Join(cp+".headers", name)
		h, ok := headerName(ctx, name, hp)
		if !ok {
			continue
		}
		v := cc.Headers[name]
		if strings.ContainsAny(v, "\r\n\x00") {
			ctx.Errorf(hp, "value must not contain line breaks")
			continue
		}
		cons.headers = append(cons.headers, header{name: h, value: []string{v}})
		if !slices.Contains(g.strip, h) {
			g.strip = append(g.strip, h)
		}
	}
	if cc.AllowedPaths != nil {
		if len(cc.AllowedPaths) == 0 {
			ctx.Errorf(cp+".allowedPaths", "must list at least one path (remove it to allow every path)")
		}
		cons.allowed = skippaths.New(cc.AllowedPaths, cp+".allowedPaths", ctx.Diag)
	}
	if cc.RateLimit != nil {
		rp := cp + ".rateLimit"
		if m, ok := cc.RateLimit.(map[string]config.Node); ok {
			if _, has := m["keyBy"]; has {
				ctx.Warnf(rp+".keyBy", "has no effect on a consumer rate limit (it is keyed by the username)")
			}
		}
		if l, ok := ratelimit.New(ctx, cc.RateLimit, rp, ratelimit.ScopeConsumer); ok {
			cons.limit = l
		}
	}
	return cons
}

func hasError(d *config.Diagnostics, path string) bool {
	for _, e := range d.Errors() {
		if e.Path == path {
			return true
		}
	}
	return false
}

func toNodes(m map[string]string) map[string]config.Node {
	out := make(map[string]config.Node, len(m))
	for k := range m {
		out[k] = nil
	}
	return out
}

func headerName(ctx *core.SiteContext, s, path string) (string, bool) {
	if s == "" {
		ctx.Errorf(path, "must be a header name")
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		ctx.Errorf(path, "must be a valid header name, got %q", s)
		return "", false
	}
	return textproto.CanonicalMIMEHeaderKey(s), true
}

// identify returns the consumer r identifies as, and the claims of the token that did it.
func (g *Guard) identify(r *http.Request) (*consumer, map[string]any) {
	keyIdx := -1
	if g.keys.Len() > 0 {
		if vv := r.Header[g.keyHeader]; len(vv) > 0 && len(vv[0]) <= authutil.MaxCredentialBytes {
			keyIdx = g.keys.Index(vv[0])
		}
	}
	var (
		user, pass string
		hasBasic   bool
		token      string
		hasBearer  bool
	)
	if g.anyBasic {
		user, pass, hasBasic = authutil.BasicCredentials(r)
	}
	if g.anyBearer {
		token, hasBearer = authutil.BearerToken(r)
	}
	var (
		sharedDone   bool
		sharedClaims map[string]any
		sharedUser   string
	)
	for _, c := range g.consumers {
		if keyIdx >= 0 && c.keyIdx == keyIdx {
			return c, nil
		}
		if hasBasic && c.basic != nil && user == c.name {
			if c.basic.Match(pass) {
				return c, nil
			}
			hasBasic = false // one password check per request
		}
		if hasBearer && c.jwt != nil {
			if claims, err := c.jwt.Verify(r.Context(), token); err == nil {
				return c, claims
			}
		}
		if hasBearer && g.shared != nil {
			if !sharedDone {
				sharedDone = true
				if claims, err := g.shared.Verify(r.Context(), token); err == nil {
					sharedClaims = claims
					sharedUser, _ = claims[g.sharedClaim].(string)
				}
			}
			if sharedUser != "" && sharedUser == c.name {
				return c, sharedClaims
			}
		}
	}
	if hasBasic {
		g.decoy.Match(pass) // an unknown user costs what a wrong password costs
	}
	return nil, nil
}

// InjectedRequestHeaders implements core.RequestHeaderInjector: idHeader and every
// consumer's header names.
func (g *Guard) InjectedRequestHeaders() []string { return g.strip }

// Wrap implements core.Middleware.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range g.strip {
			delete(r.Header, h)
		}
		if g.skip.Match(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		c, claims := g.identify(r)
		if c == nil {
			authutil.Deny(w, r, http.StatusUnauthorized, g.denied)
			return
		}
		if c.allowed != nil && !c.allowed.Match(r.URL.Path) {
			authutil.Deny(w, r, http.StatusForbidden, g.denied)
			return
		}
		if c.limit != nil {
			if d := c.limit.Allow(r, c.name); !d.Allowed {
				ratelimit.Reject(w, r, d)
				return
			}
		}
		r.Header[g.idHeader] = c.nameV
		for _, h := range c.headers {
			r.Header[h.name] = h.value
		}
		if st := core.State(r); st != nil {
			st.Identity = c.name
			if claims != nil {
				st.Claims = claims
			}
		}
		next.ServeHTTP(w, r)
	})
}
