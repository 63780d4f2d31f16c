package admin_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestUpgradeEndpoint: POST /upgrade answers what the upgrade reported (200 with the new PID,
// 409 while another runs, 500 with the reason when the new process failed, 409 when the
// process cannot upgrade), after the same token and cross-site checks as every endpoint; GET
// /status names the version and the PID. The process side of an upgrade is test/upgrade's.
func TestUpgradeEndpoint(t *testing.T) {
	srv := servertest.StartFile(t, writeConfig(t, t.TempDir(), fmt.Sprintf(baseConfig, token)))
	start := func(t *testing.T, up func(context.Context) (*admin.UpgradeResult, error)) *admin.API {
		api, err := admin.Start("127.0.0.1:0", admin.Options{Server: srv.Server, Version: "v9.9.9", Upgrade: up})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = api.Close(ctx)
		})
		return api
	}
	for _, tc := range []struct {
		name string
		up   func(context.Context) (*admin.UpgradeResult, error)
		code int
		want string
	}{
		{"ready", func(context.Context) (*admin.UpgradeResult, error) {
			return &admin.UpgradeResult{PID: 4242, Sockets: []string{"tcp/:8080"}, TookMs: 12}, nil
		}, 200, `"pid":4242`},
		{"busy", func(context.Context) (*admin.UpgradeResult, error) { return nil, admin.ErrUpgradeBusy }, 409, "already in progress"},
		{"failed", func(context.Context) (*admin.UpgradeResult, error) {
			return nil, errors.New("new process 7: exited before it signalled ready (exit status 3)")
		}, 500, "upgrade failed; this process keeps serving: new process 7: exited"},
		{"not available", nil, 409, "conduit run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := start(t, tc.up)
			if code, _ := call(t, api, "POST", "/upgrade", "", ""); code != 401 {
				t.Fatalf("without the token: %d", code)
			}
			if code, _ := (adminRequest{method: "POST", path: "/upgrade", auth: "Bearer " + token, fetchSite: "cross-site"}).send(t, api); code != 403 {
				t.Fatalf("cross-site: %d", code)
			}
			code, body := call(t, api, "POST", "/upgrade", "Bearer "+token, "")
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("POST /upgrade: %d %s; want %d with %q", code, body, tc.code, tc.want)
			}
		})
	}
	api := start(t, nil)
	code, body := call(t, api, "GET", "/status", "Bearer "+token, "")
	if code != 200 || !strings.Contains(body, `"version":"v9.9.9"`) || !strings.Contains(body, `"pid":`+strconv.Itoa(os.Getpid())) {
		t.Fatalf("GET /status: %d %s", code, body)
	}
}
