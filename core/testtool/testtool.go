// Package testtool holds what tests that run real components share: a free loopback port,
// a large sparse file and a download by a client that stops reading (slow-reader tests),
// and finding a pinned external tool (pebble, h2spec, …) that .ci/deps.sh builds into
// $HOME/.cache/conduit-tools/bin. A missing tool skips the test locally and fails it when
// CI=true, as the project's test standard asks.
package testtool

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Find returns the executable name from $CONDUIT_TOOLS_BIN, $HOME/.cache/conduit-tools/bin
// or PATH, in that order. When it is nowhere it skips t (fails it under CI=true) with a
// message that names install, the script that provides it.
func Find(t testing.TB, name, install string) string {
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
	msg := name + " is not installed; run " + install + " (make test-deps)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
