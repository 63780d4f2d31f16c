package main

import (
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/cli"
)

// TestRhaiMiddlewareRefused: the full binary links every module of this version, and none
// runs scripts, so the corpus's script-gated config (a require-api-key script) must be
// refused rather than served without its gate.
func TestRhaiMiddlewareRefused(t *testing.T) {
	var out, errOut strings.Builder
	code := cli.Run(&cli.Env{Stdout: &out, Stderr: &errOut, Dir: t.TempDir(), LookupEnv: func(string) (string, bool) { return "", false }},
		[]string{"validate", "-c", "../../testdata/compat/rhai-middleware.yaml"})
	want := `error at middleware[0].type: middleware type "script" restricts access but feature "script" is not available in any build of this version, so nothing would enforce it; refusing to serve without it (remove the key; to drop the guard on purpose, list "script" in global.allowMissingFeatures)` + "\n1 errors found.\n"
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
