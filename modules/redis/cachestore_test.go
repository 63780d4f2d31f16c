package redis_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/modules/cache"
	"github.com/conduitproxy/conduit/modules/redis"
	"github.com/conduitproxy/conduit/modules/redis/redistest"
)

type cacheReply struct {
	status int
	xcache string
	body   string
}

func cacheGet(t *testing.T, u string, hdr ...string) cacheReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return cacheReply{resp.StatusCode, resp.Header.Get("X-Cache"), string(b)}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCacheSharedAcrossInstances: two Conduit instances share one redis-server; what one
// caches is a HIT on the other, a purge on either removes every variant for both, and a
// Redis outage is a miss, not an error (fail-open).
func TestCacheSharedAcrossInstances(t *testing.T) {
	rs := redistest.Start(t)
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Vary", "Accept-Language")
		_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language")+" n="+string(rune('0'+n%10)))
	}))
	t.Cleanup(up.Close)
	src := `
port: 8080
proxy:
  /:
    targets: ["` + up.URL + `"]
    cache: {store: "` + rs.URL() + `", ttlSecs: 60}
`
	a := servertest.Start(t, src)
	b := servertest.Start(t, src)
	key := cache.Key("GET", "http", "shared.example", 8080, "/page")
	redisKey := redis.CacheKeyPrefix + key

	r1 := cacheGet(t, a.URL(8080)+"/page", "Accept-Language", "en", "Host", "shared.example")
	// servertest listeners are on ephemeral ports, but the key uses the configured port.
	if r1.xcache != "MISS" {
		t.Fatalf("first on A: %q", r1.xcache)
	}
	waitUntil(t, "the entry in Redis", func() bool {
		n, _ := rs.Do("EXISTS", redisKey)
		return n == ":1"
	})
	r2 := cacheGet(t, b.URL(8080)+"/page", "Accept-Language", "en", "Host", "shared.example")
	if r2.xcache != "HIT" || r2.body != r1.body || hits.Load() != 1 {
		t.Fatalf("on B: %q %q (A had %q), upstream %d", r2.xcache, r2.body, r1.body, hits.Load())
	}
	// A second variant, then purge on B by URL with a mixed-case host.
	cacheGet(t, b.URL(8080)+"/page", "Accept-Language", "fr", "Host", "shared.example")
	waitUntil(t, "two variants", func() bool {
		n, _ := rs.Do("HLEN", redisKey)
		return n == ":2"
	})
	res := purgeVia(t, b, "http://Shared.EXAMPLE/page")
	if res["purged"] != true {
		t.Fatalf("purge: %v", res)
	}
	if n, _ := rs.Do("EXISTS", redisKey); n != ":0" {
		t.Fatalf("purge left the key in Redis: %q", n)
	}
	if r := cacheGet(t, a.URL(8080)+"/page", "Accept-Language", "fr", "Host", "shared.example"); r.xcache != "MISS" {
		t.Fatalf("after purge on A: %q", r.xcache)
	}

	// Fail-open: with Redis down, requests still succeed (MISS), without long waits.
	rs.Kill()
	for range 3 {
		if r := cacheGet(t, a.URL(8080)+"/down", "Host", "shared.example"); r.status != 200 || r.xcache != "MISS" {
			t.Fatalf("with Redis down: %d %q", r.status, r.xcache)
		}
	}
	rs.Restart()
	waitUntil(t, "caching to resume after Redis is back", func() bool {
		cacheGet(t, a.URL(8080)+"/back", "Host", "shared.example")
		return cacheGet(t, b.URL(8080)+"/back", "Host", "shared.example").xcache == "HIT"
	})
}

func purgeVia(t *testing.T, srv *servertest.Server, target string) map[string]any {
	t.Helper()
	for _, inst := range srv.Current().Instances() {
		p, ok := inst.(core.AdminProvider)
		if !ok {
			continue
		}
		for _, e := range p.AdminEndpoints() {
			if e.Method == http.MethodDelete && e.Path == "/cache/purge" {
				rec := httptest.NewRecorder()
				e.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/cache/purge?url="+url.QueryEscape(target), nil))
				var out map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
					t.Fatalf("purge body %q: %v", rec.Body.String(), err)
				}
				return out
			}
		}
	}
	t.Fatal("no DELETE /cache/purge endpoint")
	return nil
}

// TestCacheStoreUnit exercises the store directly: variants under one hash, expiry, the
// variant cap, damaged values skipped, purge.
func TestCacheStoreUnit(t *testing.T) {
	rs := redistest.Start(t)
	c, err := redis.NewClient(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := redis.NewCacheStore(c)
	ctx := context.Background()
	now := time.Now().UnixNano()
	mk := func(lang, body string) *cache.Entry {
		return (&cache.Entry{Key: "k", Status: 200, Body: []byte(body), Header: map[string][]string{"A": {"b"}},
			Vary: []cache.VaryField{{Name: "Accept-Language", Values: []string{lang}}}, StoredAt: now,
			FreshUntil: now + int64(30*time.Second), SWRUntil: now + int64(30*time.Second), SIEUntil: now + int64(90*time.Second)}).Finish()
	}
	for _, e := range []*cache.Entry{mk("en", "1"), mk("fr", "2"), mk("en", "3")} {
		if err := s.Set(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.Get(ctx, "k")
	if err != nil || len(list) != 2 {
		t.Fatalf("Get: %d entries, %v", len(list), err)
	}
	bodies := map[string]bool{}
	for _, e := range list {
		bodies[string(e.Body)] = true
	}
	if !bodies["3"] || !bodies["2"] || bodies["1"] {
		t.Fatalf("bodies %v, want the replaced en variant gone", bodies)
	}
	if ttl, _ := rs.Do("PTTL", redis.CacheKeyPrefix+"k"); !strings.HasPrefix(ttl, ":") || strings.HasPrefix(ttl, ":-") {
		t.Fatalf("no expiry on the key: %s", ttl)
	}
	if _, err := rs.Do("HSET", redis.CacheKeyPrefix+"k", "junk", "not an entry"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Get(ctx, "k"); len(list) != 2 {
		t.Fatalf("damaged field not skipped: %d", len(list))
	}
	for i := range 40 {
		_ = s.Set(ctx, mk(strings.Repeat("x", i+1), "v"))
	}
	if n, _ := rs.Do("HLEN", redis.CacheKeyPrefix+"k"); n == "" || atoi(n) > 32 {
		t.Fatalf("variants not capped: HLEN %s", n)
	}
	if ok, err := s.Purge(ctx, "k"); !ok || err != nil {
		t.Fatalf("Purge: %v %v", ok, err)
	}
	if list, _ := s.Get(ctx, "k"); len(list) != 0 {
		t.Fatal("purge left entries")
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(s, ":"))
	if err != nil {
		return 1 << 30
	}
	return n
}
