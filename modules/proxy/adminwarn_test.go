package proxy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestValidateWarnsAboutTargetsAtTheAdminAPI: a proxy target (or backup, mirror, group
// target, routes[] target) that reaches the Admin API of this Conduit would expose it
// through a public site; validate warns at the exact path.
func TestValidateWarnsAboutTargetsAtTheAdminAPI(t *testing.T) {
	const token = `token: "an-admin-token-of-32-characters!"`
	cases := []struct {
		name, bind, site string
		warnAt           string // "" for no warning
	}{
		{"map target at the loopback bind", "127.0.0.1:9400", `proxy: { /adm: "http://127.0.0.1:9400" }`, "sites[0].proxy./adm"},
		{"localhost", "127.0.0.1:9400", `proxy: { /adm: "http://localhost:9400/x" }`, "sites[0].proxy./adm"},
		{"string form, IPv6 loopback", "[::1]:9400", `proxy: "http://[::1]:9400"`, "sites[0].proxy"},
		{"non-loopback bind host", "10.1.2.3:9400", `proxy: { /a: { targets: ["http://up:80", "http://10.1.2.3:9400"] } }`, "sites[0].proxy./a.targets[1]"},
		{"unspecified bind, loopback target", "0.0.0.0:9400", `proxy: { /a: { targets: ["http://up:80"], backup: "http://127.0.0.1:9400" } }`, "sites[0].proxy./a.backup"},
		{"mirror", "127.0.0.1:9400", `proxy: { /a: { targets: ["http://up:80"], mirror: "http://127.0.0.1:9400" } }`, "sites[0].proxy./a.mirror"},
		{"group target", "127.0.0.1:9400", `proxy: { /a: { groups: [{ name: g, targets: ["http://127.0.0.1:9400"] }] } }`, "sites[0].proxy./a.groups[0].targets[0]"},
		{"routes[] target", "127.0.0.1:9400", `routes: [{ match: { path: /x }, proxy: "http://127.0.0.1:9400" }]`, "sites[0].routes[0].proxy"},
		{"other port", "127.0.0.1:9400", `proxy: "http://127.0.0.1:9401"`, ""},
		{"other host", "10.1.2.3:9400", `proxy: "http://10.1.2.4:9400"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := fmt.Sprintf("global: { admin: { bind: %q, %s } }\nsites:\n  - port: 8080\n    %s\n", c.bind, token, c.site)
			_, d, err := servertest.Build(src, config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if d.HasErrors() {
				t.Fatalf("errors: %v", d.Err())
			}
			var hits []string
			for _, w := range d.Warnings() {
				if strings.Contains(w.Message, "Admin API") {
					hits = append(hits, w.String())
				}
			}
			want := "warning at " + c.warnAt + ": points at the Admin API (" + c.bind + ")"
			switch {
			case c.warnAt == "" && len(hits) != 0:
				t.Errorf("unexpected warnings %q", hits)
			case c.warnAt != "" && (len(hits) != 1 || !strings.HasPrefix(hits[0], want)):
				t.Errorf("warnings %q, want one starting with %q", hits, want)
			}
		})
	}
}
