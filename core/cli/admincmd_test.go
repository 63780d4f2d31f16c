package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
