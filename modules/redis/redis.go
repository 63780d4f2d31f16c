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
	"strconv"
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

// gcraScript is GCRA (a token bucket stored as one timestamp) in one atomic step, using
// Redis's own clock so that instances with skewed clocks agree. ARGV: emission interval and
// tolerance (interval × capacity), both in microseconds. Reply: {allowed, remaining,
// retry_after_us, reset_us}.
var gcraScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local nxt = tat + interval
local diff = nxt - now
if diff > tolerance then
  return {0, 0, diff - tolerance, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.max(1, math.ceil(diff / 1000)))
return {1, math.floor((tolerance - diff) / interval), 0, diff}
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

// Take implements ratelimit.Store with one EVALSHA round trip (EVAL when the script is not
// cached yet, e.g. after Redis restarted).
func (s *Store) Take(ctx context.Context, key string, p ratelimit.Policy) (ratelimit.Result, error) {
	interval := max(p.Interval/1000, 1)
	tolerance := min(interval*p.Capacity, maxTolerance)
	if p.Capacity > maxTolerance/interval {
		tolerance = maxTolerance
	}
	v, err := gcraScript.Run(ctx, s.c, []string{key}, strconv.FormatInt(interval, 10), strconv.FormatInt(tolerance, 10)).Int64Slice()
	if err != nil {
		return ratelimit.Result{}, fmt.Errorf("redis rate-limit script: %w", err)
	}
	if len(v) != 4 {
		return ratelimit.Result{}, fmt.Errorf("redis rate-limit script: unexpected reply %v", v)
	}
	return ratelimit.Result{
		Allowed:    v[0] == 1,
		Remaining:  v[1],
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		Reset:      time.Duration(v[3]) * time.Microsecond,
	}, nil
}
