package core

import "sync"

// SharedStore is the default Shared implementation: a mutex-guarded map that the server keeps
// from one generation to the next.
type SharedStore struct {
	mu sync.Mutex
	m  map[string]any
}

// NewSharedStore returns an empty store.
func NewSharedStore() *SharedStore { return &SharedStore{m: map[string]any{}} }

// Get implements Shared.
func (s *SharedStore) Get(key string, build func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[key]; ok {
		return v
	}
	v := build()
	s.m[key] = v
	return v
}
