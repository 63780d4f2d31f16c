package router

import (
	"sort"
	"strings"
)

// HasPathPrefix reports whether path lies at or below prefix, on a segment boundary:
// "/api" covers "/api", "/api/" and "/api/users" but not "/apix". The prefix "/" covers every
// path; a prefix ending in "/" covers only paths below it.
func HasPathPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	if len(path) == len(prefix) || prefix == "" || prefix[len(prefix)-1] == '/' {
		return true
	}
	return path[len(prefix)] == '/'
}

// PrefixTable maps path prefixes to values and finds the longest prefix that covers a path.
// Longest-prefix matching makes the order of keys in the file irrelevant (YAML maps have none
// after parsing) and is what users of nginx and Caddy expect.
type PrefixTable[T any] struct {
	entries []prefixEntry[T]
}

type prefixEntry[T any] struct {
	prefix string
	value  T
}

// Add inserts prefix. A later Add of the same prefix replaces the value.
func (t *PrefixTable[T]) Add(prefix string, v T) {
	for i := range t.entries {
		if t.entries[i].prefix == prefix {
			t.entries[i].value = v
			return
		}
	}
	t.entries = append(t.entries, prefixEntry[T]{prefix, v})
	sort.SliceStable(t.entries, func(i, j int) bool { return len(t.entries[i].prefix) > len(t.entries[j].prefix) })
}

// Len returns the number of prefixes.
func (t *PrefixTable[T]) Len() int { return len(t.entries) }

// Lookup returns the value of the longest prefix covering path.
func (t *PrefixTable[T]) Lookup(path string) (prefix string, v T, ok bool) {
	for i := range t.entries {
		e := &t.entries[i]
		if HasPathPrefix(path, e.prefix) {
			return e.prefix, e.value, true
		}
	}
	return "", v, false
}

// Each calls fn for every entry, longest prefix first.
func (t *PrefixTable[T]) Each(fn func(prefix string, v T)) {
	for _, e := range t.entries {
		fn(e.prefix, e.value)
	}
}

// StripPrefix removes prefix from path on a segment boundary and keeps the result rooted:
// StripPrefix("/api/users", "/api") is "/users", StripPrefix("/api", "/api") is "/".
func StripPrefix(path, prefix string) string {
	if prefix == "" || prefix == "/" || !HasPathPrefix(path, prefix) {
		return path
	}
	rest := path[len(strings.TrimSuffix(prefix, "/")):]
	if rest == "" || rest[0] != '/' {
		return "/" + rest
	}
	return rest
}
