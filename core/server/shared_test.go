package server_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// sharedProbe is a shared value that records whether the store closed it.
type sharedProbe struct{ closed atomic.Int32 }

// Close implements io.Closer.
func (p *sharedProbe) Close() error {
	p.closed.Add(1)
	return nil
}

// sharedProbes holds every probe the test module built, by shared key (keys are unique to
// each test case).
var sharedProbes sync.Map

// probeSite is the test module's site instance: it answers /__shared__ with its keys.
type probeSite struct{ keys []string }

var _ core.EndpointProvider = (*probeSite)(nil)

func (p *probeSite) Endpoints() []core.Endpoint {
	body := strings.Join(p.keys, ",")
	return []core.Endpoint{{Path: "/__shared__", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, body)
	})}}
}

// registerSharedProbe registers a module whose site key testShared lists keys it reads
// from ctx.Shared.
var registerSharedProbe = sync.OnceFunc(func() {
	core.Register(core.Module{
		ID: "test.server.sharedprobe", Feature: "testsharedprobe", SiteKeys: []string{"testShared"},
		SiteRoles: core.RoleEndpoints,
		Site: func(ctx *core.SiteContext) core.SiteInstance {
			var keys []string
			ctx.Decode("testShared", &keys)
			for _, k := range keys {
				core.SharedOf(ctx.Shared, k, func() *sharedProbe {
					p := &sharedProbe{}
					sharedProbes.Store(k, p)
					return p
				})
			}
			return &probeSite{keys: keys}
		},
	})
})

// TestSharedValuesReleasedWithTheirLastGeneration: a reload that drops a shared key frees
// its value (closed once the old generation stops); a key the new generation still uses is
// kept open.
func TestSharedValuesReleasedWithTheirLastGeneration(t *testing.T) {
	registerSharedProbe()
	for _, tc := range []struct {
		name       string
		a, b       []string // keys of generation A and of B (A also uses "onlyA")
		wantClosed []string
		wantOpen   []string
	}{
		{"key removed", []string{"k"}, []string{"b"}, []string{"k"}, []string{"b"}},
		{"key kept", []string{"k"}, []string{"k", "b"}, nil, []string{"k", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := func(k string) string { return t.Name() + "/" + k }
			cfg := func(keys ...string) string {
				q := make([]string, len(keys))
				for i, k := range keys {
					q[i] = `"` + key(k) + `"`
				}
				return "sites:\n  - port: 8080\n    testShared: [" + strings.Join(q, ", ") + "]\n"
			}
			srv := servertest.Start(t, cfg(append(tc.a, "onlyA")...))
			srv.Reload(t, cfg(tc.b...))
			if got := servertest.Get(t, srv.URL(8080)+"/__shared__").Body; got != strings.Join(mapKeys(tc.b, key), ",") {
				t.Fatalf("after the reload /__shared__ = %q, want B's keys", got)
			}
			// onlyA is freed by the same release as every other key of A: once it is
			// closed, A has let go of everything.
			onlyA := probe(t, key("onlyA"))
			deadline := time.Now().Add(5 * time.Second)
			for onlyA.closed.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the old generation's own shared value was not closed within 5s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, k := range tc.wantClosed {
				if n := probe(t, key(k)).closed.Load(); n != 1 {
					t.Errorf("%s closed %d times, want 1", k, n)
				}
			}
			for _, k := range tc.wantOpen {
				if n := probe(t, key(k)).closed.Load(); n != 0 {
					t.Errorf("%s closed %d times while generation B uses it", k, n)
				}
			}
		})
	}
}

func mapKeys(keys []string, f func(string) string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = f(k)
	}
	return out
}

func probe(t *testing.T, key string) *sharedProbe {
	t.Helper()
	v, ok := sharedProbes.Load(key)
	if !ok {
		t.Fatalf("no shared value was built for %s", key)
	}
	return v.(*sharedProbe)
}
