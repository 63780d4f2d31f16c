package jwtverify

import (
	"sync"
	"time"
)

// DefaultCacheEntries is how many verified tokens a Verifier remembers (Envoy's jwt_authn
// has the same kind of cache, default 100 entries; a gateway sees more distinct users).
const DefaultCacheEntries = 1024

// maxUnexpiringTTL bounds how long a token without exp (ExpirationOptional) stays cached.
const maxUnexpiringTTL = 5 * time.Minute

// tokenCache remembers tokens whose signature and claims were verified, so that a client
// sending the same token on every request costs one map lookup instead of a signature
// check (RS256 verification is tens of microseconds). An entry is used only while:
//   - the token has not expired (exp + leeway, checked on every hit), and
//   - the keys it was verified with are still the current ones: a JWKS refresh or rotation
//     that replaces the key set invalidates every entry verified with the old one, so a key
//     removed from the JWKS stops being accepted at the next refresh, as without a cache.
//
// Only verified tokens are stored; a full cache drops an arbitrary entry.
type tokenCache struct {
	max int

	mu sync.RWMutex
	m  map[string]cachedToken
}

type cachedToken struct {
	claims map[string]any
	until  time.Time // exp + leeway, or the unexpiring TTL
	keys   *keySet   // the JWKS key set the token was verified with; nil for fixed keys
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[string]cachedToken)}
}

// get returns the claims of a cached token still valid at now under the key set keys.
func (c *tokenCache) get(token string, now time.Time, keys *keySet) (map[string]any, bool) {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if e.keys != keys || !now.Before(e.until) {
		c.mu.Lock()
		if cur, still := c.m[token]; still && cur.until == e.until && cur.keys == e.keys {
			delete(c.m, token)
		}
		c.mu.Unlock()
		return nil, false
	}
	return e.claims, true
}

// put stores a verified token.
func (c *tokenCache) put(token string, e cachedToken) {
	c.mu.Lock()
	if _, exists := c.m[token]; !exists && len(c.m) >= c.max {
		for k := range c.m { // map iteration order is random: an arbitrary victim
			delete(c.m, k)
			break
		}
	}
	c.m[token] = e
	c.mu.Unlock()
}

// len reports the number of cached tokens (tests).
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
