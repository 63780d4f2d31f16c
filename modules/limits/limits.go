// Package limits enforces the site's `limits`: request body size (413), header size and
// count (431), the number of requests in flight (503), concurrent requests per client
// address (429), a whole-request deadline (504 from the proxy) and the load level at which
// low-priority routes are shed. It sits at core.StageLimits,
// after the IP filter and CORS and before rate limits and auth.
package limits

import (
	"math"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conduitproxy/conduit/core"
)

func init() {
	core.Register(core.Module{
		ConfigTypes: map[string]any{"limits": Config{}},
		ID:          "http.guards.limits",
		Feature:     "limits",
		Description: "request size and concurrency limits",
		Stage:       core.StageLimits,
		SiteKeys:    []string{"limits"},
		SiteRoles:   core.RoleMiddleware,
		Site:        provision,
		Provides:    []core.SiteValueProvider{core.BodyBufferLimit.Provide(bodyBufferLimit)},
	})
}

// bodyBufferLimit provides core.BodyBufferLimit: limits.maxBodyBufferBytes, unset when the
// site does not set it.
func bodyBufferLimit(ctx *core.SiteContext) (int64, bool) {
	var c Config
	if !ctx.DecodeQuietly("limits", &c) || c.MaxBodyBufferBytes == nil {
		return 0, false
	}
	return int64(min(*c.MaxBodyBufferBytes, 1<<62)), true
}

// Config is the site's `limits` block.
type Config struct {
	MaxBodyBytes             *uint64  `json:"maxBodyBytes"`
	MaxHeaderBytes           *uint64  `json:"maxHeaderBytes"`
	MaxRequestHeaders        *uint32  `json:"maxRequestHeaders"`
	TimeoutSecs              *uint64  `json:"timeoutSecs"`
	MaxInflightRequests      *uint64  `json:"maxInflightRequests"`
	MaxBodyBufferBytes       *uint64  `json:"maxBodyBufferBytes"`
	KeepaliveRequestLimit    *uint32  `json:"keepaliveRequestLimit"`
	PriorityThreshold        *float64 `json:"priorityThreshold"`
	MaxConnectionsPerIP      *uint64  `json:"maxConnectionsPerIp"`
	MinUploadRateBytesPerSec *uint64  `json:"minUploadRateBytesPerSec"`
}

type guard struct {
	maxBody     int64 // -1: unlimited
	maxHeader   int   // 0: unlimited
	maxHeaders  int   // 0: unlimited
	maxInflight int64 // 0: unlimited
	shedAt      int64 // in-flight count from which low-priority routes are shed
	timeout     time.Duration
	keepalive   int64   // requests per connection before it is closed; 0: unlimited
	minRate     float64 // minimum upload rate in bytes/s; 0: off
	perIP       *perIPCounter
	inflight    atomic.Int64
}

// The roles this module's instances play, checked at compile time: a method whose
// signature drifts from the core interface fails the build instead of going unwired.
var (
	_ core.Middleware = (*guard)(nil)
)

