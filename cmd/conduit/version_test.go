package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMakeBuildStampsVersion: `make build` stamps VERSION (by default `git describe --tags
// --always --dirty`) into the binary with -ldflags -X, and `conduit version` prints it, not
// "devel".
func TestMakeBuildStampsVersion(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := t.TempDir()
	const want = "v9.9.9-test"
	build := exec.CommandContext(ctx, "make", "-C", filepath.Join("..", ".."), "build", "BIN="+bin, "VERSION="+want)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "conduit"), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(first, "conduit "+want+" (") {
		t.Fatalf("version line %q, want conduit %s (…)", first, want)
	}
}
