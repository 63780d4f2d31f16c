package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
)

// root is the repository root, seen from this package's directory.
const root = "../../.."

// TestGeneratedCatalogMatchesRegistrations regenerates core/catalog_gen.go in memory from
// the registrations of the full bundle (linked into this test) and the bundle files, and
// fails when the committed file differs: a module's keys, guard flag, feature or bundle
// changed without `go generate ./core`.
func TestGeneratedCatalogMatchesRegistrations(t *testing.T) {
	want, err := generate(root, core.Modules())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "core", "catalog_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("core/catalog_gen.go is out of date with the registrations of the full bundle; run `go generate ./core`.\ncommitted:\n%s\nregenerated:\n%s", got, want)
	}
}

// TestCatalogAgreesWithRegistry checks the generated data as core reads it: every key of
// every registered module resolves to the module's feature, bundle and guard flag.
func TestCatalogAgreesWithRegistry(t *testing.T) {
	for _, m := range core.Modules() {
		for _, p := range m.AdminPaths {
			if e, ok := core.LookupAdminPath(p); !ok || e.Feature != m.Feature {
				t.Errorf("admin endpoint %s = %+v, %v; want feature %q of %s", p, e, ok, m.Feature, m.ID)
			}
		}
		for _, s := range m.StoreSchemes {
			if e, ok := core.LookupStoreScheme(s); !ok || e.Feature != m.Feature {
				t.Errorf("store scheme %s = %+v, %v; want feature %q of %s", s, e, ok, m.Feature, m.ID)
			}
		}
		keys := map[string][]string{"": m.SiteKeys, "global.": m.GlobalKeys, "route.": m.RouteKeys, "handler.": m.HandlerKeys}
		for prefix, list := range keys {
			for _, k := range list {
				e, ok := core.LookupCatalog(prefix + k)
				routeMap := prefix != "global." && prefix != "route." && slices.Contains(m.RouteMapKeys, k)
				if !ok || e.Feature != m.Feature || e.Guard != m.Guard || !e.Available() || e.RouteMap != routeMap || e.Store != m.StoreValued {
					t.Errorf("catalog entry for %s%s = %+v, %v; want feature %q guard %v of %s", prefix, k, e, ok, m.Feature, m.Guard, m.ID)
				}
			}
		}
	}
}

func TestCatalogEntriesErrors(t *testing.T) {
	pkg := "github.com/conduitproxy/conduit/modules/"
	tests := []struct {
		name string
		mods []*core.Module
		want string
	}{
		{"module in no bundle", []*core.Module{{ID: "x.nosuch", Feature: "nosuch", Package: pkg + "nosuch"}}, `module x.nosuch (feature "nosuch") is in no bundle file`},
		{"feature from another package", []*core.Module{{ID: "x.jwt", Feature: "jwt", Package: pkg + "elsewhere"}}, "registers from " + pkg + "elsewhere"},
		{"bundle feature nobody registers", []*core.Module{{ID: "http.auth.jwt", Feature: "jwt", Package: pkg + "auth/jwt"}}, "no module registers it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := catalogEntries(root, tt.mods)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPlannedKeyNowRegistered: a module that starts owning a planned key (a site key or a
// middleware[] type of core's plannedKeys) must make the generator fail until the key leaves
// the planned list.
func TestPlannedKeyNowRegistered(t *testing.T) {
	checked := 0
	for _, e := range core.CatalogEntries() {
		if e.Available() {
			continue
		}
		m := core.CatalogModule{ID: "test.planned", Feature: e.Feature}
		name := e.Key
		if typ, ok := strings.CutPrefix(e.Key, "middleware."); ok {
			m.MiddlewareTypes = []string{typ}
		} else if !strings.Contains(e.Key, ".") {
			m.SiteKeys = []string{e.Key}
		} else {
			continue
		}
		err := checkPlanned([]core.CatalogModule{m})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("owns %q, which core/catalog.go still lists in plannedKeys", name)) {
			t.Fatalf("%s: err = %v", e.Key, err)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no planned keys left in core/catalog.go")
	}
	if err := checkPlanned([]core.CatalogModule{{ID: "http.auth.jwt", Feature: "jwt", SiteKeys: []string{"jwtAuth"}}}); err != nil {
		t.Fatal(err)
	}
}

// TestAdminPathsAreServed builds a generation that uses every module with Admin API
// endpoints and checks that the endpoints its instances serve are exactly the AdminPaths
// the registrations declare (which a binary without the module answers 501).
func TestAdminPathsAreServed(t *testing.T) {
	const src = `
global: {admin: {bind: "127.0.0.1:2019"}} # Build opens no socket
sites:
  - port: 8080
    ipFilter: {allow: [127.0.0.1]}
    rateLimit: {limit: 10, windowSecs: 1}
    proxy: {/: {targets: ["http://127.0.0.1:1"], cache: {store: memory}}}
`
	doc, err := config.Parse([]byte(src), config.FormatYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, d := server.Build(context.Background(), doc, server.BuildOptions{})
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	defer g.Stop(context.Background())
	served := map[string]bool{}
	for _, inst := range g.Instances() {
		if p, ok := inst.(core.AdminProvider); ok {
			for _, e := range p.AdminEndpoints() {
				served[e.Method+" "+e.Path] = true
			}
		}
	}
	for _, p := range core.CatalogAdminPaths() {
		if !served[p] {
			t.Errorf("%s is registered but no instance serves it", p)
		}
		delete(served, p)
	}
	for p := range served {
		t.Errorf("%s is served but no registration declares it in AdminPaths", p)
	}
}

// TestStageOrderIsExplicit: modules of the full bundle that share a pipeline stage set
// distinct Order values, so their order does not depend on the alphabet of their IDs.
func TestStageOrderIsExplicit(t *testing.T) {
	seen := map[[2]int]string{}
	for _, m := range core.Modules() {
		if m.Stage == core.StageNone {
			continue
		}
		k := [2]int{int(m.Stage), m.Order}
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share stage %s and Order %d", other, m.ID, m.Stage, m.Order)
		}
		seen[k] = m.ID
	}
}