func provision(ctx *core.SiteContext) core.SiteInstance {
	var c Config
	if !ctx.Decode("limits", &c) {
		return nil
	}
	p := ctx.Path("limits")
	g := &guard{maxBody: -1}
	if c.MaxBodyBytes != nil {
		g.maxBody = int64(min(*c.MaxBodyBytes, 1<<62))
	}
	if c.MaxHeaderBytes != nil {
		if *c.MaxHeaderBytes == 0 {
			ctx.Errorf(p+".maxHeaderBytes", "must be > 0")
		}
		g.maxHeader = int(min(*c.MaxHeaderBytes, 1<<30))
	}
	if c.MaxRequestHeaders != nil {
		if *c.MaxRequestHeaders == 0 {
			ctx.Errorf(p+".maxRequestHeaders", "must be > 0")
		}
		g.maxHeaders = int(*c.MaxRequestHeaders)
	}
	if c.MaxInflightRequests != nil {
		if *c.MaxInflightRequests < 1 {
			ctx.Errorf(p+".maxInflightRequests", "must be ≥ 1")
		}
		g.maxInflight = int64(min(*c.MaxInflightRequests, 1<<62))
	}
	threshold := 0.8
	if c.PriorityThreshold != nil {
		if *c.PriorityThreshold < 0 || *c.PriorityThreshold > 1 {
			ctx.Errorf(p+".priorityThreshold", "must be between 0 and 1")
		}
		threshold = *c.PriorityThreshold
		if c.MaxInflightRequests == nil {
			ctx.Warnf(p+".priorityThreshold", "has no effect without maxInflightRequests")
		}
	}
	if g.maxInflight > 0 {
		g.shedAt = max(1, int64(math.Ceil(threshold*float64(g.maxInflight))))
	}
	if c.TimeoutSecs != nil {
		if *c.TimeoutSecs == 0 {
			ctx.Errorf(p+".timeoutSecs", "must be ≥ 1")
		}
		g.timeout = time.Duration(*c.TimeoutSecs) * time.Second
	}
	if c.MaxConnectionsPerIP != nil {
		if *c.MaxConnectionsPerIP == 0 {
			ctx.Errorf(p+".maxConnectionsPerIp", "must be ≥ 1")
		}
		g.perIP = &perIPCounter{max: int64(min(*c.MaxConnectionsPerIP, 1<<62)), counts: map[netip.Addr]int64{}}
	}
	if c.KeepaliveRequestLimit != nil {
		if *c.KeepaliveRequestLimit == 0 {
			ctx.Errorf(p+".keepaliveRequestLimit", "must be ≥ 1")
		}
		g.keepalive = int64(*c.KeepaliveRequestLimit)
	}
	if c.MinUploadRateBytesPerSec != nil && *c.MinUploadRateBytesPerSec > 0 {
		g.minRate = float64(*c.MinUploadRateBytesPerSec)
	}
	return g
}

// Wrap implements core.Middleware.
func (g *guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.maxInflight > 0 {
			n := g.inflight.Add(1)
			defer g.inflight.Add(-1)
			if n > g.maxInflight {
				core.Error(w, r, http.StatusServiceUnavailable, "too many requests in flight")
				return
			}
			if n >= g.shedAt {
				if st := core.State(r); st != nil {
					st.Shedding = true
				}
			}
		}
		if g.perIP != nil {
			ip := core.ClientIP(r)
			if !g.perIP.acquire(ip) {
				w.Header().Set("Retry-After", "1")
				core.Error(w, r, http.StatusTooManyRequests, "too many concurrent requests from this address")
				return
			}
			defer g.perIP.release(ip)
		}
		if g.keepalive > 0 && r.ProtoMajor == 1 && core.ConnRequestNumber(r) >= g.keepalive {
			w.Header().Set("Connection", "close") // net/http closes after this answer
		}
		if g.minRate > 0 {
			defer core.SetMinUploadRate(w, r, g.minRate).End()
		}
		if g.timeout > 0 {
			if st := core.State(r); st != nil {
				st.RequestDeadline = st.Start.Add(g.timeout)
			}
		}
		if g.maxHeaders > 0 || g.maxHeader > 0 {
			count, size := 0, len(r.Method)+len(r.RequestURI)+len(r.Proto)+4
			for k, vv := range r.Header {
				count += len(vv)
				for _, v := range vv {
					size += len(k) + len(v) + 4
				}
			}
			if (g.maxHeaders > 0 && count > g.maxHeaders) || (g.maxHeader > 0 && size > g.maxHeader) {
				w.Header().Set("Connection", "close")
				core.Error(w, r, http.StatusRequestHeaderFieldsTooLarge, "")
				return
			}
		}
		if g.maxBody >= 0 && r.Body != nil && r.Body != http.NoBody {
			if r.ContentLength > g.maxBody {
				w.Header().Set("Connection", "close")
				core.Error(w, r, http.StatusRequestEntityTooLarge, "")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, g.maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// perIPCounter counts requests in flight per client address (limits.maxConnectionsPerIp).
type perIPCounter struct {
	max    int64
	mu     sync.Mutex
	counts map[netip.Addr]int64
}

func (c *perIPCounter) acquire(ip netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts[ip] >= c.max {
		return false
	}
	c.counts[ip]++
	return true
}

func (c *perIPCounter) release(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.counts[ip] - 1; n > 0 {
		c.counts[ip] = n
	} else {
		delete(c.counts, ip)
	}
}
