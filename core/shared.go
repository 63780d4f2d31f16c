package core

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// SharedStore is the default Shared implementation: a mutex-guarded map that the server keeps
// from one generation to the next. Each generation reads it through its own SharedUse, which
// counts the generations using each key (like Caddy's UsagePool): when the last generation
// that used a key releases it, the key is removed and its value closed (see SharedUse.Release),
// so the pools and stores of a route a reload removed are freed.
type SharedStore struct {
	mu sync.Mutex
	m  map[string]*sharedEntry
}

// sharedEntry is one value of a SharedStore and the number of SharedUses holding it.
type sharedEntry struct {
	v     any
	users int
}

// NewSharedStore returns an empty store.
func NewSharedStore() *SharedStore { return &SharedStore{m: map[string]*sharedEntry{}} }

// Get implements Shared. A value reached only through Get on the store itself, never through
// a SharedUse, is held by nobody and stays for the store's lifetime.
func (s *SharedStore) Get(key string, build func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entry(key, build).v
}

// entry returns the entry for key, building its value when absent. s.mu must be held.
func (s *SharedStore) entry(key string, build func() any) *sharedEntry {
	if e, ok := s.m[key]; ok {
		return e
	}
	e := &sharedEntry{v: build()}
	s.m[key] = e
	return e
}

// Use returns a view of the store for one generation: every key read through it is held
// until Release.
func (s *SharedStore) Use() *SharedUse { return &SharedUse{store: s, keys: map[string]struct{}{}} }

// SharedUse is one generation's view of a SharedStore (a Shared). It holds every key read
// through it until Release.
type SharedUse struct {
	store    *SharedStore
	mu       sync.Mutex
	keys     map[string]struct{}
	released bool
}

// Get implements Shared: it returns the store's value for key, building it when absent, and
// holds the key for this use. After Release it still answers but holds nothing.
func (u *SharedUse) Get(key string, build func() any) any {
	u.store.mu.Lock()
	defer u.store.mu.Unlock()
	e := u.store.entry(key, build)
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, held := u.keys[key]; !held && !u.released {
		u.keys[key] = struct{}{}
		e.users++
	}
	return e.v
}

// Release lets go of every key this use holds. A key no use holds any more is removed from
// the store, and its value is closed: Close() error, Stop(context.Context) error or
// CloseIdleConnections(), whichever it has. Release is idempotent.
func (u *SharedUse) Release(ctx context.Context) {
	u.mu.Lock()
	keys := u.keys
	u.keys, u.released = nil, true
	u.mu.Unlock()
	var freed []any
	u.store.mu.Lock()
	for k := range keys {
		e := u.store.m[k]
		if e == nil {
			continue
		}
		if e.users--; e.users == 0 {
			delete(u.store.m, k)
			freed = append(freed, e.v)
		}
	}
	u.store.mu.Unlock()
	for _, v := range freed {
		closeShared(ctx, v)
	}
}

// closeShared releases the resources of a freed shared value.
func closeShared(ctx context.Context, v any) {
	var err error
	switch c := v.(type) {
	case io.Closer:
		err = c.Close()
	case Stopper:
		err = c.Stop(ctx)
	case interface{ CloseIdleConnections() }:
		c.CloseIdleConnections()
	}
	if err != nil {
		slog.Warn("closing a shared value no generation uses", "err", err)
	}
}
