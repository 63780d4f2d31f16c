package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// TestColourOnlyOnATerminal runs `conduit status --upstream` against a real Conduit and
// `conduit validate` on a bad file in a real pseudo-terminal (tmux): the output has colour
// escapes there, none through a pipe, and none on the terminal with NO_COLOR or --no-color.
func TestColourOnlyOnATerminal(t *testing.T) {
	bash := testtool.Find(t, "bash", ".ci/deps.sh")
	up := upstream(t, "up")
	dir := t.TempDir()
	port, adminPort := testtool.FreePort(t), testtool.FreePort(t)
	cfg := writeFile(t, dir, "conduit.yaml", fmt.Sprintf("global:\n  admin: { bind: \"127.0.0.1:%d\", token: \"a-token-long-enough-1234\" }\nsites:\n  - port: %d\n    proxy: %q\n", adminPort, port, up.URL))
	writeFile(t, dir, "bad.yaml", "port: 8080\nproxy: not-a-url\n")
	p := startConduit(t, cfg)
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", port))
	status := "conduit status --upstream -c " + filepath.Base(cfg)
	validate := "conduit validate bad.yaml"

	code, out, _ := runCLI(t, dir, nil, strings.Fields(status)[1:]...)
	if code != 0 || !strings.Contains(out, "HEALTHY") || strings.Contains(out, "\x1b[") {
		t.Fatalf("through a pipe: exit %d, %q", code, out)
	}
	_, out, _ = runCLI(t, dir, nil, strings.Fields(validate)[1:]...)
	if !strings.Contains(out, "error at proxy") || strings.Contains(out, "\x1b[") {
		t.Fatalf("validate through a pipe: %q", out)
	}

	tests := []struct {
		name, prefix string
		colour       bool
	}{
		{"terminal", "", true},
		{"NO_COLOR", "NO_COLOR=1 ", false},
		{"--no-color", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := writeFile(t, dir, "bashrc", "PS1='READY$ '\nunset NO_COLOR\n")
			tm := startTmux(t, dir, bash, "--noprofile", "--rcfile", rc, "-i")
			tm.wait("READY$")
			flag := ""
			if tt.name == "--no-color" {
				flag = " --no-color"
			}
			tm.line(tt.prefix + status + flag + " && " + tt.prefix + validate + flag + "; echo END-OF-OUTPUT")
			tm.wait("\nEND-OF-OUTPUT")
			pane := captureEscapes(t, tm)
			for _, want := range []string{"HEALTHY", "127.0.0.1", "error", "1 errors found."} {
				if !strings.Contains(pane, want) {
					t.Fatalf("pane lacks %q:\n%s", want, pane)
				}
			}
			if got := strings.Contains(pane, "\x1b["); got != tt.colour {
				t.Fatalf("colour %v, want %v; pane:\n%q", got, tt.colour, pane)
			}
		})
	}
	stopConduit(t, p)
}

// captureEscapes returns the pane with its colours as escape sequences (capture-pane -e),
// after the prompt has come back.
func captureEscapes(t *testing.T, tm *tmuxPane) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pane := tm.run("capture-pane", "-e", "-p")
		if strings.Count(pane, "READY$") >= 2 || time.Now().After(deadline) {
			return pane
		}
		time.Sleep(50 * time.Millisecond)
	}
}
