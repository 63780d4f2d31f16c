package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/modules/cache"
)

func init() {
	for _, s := range schemes {
		cache.RegisterStore(s, cacheStore)
	}
}

// CacheKeyPrefix prefixes every cache key in Redis. One Redis hash per primary key (URL)
// holds its variants, field = variant id, value = the encoded entry, so a purge by URL is
// one DEL that takes every variant with it.
const CacheKeyPrefix = "conduit:cache:"

// cacheMaxVariants bounds the variants kept under one primary key in Redis.
const cacheMaxVariants = 32

// CacheStore is a response-cache store on one Redis client, shared by every instance that
// names the same URL.
type CacheStore struct {
	c *goredis.Client
}

// NewCacheStore wraps a client as a cache store.
func NewCacheStore(c *goredis.Client) *CacheStore { return &CacheStore{c: c} }

func cacheStore(ctx *core.SiteContext, url string, _ cache.StoreOptions) (cache.Store, error) {
	c, err := Client(ctx, url)
	if err != nil {
		return nil, err
	}
	return NewCacheStore(c), nil
}

// Async implements cache.AsyncStore: writes go over the network, off the response path.
func (s *CacheStore) Async() {}

// Get implements cache.Store with one HGETALL. Fields that do not decode (a foreign or
// damaged value) are skipped.
func (s *CacheStore) Get(ctx context.Context, key string) ([]*cache.Entry, error) {
	m, err := s.c.HGetAll(ctx, CacheKeyPrefix+key).Result()
	if err != nil {
		return nil, fmt.Errorf("redis cache get: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]*cache.Entry, 0, len(m))
	for _, v := range m {
		e, err := cache.DecodeEntry([]byte(v))
		if err != nil || e.Key != key {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// cacheSetScript stores one variant, drops the whole key first when it already holds the
// variant cap, and extends the key's expiry to the entry's (never shortens it, since other
// variants may live longer). ARGV: variant id, entry, max variants, ttl ms.
var cacheSetScript = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
`)

// Set implements cache.Store; the Redis key expires when the entry is of no use any more.
func (s *CacheStore) Set(ctx context.Context, e *cache.Entry) error {
	ttl := (e.Expires() - time.Now().UnixNano()) / int64(time.Millisecond)
	if ttl <= 0 {
		return nil
	}
	err := cacheSetScript.Run(ctx, s.c, []string{CacheKeyPrefix + e.Key},
		e.VariantID(), e.Encode(), strconv.Itoa(cacheMaxVariants), strconv.FormatInt(ttl+1000, 10)).Err()
	if err != nil {
		return fmt.Errorf("redis cache set: %w", err)
	}
	return nil
}

// Purge implements cache.Store.
func (s *CacheStore) Purge(ctx context.Context, key string) (bool, error) {
	n, err := s.c.Del(ctx, CacheKeyPrefix+key).Result()
	if err != nil {
		return false, fmt.Errorf("redis cache purge: %w", err)
	}
	return n > 0, nil
}
