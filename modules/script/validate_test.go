package script_test

import (
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestValidate: every problem of an entry is an error at its exact path, found while the
// config is built (what `conduit validate` runs).
func TestValidate(t *testing.T) {
	tests := []struct {
		name, entry, path, msg string
	}{
		{"rhai script", `{type: script, path: gate.rhai}`, "middleware[0].path", "docs/scripting.md#porting-rhai-scripts"},
		{"path required", `{type: script}`, "middleware[0].path", "required"},
		{"missing file", `{type: script, path: testdata/scripts/nope.go}`, "middleware[0].path", "cannot read the script"},
		{"compile error with file:line", `{type: script, path: testdata/scripts/broken.go}`, "middleware[0].path", "broken.go:8:"},
		{"sandbox refuses os/exec", `{type: script, path: testdata/scripts/sandboxed.go}`, "middleware[0].path", `"os/exec"`},
		{"bad phase", `{type: script, path: testdata/scripts/oneheader.go, phase: later}`, "middleware[0].phase", `must be "request" or "response"`},
		{"bad onError", `{type: script, path: testdata/scripts/oneheader.go, onError: retry}`, "middleware[0].onError", `must be "continue" or "deny"`},
		{"deny in the response phase", `{type: script, path: testdata/scripts/respond.go, phase: response, onError: deny}`, "middleware[0].onError", "status is already chosen"},
		{"timeout out of range", `{type: script, path: testdata/scripts/oneheader.go, timeoutMs: -1}`, "middleware[0].timeoutMs", "between 0 and 60000"},
		{"no entry point", `{type: script, path: testdata/scripts/respond.go}`, "middleware[0].path", "no entry point"},
		{"no Response for the response phase", `{type: script, path: testdata/scripts/panics.go, phase: response}`, "middleware[0].path", "no Response"},
		{"constructor error", `{type: script, path: testdata/scripts/gate.go, config: {reject: nope}}`, "middleware[0].path", "middleware[0].config"},
		{"traefik without manifest", `{type: traefik, path: testdata/scripts}`, "middleware[0].path", "not a Traefik plugin directory"},
		{"traefik response phase", `{type: traefik, path: testdata/scripts, phase: response}`, "middleware[0].phase", "traefik plugin"},
		{"auto-detected plugin in the response phase", `{type: script, path: ` + stampDir + `, phase: response}`, "middleware[0].phase", "Traefik plugin"},
		{"unknown key is an error", `{type: script, path: testdata/scripts/oneheader.go, onerror: deny}`, "middleware[0].onerror", `unknown key "onerror" (did you mean "onError"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d, err := servertest.Build("port: 8080\nmiddleware:\n  - "+tt.entry+"\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range d.Errors() {
				got = append(got, e.String())
				if e.Path == tt.path && strings.Contains(e.Message, tt.msg) {
					return
				}
			}
			t.Fatalf("no error at %s containing %q; got %q", tt.path, tt.msg, got)
		})
	}
}
