// Package jwtverify verifies JSON Web Tokens for the jwtAuth and consumers modules: HS256/
// 384/512 with a shared secret, and RS*, PS*, ES* and EdDSA with keys from a JWKS URL (or a
// fixed key list), through github.com/golang-jwt/jwt/v5. Each key only verifies the algorithms
// its type allows, so `alg: none` and HS/RS key confusion are rejected; exp is required, exp,
// nbf, iss and aud are checked with a leeway, and tokens over MaxTokenBytes are refused
// before any parsing.
//
// The JWKS cache (fetch on first need, one shared fetch, background refresh, rotation on an
// unknown kid, last good keys kept on failure) is this package's own; see JWKS.
package jwtverify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes bounds a token; a longer one is rejected without parsing.
const MaxTokenBytes = 8 << 10

// DefaultLeeway is the clock-skew allowance for exp, nbf and iat.
const DefaultLeeway = 60 * time.Second

// MinSecretBytes is the secret length below which provisioning warns (RFC 7518 §3.2 asks
// for a key at least as long as the hash output: 32 bytes for HS256).
const MinSecretBytes = 32

// Algorithms a verifier may accept.
var (
	HMACAlgs       = []string{"HS256", "HS384", "HS512"}
	AsymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// Options configure a Verifier. Exactly one of Secret, JWKS and Keys is set.
type Options struct {
	// Secret is the HMAC key (HS256/384/512).
	Secret []byte
	// JWKS is a key set fetched from a URL.
	JWKS *JWKS
	// Keys is a fixed key list (tests, RFC vectors).
	Keys []*Key
	// Audience, when not empty, requires the token's aud to contain one of the values.
	Audience []string
	// Issuer, when not empty, requires iss to equal it.
	Issuer string
	// Leeway is the clock skew allowed (0 means DefaultLeeway; use a negative value for none).
	Leeway time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// ExpirationOptional accepts tokens without exp (the default requires it; docs/auth.md,
	// "jwtAuth").
	ExpirationOptional bool
	// CacheEntries bounds the cache of verified tokens (0: DefaultCacheEntries; negative:
	// no cache). See tokenCache for when a cached token is used.
	CacheEntries int
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	parser *jwt.Parser
	secret []byte
	jwks   *JWKS
	keys   []*Key
	cache  *tokenCache // nil: no cache
	now    func() time.Time
	leeway time.Duration
}

// Errors a token is rejected with (wrapped).
var (
	ErrTooLarge  = errors.New("token too large")
	ErrMalformed = errors.New("token malformed")
	ErrCrit      = errors.New("token has a crit header")
)

// New builds a verifier.
func New(o Options) (*Verifier, error) {
	n := 0
	for _, set := range []bool{o.Secret != nil, o.JWKS != nil, o.Keys != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("exactly one of a secret, a JWKS or a key list is needed")
	}
	v := &Verifier{secret: o.Secret, jwks: o.JWKS, keys: o.Keys}
	var methods []string
	switch {
	case o.Secret != nil:
		if len(o.Secret) == 0 {
			return nil, errors.New("empty secret")
		}
		methods = HMACAlgs
	case o.JWKS != nil:
		methods = AsymmetricAlgs
	default:
		methods = append(append([]string{}, AsymmetricAlgs...), HMACAlgs...)
	}
	leeway := o.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	} else if leeway < 0 {
		leeway = 0
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithLeeway(leeway)}
	if !o.ExpirationOptional {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if len(o.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(o.Audience...))
	}
	if o.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(o.Now))
	}
	v.parser = jwt.NewParser(opts...)
	v.leeway, v.now = leeway, o.Now
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case o.CacheEntries == 0:
		v.cache = newTokenCache(DefaultCacheEntries)
	case o.CacheEntries > 0:
		v.cache = newTokenCache(o.CacheEntries)
	}
	return v, nil
}

// Verify checks token and returns its claims. ctx bounds a JWKS fetch the token may need.
// The returned map may be shared with other requests (verified-token cache): read it only.
func (v *Verifier) Verify(ctx context.Context, token string) (map[string]any, error) {
	if len(token) > MaxTokenBytes {
		return nil, ErrTooLarge
	}
	if token == "" {
		return nil, ErrMalformed
	}
	now := v.now()
	if v.cache != nil {
		if ks, usable := v.cacheKeySet(); usable {
			if claims, ok := v.cache.get(token, now, ks); ok {
				return claims, nil
			}
		}
	}
	claims := jwt.MapClaims{}
	var used *Key
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, ErrCrit
		}
		alg := t.Method.Alg()
		if v.secret != nil {
			return v.secret, nil // the parser already limited alg to HS*
		}
		kid, _ := t.Header["kid"].(string)
		if _, present := t.Header["kid"]; present && kid == "" {
			return nil, fmt.Errorf("%w: kid is not a non-empty string", ErrMalformed)
		}
		var (
			k   *Key
			err error
		)
		if v.jwks != nil {
			k, err = v.jwks.Lookup(ctx, kid, alg)
		} else {
			k, err = Select(v.keys, kid, alg)
		}
		if err != nil {
			return nil, err
		}
		used = k
		return k.Public, nil
	})
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.remember(token, claims, now, used)
	}
	return claims, nil
}

// cacheKeySet is the key set cached entries must have been verified with (nil for a
// secret or fixed keys). For a JWKS it is the current set, and a hit starts the background
// refresh when one is due, as a lookup would: cache hits must not keep a rotated-out key
// alive. usable is false when the keys are missing or too old to trust without a fetch.
func (v *Verifier) cacheKeySet() (ks *keySet, usable bool) {
	if v.jwks == nil {
		return nil, true
	}
	ks = v.jwks.fresh()
	return ks, ks != nil
}

// remember caches a verified token until it expires. A JWKS-verified token is cached only
// when the key that verified it is in the current key set, and the entry is bound to that
// set (a refresh that replaces it invalidates the entry).
func (v *Verifier) remember(token string, claims jwt.MapClaims, now time.Time, used *Key) {
	var ks *keySet
	if v.jwks != nil {
		if ks = v.jwks.cur.Load(); ks == nil || !slices.Contains(ks.keys, used) {
			return
		}
	}
	until := now.Add(maxUnexpiringTTL)
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		until = exp.Add(v.leeway)
	}
	if !now.Before(until) {
		return
	}
	v.cache.put(token, cachedToken{claims: claims, until: until, keys: ks})
}

// VerifySignature checks only the JWS signature of a compact serialization with key (no
// claims: RFC 7520's payloads are not JSON). It enforces the same key/alg fit as Verify.
func VerifySignature(token string, key *Key) error {
	if len(token) > MaxTokenBytes {
		return ErrTooLarge
	}
	return verifyRaw(token, key)
}
