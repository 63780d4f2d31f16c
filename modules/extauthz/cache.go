package extauthz

import (
	"crypto/sha256"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
)

// CacheTTLKey is the field of a CheckResponse's dynamic_metadata by which a service says
// how long (milliseconds, a number) its decision may be reused; 0 forbids reuse.
const CacheTTLKey = "conduit_cache_ttl_ms"

// decisionCache keeps the service's decisions for identical CheckRequests. Identical means
// every field Conduit sends except the request time, the request ID (field and
// x-request-id header) and the client's source port; a decision is reused only until its
// TTL ends. It holds at most max entries.
type decisionCache struct {
	ttl       time.Duration // configured; 0: only when the service gives a TTL
	max       int
	mu        sync.Mutex
	m         map[[sha256.Size]byte]cached
	lastSweep time.Time
}

type cached struct {
	resp    *authv3.CheckResponse
	expires time.Time
}

// cacheKey is the SHA-256 of the deterministic encoding of a copy of req without the fields
// that differ between identical requests.
func cacheKey(req *authv3.CheckRequest) ([sha256.Size]byte, bool) {
	c := proto.Clone(req).(*authv3.CheckRequest)
	a := c.GetAttributes()
	if a.GetRequest() != nil {
		a.Request.Time = nil
		if h := a.Request.GetHttp(); h != nil {
			h.Id = ""
			delete(h.Headers, "x-request-id")
		}
	}
	if s := a.GetSource().GetAddress().GetSocketAddress(); s != nil {
		s.PortSpecifier = nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256(b), true
}

// get returns a live decision for key.
func (c *decisionCache) get(key [sha256.Size]byte, now time.Time) *authv3.CheckResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil
	}
	if !now.Before(e.expires) {
		delete(c.m, key)
		return nil
	}
	return e.resp
}

// put keeps an allow or deny decision for its TTL: the service's, else the configured one.
// Errors (error_response) are never kept.
func (c *decisionCache) put(key [sha256.Size]byte, resp *authv3.CheckResponse, now time.Time) {
	if resp.GetErrorResponse() != nil {
		return
	}
	ttl := c.ttl
	if v, ok := resp.GetDynamicMetadata().GetFields()[CacheTTLKey]; ok {
		ms := v.GetNumberValue()
		if ms <= 0 {
			return
		}
		ttl = time.Duration(min(ms, float64(maxCacheTTL/time.Millisecond))) * time.Millisecond
	}
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max && now.Sub(c.lastSweep) >= time.Second {
		c.lastSweep = now // a full cache is swept at most once a second
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
	}
	if len(c.m) >= c.max {
		return // full of live decisions: this one is asked again next time
	}
	c.m[key] = cached{resp: resp, expires: now.Add(ttl)}
}

// maxCacheTTL caps any TTL, the service's included.
const maxCacheTTL = time.Hour
