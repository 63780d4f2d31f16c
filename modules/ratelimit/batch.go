package ratelimit

import (
	"context"
	"sync"
	"time"
)

// BatchEntry is one bucket's share of a batched store call: N requests for Key under
// Policy, decided in order as N consecutive Takes at the same instant would be.
type BatchEntry struct {
	// Key is the bucket's key in the store.
	Key string
	// Policy is the bucket's policy.
	Policy Policy
	// N is the number of requests to decide (≥ 1).
	N int64

	// Granted is set by the store: how many of the N requests got a token (the first
	// Granted of them, in order).
	Granted int64
	// Ahead is set by the store: how far (ns) the bucket's theoretical arrival time was
	// ahead of the store's clock before this entry was decided; 0 for a full bucket.
	Ahead int64
	// Used is set by the store: the policy it computed with, which may differ from Policy by
	// the resolution of its clock (Redis computes in microseconds).
	Used Policy
}

// Result returns the result of the entry's i-th request (0-based, i < N), exactly what
// the i-th of N consecutive takes at the store's instant returns.
func (e *BatchEntry) Result(i int64) Result {
	p := &e.Used
	if i < e.Granted {
		diff := e.Ahead + (i+1)*p.Interval
		return Result{Allowed: true, Remaining: (p.Tolerance - diff) / p.Interval, Reset: time.Duration(diff)}
	}
	tat := e.Ahead + e.Granted*p.Interval
	return Result{RetryAfter: time.Duration(tat + p.Interval - p.Tolerance), Reset: time.Duration(tat)}
}

// BatchStore is a Store that decides the requests of many buckets in one round trip,
// atomically per bucket. The limiter coalesces concurrent requests into such calls (see
// Coalescer), so a busy key costs one round trip per batch instead of one per request.
type BatchStore interface {
	Store
	// TakeBatch decides every entry (setting Granted, Ahead and Used) in one round trip.
	// An error applies to every entry.
	TakeBatch(ctx context.Context, entries []BatchEntry) error
}

// maxBatchEntries bounds the distinct buckets of one store call, so one call (one Lua
// script run in Redis, which blocks the server while it runs) stays short; requests for
// more buckets queue for the next call.
const maxBatchEntries = 256

// Coalescer makes a BatchStore serve Take with group commit: while one TakeBatch call is in
// flight, arriving requests queue in the next group; when the call returns, the whole group
// goes in one call. A request waits for the call in flight, the calls of the groups queued
// before its own (a group holds at most maxBatchEntries buckets, so there is more than one
// only with that many distinct keys waiting), and its own call.
// With nothing in flight the request makes the call itself, in its own goroutine; a queued
// group is run by a goroutine started for it, which keeps running groups while they queue.
// Decisions stay exact: the store decides each bucket's N requests atomically, as N
// consecutive takes at its own clock.
type Coalescer struct {
	st BatchStore

	mu    sync.Mutex
	busy  bool     // a call is in flight (or about to be)
	queue []*group // groups waiting for the call in flight, oldest first
}

// group is the requests of one store call.
type group struct {
	entries []BatchEntry
	index   map[batchKey]int // entry of each bucket (nil for a leader's group of one)
	done    chan struct{}    // closed once entries and err are final
	err     error
}

type batchKey struct {
	key string
	p   Policy
}

// NewCoalescer wraps st. The limiter wraps every BatchStore it is given in one (one per
// limiter).
func NewCoalescer(st BatchStore) *Coalescer { return &Coalescer{st: st} }

// Take implements Store. ctx bounds only this request's wait: the store call it joins runs
// to completion for the other requests of its group, bounded by the store's own timeouts.
func (c *Coalescer) Take(ctx context.Context, key string, p Policy) (Result, error) {
	c.mu.Lock()
	if !c.busy {
		c.busy = true
		c.mu.Unlock()
		g := &group{entries: []BatchEntry{{Key: key, Policy: p, N: 1}}}
		c.run(g)
		c.next(g.err)
		if g.err != nil {
			return Result{}, g.err
		}
		return g.entries[0].Result(0), nil
	}
	g := c.joinLocked(key, p)
	j := g.index[batchKey{key, p}]
	i := g.entries[j].N
	g.entries[j].N++
	c.mu.Unlock()
	select {
	case <-g.done:
		if g.err != nil {
			return Result{}, g.err
		}
		return g.entries[j].Result(i), nil
	case <-ctx.Done():
		// The queued request still counts in its group: the store spends its token, as a
		// single call already sent would have.
		return Result{}, ctx.Err()
	}
}

// joinLocked returns the queued group the request for (key, p) joins, making its entry
// (with N = 0) if needed. The caller holds c.mu.
func (c *Coalescer) joinLocked(key string, p Policy) *group {
	bk := batchKey{key, p}
	if n := len(c.queue); n > 0 {
		g := c.queue[n-1]
		if _, ok := g.index[bk]; ok {
			return g
		}
		if len(g.entries) < maxBatchEntries {
			g.index[bk] = len(g.entries)
			g.entries = append(g.entries, BatchEntry{Key: key, Policy: p})
			return g
		}
	}
	g := &group{index: map[batchKey]int{bk: 0}, entries: []BatchEntry{{Key: key, Policy: p}}, done: make(chan struct{})}
	c.queue = append(c.queue, g)
	return g
}

// run makes g's store call. The call is not tied to any one request's context: the
// store's own timeouts bound it.
func (c *Coalescer) run(g *group) {
	g.err = c.st.TakeBatch(context.Background(), g.entries)
}

// next ends the call in flight, whose error is err: with groups queued, a goroutine runs
// them in order; otherwise the coalescer is idle.
func (c *Coalescer) next(err error) {
	c.mu.Lock()
	if err != nil {
		c.failQueuedLocked(err)
	}
	if len(c.queue) == 0 {
		c.busy = false
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	go c.drain()
}

// failQueuedLocked fails every queued group with err, the error of the call they queued
// behind, without a call of their own: their requests arrived while the store was failing,
// and the limiter's onStoreError and retry pause apply to them. Groups that queue later
// make their own call. The caller holds c.mu.
func (c *Coalescer) failQueuedLocked(err error) {
	for _, g := range c.queue {
		g.err = err
		close(g.done)
	}
	c.queue = nil
}

// Queued counts the requests waiting behind the call in flight (tests use it to queue
// requests deterministically).
func (c *Coalescer) Queued() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, g := range c.queue {
		for i := range g.entries {
			n += g.entries[i].N
		}
	}
	return n
}

// Busy reports whether a store call is in flight.
func (c *Coalescer) Busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy
}

// drain runs queued groups until none is left.
func (c *Coalescer) drain() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		g := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.mu.Unlock()
		c.run(g)
		if g.err != nil {
			c.mu.Lock()
			c.failQueuedLocked(g.err)
			c.mu.Unlock()
		}
		close(g.done)
	}
}
