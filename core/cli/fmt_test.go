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
