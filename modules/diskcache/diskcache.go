// Package diskcache is the response cache's disk store (`cache.store: disk:/path`). Each
// variant is one file, written atomically (a temporary file, fsync, rename, fsync of the
// directory), so a crash leaves either the old entry or the new one, never a torn one; every
// file also carries a CRC-32C that is checked on every read. The index (primary key →
// variant files, LRU order, sizes) lives in memory and is rebuilt at start by scanning the
// directory, which also removes leftover temporary files and anything damaged or expired.
// The store stays within its byte budget (maxSizeMb) by evicting the least recently used
// files.
package diskcache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/modules/cache"
)

func init() {
	core.Register(core.Module{
		ID:           "stores.diskcache",
		Feature:      "diskcache",
		Description:  "disk store for the response cache (store: disk:/path): atomic writes, index rebuilt at start, LRU byte budget",
		StoreSchemes: []string{"disk"},
	})
	cache.RegisterStore("disk", factory)
}

const (
	entrySuffix = ".entry"
	tmpSuffix   = ".tmp"
	maxVariants = 32
)

func factory(_ *core.SiteContext, url string, opts cache.StoreOptions) (cache.Store, error) {
	dir := strings.TrimPrefix(url, "disk:")
	dir = strings.TrimPrefix(dir, "//")
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("a disk store needs an absolute directory, as in \"disk:/var/cache/conduit\"; got %q", url)
	}
	return Open(dir, opts.MaxBytes)
}

// Store is a directory of cache entries with an in-memory LRU index.
type Store struct {
	dir string
	max int64

	mu    sync.Mutex
	byKey map[string]*object
	head  file // LRU sentinel: head.next is the most recently used
	bytes int64

	// midWrite, when set (tests), runs after half of a temporary file is written.
	midWrite func()
}

type object struct {
	files []*file
}

type file struct {
	key, name  string // primary key; path relative to dir
	size       int64
	expires    int64
	obj        *object
	prev, next *file
}

// Open opens (creating it when needed) the store in dir with a budget of maxBytes (0:
// unbounded) and rebuilds the index from the files found.
func Open(dir string, maxBytes int64) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk cache: %w", err)
	}
	s := &Store{dir: dir, max: maxBytes, byKey: map[string]*object{}}
	s.head.next, s.head.prev = &s.head, &s.head
	if err := s.scan(); err != nil {
		return nil, fmt.Errorf("disk cache: scan %s: %w", dir, err)
	}
	return s, nil
}

// Async implements cache.AsyncStore: writes fsync, so they run off the response path.
func (s *Store) Async() {}

