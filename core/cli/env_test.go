package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// yamlBreaking is a secret made of YAML and JSON syntax: a comment marker, an alias, a tag,
// a flow mapping, quotes and a backslash.
const yamlBreaking = `Tr0ub4dor&3 #*anchor !!str {k: v}, "q' \`

// TestSecretWithYAMLSyntaxLoadsExactly starts a real server whose Admin API token comes
// from a variable full of YAML syntax: `conduit status` gets in with exactly that token
// and not with the prefix a textual substitution would have kept (the part before " #").
func TestSecretWithYAMLSyntaxLoadsExactly(t *testing.T) {
	t.Setenv("CONDUIT_TEST_ADMIN_TOKEN", yamlBreaking)
	dir := t.TempDir()
	for _, src := range []string{
		"global:\n  admin: { bind: \"127.0.0.1:2019\", token: $CONDUIT_TEST_ADMIN_TOKEN }\nsites:\n  - port: 8080\n",
		`{"global": {"admin": {"bind": "127.0.0.1:2019", "token": "$CONDUIT_TEST_ADMIN_TOKEN"}}, "sites": [{"port": 8080}]}`,
	} {
		name := "conduit.yaml"
		if src[0] == '{' {
			name = "conduit.json"
		}
		cfg := filepath.Join(dir, name)
		if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		api := servertest.StartAdmin(t, servertest.StartFile(t, cfg), nil)
		for _, tc := range []struct {
			token string
			code  int
		}{{yamlBreaking, 0}, {"Tr0ub4dor&3", 1}, {"", 1}} {
			var out, errOut strings.Builder
			env := &Env{Stdout: &out, Stderr: &errOut, LookupEnv: func(k string) (string, bool) {
				return tc.token, k == "CONDUIT_ADMIN_TOKEN" && tc.token != ""
			}}
			if code := Run(env, []string{"status", "--admin", api.Addr().String()}); code != tc.code {
				t.Fatalf("%s: status with token %q: exit %d, want %d (%s)", name, tc.token, code, tc.code, errOut.String())
			}
		}
	}
}

// TestConfigErrorsNeverPrintASubstitutedValue puts a variable's value where it does not
// belong (wrong types, a file path, next to a syntax error) and runs `conduit validate`:
// the config is refused at the right path and the output never contains the value.
func TestConfigErrorsNeverPrintASubstitutedValue(t *testing.T) {
	env := map[string]string{"S": yamlBreaking, "SHORT": "pw#1", "NUM": "12x"}
	cases := []struct {
		name, file, src, path string
		secret                string
	}{
		{"port", "c.yaml", "port: $S\n", "error at port:", yamlBreaking},
		{"port quoted", "c.yaml", "port: \"$SHORT\"\n", "error at port:", "pw#1"},
		{"workers", "c.yaml", "global: { workers: $SHORT }\nsites: [{ port: 8080 }]\n", "error at global.workers:", "pw#1"},
		{"shutdown timeout", "c.yaml", "global: { shutdownTimeoutSecs: $NUM }\nsites: [{ port: 8080 }]\n", "error at global.shutdownTimeoutSecs:", "12x"},
		{"admin bind", "c.yaml", "global: { admin: { bind: $S } }\nsites: [{ port: 8080 }]\n", "error at global.admin.bind:", yamlBreaking},
		{"tls file", "c.yaml", "port: 8443\ntls: { cert: $S, key: $S }\n", "error at tls", yamlBreaking},
		{"syntax error after it", "c.yaml", "port: 8080\nhost: $S\nproxy: [\n", "parse", yamlBreaking},
		{"json", "c.json", `{"port": "$S"}`, "error at port:", yamlBreaking},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, tc.file)
			if err := os.WriteFile(cfg, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			code := Run(&Env{Stdout: &out, Stderr: &errOut, Dir: dir, LookupEnv: func(k string) (string, bool) {
				v, ok := env[k]
				return v, ok
			}}, []string{"validate", "-c", cfg})
			all := out.String() + errOut.String()
			if code != 1 || !strings.Contains(all, tc.path) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, tc.path, all)
			}
			for _, leak := range []string{tc.secret, strings.Split(tc.secret, " ")[0]} {
				if strings.Contains(all, leak) {
					t.Fatalf("output contains %q:\n%s", leak, all)
				}
			}
		})
	}
}
