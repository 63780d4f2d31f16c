package tcp

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// target is one upstream address and what the proxy knows about it. It lives in the shared
// store, so its counts and its down mark survive reloads and are shared by every tcp site
// that names the address.
type target struct {
	addr      string
	active    atomic.Int64 // open connections (least-conn)
	fails     atomic.Uint32
	downUntil atomic.Int64 // unix nanoseconds; 0: up
}

// up reports whether the target is not marked down at now.
func (t *target) up(now time.Time) bool { return t.downUntil.Load() <= now.UnixNano() }

// succeeded clears the target's failures.
func (t *target) succeeded() {
	if t.fails.Load() != 0 {
		t.fails.Store(0)
	}
	if t.downUntil.Load() != 0 {
		t.downUntil.Store(0)
	}
}

// failed counts a failed attempt; after maxFails in a row the target is marked down for
// timeout (nginx's max_fails and fail_timeout). It reports whether this attempt marked it.
func (t *target) failed(maxFails uint32, timeout time.Duration) bool {
	if maxFails == 0 {
		return false
	}
	if t.fails.Add(1) < maxFails {
		return false
	}
	t.fails.Store(0)
	t.downUntil.Store(time.Now().Add(timeout).UnixNano())
	return true
}

// picker orders the targets for one connection: the first is tried first, the others are
// the failover order.
type picker interface {
	order(ts []*target, now time.Time) []*target
}

// newPicker returns the picker of a strategy name ("" is round-robin).
func newPicker(name string) (picker, bool) {
	switch strings.ToLower(name) {
	case "", "round-robin", "roundrobin":
		return &roundRobin{}, true
	case "random":
		return randomPick{}, true
	case "least-conn", "leastconn", "least-connections":
		return &leastConn{}, true
	}
	return &roundRobin{}, false
}

type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) order(ts []*target, now time.Time) []*target {
	return rotate(ts, int(r.next.Add(1)-1), now)
}

type randomPick struct{}

func (randomPick) order(ts []*target, now time.Time) []*target {
	if len(ts) == 0 {
		return nil
	}
	return rotate(ts, rand.IntN(len(ts)), now)
}

// leastConn tries the target with the fewest open connections first; round-robin breaks
// ties, so equal targets share the load.
type leastConn struct{ rr roundRobin }

func (l *leastConn) order(ts []*target, now time.Time) []*target {
	out := l.rr.order(ts, now)
	slices.SortStableFunc(out, func(a, b *target) int {
		x, y := a.active.Load(), b.active.Load()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return out
}

// rotate returns the targets that are up, starting at the one at index start of that list;
// when every target is down, all of them (a target marked down may be back, and refusing
// every client is worse than one more attempt).
func rotate(ts []*target, start int, now time.Time) []*target {
	live := make([]*target, 0, len(ts))
	for _, t := range ts {
		if t.up(now) {
			live = append(live, t)
		}
	}
	if len(live) == 0 {
		live = append(live, ts...)
	}
	n := len(live)
	if n == 0 {
		return nil
	}
	start %= n
	out := make([]*target, 0, n)
	out = append(out, live[start:]...)
	return append(out, live[:start]...)
}
