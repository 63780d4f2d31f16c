package ratelimit

import (
	"context"

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

// stores maps URL schemes to factories (written from init() through RegisterStore).
var stores = core.NewSchemeRegistry[StoreFactory]("ratelimit.RegisterStore")

// RegisterStore makes a store available for `store:` URLs with the given scheme
// ("redis", "rediss"). Call it from init(); the redis module does, so that a build without
// it reports `store: redis://…` as not compiled in and links no Redis client.
func RegisterStore(scheme string, f StoreFactory) { stores.Register(scheme, f) }

// StoreSchemes lists the registered store schemes.
func StoreSchemes() []string { return stores.Schemes() }

func lookupStore(scheme string) (StoreFactory, bool) { return stores.Lookup(scheme) }
