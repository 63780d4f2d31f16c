package core

import (
	"sort"
	"sync"
)

// SchemeRegistry maps URL schemes ("redis", "disk") to factories of one kind, such as the
// rate limiter's or the cache's stores. Like the module registry it is written from init()
// (a store module registers itself, so a build without it links none of its code) and read
// afterwards.
type SchemeRegistry[F any] struct {
	name string
	mu   sync.RWMutex
	m    map[string]F
}

// NewSchemeRegistry returns an empty registry; name appears in panics.
func NewSchemeRegistry[F any](name string) *SchemeRegistry[F] {
	return &SchemeRegistry[F]{name: name, m: map[string]F{}}
}

// Register adds f for scheme. It panics on a duplicate scheme, a programming error found at
// start-up.
func (r *SchemeRegistry[F]) Register(scheme string, f F) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[scheme]; dup {
		panic(r.name + ": duplicate scheme " + scheme)
	}
	r.m[scheme] = f
}

// Lookup returns the factory for scheme.
func (r *SchemeRegistry[F]) Lookup(scheme string) (F, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[scheme]
	return f, ok
}

// Schemes lists the registered schemes, sorted.
func (r *SchemeRegistry[F]) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
