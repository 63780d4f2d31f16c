package server_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tool finds a pinned external test tool: in $CONDUIT_TOOLS_BIN or
// $HOME/.cache/conduit-tools/bin (where core/server/testdata/install-conformance-tools.sh
// puts it), else on PATH. A missing tool skips the test locally and fails it when CI=true.
func tool(t *testing.T, name string) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("CONDUIT_TOOLS_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "conduit-tools", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := name + " is not installed; run core/server/testdata/install-conformance-tools.sh (make test-deps)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
