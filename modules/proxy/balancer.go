package proxy

import (
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

// upstreamSet is an immutable list of upstreams with what the strategies precompute from it
// (the weighted slot sequence). Runtime changes (Admin API add/remove/weight) build a new set
// and swap it in atomically.
type upstreamSet struct {
	ups      []*upstream
	slots    []int // weighted round-robin sequence of indexes into ups
	weighted bool  // some weight differs from 1
}

func newUpstreamSet(ups []*upstream) *upstreamSet {
	s := &upstreamSet{ups: ups}
	s.slots = weightedSlots(ups)
	for _, u := range ups {
		if u.weight.Load() != 1 {
			s.weighted = true
		}
	}
	return s
}

const maxWeightSlots = 4096

// weightedSlots is smooth weighted round-robin unrolled into a sequence (weights 3:1 give
// a a b a): a pick is one atomic increment. Very large weight sums are scaled down.
func weightedSlots(ups []*upstream) []int {
	if len(ups) == 0 {
		return nil
	}
	ws := make([]int64, len(ups))
	var total int64
	var g uint32
	for i, u := range ups {
		w := u.weight.Load()
		if w == 0 {
			w = 1
		}
		ws[i] = int64(w)
		g = gcd(g, w)
	}
	for i := range ws {
		ws[i] /= int64(g)
		total += ws[i]
	}
	if total > maxWeightSlots {
		scale := float64(maxWeightSlots) / float64(total)
		total = 0
		for i := range ws {
			ws[i] = max(1, int64(float64(ws[i])*scale))
			total += ws[i]
		}
	}
	cur := make([]int64, len(ups))
	slots := make([]int, 0, total)
	for range total {
		best := 0
		for i := range ups {
			cur[i] += ws[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		slots = append(slots, best)
	}
	return slots
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// selector decides which upstreams may take the current request. It lives on the stack of
// one pick; strategies call ok for each candidate they consider.
type selector struct {
	p         *pool
	now       int64
	exclude   *upstream
	single    bool // the set has one upstream: never exclude it
	slowStart time.Duration
	saturated bool
	only      *upstream // when set, only this upstream qualifies
	any       bool      // fail-open: every upstream qualifies
}

func (s *selector) ok(u *upstream) bool {
	if s.any {
		return true
	}
	if s.only != nil {
		return u == s.only && s.p.available(u, s.now)
	}
	if u == s.exclude && !s.single {
		return false
	}
	if !u.selectable(s.now) {
		return false
	}
	if s.p.maxConns > 0 && u.st.active.Load() >= s.p.maxConns {
		s.saturated = true
		return false
	}
	return u.slowStartAdmit(s.slowStart, s.now)
}

// strategyKind names a load-balancing strategy.
type strategyKind int

const (
	stratRoundRobin strategyKind = iota
	stratWeighted
	stratRandom
	stratLeastConn
	stratLeastResponseTime
	stratP2C
	stratHash
)

// strategy picks among the upstreams of a set those the selector accepts. It is a concrete
// type switched on, not an interface, so a pick allocates nothing.
type strategy struct {
	kind strategyKind
	n    atomic.Uint64
	key  func(r *http.Request) string // hash strategies
}

func newStrategy(name, hashKey string) *strategy {
	switch name {
	case "weighted-round-robin":
		return &strategy{kind: stratWeighted}
	case "random":
		return &strategy{kind: stratRandom}
	case "least-conn":
		return &strategy{kind: stratLeastConn}
	case "least-response-time":
		return &strategy{kind: stratLeastResponseTime}
	case "p2c":
		return &strategy{kind: stratP2C}
	case "ip-hash":
		return &strategy{kind: stratHash, key: clientIP}
	case "consistent-hash":
		return &strategy{kind: stratHash, key: hashKeyFunc(hashKey)}
	default:
		return &strategy{kind: stratRoundRobin}
	}
}

// hashed reports whether the strategy maps keys to upstreams (slow start does not apply).
func (st *strategy) hashed() bool { return st.kind == stratHash }

func (st *strategy) pick(r *http.Request, s *upstreamSet, sel *selector) *upstream {
	switch st.kind {
	case stratWeighted:
		return st.weighted(s, sel)
	case stratRandom:
		return probe(s, rand.IntN(max(len(s.ups), 1)), sel)
	case stratLeastConn:
		return st.leastConn(s, sel)
	case stratLeastResponseTime:
		return st.leastResponseTime(s, sel)
	case stratP2C:
		return st.p2c(s, sel)
	case stratHash:
		return hashPick(st.key(r), s, sel)
	default:
		return st.roundRobin(s, sel)
	}
}

// probe returns the first acceptable upstream starting at index start.
func probe(s *upstreamSet, start int, sel *selector) *upstream {
	n := len(s.ups)
	for i := range n {
		if u := s.ups[(start+i)%n]; sel.ok(u) {
			return u
		}
	}
	return nil
}

func (st *strategy) roundRobin(s *upstreamSet, sel *selector) *upstream {
	n := uint64(len(s.ups))
	if n == 0 {
		return nil
	}
	return probe(s, int((st.n.Add(1)-1)%n), sel)
}

func (st *strategy) weighted(s *upstreamSet, sel *selector) *upstream {
	n := uint64(len(s.slots))
	if n == 0 {
		return nil
	}
	start := st.n.Add(1) - 1
	for i := range n {
		if u := s.ups[s.slots[(start+i)%n]]; sel.ok(u) {
			return u
		}
	}
	return nil
}

// leastConn takes the fewest requests in flight; ties go to the first after a rotating
// start, so equal upstreams share the load.
func (st *strategy) leastConn(s *upstreamSet, sel *selector) *upstream {
	n := uint64(len(s.ups))
	if n == 0 {
		return nil
	}
	start := st.n.Add(1) - 1
	var best *upstream
	var bestActive int64
	for i := range n {
		u := s.ups[(start+i)%n]
		if !sel.ok(u) {
			continue
		}
		if a := u.st.active.Load(); best == nil || a < bestActive {
			best, bestActive = u, a
		}
	}
	return best
}

// leastResponseTime takes the lowest latency of the latest active probe; upstreams without
// probe data rank last, and with no data at all it is round-robin.
func (st *strategy) leastResponseTime(s *upstreamSet, sel *selector) *upstream {
	var best *upstream
	var bestLat int64
	for _, u := range s.ups {
		lat := u.st.probeLatencyNs.Load()
		if lat <= 0 || !sel.ok(u) {
			continue
		}
		if best == nil || lat < bestLat {
			best, bestLat = u, lat
		}
	}
	if best != nil {
		return best
	}
	return st.roundRobin(s, sel)
}

// p2c samples two distinct random upstreams and takes the one with the lower peak-EWMA
// load (latency × requests in flight); with one candidate it is round-robin.
func (st *strategy) p2c(s *upstreamSet, sel *selector) *upstream {
	n := len(s.ups)
	if n < 2 {
		return st.roundRobin(s, sel)
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, c := s.ups[i], s.ups[j]
	aok, cok := sel.ok(a), sel.ok(c)
	switch {
	case aok && cok:
		if c.p2cCost(sel.now) < a.p2cCost(sel.now) {
			return c
		}
		return a
	case aok:
		return a
	case cok:
		return c
	}
	return st.roundRobin(s, sel)
}

// hashPick is rendezvous (highest-random-weight) hashing: every upstream scores
// hash(key, upstream) and the best acceptable one wins, so only the keys of an upstream that
// leaves or joins move, and an unavailable upstream's keys go to the next-best score.
func hashPick(key string, s *upstreamSet, sel *selector) *upstream {
	kh := fnv64(key)
	var best *upstream
	var bestScore uint64
	for _, u := range s.ups {
		if !sel.ok(u) {
			continue
		}
		if sc := mix64(kh ^ u.st.hash()); best == nil || sc > bestScore {
			best, bestScore = u, sc
		}
	}
	return best
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hash returns the upstream URL's FNV-1a hash (computed once).
func (s *upstreamState) hash() uint64 {
	if h := s.urlHash.Load(); h != 0 {
		return h
	}
	h := fnv64(s.url) | 1
	s.urlHash.Store(h)
	return h
}

// hashKeyFunc returns the key function for hashKey: "ip", "url" or "header:<Name>" (falling
// back to the client IP when the header is absent).
func hashKeyFunc(spec string) func(r *http.Request) string {
	switch {
	case spec == "url":
		return func(r *http.Request) string { return r.Host + r.URL.RequestURI() }
	case len(spec) > 7 && spec[:7] == "header:":
		name := http.CanonicalHeaderKey(spec[7:])
		return func(r *http.Request) string {
			if v := r.Header.Get(name); v != "" {
				return v
			}
			return clientIP(r)
		}
	default:
		return clientIP
	}
}
