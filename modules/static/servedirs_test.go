package static

import (
	"context"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
)

// TestServedDirs: core.ServedDirs lists the directories of the site's static in each form
// and of routes[] static targets, as configured, in file order.
func TestServedDirs(t *testing.T) {
	route := func(static config.Node) config.Node {
		return map[string]config.Node{"match": map[string]config.Node{}, "static": static}
	}
	for _, tc := range []struct {
		name string
		raw  map[string]config.Node
		want string // "" means unset
	}{
		{"string", map[string]config.Node{"static": "./dist"}, "./dist"},
		{"list", map[string]config.Node{"static": []config.Node{"./x", "./y"}}, "./x,./y"},
		{"prefix map in prefix order", map[string]config.Node{"static": map[string]config.Node{"/docs": []config.Node{"./a", "./b"}, "/": "./dist"}}, "./dist,./a,./b"},
		{"routes[] targets after the site's", map[string]config.Node{
			"static": "./site",
			"routes": []config.Node{route("./r"), map[string]config.Node{"proxy": "http://x"}, route([]config.Node{"./s"})},
		}, "./site,./r,./s"},
		{"invalid entries are skipped", map[string]config.Node{"static": []config.Node{"./x", 5.0}}, "./x"},
		{"none", map[string]config.Node{"staticOptions": map[string]config.Node{}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &config.Diagnostics{}
			g := core.NewGlobalContext(context.Background(), nil, d, nil, nil)
			ctx := core.NewSiteContext(context.Background(), &core.Site{Path: "sites[0]"}, tc.raw, g, nil)
			dirs, ok := core.ServedDirs.Get(ctx)
			if got := strings.Join(dirs, ","); got != tc.want || ok != (tc.want != "") {
				t.Fatalf("got %q (set %v), want %q", got, ok, tc.want)
			}
			if d.Len() != 0 {
				t.Fatalf("the provider recorded diagnostics: %v", d.Errors())
			}
		})
	}
}
