package jwtverify

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// Spec is the key part of a `jwtAuth` block, a consumer's `jwt` and `sharedJwt`:
// `secret` (HS256/384/512) or `jwksUrl` (RS*, PS*, ES*, EdDSA), plus audience and issuer.
type Spec struct {
	// Secret is the HMAC secret.
	Secret config.Secret `json:"secret"`
	// JwksURL is the JWK Set URL.
	JwksURL string `json:"jwksUrl"`
	// JwksRefreshSecs is the refresh interval (default 3600, minimum 60).
	JwksRefreshSecs *uint64 `json:"jwksRefreshSecs"`
	// Audience, when set, requires aud to hold one of the values.
	Audience StringList `json:"audience"`
	// Issuer, when set, requires iss to equal it.
	Issuer string `json:"issuer"`
}

// DefaultRefresh is the default JWKS refresh interval.
const DefaultRefresh = 3600 * time.Second

// StringList is a list of strings that may also be written as one string.
type StringList []string

// UnmarshalConfig implements config.Unmarshaler.
func (l *StringList) UnmarshalConfig(n config.Node, path string, d *config.Diagnostics) {
	if s, ok := n.(string); ok {
		*l = StringList{s}
		return
	}
	var list []string
	config.Decode(n, path, &list, d)
	*l = list
}

// Build validates spec (found at path) and returns its verifier, or nil after recording
// errors. JWKS caches are shared per URL and refresh interval through ctx.Shared, so every
// site and every reload that names the same URL uses one cache.
func Build(ctx *core.SiteContext, s Spec, path string) *Verifier {
	secret, jwks := s.Secret.Reveal(), strings.TrimSpace(s.JwksURL)
	switch {
	case secret != "" && jwks != "":
		ctx.Errorf(path, "secret and jwksUrl are mutually exclusive; set one")
		return nil
	case secret == "" && jwks == "":
		ctx.Errorf(path, "needs a key source: secret (HS256/384/512) or jwksUrl (RS*, PS*, ES*, EdDSA)")
		return nil
	}
	for i, a := range s.Audience {
		if a == "" {
			ctx.Errorf(config.Index(path+".audience", i), "must not be empty")
		}
	}
	o := Options{Audience: s.Audience, Issuer: s.Issuer}
	if secret != "" {
		// An unset $VAR placeholder is already an error (config.Secret); no length warning.
		if len(ctx.Diag.Unset(secret)) == 0 && len(secret) < MinSecretBytes {
			ctx.Warnf(path+".secret", "is %d bytes; HS256 needs a random secret of at least %d bytes (RFC 7518 §3.2), a short one can be brute-forced", len(secret), MinSecretBytes)
		}
		if s.JwksRefreshSecs != nil {
			ctx.Warnf(path+".jwksRefreshSecs", "has no effect without jwksUrl")
		}
		o.Secret = []byte(secret)
	} else {
		u, err := url.Parse(jwks)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ctx.Errorf(path+".jwksUrl", "must be an absolute http(s) URL, got %q", jwks)
			return nil
		}
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			ctx.Warnf(path+".jwksUrl", "uses plain http; keys fetched without TLS can be replaced on the way, use https")
		}
		refresh := DefaultRefresh
		if s.JwksRefreshSecs != nil {
			if *s.JwksRefreshSecs < uint64(MinRefresh/time.Second) {
				ctx.Errorf(path+".jwksRefreshSecs", "must be ≥ %d", int(MinRefresh/time.Second))
				return nil
			}
			refresh = time.Duration(min(*s.JwksRefreshSecs, 365*24*3600)) * time.Second
		}
		key := fmt.Sprintf("jwtverify.jwks\x00%s\x00%d", jwks, refresh)
		o.JWKS = core.SharedOf(ctx.Shared, key, func() *JWKS { return NewJWKS(jwks, refresh, nil, nil, ctx.Global.Logger) })
	}
	v, err := New(o)
	if err != nil {
		ctx.Errorf(path, "%v", err)
		return nil
	}
	return v
}

func loopbackHost(h string) bool {
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}
