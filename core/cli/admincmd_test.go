package cli

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// TestAdminCommands runs reload, shutdown and status against an Admin API stand-in on a
// loopback socket: the table output, --json (the answer as received, indented), the
// bearer token, and the error paths (exit 1 with the reason on stderr).
func TestAdminCommands(t *testing.T) {
	var gotAuth []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /reload":
			io.WriteString(w, `{"message":"Config reloaded","warnings":["w1"]}`)
		case "POST /shutdown":
			io.WriteString(w, `{"message":"shutting down"}`)
		case "GET /status":
			io.WriteString(w, `{"version":"v1","sites":2}`)
		case "GET /upstreams":
			io.WriteString(w, `{"upstreams":[{"url":"http://a","healthy":true,"state":"up","latency_ms":3,"ejected":false,"consecutive_5xx":0}]}`)
		default:
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"boom"}`)
		}
	}))
	t.Cleanup(api.Close)
	cases := []struct {
		args   []string
		code   int
		stdout []string // substrings, in order
	}{
		{[]string{"reload"}, 0, []string{"Config reloaded\n", "w1\n"}},
		{[]string{"reload", "--json"}, 0, []string{"{\n  \"message\": \"Config reloaded\","}},
		{[]string{"shutdown"}, 0, []string{"shutting down\n"}},
		{[]string{"status"}, 0, []string{"sites", "2\n", "version", "v1\n"}},
		{[]string{"status", "--upstream"}, 0, []string{"URL", "HEALTHY", "http://a", "true", "up", "3ms"}},
		{[]string{"status", "--upstream", "--json"}, 0, []string{"\"upstreams\": ["}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut strings.Builder
			env := &Env{Stdout: &out, Stderr: &errOut, LookupEnv: func(k string) (string, bool) {
				if k == "CONDUIT_ADMIN_TOKEN" {
					return "s3cret", true
				}
				return "", false
			}}
			code := Run(env, append(tc.args, "--admin", api.URL))
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errOut.String())
			}
			rest := out.String()
			for _, want := range tc.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout %q lacks %q (in order)", out.String(), want)
				}
				rest = rest[i+len(want):]
			}
		})
	}
	for _, a := range gotAuth {
		if a != "Bearer s3cret" {
			t.Fatalf("Authorization %q, want the token from CONDUIT_ADMIN_TOKEN", a)
		}
	}

	// Failures: an error answer and an unreachable API both exit 1 with the reason.
	for _, tc := range []struct {
		admin, want string
	}{
		{api.URL + "/nope", "admin API: 500"},
		{"http://127.0.0.1:1", "admin API unreachable"},
	} {
		var out, errOut strings.Builder
		env := &Env{Stdout: &out, Stderr: &errOut, LookupEnv: func(string) (string, bool) { return "", false }}
		if code := Run(env, []string{"status", "--admin", tc.admin}); code != 1 || !strings.Contains(errOut.String(), tc.want) || out.Len() != 0 {
			t.Errorf("status --admin %s: exit %d, stdout %q, stderr %q (want %q)", tc.admin, code, out.String(), errOut.String(), tc.want)
		}
	}
}

// TestValidateAdminBind runs `conduit validate` on admin binds: a bind without a port (or
// with an empty one) is an error at global.admin.bind with or without a token, a
// non-loopback bind needs a token, and a loopback bind without a token is valid with a
// warning at global.admin.token.
func TestValidateAdminBind(t *testing.T) {
	cases := []struct {
		admin    string
		code     int
		stdout   string // substring
		warnings int    // warnings at global.admin.token
	}{
		{`{ bind: "0.0.0.0:" }`, 1, "error at global.admin.bind: must name a port", 0},
		{`{ bind: "127.0.0.1:" }`, 1, "error at global.admin.bind: must name a port", 0},
		{`{ bind: ":" }`, 1, "error at global.admin.bind: must name a port", 0},
		{`{ bind: "0.0.0.0:", token: "an-admin-token-of-32-characters!" }`, 1, "error at global.admin.bind: must name a port", 0},
		{`{ bind: "127.0.0.1" }`, 1, "error at global.admin.bind: must be host:port", 0},
		{`{ bind: "127.0.0.1:0" }`, 1, "error at global.admin.bind: must name a port", 0},
		{`{ bind: "127.0.0.1:http" }`, 1, "error at global.admin.bind: must name a port", 0},
		{`{ bind: "127.0.0.1:70000" }`, 1, "error at global.admin.bind: must name a port", 0},
		{`{ bind: "0.0.0.0:2019" }`, 1, "error at global.admin.bind: a non-loopback Admin API bind requires global.admin.token", 0},
		{`{ bind: ":2019" }`, 1, "error at global.admin.bind: a non-loopback Admin API bind requires global.admin.token", 0},
		{`{ bind: "127.0.0.1:2019" }`, 0, "Config is valid", 1},
		{`{ bind: "[::1]:2019" }`, 0, "Config is valid", 1},
		{`{ bind: "0.0.0.0:2019", token: "an-admin-token-of-32-characters!" }`, 0, "Config is valid", 0},
	}
	for _, tc := range cases {
		t.Run(tc.admin, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "conduit.yaml")
			if err := os.WriteFile(cfg, []byte("global:\n  admin: "+tc.admin+"\nsites:\n  - port: 8080\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			code := Run(&Env{Stdout: &out, Stderr: &errOut, Dir: dir, LookupEnv: func(string) (string, bool) { return "", false }}, []string{"validate", "-c", cfg})
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) {
				t.Fatalf("exit %d, stdout %q; want exit %d and %q", code, out.String(), tc.code, tc.stdout)
			}
			if n := strings.Count(errOut.String(), "warning at global.admin.token: is not set"); n != tc.warnings {
				t.Fatalf("stderr %q: %d no-token warnings, want %d", errOut.String(), n, tc.warnings)
			}
		})
	}
}

// TestAdminCommandsAgainstTheAdminAPI runs status, reload and shutdown against a real Admin
// API without a token, addressed the ways users spell it (127.0.0.1, localhost): the Host,
// Origin and Content-Type checks let the CLI in.
func TestAdminCommandsAgainstTheAdminAPI(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "conduit.yaml")
	if err := os.WriteFile(cfg, []byte("global:\n  admin: { bind: \"127.0.0.1:2019\" }\nsites:\n  - port: 8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shutdown := make(chan struct{}, 1)
	api := servertest.StartAdmin(t, servertest.StartFile(t, cfg), func() { shutdown <- struct{}{} })
	_, port, _ := net.SplitHostPort(api.Addr().String())
	for _, addr := range []string{"127.0.0.1:" + port, "http://localhost:" + port} {
		for _, args := range [][]string{{"status"}, {"reload"}, {"shutdown"}} {
			var out, errOut strings.Builder
			env := &Env{Stdout: &out, Stderr: &errOut, LookupEnv: func(string) (string, bool) { return "", false }}
			if code := Run(env, append(args, "--admin", addr)); code != 0 {
				t.Fatalf("%v --admin %s: exit %d, stderr %q", args, addr, code, errOut.String())
			}
		}
		select {
		case <-shutdown:
		case <-time.After(5 * time.Second):
			t.Fatalf("shutdown --admin %s did not reach the server", addr)
		}
	}
}
