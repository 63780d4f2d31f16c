package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestNewPolicy(t *testing.T) {
	tests := []struct {
		window, limit, burst uint64
		interval, capacity   int64
	}{
		{60, 100, 0, int64(600 * time.Millisecond), 100},
		{1, 10, 5, int64(100 * time.Millisecond), 15},
		{1, 1, 0, int64(time.Second), 1},
		{3600, 1, 0, int64(time.Hour), 1},
		{1, 2_000_000_000, 0, 1, 2_000_000_000}, // sub-nanosecond interval clamps to 1 ns
	}
	for _, tt := range tests {
		p := NewPolicy(tt.window, tt.limit, tt.burst)
		if p.Interval != tt.interval || p.Capacity != tt.capacity || p.Tolerance != tt.interval*tt.capacity {
			t.Errorf("NewPolicy(%d,%d,%d) = %+v, want interval %d capacity %d", tt.window, tt.limit, tt.burst, p, tt.interval, tt.capacity)
		}
	}
	// Huge values must not overflow into a negative tolerance.
	p := NewPolicy(1<<63, 1, 1<<63)
	if p.Interval <= 0 || p.Capacity <= 0 || p.Tolerance <= 0 {
		t.Errorf("extreme policy overflowed: %+v", p)
	}
}

// TestTakeBucketMath walks one bucket through a scripted clock.
func TestTakeBucketMath(t *testing.T) {
	p := NewPolicy(10, 5, 2) // 0.5 token/s, capacity 7
	var tat int64
	now := int64(1_000_000_000_000)
	// A fresh bucket admits exactly capacity requests at once.
	for i := range 7 {
		var r Result
		tat, r = take(tat, now, &p)
		if !r.Allowed {
			t.Fatalf("request %d refused", i)
		}
		if want := int64(6 - i); r.Remaining != want {
			t.Fatalf("request %d: remaining %d, want %d", i, r.Remaining, want)
		}
	}
	tat2, r := take(tat, now, &p)
	if r.Allowed || tat2 != tat {
		t.Fatalf("8th request allowed or moved the TAT: %+v", r)
	}
	if r.RetryAfter != 2*time.Second {
		t.Fatalf("retry after %v, want 2s (one token every 2s)", r.RetryAfter)
	}
	if r.Reset != 14*time.Second {
		t.Fatalf("reset %v, want 14s (7 tokens)", r.Reset)
	}
	// 1.999 s later: still nothing.
	if _, r := take(tat, now+1999*int64(time.Millisecond), &p); r.Allowed {
		t.Fatal("allowed before a token refilled")
	}
	// 2 s later: exactly one.
	now += 2 * int64(time.Second)
	tat, r = take(tat, now, &p)
	if !r.Allowed || r.Remaining != 0 {
		t.Fatalf("after 2s: %+v, want allowed with 0 remaining", r)
	}
	if _, r := take(tat, now, &p); r.Allowed {
		t.Fatal("second request after one refill allowed")
	}
	// After a long idle period the bucket is full again, never fuller.
	now += int64(time.Hour)
	n := 0
	for {
		var r Result
		tat, r = take(tat, now, &p)
		if !r.Allowed {
			break
		}
		n++
	}
	if n != 7 {
		t.Fatalf("after idling, %d requests admitted, want capacity 7", n)
	}
}

// TestTakeSustainedRate checks the long-run rate: over 100 s at 10 req/s offered, a bucket
// of limit 5/10s admits capacity + 100/2.
func TestTakeSustainedRate(t *testing.T) {
	p := NewPolicy(10, 5, 0)
	var tat int64
	now := int64(time.Hour)
	admitted := 0
	for i := 0; i <= 1000; i++ {
		var r Result
		tat, r = take(tat, now+int64(i)*int64(100*time.Millisecond), &p)
		if r.Allowed {
			admitted++
		}
	}
	if admitted != 5+50 {
		t.Fatalf("admitted %d, want 55", admitted)
	}
}

func TestMemStoreKeysAndSweep(t *testing.T) {
	c := &bucketCap{max: MaxBuckets}
	s := newMemStore(c)
	p := NewPolicy(1, 1, 0)
	now := int64(time.Hour)
	a := bkey{ip: netip.MustParseAddr("192.0.2.1")}
	b := bkey{ip: netip.MustParseAddr("192.0.2.2")}
	h := bkey{s: "192.0.2.1"} // a header value equal to an IP text is another bucket
	for _, k := range []bkey{a, b, h} {
		if r, _ := s.take(k, now, &p); !r.Allowed {
			t.Fatalf("%v: first request refused", k)
		}
	}
	if r, _ := s.take(a, now, &p); r.Allowed {
		t.Fatal("second request of a allowed")
	}
	if s.len() != 3 || c.n.Load() != 3 {
		t.Fatalf("len %d count %d, want 3", s.len(), c.n.Load())
	}
	// After the buckets refill and the sweep interval passes, a new key sweeps its shard.
	later := now + sweepEvery + int64(time.Second)
	for i := range s.shards {
		s.shards[i].mu.Lock()
		s.sweep(&s.shards[i], later)
		s.shards[i].mu.Unlock()
	}
	if s.len() != 0 || c.n.Load() != 0 {
		t.Fatalf("after sweep len %d count %d, want 0", s.len(), c.n.Load())
	}
}

func TestMemStoreCap(t *testing.T) {
	c := &bucketCap{max: 10}
	s := newMemStore(c)
	p := NewPolicy(60, 1, 0)
	now := int64(time.Hour)
	for i := range 10 {
		k := bkey{s: string(rune('a' + i))}
		if r, full := s.take(k, now, &p); !r.Allowed || full {
			t.Fatalf("key %d refused (full=%v)", i, full)
		}
	}
	r, full := s.take(bkey{s: "new"}, now, &p)
	if r.Allowed || !full {
		t.Fatalf("11th key: allowed=%v full=%v, want refused because of the cap", r.Allowed, full)
	}
	// Existing keys keep working at the cap.
	if _, full := s.take(bkey{s: "a"}, now, &p); full {
		t.Fatal("existing key reported full")
	}
	// Once the buckets have refilled, the cap is reclaimed.
	r, full = s.take(bkey{s: "new"}, now+int64(2*time.Minute), &p)
	if !r.Allowed || full {
		t.Fatalf("after refill: allowed=%v full=%v", r.Allowed, full)
	}
	if got := c.n.Load(); got != int64(s.len()) || got > c.max {
		t.Fatalf("count after reclaim %d, buckets %d, cap %d", got, s.len(), c.max)
	}
}
