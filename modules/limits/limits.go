// Package limits enforces the site's `limits`: request body size (413), header size and
// count (431) and the number of requests in flight (503). It sits at core.StageLimits,
// after the IP filter and CORS and before rate limits and auth.
package limits

import (
	"net/http"
	"sync/atomic"

	"github.com/conduitproxy/conduit/core"
)

func init() {
	core.Register(core.Module{
		ID:          "http.guards.limits",
		Feature:     "limits",
		Description: "request size and concurrency limits",
		Stage:       core.StageLimits,
		SiteKeys:    []string{"limits"},
		Site:        provision,
	})
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
	inflight    atomic.Int64
}

func provision(ctx *core.SiteContext) (core.SiteInstance, error) {
	var c Config
	if !ctx.Decode("limits", &c) {
		return nil, nil
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
	if c.PriorityThreshold != nil && (*c.PriorityThreshold < 0 || *c.PriorityThreshold > 1) {
		ctx.Errorf(p+".priorityThreshold", "must be between 0 and 1")
	}
	notYet := map[string]bool{
		"timeoutSecs": c.TimeoutSecs != nil, "maxBodyBufferBytes": c.MaxBodyBufferBytes != nil,
		"keepaliveRequestLimit": c.KeepaliveRequestLimit != nil, "priorityThreshold": c.PriorityThreshold != nil,
		"maxConnectionsPerIp": c.MaxConnectionsPerIP != nil, "minUploadRateBytesPerSec": c.MinUploadRateBytesPerSec != nil,
	}
	for _, k := range []string{"timeoutSecs", "maxBodyBufferBytes", "keepaliveRequestLimit", "priorityThreshold", "maxConnectionsPerIp", "minUploadRateBytesPerSec"} {
		if notYet[k] {
			ctx.Warnf(p+"."+k, "is not enforced by this build yet; ignored")
		}
	}
	return g, nil
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
