package admin_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// TestAdminReloadIsLogged: a reload through POST /reload is logged on the server as a SIGHUP
// reload is (both go through server.Reload): the warnings' text with their paths and
// "config reloaded" on success, each error and "reload failed"/"reload refused" with the
// cause otherwise.
func TestAdminReloadIsLogged(t *testing.T) {
	dir := t.TempDir()
	base := fmt.Sprintf(baseConfig, token)
	path := writeConfig(t, dir, base)
	logs := &testtool.LogBuffer{}
	srv := servertest.StartFileLogged(t, path, slog.New(slog.NewTextHandler(logs, nil)))
	api := servertest.StartAdmin(t, srv, nil)
	logs.Take()
	for _, tc := range []struct {
		name   string
		config string
		code   int
		want   []string
	}{
		{"warning", base + "    helthCheck: { path: /h }\n", 200, []string{
			`level=WARN msg="unknown key \"helthCheck\"`, "path=sites[0].helthCheck",
			`level=INFO msg="config reloaded"`, "warnings=1"}},
		{"error", base + "    healthCheck: 5\n", 400, []string{
			"level=ERROR", "path=sites[0].healthCheck",
			`msg="reload failed; keeping the running config"`}},
		{"cold field", strings.Replace(base, "8080", "8081", 1), 400, []string{
			`msg="reload refused; keeping the running config"`, "cold fields changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeConfig(t, dir, tc.config)
			if code, body := call(t, api, "POST", "/reload", "Bearer "+token, ""); code != tc.code {
				t.Fatalf("reload: %d %s", code, body)
			}
			got := logs.Take()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("server log lacks %q:\n%s", w, got)
				}
			}
		})
	}
}
