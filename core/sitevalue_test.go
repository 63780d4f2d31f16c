package core

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
)

// testWidth is a site value for these tests: the owner module's `testWidth.value`.
var testWidth = NewSiteValue[int64]("test.width")

// testWidthConfig is the owner's key.
type testWidthConfig struct {
	Value *int64 `json:"value"`
}

var registerSiteValueModules = sync.OnceValues(func() (owner, reader *Module) {
	Register(Module{
		ID: "test.sitevalue.owner", Feature: "testowner", SiteKeys: []string{"testWidth"},
		Site: func(ctx *SiteContext) SiteInstance {
			var c testWidthConfig
			ctx.Decode("testWidth", &c)
			if c.Value != nil && *c.Value < 0 {
				ctx.Errorf(ctx.Path("testWidth.value"), "must be ≥ 0")
			}
			return nil
		},
		Provides: []SiteValueProvider{testWidth.Provide(func(ctx *SiteContext) (int64, bool) {
			var c testWidthConfig
			if !ctx.DecodeQuietly("testWidth", &c) || c.Value == nil {
				return 0, false
			}
			return *c.Value, true
		})},
	})
	Register(Module{
		ID: "test.sitevalue.reader", Feature: "testreader", SiteKeys: []string{"testReader"},
		Site: func(ctx *SiteContext) SiteInstance {
			v, ok := testWidth.Get(ctx)
			return readerInstance{v: v, ok: ok}
		},
	})
	owner, _ = moduleByID("test.sitevalue.owner")
	reader, _ = moduleByID("test.sitevalue.reader")
	return owner, reader
})

type readerInstance struct {
	v  int64
	ok bool
}

func moduleByID(id string) (*Module, bool) {
	registry.RLock()
	defer registry.RUnlock()
	m, ok := registry.byID[id]
	return m, ok
}

// TestSiteValueEitherProvisioningOrder: a reader gets the owner's value whether the owner's
// Site runs before or after the reader's, and the owner's key is diagnosed once.
func TestSiteValueEitherProvisioningOrder(t *testing.T) {
	owner, reader := registerSiteValueModules()
	for _, tc := range []struct {
		name   string
		raw    map[string]config.Node
		want   int64
		wantOK bool
		errors int
	}{
		{"set", map[string]config.Node{"testWidth": map[string]config.Node{"value": 7.0}}, 7, true, 0},
		{"owner's key without the value", map[string]config.Node{"testWidth": map[string]config.Node{}}, 0, false, 0},
		{"owner's key absent", map[string]config.Node{}, 0, false, 0},
		{"invalid value", map[string]config.Node{"testWidth": map[string]config.Node{"value": "wide"}}, 0, false, 1},
		{"out of range", map[string]config.Node{"testWidth": map[string]config.Node{"value": -1.0}}, 0, false, 1},
	} {
		for _, order := range [][]*Module{{owner, reader}, {reader, owner}} {
			t.Run(tc.name+"/"+order[0].Feature+" first", func(t *testing.T) {
				d := &config.Diagnostics{}
				g := NewGlobalContext(context.Background(), nil, d, nil, nil)
				ctx := NewSiteContext(context.Background(), &Site{Path: "sites[0]"}, tc.raw, g, nil)
				var got readerInstance
				for _, m := range order {
					inst := m.Site(ctx)
					if r, ok := inst.(readerInstance); ok {
						got = r
					}
				}
				// With errors the build fails, so what the reader got does not matter.
				if tc.errors == 0 && (got.v != tc.want || got.ok != tc.wantOK) {
					t.Fatalf("reader got (%d, %v), want (%d, %v)", got.v, got.ok, tc.want, tc.wantOK)
				}
				if n := len(d.Errors()); n != tc.errors {
					t.Fatalf("%d errors, want %d: %v", n, tc.errors, d.Errors())
				}
			})
		}
	}
}

// TestSiteValueWithoutProvider: a value no compiled-in module provides is unset.
func TestSiteValueWithoutProvider(t *testing.T) {
	ctx := NewSiteContext(context.Background(), &Site{}, nil, nil, nil)
	if v, ok := NewSiteValue[string]("test.nobody").Get(ctx); ok || v != "" {
		t.Fatalf("got (%q, %v), want unset", v, ok)
	}
}

// TestRegisterRefusesSecondProvider: two modules cannot provide one site value.
func TestRegisterRefusesSecondProvider(t *testing.T) {
	registerSiteValueModules()
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, `site value "test.width" is provided by both test.sitevalue.owner and test.sitevalue.second`) {
			t.Fatalf("panic %q", msg)
		}
	}()
	Register(Module{ID: "test.sitevalue.second", Feature: "testsecond",
		Provides: []SiteValueProvider{testWidth.Provide(func(*SiteContext) (int64, bool) { return 1, true })}})
}

// TestHandlerSections: the nodes of a handler key in routes[] entries, with their paths.
func TestHandlerSections(t *testing.T) {
	raw := map[string]config.Node{"routes": []config.Node{
		map[string]config.Node{"match": map[string]config.Node{}, "static": "./a"},
		map[string]config.Node{"proxy": "http://x"},
		"not an object",
		map[string]config.Node{"static": []config.Node{"./b"}},
	}}
	ctx := NewSiteContext(context.Background(), &Site{Path: "sites[1]"}, raw, nil, nil)
	var got []string
	for _, s := range ctx.HandlerSections("static") {
		got = append(got, s.Path)
	}
	if want := "sites[1].routes[0].static,sites[1].routes[3].static"; strings.Join(got, ",") != want {
		t.Fatalf("paths %v, want %s", got, want)
	}
	if n := len(NewSiteContext(context.Background(), &Site{}, nil, nil, nil).HandlerSections("static")); n != 0 {
		t.Fatalf("%d sections without routes", n)
	}
}
