package ratelimit

import "context"

// Coalescer exposes the limiter's group-commit wrapper to the external tests, which run it
// against a real redis-server (this package cannot import the redis module).
type Coalescer struct{ c *coalescer }

// NewCoalescer wraps st as the limiter does.
func NewCoalescer(st BatchStore) Coalescer { return Coalescer{newCoalescer(st)} }

// Take is coalescer.Take.
func (c Coalescer) Take(ctx context.Context, key string, p Policy) (Result, error) {
	return c.c.Take(ctx, key, p)
}

// Queued counts the requests waiting behind the call in flight.
func (c Coalescer) Queued() int64 {
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	var n int64
	for _, g := range c.c.queue {
		for i := range g.entries {
			n += g.entries[i].N
		}
	}
	return n
}

// Busy reports whether a call is in flight.
func (c Coalescer) Busy() bool {
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	return c.c.busy
}
