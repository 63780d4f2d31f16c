package cache

import (
	"context"
	"net/http"
	"slices"
	"sync"
)

// maxVariants bounds the variants kept per primary key, so a client cannot grow one URL's
// list without limit by sending many distinct values of a Vary header.
const maxVariants = 32

// MemStore is the in-process store: a map from primary key to variants, and one LRU list over
// all variants with a byte budget. A hit takes one uncontended mutex and moves the entry to
// the front; nothing is allocated.
type MemStore struct {
	mu    sync.Mutex
	m     map[string]*memObject
	head  memNode // sentinel: head.next is the most recently used
	bytes int64
	max   int64
}

type memObject struct {
	nodes []*memNode
}

type memNode struct {
	e          *Entry
	obj        *memObject
	prev, next *memNode
}

// NewMemStore returns an empty store with a budget of maxBytes (0: unbounded).
func NewMemStore(maxBytes int64) *MemStore {
	s := &MemStore{m: map[string]*memObject{}, max: maxBytes}
	s.head.next, s.head.prev = &s.head, &s.head
	return s
}

// Bytes is the accounted size of what the store holds.
func (s *MemStore) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Len is the number of variants held.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.m {
		n += len(o.nodes)
	}
	return n
}

// lookup is the hit path: the variant of key selected by h (and usable with Authorization
// when auth), or nil. Entries past their last use are dropped on the way.
func (s *MemStore) lookup(key []byte, h http.Header, auth bool, now int64) *Entry {
	s.mu.Lock()
	o := s.m[string(key)]
	if o == nil {
		s.mu.Unlock()
		return nil
	}
	for i := 0; i < len(o.nodes); i++ {
		n := o.nodes[i]
		if now >= n.e.Expires() {
			s.removeLocked(n)
			i--
			continue
		}
		if n.e.Matches(h) && (!auth || n.e.AuthOK) {
			s.moveFront(n)
			s.mu.Unlock()
			return n.e
		}
	}
	s.mu.Unlock()
	return nil
}

// Get implements Store.
func (s *MemStore) Get(_ context.Context, key string) ([]*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.m[key]
	if o == nil {
		return nil, nil
	}
	out := make([]*Entry, len(o.nodes))
	for i, n := range o.nodes {
		out[i] = n.e
	}
	return out, nil
}

// Set implements Store. An entry larger than the whole budget is not stored.
func (s *MemStore) Set(_ context.Context, e *Entry) error {
	if s.max > 0 && e.size > s.max {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.m[e.Key]
	if o == nil {
		o = &memObject{}
		s.m[e.Key] = o
	}
	for _, n := range o.nodes {
		if sameVariant(n.e, e) {
			s.removeLocked(n)
			break
		}
	}
	if len(o.nodes) >= maxVariants {
		s.removeLocked(o.nodes[0])
	}
	if len(o.nodes) == 0 && s.m[e.Key] != o {
		s.m[e.Key] = o // removeLocked dropped the emptied object
	}
	n := &memNode{e: e, obj: o}
	o.nodes = append(o.nodes, n)
	s.pushFront(n)
	s.bytes += e.size
	for s.max > 0 && s.bytes > s.max && s.head.prev != &s.head {
		s.removeLocked(s.head.prev)
	}
	return nil
}

// Purge implements Store.
func (s *MemStore) Purge(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.m[key]
	if o == nil {
		return false, nil
	}
	for len(o.nodes) > 0 {
		s.removeLocked(o.nodes[len(o.nodes)-1])
	}
	return true, nil
}

func (s *MemStore) removeLocked(n *memNode) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
	s.bytes -= n.e.size
	o := n.obj
	if i := slices.Index(o.nodes, n); i >= 0 {
		o.nodes = slices.Delete(o.nodes, i, i+1)
	}
	if len(o.nodes) == 0 && s.m[n.e.Key] == o {
		delete(s.m, n.e.Key)
	}
}

func (s *MemStore) pushFront(n *memNode) {
	n.prev, n.next = &s.head, s.head.next
	s.head.next.prev = n
	s.head.next = n
}

func (s *MemStore) moveFront(n *memNode) {
	if s.head.next == n {
		return
	}
	n.prev.next, n.next.prev = n.next, n.prev
	s.pushFront(n)
}

// sameVariant reports whether two entries describe the same variant of one key.
func sameVariant(a, b *Entry) bool {
	if len(a.Vary) != len(b.Vary) {
		return false
	}
	for i := range a.Vary {
		if a.Vary[i].Name != b.Vary[i].Name || !slices.Equal(a.Vary[i].Values, b.Vary[i].Values) {
			return false
		}
	}
	return true
}