// Bytes is the total size of the indexed files.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// scan rebuilds the index: temporary files are leftovers of interrupted writes and are
// removed; files that do not decode (damaged) or have expired are removed; the rest are
// indexed with their modification time as recency.
func (s *Store) scan() error {
	type found struct {
		f     *file
		mtime time.Time
	}
	var all []found
	now := time.Now().UnixNano()
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			_ = os.Remove(path)
			return nil
		case !strings.HasSuffix(name, entrySuffix):
			return nil
		}
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil
		}
		e, derr := cache.DecodeEntry(data)
		rel, _ := filepath.Rel(s.dir, path)
		if derr != nil || now >= e.Expires() || rel != fileName(e.Key, e.VariantID()) {
			_ = os.Remove(path)
			return nil
		}
		info, ierr := d.Info()
		if ierr != nil {
			return nil
		}
		all = append(all, found{&file{key: e.Key, name: rel, size: int64(len(data)), expires: e.Expires()}, info.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mtime.Before(all[j].mtime) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range all {
		s.addLocked(f.f)
	}
	s.evictLocked()
	return nil
}

// fileName is where a variant lives: two hex digits of fan-out, then hashes of the primary
// key and the variant.
func fileName(key, variant string) string {
	k := sha256.Sum256([]byte(key))
	v := sha256.Sum256([]byte(variant))
	hk := hex.EncodeToString(k[:20])
	return filepath.Join(hk[:2], hk+"-"+hex.EncodeToString(v[:8])+entrySuffix)
}

// Get implements cache.Store.
func (s *Store) Get(_ context.Context, key string) ([]*cache.Entry, error) {
	now := time.Now().UnixNano()
	s.mu.Lock()
	o := s.byKey[key]
	if o == nil {
		s.mu.Unlock()
		return nil, nil
	}
	var names []string
	for i := 0; i < len(o.files); i++ {
		f := o.files[i]
		if now >= f.expires {
			s.removeLocked(f)
			i--
			continue
		}
		s.moveFront(f)
		names = append(names, f.name)
	}
	s.mu.Unlock()
	out := make([]*cache.Entry, 0, len(names))
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			continue // evicted meanwhile
		}
		e, err := cache.DecodeEntry(data)
		if err != nil || e.Key != key {
			s.drop(name)
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// drop removes a damaged file and its index entry.
func (s *Store) drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.byKey {
		for _, f := range o.files {
			if f.name == name {
				s.removeLocked(f)
				return
			}
		}
	}
	_ = os.Remove(filepath.Join(s.dir, name))
}

// Set implements cache.Store: write, fsync and rename, then index and evict.
func (s *Store) Set(_ context.Context, e *cache.Entry) error {
	data := e.Encode()
	if s.max > 0 && int64(len(data)) > s.max {
		return nil
	}
	name := fileName(e.Key, e.VariantID())
	if err := s.writeAtomic(name, data); err != nil {
		return fmt.Errorf("disk cache: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.byKey[e.Key]; o != nil {
		for _, f := range o.files {
			if f.name == name {
				s.unlinkLocked(f) // the file itself was just replaced
				break
			}
		}
		if o := s.byKey[e.Key]; o != nil && len(o.files) >= maxVariants {
			s.removeLocked(o.files[0])
		}
	}
	s.addLocked(&file{key: e.Key, name: name, size: int64(len(data)), expires: e.Expires()})
	s.evictLocked()
	return nil
}

func (s *Store) writeAtomic(name string, data []byte) error {
	final := filepath.Join(s.dir, name)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := final + "." + hex.EncodeToString(rnd[:]) + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	half := len(data) / 2
	_, err = f.Write(data[:half])
	if err == nil && s.midWrite != nil {
		s.midWrite()
	}
	if err == nil {
		_, err = f.Write(data[half:])
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Purge implements cache.Store.
func (s *Store) Purge(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.byKey[key]
	if o == nil {
		return false, nil
	}
	for len(o.files) > 0 {
		s.removeLocked(o.files[len(o.files)-1])
	}
	return true, nil
}

func (s *Store) addLocked(f *file) {
	o := s.byKey[f.key]
	if o == nil {
		o = &object{}
		s.byKey[f.key] = o
	}
	f.obj = o
	o.files = append(o.files, f)
	f.prev, f.next = &s.head, s.head.next
	s.head.next.prev = f
	s.head.next = f
	s.bytes += f.size
}

func (s *Store) evictLocked() {
	for s.max > 0 && s.bytes > s.max && s.head.prev != &s.head {
		s.removeLocked(s.head.prev)
	}
}

// removeLocked drops f from the index and deletes its file.
func (s *Store) removeLocked(f *file) {
	s.unlinkLocked(f)
	_ = os.Remove(filepath.Join(s.dir, f.name))
}

// unlinkLocked drops f from the index only.
func (s *Store) unlinkLocked(f *file) {
	if f.prev == nil {
		return
	}
	f.prev.next, f.next.prev = f.next, f.prev
	f.prev, f.next = nil, nil
	s.bytes -= f.size
	o := f.obj
	if i := slices.Index(o.files, f); i >= 0 {
		o.files = slices.Delete(o.files, i, i+1)
	}
	if len(o.files) == 0 && s.byKey[f.key] == o {
		delete(s.byKey, f.key)
	}
}

func (s *Store) moveFront(f *file) {
	if s.head.next == f {
		return
	}
	f.prev.next, f.next.prev = f.next, f.prev
	f.prev, f.next = &s.head, s.head.next
	s.head.next.prev = f
	s.head.next = f
}
