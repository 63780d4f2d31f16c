package cache

import (
	"context"
	"strings"

	"github.com/conduitproxy/conduit/core"
)

// Store holds cached responses. Entries are grouped by primary key (see Key): every
// variant of one URL lives under its primary key, so Purge by URL removes all of them.
// Implementations must be safe for concurrent use and bound their own size.
type Store interface {
	// Get returns the stored variants of key (possibly stale; the cache judges freshness).
	// An error means the store could not answer; the cache then fails open (a miss).
	Get(ctx context.Context, key string) ([]*Entry, error)
	// Set stores e under e.Key, replacing the variant with the same VariantID.
	Set(ctx context.Context, e *Entry) error
	// Purge removes every variant of key and reports whether anything was removed.
	Purge(ctx context.Context, key string) (bool, error)
}

// AsyncStore is a Store whose writes are slow (network, fsync): the cache calls Set from a
// background goroutine, so the client's response is not held up.
type AsyncStore interface {
	Store
	// Async marks the store; it is never called.
	Async()
}

// StoreOptions are what a store factory is given.
type StoreOptions struct {
	// MaxBytes is the store's byte budget (maxSizeMb), 0 for unbounded.
	MaxBytes int64
}

// StoreFactory builds the store for a `store:` value such as redis://host:6379/0 or
// disk:/var/cache/conduit. It is called once per distinct store value for the whole process
// (the cache keeps stores in ctx.Shared, so reloads keep their contents); it must not block
// on the network.
type StoreFactory func(ctx *core.SiteContext, url string, opts StoreOptions) (Store, error)

// stores maps URL schemes to factories (written from init() through RegisterStore).
var stores = core.NewSchemeRegistry[StoreFactory]("cache.RegisterStore")

// RegisterStore makes a store available for `store:` values with the given scheme ("redis",
// "rediss", "disk"). Call it from init(); the redis and diskcache modules do, so a build
// without them reports their stores as not compiled in and links none of their code.
func RegisterStore(scheme string, f StoreFactory) { stores.Register(scheme, f) }

// StoreSchemes lists the registered store schemes.
func StoreSchemes() []string { return stores.Schemes() }

func lookupStore(scheme string) (StoreFactory, bool) { return stores.Lookup(scheme) }

// storeScheme returns the scheme of a store value: "redis" for redis://…, "disk" for
// disk:/path, "" when there is none.
func storeScheme(v string) string {
	i := strings.IndexByte(v, ':')
	if i <= 0 {
		return ""
	}
	return v[:i]
}
