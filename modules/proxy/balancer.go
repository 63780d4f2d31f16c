package proxy

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
)

// upstream is one target of a route.
type upstream struct {
	url       *url.URL
	weight    uint32
	self      bool // points back at Conduit itself
	transport *http.Transport
	label     string
}

// balancer picks the upstream for a request. Implementations are safe for concurrent use and
// allocation-free.
type balancer interface {
	pick(r *http.Request) *upstream
}

// single always returns its one upstream.
type single struct{ u *upstream }

func (s single) pick(*http.Request) *upstream { return s.u }

// roundRobin rotates through the upstreams with an atomic counter.
type roundRobin struct {
	ups []*upstream
	n   atomic.Uint64
}

func (b *roundRobin) pick(*http.Request) *upstream {
	return b.ups[(b.n.Add(1)-1)%uint64(len(b.ups))]
}

// random picks uniformly.
type randomPick struct{ ups []*upstream }

func (b randomPick) pick(*http.Request) *upstream { return b.ups[rand.IntN(len(b.ups))] }

// weightedRR is smooth weighted round-robin precomputed into a slot sequence, so a pick is
// one atomic increment. The sequence interleaves upstreams (weights 3:1 → a a b a) rather
// than bursting.
type weightedRR struct {
	slots []*upstream
	n     atomic.Uint64
}

const maxWeightSlots = 4096

func newWeighted(ups []*upstream) balancer {
	var total uint64
	g := uint32(0)
	for _, u := range ups {
		total += uint64(u.weight)
		g = gcd(g, u.weight)
	}
	if g > 1 {
		total /= uint64(g)
	}
	if total > maxWeightSlots {
		return &weightedRandom{ups: ups, total: total * uint64(g)}
	}
	cur := make([]int64, len(ups))
	slots := make([]*upstream, 0, total)
	for range total {
		best := 0
		for i, u := range ups {
			cur[i] += int64(u.weight / max(g, 1))
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		slots = append(slots, ups[best])
	}
	return &weightedRR{slots: slots}
}

func (b *weightedRR) pick(*http.Request) *upstream {
	return b.slots[(b.n.Add(1)-1)%uint64(len(b.slots))]
}

// weightedRandom is the fallback for very large weight sums.
type weightedRandom struct {
	ups   []*upstream
	total uint64
}

func (b *weightedRandom) pick(*http.Request) *upstream {
	x := rand.Uint64N(b.total)
	for _, u := range b.ups {
		if x < uint64(u.weight) {
			return u
		}
		x -= uint64(u.weight)
	}
	return b.ups[len(b.ups)-1]
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// newBalancer builds the balancer for a strategy. Strategies not implemented yet use
// round-robin (validation warned).
func newBalancer(strategy string, ups []*upstream) balancer {
	if len(ups) == 1 {
		return single{ups[0]}
	}
	switch strategy {
	case "random":
		return randomPick{ups}
	case "weighted-round-robin":
		return newWeighted(ups)
	default:
		weighted := false
		for _, u := range ups {
			if u.weight != 1 {
				weighted = true
			}
		}
		if weighted && strategy == "" {
			return newWeighted(ups)
		}
		return &roundRobin{ups: ups}
	}
}
