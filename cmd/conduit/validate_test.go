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
