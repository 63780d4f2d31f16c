package core

import (
	"context"
	"testing"
)

// closeCounts counts how a freed shared value was closed.
type closeCounts struct{ close, stop, idle int }

type closerValue struct{ c *closeCounts }

func (v closerValue) Close() error { v.c.close++; return nil }

type stopperValue struct{ c *closeCounts }

func (v stopperValue) Stop(context.Context) error { v.c.stop++; return nil }

type idleValue struct{ c *closeCounts }

func (v idleValue) CloseIdleConnections() { v.c.idle++ }

// TestSharedUseRelease: a key is freed, and its value closed once by the method it has,
// when the last use that read it releases; never while another use holds it.
func TestSharedUseRelease(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(*closeCounts) any
		// steps run in order: "a"/"b" get the key through use a/b, "A"/"B" release a/b,
		// "s" gets it straight from the store.
		steps string
		want  closeCounts
	}{
		{"closer, one use", func(c *closeCounts) any { return closerValue{c} }, "aA", closeCounts{close: 1}},
		{"stopper, one use", func(c *closeCounts) any { return stopperValue{c} }, "aA", closeCounts{stop: 1}},
		{"idle pools, one use", func(c *closeCounts) any { return idleValue{c} }, "aA", closeCounts{idle: 1}},
		{"kept by the other use", func(c *closeCounts) any { return closerValue{c} }, "abA", closeCounts{}},
		{"freed by the last use", func(c *closeCounts) any { return closerValue{c} }, "abAB", closeCounts{close: 1}},
		{"release twice", func(c *closeCounts) any { return closerValue{c} }, "aAA", closeCounts{close: 1}},
		{"get after release holds nothing", func(c *closeCounts) any { return closerValue{c} }, "bBbaA", closeCounts{close: 2}},
		{"store get holds nothing", func(c *closeCounts) any { return closerValue{c} }, "sa", closeCounts{}},
		{"never held", func(c *closeCounts) any { return closerValue{c} }, "sAB", closeCounts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got closeCounts
			builds := 0
			build := func() any { builds++; return tc.make(&got) }
			st := NewSharedStore()
			uses := map[byte]*SharedUse{'a': st.Use(), 'b': st.Use()}
			for i := 0; i < len(tc.steps); i++ {
				switch c := tc.steps[i]; c {
				case 'a', 'b':
					uses[c].Get("k", build)
				case 'A', 'B':
					uses[c+'a'-'A'].Release(context.Background())
				case 's':
					st.Get("k", build)
				}
			}
			if got != tc.want {
				t.Fatalf("closed %+v, want %+v", got, tc.want)
			}
			// A freed key is built afresh; a held one is not.
			st.Get("k", build)
			wantBuilds := 1 + tc.want.close + tc.want.stop + tc.want.idle
			if builds != wantBuilds {
				t.Fatalf("built %d times, want %d", builds, wantBuilds)
			}
		})
	}
}
