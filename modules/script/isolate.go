package script

import (
	"go/token"
	"reflect"
)

// A symbol table hands yaegi a package variable as the variable itself (an addressable
// reflect.Value): a script that takes its address (`p := &rand.Reader; *p = r`) then writes
// the process's variable, not a copy. In a sandbox that would let a script replace
// crypto/rand's Reader for the whole process, redefine io.EOF for every reader, or rewrite a
// shared table (unicode's, crc32's). isolateVar gives a sandboxed script a copy instead: the
// script can read and assign it like the variable, and nothing it does reaches the rest of
// the process. Values a script can only compare or call keep their identity (an error
// sentinel, a context key, a function, an interface's value), so `err == io.EOF` and
// `ctx.Value(http.LocalAddrContextKey)` behave as in Go.

// isolateDepth bounds how deep copies.value follows pointers, maps and slices: the tables
// of the sandbox's packages are at most three levels deep (unicode.Categories →
// *RangeTable → []Range16); a deeper value is shared from there on.
const isolateDepth = 8

// copies maps what a pointer pointed to onto its copy, so that one symbol table's variables
// that share a value (unicode.Upper is unicode.Categories["Lu"]) share its copy: the value
// is copied once, and the script sees the same sharing as Go code does.
type copies map[ptrKey]reflect.Value

// ptrKey identifies a pointer of a given type.
type ptrKey struct {
	p uintptr
	t reflect.Type
}

// isolateVar returns a new variable holding a copy of the package variable v (see above);
// a value that is not a variable (a function, a type, a constant) is returned as it is.
func isolateVar(v reflect.Value, seen copies) reflect.Value {
	if !v.CanAddr() {
		return v
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(seen.value(v, isolateDepth))
	return c
}

// value copies what a script could change in place through v: the value a pointer
// points to, and the elements of maps, slices and arrays, and the exported fields of
// structs. Kept as they are: interfaces, functions and channels, and pointers that are
// identities: to an unexported type (a script cannot name it; context keys are such
// pointers) or to an error (sentinels such as http.ErrNotSupported, compared with errors.Is).
func (seen copies) value(v reflect.Value, depth int) reflect.Value {
	if depth == 0 {
		return v
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || !exportedType(v.Type().Elem()) || v.Type().Implements(errorType) {
			return v
		}
		k := ptrKey{v.Pointer(), v.Type()}
		if c, ok := seen[k]; ok {
			return c
		}
		c := reflect.New(v.Type().Elem())
		seen[k] = c
		c.Elem().Set(seen.value(v.Elem(), depth-1))
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), seen.value(it.Value(), depth-1))
		}
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(seen.value(v.Index(i), depth-1))
		}
		return c
	case reflect.Array:
		c := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			c.Index(i).Set(seen.value(v.Index(i), depth-1))
		}
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		for i := range v.NumField() {
			if c.Field(i).CanSet() {
				c.Field(i).Set(seen.value(v.Field(i), depth-1))
			}
		}
		return c
	}
	return v
}

// errorType is the error interface.
var errorType = reflect.TypeFor[error]()

// exportedType reports whether a script can name t: an unnamed or predeclared type, or an
// exported one.
func exportedType(t reflect.Type) bool {
	return t.Name() == "" || t.PkgPath() == "" || token.IsExported(t.Name())
}
