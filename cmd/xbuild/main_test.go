package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runXbuild(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"build", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--with", "example.com/a@"}, 2, "empty version"},
		{[]string{"--features", "jwtt,proxy", "-o", filepath.Join(os.TempDir(), "never")}, 1, `unknown feature "jwtt"`},
		{[]string{"--bundle", "tiny", "-o", filepath.Join(os.TempDir(), "never")}, 1, `unknown bundle "tiny"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runXbuild(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.inStderr) {
				t.Errorf("exit %d, stderr %q; want exit %d containing %q", code, stderr, tt.code, tt.inStderr)
			}
		})
	}
}

func TestListFeatures(t *testing.T) {
	code, stdout, stderr := runXbuild(t, "features")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Every line is "name bundle package"; the proxy is in every bundle when it exists.
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		if f := strings.Fields(line); len(f) != 3 || !strings.HasPrefix(f[2], "github.com/conduitproxy/conduit/") {
			t.Errorf("bad line %q", line)
		}
	}
}

// TestDryRun resolves builds without compiling: the imports of a feature build, and the same
// refusals as a real build for names no bundle declares.
func TestDryRun(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args       []string
		code       int
		stdout     string
		stderrPart string
	}{
		{[]string{"--features", "jwt,otlp"}, 0, "core: " + root + "\n" +
			"import: github.com/conduitproxy/conduit/modules/bundle/minimal\n" +
			"import: github.com/conduitproxy/conduit/modules/auth/jwt\n" +
			"import: github.com/conduitproxy/conduit/modules/otlp\n", ""},
		{[]string{"--bundle", "standard", "--features", "jwt"}, 0, "core: " + root + "\n" +
			"import: github.com/conduitproxy/conduit/modules/bundle/standard\n", ""},
		{[]string{"--features", "uplaod"}, 1, "", `unknown feature "uplaod" (did you mean "upload"?)`},
		{[]string{"--bundle", "tiny"}, 1, "", `unknown bundle "tiny"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runXbuild(t, append(tt.args, "--dry-run", "--core", root)...)
			if code != tt.code || stdout != tt.stdout || !strings.Contains(stderr, tt.stderrPart) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q", code, stdout, stderr, tt.code, tt.stdout, tt.stderrPart)
			}
		})
	}
}

// TestProgressOnStderr checks that a build reports its steps with elapsed time on stderr
// (even when it then fails), and that -q silences them; stdout keeps only results.
func TestProgressOnStderr(t *testing.T) {
	never := filepath.Join(t.TempDir(), "never")
	tests := []struct {
		args         []string
		wantProgress bool
	}{
		{[]string{"--bundle", "tiny", "-o", never}, true},
		{[]string{"-q", "--bundle", "tiny", "-o", never}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runXbuild(t, tt.args...)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want exit 1 and nothing on stdout", code, stdout)
			}
			got := strings.Contains(stderr, "xbuild: [  0.") && strings.Contains(stderr, "resolving the core")
			if got != tt.wantProgress {
				t.Errorf("stderr %q: progress line present %v, want %v", stderr, got, tt.wantProgress)
			}
		})
	}
}
