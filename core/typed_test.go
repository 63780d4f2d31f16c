package core

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

type memoCounter struct{ n int }

// TestMemoOf: the site and the global memo build a value once per key and return it typed.
func TestMemoOf(t *testing.T) {
	g := NewGlobalContext(context.Background(), nil, nil, nil, nil)
	site := NewSiteContext(context.Background(), &Site{}, nil, g, nil)
	for name, m := range map[string]Memoizer{"site": site, "global": g} {
		builds := 0
		build := func() *memoCounter { builds++; return &memoCounter{n: builds} }
		a, b := MemoOf(m, "k", build), MemoOf(m, "k", build)
		if a != b || builds != 1 || a.n != 1 {
			t.Errorf("%s: %p %p after %d builds", name, a, b, builds)
		}
		if c := MemoOf(m, "other", build); c == a || builds != 2 {
			t.Errorf("%s: a second key shared the first key's value", name)
		}
	}
	if site.Memo("k", nil) == g.Memo("k", nil) {
		t.Error("the site memo and the global memo share values")
	}
}

// TestSharedOf: the shared store keeps one typed value per key across generations, and an
// interface type is a valid T.
func TestSharedOf(t *testing.T) {
	s := NewSharedStore()
	first := SharedOf(s, "c", func() *memoCounter { return &memoCounter{n: 1} })
	next := NewGlobalContext(context.Background(), nil, nil, s, nil) // a later generation
	if again := SharedOf(next.Shared, "c", func() *memoCounter { return &memoCounter{n: 2} }); again != first {
		t.Fatalf("got a new value %d", again.n)
	}
	h := SharedOf[http.Handler](s, "h", func() http.Handler { return http.NotFoundHandler() })
	if h == nil {
		t.Fatal("nil handler")
	}
}

// TestTypedMismatchPanics: a key holding another type panics with the key and both types.
func TestTypedMismatchPanics(t *testing.T) {
	for name, get := range map[string]func(){
		"memo": func() {
			g := NewGlobalContext(context.Background(), nil, nil, nil, nil)
			MemoOf(g, "k", func() int { return 1 })
			MemoOf(g, "k", func() string { return "x" })
		},
		"shared": func() {
			s := NewSharedStore()
			SharedOf(s, "k", func() *memoCounter { return &memoCounter{} })
			SharedOf[http.Handler](s, "k", func() http.Handler { return http.NotFoundHandler() })
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				for _, want := range []string{name + ` value "k"`, "not a "} {
					if !strings.Contains(msg, want) {
						t.Fatalf("panic %q does not say %q", msg, want)
					}
				}
			}()
			get()
			t.Fatal("no panic")
		})
	}
}
