package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// emptyRegistry swaps in an empty registry for the test and restores the binary's own after.
func emptyRegistry(t *testing.T) {
	t.Helper()
	registry.Lock()
	saved := []map[string]*Module{registry.byID, registry.byKey, registry.global, registry.route, registry.handle}
	registry.byID, registry.byKey, registry.global = map[string]*Module{}, map[string]*Module{}, map[string]*Module{}
	registry.route, registry.handle = map[string]*Module{}, map[string]*Module{}
	registry.Unlock()
	t.Cleanup(func() {
		registry.Lock()
		defer registry.Unlock()
		registry.byID, registry.byKey, registry.global, registry.route, registry.handle = saved[0], saved[1], saved[2], saved[3], saved[4]
	})
}

// registerPanic registers m and returns the panic message, "" when Register accepted it.
func registerPanic(m Module) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	Register(m)
	return ""
}

// registryKeys lists every registered module ID and every owned key with its table.
func registryKeys() []string {
	registry.RLock()
	defer registry.RUnlock()
	var out []string
	for name, table := range map[string]map[string]*Module{"id": registry.byID, "site": registry.byKey, "global": registry.global, "route": registry.route, "handler": registry.handle} {
		for k, m := range table {
			out = append(out, name+":"+k+"="+m.ID)
		}
	}
	return out
}

func TestRegisterRefusesProgrammingErrors(t *testing.T) {
	existing := Module{
		ID: "test.existing", Feature: "existing",
		SiteKeys: []string{"siteKey"}, GlobalKeys: []string{"globalKey"},
		RouteKeys: []string{"routeKey"}, HandlerKeys: []string{"handlerKey"},
	}
	cases := []struct {
		name string
		m    Module
		want string // a substring of the panic; "" means accepted
	}{
		{"no ID", Module{Feature: "f"}, "needs an ID and a Feature"},
		{"no feature", Module{ID: "test.nofeature"}, "needs an ID and a Feature"},
		{"duplicate ID", Module{ID: "test.existing", Feature: "other"}, "duplicate module test.existing"},
		{"site key taken", Module{ID: "test.b", Feature: "b", SiteKeys: []string{"fresh", "siteKey"}}, `site key "siteKey" is owned by both test.existing and test.b`},
		{"global key taken", Module{ID: "test.b", Feature: "b", SiteKeys: []string{"fresh"}, GlobalKeys: []string{"globalKey"}}, `global key "globalKey" is owned by both test.existing and test.b`},
		{"route key taken", Module{ID: "test.b", Feature: "b", RouteKeys: []string{"routeKey"}}, `route key "routeKey" is owned by both test.existing and test.b`},
		{"handler key taken", Module{ID: "test.b", Feature: "b", HandlerKeys: []string{"handlerKey"}}, `handler key "handlerKey" is owned by both test.existing and test.b`},
		{"key listed twice", Module{ID: "test.b", Feature: "b", SiteKeys: []string{"twice", "twice"}}, `site key "twice" is listed twice by test.b`},
		// Tables are separate: a site key may share its name with another module's global key,
		// and one feature may span several modules.
		{"same name, other table", Module{ID: "test.c", Feature: "existing", GlobalKeys: []string{"siteKey"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			emptyRegistry(t)
			Register(existing)
			before := strings.Join(slices.Sorted(slices.Values(registryKeys())), " ")
			got := registerPanic(tc.m)
			if tc.want == "" {
				if got != "" {
					t.Fatalf("Register panicked: %s", got)
				}
				if m, ok := ModuleForGlobalKey("siteKey"); !ok || m.ID != tc.m.ID {
					t.Fatalf("accepted module does not own its key: %v %v", m, ok)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("panic %q, want it to contain %q", got, tc.want)
			}
			if after := strings.Join(slices.Sorted(slices.Values(registryKeys())), " "); after != before {
				t.Fatalf("a refused module changed the registry:\n before %s\n after  %s", before, after)
			}
		})
	}
}
