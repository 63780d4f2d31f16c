package redis_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	"github.com/conduitproxy/conduit/modules/ratelimit"
	"github.com/conduitproxy/conduit/modules/redis"
	"github.com/conduitproxy/conduit/modules/redis/redistest"
)

func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	u := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func conf(up, store, extra string) string {
	return `
port: 8080
proxy: "` + up + `"
rateLimit:
  windowSecs: 3600
  limit: 5
  store: "` + store + `"
` + extra
}

// TestTwoInstancesShareOneLimit: two Conduit servers (each its own generation, shared
// store and Redis client) behind one Redis-backed limit admit exactly the limit between
// them, also when their requests race.
func TestTwoInstancesShareOneLimit(t *testing.T) {
	rs := redistest.Start(t)
	up := upstream(t)
	a := servertest.Start(t, conf(up.URL, rs.URL(), ""))
	b := servertest.Start(t, conf(up.URL, rs.URL(), ""))
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		wg.Go(func() {
			s := status(t, srv.URL(8080)+"/x")
			mu.Lock()
			counts[s]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[200] != 5 || counts[429] != 35 {
		t.Fatalf("two instances admitted %v, want exactly 5×200 and 35×429", counts)
	}
	// The bucket lives in Redis under the site scope and the client IP, with an expiry.
	if got, err := rs.Do("PTTL", "conduit:rl:site:*:127.0.0.1"); err != nil || !strings.HasPrefix(got, ":") || got == ":-1" || got == ":-2" {
		t.Fatalf("PTTL of the bucket key = %q %v, want a positive expiry", got, err)
	}
	for _, srv := range []*servertest.Server{a, b} {
		if e := srv.Metrics().Counter("conduit_rate_limit_store_errors_total", "", "site").With("*").Value(); e != 0 {
			t.Errorf("store errors %v with a healthy Redis", e)
		}
	}
}

// TestTwoInstancesShareOneLimitUnderLoad: with many requests in flight on each instance
// (so each limiter coalesces them into batched script calls), the two instances together
// still admit exactly the limit, and each batch is one call: Redis serves fewer script
// calls than there are requests.
func TestTwoInstancesShareOneLimitUnderLoad(t *testing.T) {
	rs := redistest.Start(t)
	up := upstream(t)
	cfg := `
port: 8080
proxy: "` + up.URL + `"
rateLimit:
  windowSecs: 3600
  limit: 50
  store: "` + rs.URL() + `"
`
	a := servertest.Start(t, cfg)
	b := servertest.Start(t, cfg)
	const perInstance, workers = 150, 15
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for _, srv := range []*servertest.Server{a, b} {
		for range workers {
			wg.Go(func() {
				for range perInstance / workers {
					s := status(t, srv.URL(8080)+"/x")
					mu.Lock()
					counts[s]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if counts[200] != 50 || counts[429] != 2*perInstance-50 {
		t.Fatalf("two instances admitted %v, want exactly 50×200 and %d×429", counts, 2*perInstance-50)
	}
	for _, srv := range []*servertest.Server{a, b} {
		if e := srv.Metrics().Counter("conduit_rate_limit_store_errors_total", "", "site").With("*").Value(); e != 0 {
			t.Errorf("store errors %v with a healthy Redis", e)
		}
	}
}

// TestTakeBatchMatchesSingleTakes: one TakeBatch call decides each key's n requests as n
// single takes would: the same number granted, the same Remaining, Retry-After and Reset
// (to Redis's microsecond clock and the time between the calls).
func TestTakeBatchMatchesSingleTakes(t *testing.T) {
	rs := redistest.Start(t)
	c, err := redis.NewClient(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := redis.NewStore(c)
	ctx := context.Background()
	p := ratelimit.NewPolicy(10, 2, 1)      // capacity 3, one token per 5 s
	q := ratelimit.NewPolicy(3600, 1000, 0) // 3.6 s per token: no refill between the calls
	batch := []ratelimit.BatchEntry{{Key: "b:p", Policy: p, N: 5}, {Key: "b:q", Policy: q, N: 4}}
	if err := st.TakeBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, e := range batch {
		var single []ratelimit.Result
		for range e.N {
			r, err := st.Take(ctx, "s:"+e.Key, e.Policy)
			if err != nil {
				t.Fatal(err)
			}
			single = append(single, r)
		}
		for i, s := range single {
			b := e.Result(int64(i))
			near := func(x, y time.Duration) bool { return (x - y).Abs() < 100*time.Millisecond }
			if b.Allowed != s.Allowed || b.Remaining != s.Remaining || !near(b.RetryAfter, s.RetryAfter) || !near(b.Reset, s.Reset) {
				t.Errorf("%s request %d: batch %+v, single %+v", e.Key, i, b, s)
			}
		}
	}
	if batch[0].Granted != 3 || batch[1].Granted != 4 {
		t.Errorf("granted %d and %d, want 3 (capacity) and 4", batch[0].Granted, batch[1].Granted)
	}
	// The batch's TAT is in Redis: the next single take on b:p is refused.
	if r, err := st.Take(ctx, "b:p", p); err != nil || r.Allowed {
		t.Errorf("take after the batch drained b:p: %+v %v", r, err)
	}
}

// waitStatus polls until url answers want (the limiter retries a failed store after a
// second), failing after a generous deadline.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := 0
	for time.Now().Before(deadline) {
		if last = status(t, url); last == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still %d after 20 s, want %d", url, last, want)
}

// TestRedisDownFailClosedAndRecovery: with onStoreError: deny a dead Redis refuses every
// request with 429, counts store errors, and service resumes when Redis returns on the same
// port.
func TestRedisDownFailClosedAndRecovery(t *testing.T) {
	rs := redistest.Start(t)
	up := upstream(t)
	srv := servertest.Start(t, conf(up.URL, rs.URL(), "  onStoreError: deny\n"))
	url := srv.URL(8080) + "/x"
	if s := status(t, url); s != 200 {
		t.Fatalf("with Redis up: %d", s)
	}
	rs.Kill()
	for i := range 5 {
		if s := status(t, url); s != 429 {
			t.Fatalf("Redis down, request %d: %d, want 429 (fail closed)", i, s)
		}
	}
	if e := srv.Metrics().Counter("conduit_rate_limit_store_errors_total", "", "site").With("*").Value(); e < 5 {
		t.Errorf("store errors %v, want ≥ 5", e)
	}
	rs.Restart()
	waitStatus(t, url, 200)
	// Limiting works through Redis again: the restarted server holds the new bucket.
	if got, err := rs.Do("EXISTS", "conduit:rl:site:*:127.0.0.1"); err != nil || got != ":1" {
		t.Fatalf("bucket key after recovery: %q %v", got, err)
	}
}

// TestRedisDownFailOpenAndRecovery: with onStoreError: allow a dead Redis lets everything
// through (no limit at all), and limiting resumes through Redis when it returns.
func TestRedisDownFailOpenAndRecovery(t *testing.T) {
	rs := redistest.Start(t)
	up := upstream(t)
	srv := servertest.Start(t, conf(up.URL, rs.URL(), "  onStoreError: allow\n"))
	url := srv.URL(8080) + "/x"
	for range 5 {
		if s := status(t, url); s != 200 {
			t.Fatalf("with Redis up: %d", s)
		}
	}
	if s := status(t, url); s != 429 {
		t.Fatalf("6th request with Redis up: %d, want 429", s)
	}
	rs.Kill()
	for i := range 10 {
		if s := status(t, url); s != 200 {
			t.Fatalf("Redis down, request %d: %d, want 200 (fail open)", i, s)
		}
	}
	rs.Restart() // empty: the bucket starts full again
	// Recovery: within a few seconds the limiter uses Redis again, which shows as a 429
	// after the limit's worth of requests and as the key in Redis.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got, _ := rs.Do("EXISTS", "conduit:rl:site:*:127.0.0.1"); got == ":1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the limiter did not use Redis again within 20 s")
		}
		_ = status(t, url)
		time.Sleep(100 * time.Millisecond)
	}
	waitStatus(t, url, 429)
}

// TestRedisDownMemoryFallback: the default (onStoreError: memory) falls back to this
// instance's in-memory bucket while Redis is down.
func TestRedisDownMemoryFallback(t *testing.T) {
	rs := redistest.Start(t)
	up := upstream(t)
	srv := servertest.Start(t, conf(up.URL, rs.URL(), ""))
	url := srv.URL(8080) + "/x"
	if s := status(t, url); s != 200 {
		t.Fatalf("with Redis up: %d", s)
	}
	rs.Kill()
	counts := map[int]int{}
	for range 8 {
		counts[status(t, url)]++
	}
	if counts[200] != 5 || counts[429] != 3 {
		t.Fatalf("Redis down (memory fallback, limit 5): %v, want 5×200 3×429", counts)
	}
}

func TestValidationWithRedis(t *testing.T) {
	_, d, err := servertest.Build(`
sites:
  - port: 8080
    rateLimit: {windowSecs: 60, limit: 100, store: "redis://127.0.0.1:6379"}
  - port: 8081
    rateLimit: {windowSecs: 60, limit: 100, store: "redis://:secret@127.0.0.1:6379/notanumber"}
`, config.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range d.Warnings() {
		if strings.Contains(w.Path, "rateLimit") {
			t.Errorf("unexpected warning with the redis module compiled in: %s: %s", w.Path, w.Message)
		}
	}
	var found bool
	for _, e := range d.Errors() {
		if e.Path == "sites[0].rateLimit.store" {
			t.Errorf("valid URL rejected: %s", e.Message)
		}
		if e.Path == "sites[1].rateLimit.store" {
			found = true
			if strings.Contains(e.Message, "secret") {
				t.Errorf("error leaks the password: %s", e.Message)
			}
		}
	}
	if !found {
		t.Errorf("no error for a bad database number; errors: %v", d.Errors())
	}
}

func TestStoreTakeDirect(t *testing.T) {
	rs := redistest.Start(t)
	c, err := redis.NewClient(rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := redis.NewStore(c)
	p := ratelimit.NewPolicy(10, 2, 1) // capacity 3, one token per 5 s
	ctx := context.Background()
	for i := range 3 {
		r, err := st.Take(ctx, "t:k", p)
		if err != nil || !r.Allowed || r.Remaining != int64(2-i) {
			t.Fatalf("take %d: %+v %v", i, r, err)
		}
	}
	r, err := st.Take(ctx, "t:k", p)
	if err != nil || r.Allowed {
		t.Fatalf("4th take: %+v %v, want refused", r, err)
	}
	if r.RetryAfter <= 4*time.Second || r.RetryAfter > 5*time.Second {
		t.Errorf("RetryAfter %v, want just under 5 s", r.RetryAfter)
	}
	if r.Reset <= 14*time.Second || r.Reset > 15*time.Second {
		t.Errorf("Reset %v, want just under 15 s", r.Reset)
	}
}

// BenchmarkRedisTake measures one limiter round trip to a local redis-server (EVALSHA).
func BenchmarkRedisTake(b *testing.B) {
	rs := redistest.Start(b)
	c, err := redis.NewClient(rs.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	st := redis.NewStore(c)
	p := ratelimit.NewPolicy(1, 1<<30, 0)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Take(ctx, "bench:k", p); err != nil {
			b.Fatal(err)
		}
	}
}
