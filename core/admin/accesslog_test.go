package admin_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// TestAccessLog: every Admin API request is logged with its method, path and status;
// requests that change something (reloads, the dashboard's actions) at Info, reads at Debug.
func TestAccessLog(t *testing.T) {
	path := writeConfig(t, t.TempDir(), fmt.Sprintf(baseConfig, token))
	srv := servertest.StartFile(t, path)
	logs := &testtool.LogBuffer{}
	api, err := admin.Start("127.0.0.1:0", admin.Options{Server: srv.Server,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close(t.Context()) })
	logs.Take()
	for _, tc := range []struct {
		method, path, auth string
		code               int
		want               string
	}{
		{"POST", "/reload", "Bearer " + token, 200, `level=INFO msg="admin API request" method=POST path=/reload status=200`},
		{"GET", "/status", "Bearer " + token, 200, `level=DEBUG msg="admin API request" method=GET path=/status status=200`},
		{"POST", "/reload", "", 401, `level=INFO msg="admin API request" method=POST path=/reload status=401`},
		{"POST", "/dashboard/api/reload", "Bearer " + token, 200, `level=INFO msg="admin API request" method=POST path=/dashboard/api/reload status=200`},
	} {
		code, body := call(t, api, tc.method, tc.path, tc.auth, "")
		if code != tc.code {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, code, body)
		}
		if got := logs.Take(); !strings.Contains(got, tc.want) {
			t.Errorf("%s %s: log lacks %q:\n%s", tc.method, tc.path, tc.want, got)
		}
	}
}
