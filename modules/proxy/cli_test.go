package proxy_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/admin"
	"github.com/conduitproxy/conduit/core/cli"
	"github.com/conduitproxy/conduit/core/server/servertest"
)

func TestProbeCommand(t *testing.T) {
	good := newNamed(t, "good", nil)
	bad := newNamed(t, "bad", func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(503)
		return false
	})
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + dead.Addr().String()
	dead.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	write := func(body string) {
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func() (int, string) {
		var out, errOut strings.Builder
		code := cli.Run(&cli.Env{Stdout: &out, Stderr: &errOut, Dir: dir, LookupEnv: func(string) (string, bool) { return "", false }}, []string{"probe", "-c", cfg})
		return code, out.String() + errOut.String()
	}
	write(fmt.Sprintf("port: 8080\nproxy:\n  /a: %q\n", good.URL))
	if code, out := run(); code != 0 || !strings.Contains(out, good.URL) || !strings.Contains(out, "200") {
		t.Fatalf("healthy config: %d\n%s", code, out)
	}
	write(fmt.Sprintf("port: 8080\nproxy:\n  /a: %q\n  /b: [%q, %q]\nroutes:\n  - match: { path: /r/** }\n    proxy: %q\n", good.URL, bad.URL, deadURL, good.URL))
	code, out := run()
	if code != 1 {
		t.Fatalf("failing upstreams must exit 1:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[3], good.URL) || !strings.Contains(out, "503") || !strings.Contains(out, "error:") {
		t.Fatalf("table (failures first, each upstream once):\n%s", out)
	}
}

func TestUpstreamsCommandAgainstAdminAPI(t *testing.T) {
	a := newNamed(t, "a", nil)
	b := newNamed(t, "b", nil)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nproxy:\n  /api: { targets: [%q] }\n", a.URL))
	api, err := admin.Start("127.0.0.1:0", admin.Options{Server: srv.Server})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close(context.Background())
	run := func(args ...string) (int, string) {
		var out, errOut strings.Builder
		code := cli.Run(&cli.Env{Stdout: &out, Stderr: &errOut, LookupEnv: func(string) (string, bool) { return "", false }},
			append(args, "--admin", api.Addr().String()))
		return code, out.String() + errOut.String()
	}
	if code, out := run("upstreams", "add", "--route", "/api", "--target", b.URL, "--weight", "3"); code != 0 ||
		!strings.Contains(out, "SITE") || !strings.Contains(out, b.URL+"  3") {
		t.Fatalf("add must print the route's table with the new target: %d\n%s", code, out)
	}
	if code, out := run("upstreams", "weight", "--json", "--route", "/api", "--target", b.URL, "--weight", "3"); code != 0 || !strings.Contains(out, `"status": "ok"`) {
		t.Fatalf("weight --json must print the JSON answer: %d\n%s", code, out)
	}
	code, out := run("upstreams")
	if code != 0 || !strings.Contains(out, b.URL) || !strings.Contains(out, "/api") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	seen := map[string]int{}
	for range 8 {
		_, body, _ := hit(t, http.DefaultClient, srv.URL(8080)+"/api", nil)
		seen[body]++
	}
	if seen["a"] != 2 || seen["b"] != 6 {
		t.Fatalf("after add with weight 3: %v, want a 2 / b 6", seen)
	}
	if code, out := run("upstreams", "remove", "--route", "/api", "--target", b.URL); code != 0 || strings.Contains(out, b.URL) || !strings.Contains(out, a.URL) {
		t.Fatalf("remove must print the route's table without the target: %d\n%s", code, out)
	}
	for _, tc := range []struct{ target, want string }{
		{b.URL, "404: no target " + b.URL + " on route /api"},
		{a.URL, "409: " + a.URL + " is the last target of route /api"},
	} {
		if code, out := run("upstreams", "remove", "--route", "/api", "--target", tc.target); code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("remove %s: exit %d\n%s\nwant exit 1 and %q", tc.target, code, out, tc.want)
		}
	}
	if code, _ := run("upstreams", "weight", "--route", "/api", "--target", a.URL); code != 1 {
		t.Fatal("weight without --weight must fail")
	}
	// drainedColumn is the DRAINED column of target's row in a printed table.
	drainedColumn := func(out, target string) string {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 7 && f[3] == target {
				return f[6]
			}
		}
		return ""
	}
	if code, out := run("upstreams", "drain", "--route", "/api", "--target", a.URL); code != 0 || drainedColumn(out, a.URL) != "true" {
		t.Errorf("drain must print the route's table with the target drained: %d\n%s", code, out)
	}
	if code, out := run("upstreams", "undrain", "--route", "/api", "--target", a.URL); code != 0 || drainedColumn(out, a.URL) != "false" {
		t.Errorf("undrain must print the route's table with the target back: %d\n%s", code, out)
	}
	if code, out := run("status"); code != 0 || !strings.Contains(out, "configured_upstreams") {
		t.Fatalf("status: %d %s", code, out)
	}
}
