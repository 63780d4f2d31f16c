package redis_test

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/conduitproxy/conduit/modules/ratelimit"
	"github.com/conduitproxy/conduit/modules/redis"
	"github.com/conduitproxy/conduit/modules/redis/redistest"
)

// pausedStore starts a redis-server and a coalescer on it whose calls can be held in
// flight with CLIENT PAUSE … WRITE (scripts count as writes; CLIENT UNPAUSE and INFO still
// run), so tests queue requests deterministically behind a call.
func pausedStore(t *testing.T) (*redistest.Server, *goredis.Client, *ratelimit.Coalescer) {
	t.Helper()
	rs := redistest.Start(t)
	c, err := redis.NewClient(rs.URL() + "?read_timeout=10s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	co := ratelimit.NewCoalescer(redis.NewStore(c))
	// Load the script, so that every later call is one EVALSHA.
	if _, err := co.Take(context.Background(), "warm", ratelimit.NewPolicy(1, 1, 0)); err != nil {
		t.Fatal(err)
	}
	return rs, c, co
}

func do(t *testing.T, rs *redistest.Server, args ...string) {
	t.Helper()
	if got, err := rs.Do(args...); err != nil || got != "+OK" {
		t.Fatalf("%v: %q %v", args, got, err)
	}
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var scriptCalls = regexp.MustCompile(`cmdstat_eval(?:sha)?:calls=(\d+)`)

// scriptCallCount sums the EVAL and EVALSHA calls redis-server has served.
func scriptCallCount(t *testing.T, c *goredis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range scriptCalls.FindAllStringSubmatch(info, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

type outcome struct {
	key string
	res ratelimit.Result
	err error
}

// takeAsync starts one Take and sends its outcome to out.
func takeAsync(co *ratelimit.Coalescer, ctx context.Context, key string, p ratelimit.Policy, out chan<- outcome) {
	go func() {
		r, err := co.Take(ctx, key, p)
		out <- outcome{key, r, err}
	}()
}

// TestCoalescerOneCallPerGroup: requests that arrive while a call is in flight go to Redis
// together in one call, and each bucket still grants exactly its capacity, with the
// Remaining values of consecutive takes.
func TestCoalescerOneCallPerGroup(t *testing.T) {
	rs, c, co := pausedStore(t)
	p := ratelimit.NewPolicy(3600, 10, 0)
	before := scriptCallCount(t, c)
	do(t, rs, "CLIENT", "PAUSE", "20000", "WRITE")
	out := make(chan outcome, 64)
	takeAsync(co, context.Background(), "k", p, out) // the call in flight
	waitFor(t, "the first call", co.Busy)
	for i := range 30 {
		key := "k"
		if i%6 == 5 {
			key = "j"
		}
		takeAsync(co, context.Background(), key, p, out)
	}
	waitFor(t, "30 queued requests", func() bool { return co.Queued() == 30 })
	do(t, rs, "CLIENT", "UNPAUSE")
	allowed := map[string]int{}
	remaining := map[string]map[int64]bool{"k": {}, "j": {}}
	for range 31 {
		o := <-out
		if o.err != nil {
			t.Fatalf("take %s: %v", o.key, o.err)
		}
		if o.res.Allowed {
			allowed[o.key]++
			remaining[o.key][o.res.Remaining] = true
		} else if o.res.RetryAfter <= 0 {
			t.Errorf("refused %s without Retry-After: %+v", o.key, o.res)
		}
	}
	if allowed["k"] != 10 || allowed["j"] != 5 {
		t.Errorf("allowed %v, want k:10 (26 requests, capacity 10) j:5", allowed)
	}
	if len(remaining["k"]) != 10 || !remaining["k"][0] || !remaining["k"][9] {
		t.Errorf("Remaining values for k %v, want 9…0 once each", remaining["k"])
	}
	if got := scriptCallCount(t, c) - before; got != 2 {
		t.Errorf("%d script calls for 31 requests, want 2 (the one in flight, then one for the 30 queued)", got)
	}
	waitFor(t, "the coalescer to go idle", func() bool { return !co.Busy() })
}

// TestCoalescerFailureFailsQueued: when the call in flight fails, the requests queued
// behind it fail with it (the limiter's onStoreError decides them) instead of waiting for a
// call of their own, and the coalescer works again once Redis is back.
func TestCoalescerFailureFailsQueued(t *testing.T) {
	rs, _, co := pausedStore(t)
	p := ratelimit.NewPolicy(3600, 10, 0)
	do(t, rs, "CLIENT", "PAUSE", "20000", "WRITE")
	out := make(chan outcome, 8)
	takeAsync(co, context.Background(), "k", p, out)
	waitFor(t, "the first call", co.Busy)
	for range 5 {
		takeAsync(co, context.Background(), "k", p, out)
	}
	waitFor(t, "5 queued requests", func() bool { return co.Queued() == 5 })
	rs.Kill()
	for range 6 {
		if o := <-out; o.err == nil {
			t.Fatalf("take succeeded with Redis killed: %+v", o.res)
		}
	}
	waitFor(t, "the coalescer to go idle", func() bool { return !co.Busy() })
	rs.Restart()
	var r ratelimit.Result
	var err error
	waitFor(t, "a take after the restart", func() bool {
		r, err = co.Take(context.Background(), "k", p)
		return err == nil
	})
	if !r.Allowed || r.Remaining != 9 {
		t.Errorf("first take on the restarted (empty) Redis: %+v, want allowed with 9 left", r)
	}
}

// TestCoalescerQueuedCancel: a queued request whose context ends returns at once with the
// context's error; the call in flight and the group behind it still complete.
func TestCoalescerQueuedCancel(t *testing.T) {
	rs, _, co := pausedStore(t)
	p := ratelimit.NewPolicy(3600, 10, 0)
	do(t, rs, "CLIENT", "PAUSE", "20000", "WRITE")
	out := make(chan outcome, 8)
	takeAsync(co, context.Background(), "k", p, out)
	waitFor(t, "the first call", co.Busy)
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan outcome, 1)
	takeAsync(co, ctx, "k", p, cancelled)
	takeAsync(co, context.Background(), "k", p, out)
	waitFor(t, "2 queued requests", func() bool { return co.Queued() == 2 })
	cancel()
	if o := <-cancelled; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("cancelled take: %+v %v, want context.Canceled", o.res, o.err)
	}
	do(t, rs, "CLIENT", "UNPAUSE")
	for range 2 {
		if o := <-out; o.err != nil || !o.res.Allowed {
			t.Errorf("take: %+v %v", o.res, o.err)
		}
	}
	waitFor(t, "the coalescer to go idle", func() bool { return !co.Busy() })
}

// cpuNanos is this process's user+system CPU time so far.
func cpuNanos(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchRedisParallel runs 50 goroutines taking from one hot key (the harness's
// conduit-rl-redis row: every request from 127.0.0.1) and reports this process's CPU per
// take beside the wall time (redis-server's CPU is its own process).
func benchRedisParallel(b *testing.B, take func(context.Context, string, ratelimit.Policy) (ratelimit.Result, error)) {
	p := ratelimit.NewPolicy(1, 1<<30, 0)
	ctx := context.Background()
	if _, err := take(ctx, "bench:k", p); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(50)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuNanos(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := take(ctx, "bench:k", p); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(cpuNanos(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

func benchStore(b *testing.B) *redis.Store {
	rs := redistest.Start(b)
	c, err := redis.NewClient(rs.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return redis.NewStore(c)
}

// BenchmarkRedisTakeParallel: one round trip per take (the store without the coalescer, as
// every request went before).
func BenchmarkRedisTakeParallel(b *testing.B) {
	benchRedisParallel(b, benchStore(b).Take)
}

// BenchmarkRedisCoalescedParallel: the same load through the coalescer the limiter uses.
func BenchmarkRedisCoalescedParallel(b *testing.B) {
	benchRedisParallel(b, ratelimit.NewCoalescer(benchStore(b)).Take)
}
