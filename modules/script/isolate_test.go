package script

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/traefik/yaegi/stdlib"
)

// TestIsolateValue: what copies.value copies (changing the copy leaves the original as it
// was) and what it keeps.
func TestIsolateValue(t *testing.T) {
	type Point struct{ X, Y []int }
	type hidden struct{ n int }
	sentinel := &http.ProtocolError{ErrorString: "sentinel"}
	copied := []struct {
		name   string
		mk     func() any     // two calls make equal values
		change func(copy any) // changes the copy in place
	}{
		{"map", func() any { return map[string][]int{"a": {1}} }, func(c any) { c.(map[string][]int)["a"][0] = 9 }},
		{"slice", func() any { return []int{1, 2} }, func(c any) { c.([]int)[0] = 9 }},
		{"pointer to exported struct", func() any { return &Point{X: []int{1}} }, func(c any) { c.(*Point).X[0] = 9 }},
		{"pointer to array", func() any { return &[2]uint32{1, 2} }, func(c any) { c.(*[2]uint32)[0] = 9 }},
	}
	for _, tt := range copied {
		t.Run(tt.name, func(t *testing.T) {
			orig, want := tt.mk(), tt.mk()
			c := copies{}.value(reflect.ValueOf(orig), isolateDepth).Interface()
			if !reflect.DeepEqual(c, orig) {
				t.Fatalf("copy %#v, want equal to %#v", c, orig)
			}
			tt.change(c)
			if !reflect.DeepEqual(orig, want) {
				t.Fatalf("changing the copy changed the original: %#v", orig)
			}
		})
	}
	for _, v := range []any{&hidden{1}, sentinel, io.EOF} {
		if c := (copies{}).value(reflect.ValueOf(v), isolateDepth).Interface(); c != v {
			t.Errorf("%T copied, want it kept (an identity)", v)
		}
	}
	if c := (copies{}).value(reflect.ValueOf(strings.ToUpper), isolateDepth); c.Pointer() != reflect.ValueOf(strings.ToUpper).Pointer() {
		t.Error("a function was not kept")
	}
}

// TestSandboxVariables: every package variable the sandbox offers is the script's own
// variable (writing it leaves the process's as it was), with the same value; identities
// that scripts compare stay.
func TestSandboxVariables(t *testing.T) {
	box := sandboxSymbols(io.Discard, nil)
	n := 0
	for key, syms := range box {
		orig := stdlib.Symbols[key]
		if key == sandboxFmtKey {
			orig = stdlib.Symbols["fmt/fmt"]
		}
		for name, v := range syms {
			o, ok := orig[name]
			if !ok || !o.CanAddr() {
				continue
			}
			if o.Type().Size() == 0 {
				continue // nothing to change (http.NoBody); its address may be any zero-size value's
			}
			n++
			if !v.CanAddr() || !v.CanSet() {
				t.Errorf("%s.%s: the script's copy cannot be assigned", key, name)
				continue
			}
			if v.Addr().Pointer() == o.Addr().Pointer() {
				t.Errorf("%s.%s: the sandbox hands out the process's variable", key, name)
			}
			if !reflect.DeepEqual(v.Interface(), o.Interface()) {
				t.Errorf("%s.%s: the copy's value differs from the variable's", key, name)
			}
		}
	}
	if n < 50 {
		t.Fatalf("%d package variables checked; the sandbox's tables should have more", n)
	}
	for _, tt := range []struct {
		key, name string
		want      any
	}{
		{"io/io", "EOF", io.EOF},
		{"context/context", "Canceled", context.Canceled},
		{"net/http/http", "ErrNotSupported", http.ErrNotSupported},
		{"net/http/http", "LocalAddrContextKey", http.LocalAddrContextKey},
	} {
		if got := box[tt.key][tt.name].Interface(); got != tt.want {
			t.Errorf("%s.%s: %v, want the same value as the process's (scripts compare it)", tt.key, tt.name, got)
		}
	}
	if got := box["unicode/unicode"]["Upper"].Interface().(*unicode.RangeTable); got == unicode.Upper || !reflect.DeepEqual(got, unicode.Upper) {
		t.Error("unicode.Upper: want an equal copy of the table")
	}
	if errors.Is(box["net/http/http"]["ErrNotSupported"].Interface().(error), http.ErrNotSupported) != true {
		t.Error("errors.Is no longer matches http.ErrNotSupported")
	}
}
