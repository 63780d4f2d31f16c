package ratelimit

import (
	"context"
	"sort"
	"sync"

	"github.com/conduitproxy/conduit/core"
)

// Store is a shared bucket store (Redis). The in-memory store is built in and is not a
// Store: it keeps its buckets in a typed map that needs no key string per request.
type Store interface {
	// Take spends one token of the bucket named key under policy p, atomically with every
	// other instance that shares the store.
	Take(ctx context.Context, key string, p Policy) (Result, error)
}

// StoreFactory builds (or looks up) the store for a `store:` URL such as
// redis://host:6379/0. It is called at provision time; it must not block on the network,
// since a store that is down at start-up is handled like one that fails later.
type StoreFactory func(ctx *core.SiteContext, url string) (Store, error)

// stores maps URL schemes to factories. Written only from init() through RegisterStore
// (like core.Register), read afterwards.
var stores = struct {
	sync.RWMutex
	m map[string]StoreFactory
}{m: map[string]StoreFactory{}}

// RegisterStore makes a store available for `store:` URLs with the given scheme
// ("redis", "rediss"). Call it from init(); the redis module does, so that a build without
// it reports `store: redis://…` as not compiled in and links no Redis client.
func RegisterStore(scheme string, f StoreFactory) {
	stores.Lock()
	defer stores.Unlock()
	if _, dup := stores.m[scheme]; dup {
		panic("ratelimit.RegisterStore: duplicate scheme " + scheme)
	}
	stores.m[scheme] = f
}

// StoreSchemes lists the registered store schemes.
func StoreSchemes() []string {
	stores.RLock()
	defer stores.RUnlock()
	out := make([]string, 0, len(stores.m))
	for k := range stores.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func lookupStore(scheme string) (StoreFactory, bool) {
	stores.RLock()
	defer stores.RUnlock()
	f, ok := stores.m[scheme]
	return f, ok
}
