package ratelimit

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Policy is a token bucket in the form both stores compute with: the generic cell rate
// algorithm (GCRA). A bucket of Capacity tokens refills one token every Interval; GCRA keeps
// one number per key, the theoretical arrival time (TAT), instead of a token count and a
// timestamp, and gives exactly the token bucket's answers.
type Policy struct {
	// Interval is the time one token takes to refill (windowSecs/limit), in nanoseconds.
	Interval int64
	// Capacity is the bucket size: limit + burst.
	Capacity int64
	// Tolerance is Interval × Capacity: how far ahead of now the TAT may run.
	Tolerance int64
}

// NewPolicy builds the policy for `limit` requests per `windowSecs`, plus `burst` extra
// capacity. Extreme values are clamped so that no computation overflows.
func NewPolicy(windowSecs, limit, burst uint64) Policy {
	if limit == 0 {
		limit = 1
	}
	interval := float64(windowSecs) * 1e9 / float64(limit)
	interval = math.Max(1, math.Min(interval, 1<<52))
	capacity := math.Min(float64(limit)+float64(burst), 1<<40)
	tol := math.Min(interval*capacity, 1<<61)
	return Policy{Interval: int64(interval), Capacity: int64(capacity), Tolerance: int64(tol)}
}

// Result is the answer of a store for one request.
type Result struct {
	// Allowed reports whether a token was available (and was spent).
	Allowed bool
	// Remaining is the number of whole tokens left after this request.
	Remaining int64
	// RetryAfter is how long until one token is available again (0 when allowed).
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// take applies one request at time now (ns) to a bucket whose TAT is tat (0 for a new
// bucket). It returns the new TAT (unchanged when the request is refused) and the result.
func take(tat, now int64, p *Policy) (int64, Result) {
	if tat < now {
		tat = now
	}
	next := tat + p.Interval
	diff := next - now
	if diff > p.Tolerance {
		return tat, Result{RetryAfter: time.Duration(diff - p.Tolerance), Reset: time.Duration(tat - now)}
	}
	return next, Result{Allowed: true, Remaining: (p.Tolerance - diff) / p.Interval, Reset: time.Duration(diff)}
}

// MaxBuckets is the hard cap on in-memory buckets across all limiters of one generation (a
// DoS guard, docs/rate-limiting.md): a new key arriving when the cap is reached and no idle bucket can
// be reclaimed is refused, as nginx's limit_req refuses when its zone is full.
const MaxBuckets = 100_000

// bucketCap counts the buckets of one generation.
type bucketCap struct {
	n   atomic.Int64
	max int64
}

// bkey identifies a bucket inside one store: a client address or a string (header value,
// consumer name). Comparable, so the map needs no string building for IP keys.
type bkey struct {
	ip netip.Addr
	s  string
}

const shardCount = 32

// sweepEvery is how often a shard drops its idle buckets (those that have refilled
// completely, which are indistinguishable from absent ones).
const sweepEvery = int64(10 * time.Second)

// memStore is a sharded map of GCRA buckets. Buckets that have refilled are removed lazily,
// so an idle key costs nothing after a while.
type memStore struct {
	seed          maphash.Seed
	cap           *bucketCap
	nextFullSweep atomic.Int64
	shards        [shardCount]shard
}

type shard struct {
	mu        sync.Mutex
	m         map[bkey]int64
	nextSweep int64
	_         [40]byte // keep shards on separate cache lines
}

func newMemStore(c *bucketCap) *memStore {
	s := &memStore{seed: maphash.MakeSeed(), cap: c}
	for i := range s.shards {
		s.shards[i].m = make(map[bkey]int64)
	}
	return s
}

func (s *memStore) shardFor(k *bkey) *shard {
	var h uint64
	if k.s != "" {
		h = maphash.String(s.seed, k.s)
	} else {
		a := k.ip.As16()
		h = maphash.Bytes(s.seed, a[:])
	}
	return &s.shards[h%shardCount]
}

// take spends a token of bucket k at time now. full reports a refusal caused by the bucket
// cap, not by the bucket itself.
func (s *memStore) take(k bkey, now int64, p *Policy) (res Result, full bool) {
	sh := s.shardFor(&k)
	for attempt := 0; ; attempt++ {
		sh.mu.Lock()
		tat, ok := sh.m[k]
		if !ok {
			if now >= sh.nextSweep {
				s.sweep(sh, now)
			}
			if s.cap.n.Load() >= s.cap.max {
				s.sweep(sh, now)
			}
			if s.cap.n.Load() >= s.cap.max {
				sh.mu.Unlock()
				// Reclaim idle buckets in every shard (at most once per second), then retry
				// once; shards are locked one at a time, never two together.
				if attempt == 0 && s.sweepAll(now) {
					continue
				}
				return Result{RetryAfter: time.Second, Reset: time.Second}, true
			}
			s.cap.n.Add(1)
		}
		tat, res = take(tat, now, p)
		if res.Allowed {
			sh.m[k] = tat
		} else if !ok {
			// Only possible with a zero capacity, which validation forbids; store nothing.
			s.cap.n.Add(-1)
		}
		sh.mu.Unlock()
		return res, false
	}
}

// sweepAll sweeps every shard unless another full sweep ran in the last second. It reports
// whether it ran.
func (s *memStore) sweepAll(now int64) bool {
	next := s.nextFullSweep.Load()
	if now < next || !s.nextFullSweep.CompareAndSwap(next, now+int64(time.Second)) {
		return false
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		s.sweep(sh, now)
		sh.mu.Unlock()
	}
	return true
}

// sweep removes the buckets of sh that are full again. The caller holds sh.mu.
func (s *memStore) sweep(sh *shard, now int64) {
	sh.nextSweep = now + sweepEvery
	removed := 0
	for k, tat := range sh.m {
		if tat <= now {
			delete(sh.m, k)
			removed++
		}
	}
	if removed > 0 {
		s.cap.n.Add(int64(-removed))
	}
}

// len counts the buckets (tests).
func (s *memStore) len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += len(s.shards[i].m)
		s.shards[i].mu.Unlock()
	}
	return n
}
