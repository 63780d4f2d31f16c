package core

import (
	"fmt"
	"reflect"
)

// Memoizer is a context with a memo for the generation being built: *SiteContext (one site)
// and *GlobalContext (every site).
type Memoizer interface {
	Memo(key string, build func() any) any
}

// MemoOf is m.Memo with the value's type: it returns the value stored under key, building
// it with build on first use. It panics, naming the key and both types, when the stored
// value is not a T (two modules using one key is a programming error). build must not
// return a nil interface.
func MemoOf[T any](m Memoizer, key string, build func() T) T {
	return as[T](m.Memo(key, func() any { return build() }), "memo", key)
}

// SharedOf is s.Get with the value's type: it returns the value stored under key in the
// store that survives reloads, building it with build when absent. It panics like MemoOf
// when the stored value is not a T.
func SharedOf[T any](s Shared, key string, build func() T) T {
	return as[T](s.Get(key, func() any { return build() }), "shared", key)
}

// as returns v as a T, or panics naming the store, the key and both types.
func as[T any](v any, store, key string) T {
	t, ok := v.(T)
	if !ok {
		panic(fmt.Sprintf("core: %s value %q is a %T, not a %v", store, key, v, reflect.TypeFor[T]()))
	}
	return t
}
