package testtool

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "conduit-fake-tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "not-executable"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONDUIT_TOOLS_BIN", dir)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CI", "")
	if got := Find(t, "conduit-fake-tool", "x.sh"); got != exe {
		t.Fatalf("Find = %q, want %q", got, exe)
	}
	// A missing (or not executable) tool skips the test: the code after Find never runs.
	for _, name := range []string{"not-executable", "conduit-no-such-tool"} {
		t.Run(name, func(t *testing.T) {
			Find(t, name, "x.sh")
			t.Errorf("Find returned for a missing tool instead of skipping")
		})
	}
}

func TestFreePort(t *testing.T) {
	p := FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	ln.Close()
}
