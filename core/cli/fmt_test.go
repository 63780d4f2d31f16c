package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFmtWriteKeepsCommentsOrderAndMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "conduit.yaml")
	src := "# the site\nport:    8080\nproxy:\n    /b: http://b\n    /a: http://a   # second\n"
	if err := os.WriteFile(p, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	env := &Env{Stdout: &out, Stderr: &errOut, Dir: dir, LookupEnv: func(string) (string, bool) { return "", false }}
	if code := Run(env, []string{"fmt", "--write", "-c", p}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	b, _ := os.ReadFile(p)
	want := "# the site\nport: 8080\nproxy:\n  /b: http://b\n  /a: http://a # second\n"
	if string(b) != want {
		t.Fatalf("formatted:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	j := filepath.Join(dir, "c.json")
	os.WriteFile(j, []byte(`{"port":8080,"proxy":"http://x"}`), 0o600)
	out.Reset()
	if code := Run(env, []string{"fmt", "-c", j}); code != 0 || out.String() != "{\n  \"port\": 8080,\n  \"proxy\": \"http://x\"\n}\n" {
		t.Fatalf("json fmt: %d %q", code, out.String())
	}
	os.WriteFile(j, []byte(`{"port":`), 0o600)
	if code := Run(env, []string{"fmt", "-c", j}); code != 1 {
		t.Fatal("a broken file must exit 1")
	}
}

// TestFmtKeepsVariablesAsWritten formats files that reference set variables: every $VAR
// (quoted, unquoted, in keys, next to text) is printed as written, never its value.
func TestFmtKeepsVariablesAsWritten(t *testing.T) {
	dir := t.TempDir()
	env := &Env{Dir: dir, LookupEnv: func(k string) (string, bool) { return "value-of-" + k, true }}
	for _, tc := range []struct{ file, src, want string }{
		{"c.yaml", "port:   $PORT\nglobal: { admin: { token: \"$ADMIN_TOKEN\" } }\nbasicAuth:\n    users: { $USER: '$PASS' }\nhost: ${HOST}-$$X\n",
			"port: $PORT\nglobal: {admin: {token: \"$ADMIN_TOKEN\"}}\nbasicAuth:\n  users: {$USER: '$PASS'}\nhost: ${HOST}-$$X\n"},
		{"c.json", `{"port":"$PORT","users":{"$USER":"$PASS"}}`, "{\n  \"port\": \"$PORT\",\n  \"users\": {\n    \"$USER\": \"$PASS\"\n  }\n}\n"},
	} {
		p := filepath.Join(dir, tc.file)
		if err := os.WriteFile(p, []byte(tc.src), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut strings.Builder
		env.Stdout, env.Stderr = &out, &errOut
		if code := Run(env, []string{"fmt", "-c", p}); code != 0 || out.String() != tc.want {
			t.Fatalf("%s: exit %d %s\n%s\nwant:\n%s", tc.file, code, errOut.String(), out.String(), tc.want)
		}
	}
}
