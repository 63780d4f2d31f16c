package cache

import (
	"hash/maphash"
	"sync"
)

// flightShards is the number of lock shards of the thundering-herd guard.
const flightShards = 16

// flight is one upstream fetch for a primary key that other requests may wait on.
type flight struct {
	done   chan struct{}
	entry  *Entry // what the fetch stored, nil when it stored nothing
	failed bool   // the upstream answered 5xx or could not be reached
}

// flights makes one request per primary key fetch from the upstream while the others wait
// for its result (RFC 9111 §4 allows collapsing).
type flights struct {
	seed   maphash.Seed
	shards [flightShards]struct {
		mu sync.Mutex
		m  map[string]*flight
	}
}

func newFlights() *flights {
	f := &flights{seed: maphash.MakeSeed()}
	for i := range f.shards {
		f.shards[i].m = map[string]*flight{}
	}
	return f
}

// join returns the flight of key and whether the caller leads it (and must call finish).
func (f *flights) join(key string) (*flight, bool) {
	sh := &f.shards[maphash.String(f.seed, key)%flightShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if fl, ok := sh.m[key]; ok {
		return fl, false
	}
	fl := &flight{done: make(chan struct{})}
	sh.m[key] = fl
	return fl, true
}

// tryLead starts a flight only when none is running (background refreshes).
func (f *flights) tryLead(key string) (*flight, bool) {
	fl, leader := f.join(key)
	if !leader {
		return nil, false
	}
	return fl, true
}

// finish ends the flight led by the caller, publishing e (and whether the upstream failed)
// to the waiters.
func (f *flights) finish(key string, fl *flight, e *Entry, failed bool) {
	sh := &f.shards[maphash.String(f.seed, key)%flightShards]
	sh.mu.Lock()
	if sh.m[key] == fl {
		delete(sh.m, key)
	}
	sh.mu.Unlock()
	fl.entry, fl.failed = e, failed
	close(fl.done)
}
