package main

import (
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/cli"
)

// TestRhaiMiddlewareRefused: the full binary runs Go scripts, not Rhai, so the corpus's
// Rhai-gated config (a require-api-key script) is refused with a pointer to the porting
// guide rather than served without its gate.
func TestRhaiMiddlewareRefused(t *testing.T) {
	var out, errOut strings.Builder
	code := cli.Run(&cli.Env{Stdout: &out, Stderr: &errOut, Dir: t.TempDir(), LookupEnv: func(string) (string, bool) { return "", false }},
		[]string{"validate", "-c", "../../testdata/compat/rhai-middleware.yaml"})
	want := "error at middleware[0].path: ./scripts/require-api-key.rhai is a Rhai script; this version runs Go scripts (yaegi) and cannot run Rhai: port it to Go with the side-by-side guide in docs/scripting.md#porting-rhai-scripts\n1 errors found.\n"
	if code != 1 || out.String() != want {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 1 and:\n%s", code, out.String(), errOut.String(), want)
	}
}

// TestFirstPartyModulesDeclareRoles: every module of the full bundle with a Site constructor
// declares the roles of the site instances it builds (a site instance that plays no role
// would do nothing).
func TestFirstPartyModulesDeclareRoles(t *testing.T) {
	mods := core.Modules()
	if len(mods) < 20 {
		t.Fatalf("the full bundle registers %d modules", len(mods))
	}
	for _, m := range mods {
		if m.Site != nil && m.SiteRoles == 0 {
			t.Errorf("%s has a Site constructor but declares no SiteRoles", m.ID)
		}
	}
}
