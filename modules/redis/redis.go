// Package redis is Conduit's shared Redis backend. It adds no stage of its own: it registers
// the redis:// and rediss:// stores that `rateLimit.store` looks up by URL scheme, and
// exposes Client so other modules (the cache) reuse one connection pool per URL.
//
// A build without this module reports `store: redis://…` as not compiled in and links no
// Redis client.
package redis

import (
	"context"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/modules/ratelimit"
)

// schemes are the store URL schemes this module provides, to rate limits and the cache.
var schemes = []string{"redis", "rediss"}

func init() {
	core.Register(core.Module{
		ID:           "stores.redis",
		Feature:      "redis",
		Description:  "Redis stores shared across instances for rate limits and the response cache (redis://, rediss://)",
		StoreSchemes: schemes,
	})
	for _, s := range schemes {
		ratelimit.RegisterStore(s, rateLimitStore)
	}
}

// Timeouts applied when the URL does not set its own (dial_timeout, read_timeout,
// write_timeout, pool_timeout query parameters). They are short because a guard waits on
// them: a Redis that does not answer in time counts as down.
const (
	DefaultDialTimeout = 500 * time.Millisecond
	DefaultIOTimeout   = 250 * time.Millisecond
	DefaultPoolTimeout = 500 * time.Millisecond
	sharedKeyPrefix    = "redis.client:"
)

type clientEntry struct {
	c   *goredis.Client
	err error
}

// Client returns the client for url, one per distinct URL for the whole process: it lives
// in ctx.Shared, so reloads keep the connection pool. It does not connect; the pool dials
// on first use and reconnects by itself after failures.
func Client(ctx *core.SiteContext, url string) (*goredis.Client, error) {
	e := core.SharedOf(ctx.Shared, sharedKeyPrefix+url, func() *clientEntry {
		c, err := NewClient(url)
		return &clientEntry{c: c, err: err}
	})
	return e.c, e.err
}

// NewClient builds a client for a redis:// or rediss:// URL with Conduit's defaults. Errors
// never contain the password.
func NewClient(url string) (*goredis.Client, error) {
	o, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("invalid Redis URL %s: %v", config.RedactURL(url), redactErr(err, url))
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultIOTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultIOTimeout
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = DefaultPoolTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = -1 // a guard must not wait out retries; the next request tries again
	}
	o.ContextTimeoutEnabled = true
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return goredis.NewClient(o), nil
}

func redactErr(err error, url string) string {
	// go-redis does not echo the URL in its errors today; make sure it never leaks if it does.
	return strings.ReplaceAll(err.Error(), url, config.RedactURL(url))
}

// gcraScript is GCRA (a token bucket stored as one timestamp) for a batch of buckets in one
// atomic step, using Redis's own clock so that instances with skewed clocks agree. For each
// key KEYS[i], ARGV[3i-2..3i] are the emission interval and the tolerance (interval ×
// capacity), both in microseconds, and n, the number of requests to decide; it grants the
// first k of them that fit, as n consecutive single takes would. Reply: {k, ahead_us} per
// key, where ahead_us is how far the bucket's TAT was ahead of now before the batch.
var gcraScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3*i-2])
  local tolerance = tonumber(ARGV[3*i-1])
  local n = tonumber(ARGV[3*i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local k = math.floor((tolerance - (tat - now)) / interval)
  if k > n then k = n end
  if k < 0 then k = 0 end
  if k > 0 then
    local nxt = tat + k * interval
    redis.call('SET', key, string.format('%d', nxt), 'PX', math.max(1, math.ceil((nxt - now) / 1000)))
  end
  out[2*i-1] = k
  out[2*i] = tat - now
end
return out
`)

// Store is a rate-limit store on one Redis client.
type Store struct {
	c *goredis.Client
}

// NewStore wraps a client as a rate-limit store.
func NewStore(c *goredis.Client) *Store { return &Store{c: c} }

func rateLimitStore(ctx *core.SiteContext, url string) (ratelimit.Store, error) {
	c, err := Client(ctx, url)
	if err != nil {
		return nil, err
	}
	return NewStore(c), nil
}

// maxTolerance keeps the script's arithmetic within Lua's exact integer range (2^53).
const maxTolerance = 1 << 50

// usedPolicy is p in the script's microseconds, clamped to its exact integer range.
func usedPolicy(p ratelimit.Policy) (interval, tolerance int64) {
	interval = max(p.Interval/1000, 1)
	if p.Capacity > maxTolerance/interval {
		return interval, maxTolerance
	}
	return interval, min(interval*p.Capacity, maxTolerance)
}

// Take implements ratelimit.Store: a batch of one.
func (s *Store) Take(ctx context.Context, key string, p ratelimit.Policy) (ratelimit.Result, error) {
	e := []ratelimit.BatchEntry{{Key: key, Policy: p, N: 1}}
	if err := s.TakeBatch(ctx, e); err != nil {
		return ratelimit.Result{}, err
	}
	return e[0].Result(0), nil
}

// TakeBatch implements ratelimit.BatchStore with one EVALSHA round trip for every entry
// (EVAL when the script is not cached yet, e.g. after Redis restarted).
func (s *Store) TakeBatch(ctx context.Context, entries []ratelimit.BatchEntry) error {
	keys := make([]string, len(entries))
	args := make([]any, 0, 3*len(entries))
	for i := range entries {
		e := &entries[i]
		interval, tolerance := usedPolicy(e.Policy)
		keys[i] = e.Key
		args = append(args, interval, tolerance, max(e.N, 1))
	}
	v, err := gcraScript.Run(ctx, s.c, keys, args...).Int64Slice()
	if err != nil {
		return fmt.Errorf("redis rate-limit script: %w", err)
	}
	if len(v) != 2*len(entries) {
		return fmt.Errorf("redis rate-limit script: %d values in the reply for %d keys", len(v), len(entries))
	}
	for i := range entries {
		e := &entries[i]
		interval, tolerance := usedPolicy(e.Policy)
		granted, ahead := v[2*i], v[2*i+1]
		if granted < 0 || granted > max(e.N, 1) || ahead < 0 {
			return fmt.Errorf("redis rate-limit script: reply {%d, %d} out of range for key %d", granted, ahead, i)
		}
		e.Granted, e.Ahead = granted, ahead*1000
		e.Used = ratelimit.Policy{Interval: interval * 1000, Capacity: e.Policy.Capacity, Tolerance: tolerance * 1000}
	}
	return nil
}
