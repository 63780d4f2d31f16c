package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runValidate runs `conduit validate -c` on a config file holding src and returns its exit
// code and stdout (diagnostics).
func runValidate(t *testing.T, name, src string) (int, string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "validate", "-c", f)
	out, err := cmd.Output()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestValidateRefusesUnsendableTransformHeaders: a transform header that no HTTP client can
// send (CR/LF in a value, a space in a name) used to pass validate and then turn every proxied
// request into a 502.
func TestValidateRefusesUnsendableTransformHeaders(t *testing.T) {
	code, out := runValidate(t, "conduit.yaml", `
port: 8080
requestTransform:
  setHeaders: { X-Tenant: "acme\r\nX-Injected: 1" }
responseTransform:
  setHeaders: { "X Bad": "v" }
proxy: http://127.0.0.1:9
`)
	want := "error at requestTransform.setHeaders.X-Tenant: value contains a control character (byte 4)"
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, `error at responseTransform.setHeaders["X Bad"]: "X Bad" is not a valid header name`) {
		t.Fatalf("exit %d, stdout:\n%s\nwant exit 1 and %q", code, out, want)
	}
	if strings.Contains(out, "X-Injected") {
		t.Errorf("validate printed the configured value:\n%s", out)
	}
}

// TestOneErrorPerMistake: a value that does not decode is reported once; the checks that
// read the decoded value (the port range) do not report it again.
func TestOneErrorPerMistake(t *testing.T) {
	tests := []struct{ src, want string }{
		{`port: "abc"`, `error at port: must be an integer, got "abc"`},
		{`port: 1.5`, `error at port: must be an integer, got 1.5`},
		{`port: true`, `error at port: must be an integer, got true`},
		{`port: 70000`, `error at port: must be between 1 and 65535`},
		{"global: { shutdownTimeoutSecs: x }\nsites: [{ port: 8080 }]", `error at global.shutdownTimeoutSecs: must be an integer, got "x"`},
	}
	for _, tc := range tests {
		code, out := runValidate(t, "conduit.yaml", tc.src+"\n")
		want := tc.want + "\n1 errors found.\n"
		if code != 1 || out != want {
			t.Errorf("%s: exit %d, stdout:\n%s\nwant exit 1 and exactly:\n%s", tc.src, code, out, want)
		}
	}
}

// TestSyntaxErrorsPointAtTheMistake: validate and fmt word a YAML or JSON syntax error the
// same way, with the line and column of the mistake (not yaml.v3's enclosing block, nor no
// line at all) and the file's line under a caret.
func TestSyntaxErrorsPointAtTheMistake(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"indent.yaml", "port: 8080\nproxy:\n  /api: http://x\n /b: http://y\n",
			"parse error at line 4, column 2: did not find expected key\n  4 |  /b: http://y\n    |  ^\n"},
		{"tab.yaml", "sites:\n  - port: 1\n\t- port: 2\n",
			"parse error at line 3, column 1: found a tab character that violates indentation\n  3 | \t- port: 2\n    | ^\n"},
		{"inline.yaml", "port: 8080\nproxy: http://x\n  bad: 1\n",
			"parse error at line 3, column 6: mapping values are not allowed in this context\n  3 |   bad: 1\n    |      ^\n"},
		{"noline.yaml", "a: b: c\n",
			"parse error at line 1, column 5: mapping values are not allowed in this context\n  1 | a: b: c\n    |     ^\n"},
		{"quote.yaml", "port: 8080\nproxy: \"http://x\n",
			"parse error at line 2, column 8: found unexpected end of stream\n  2 | proxy: \"http://x\n    |        ^\n"},
		{"bad.json", "{\"port\": 8080,\n \"proxy\": x}\n",
			"parse error at line 2, column 11: invalid character 'x' looking for beginning of value\n  2 |  \"proxy\": x}\n    |           ^\n"},
	}
	for _, tc := range tests {
		f := writeFile(t, t.TempDir(), tc.name, tc.src)
		for _, cmd := range []string{"validate", "fmt"} {
			code, out, errOut := runCLI(t, t.TempDir(), nil, cmd, f)
			want := f + ": " + tc.want
			if code != 1 || errOut != want || out != "" {
				t.Errorf("%s %s: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and stderr:\n%s", cmd, tc.name, code, out, errOut, want)
			}
		}
	}
}
