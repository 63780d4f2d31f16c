package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/testtool"
)

// TestHelpCommandIsCommandHelp: for every command `conduit help`
// lists, `conduit help COMMAND` prints exactly what `conduit COMMAND --help` prints, exit 0,
// starting with the command's usage line; an unknown command is exit 1.
func TestHelpCommandIsCommandHelp(t *testing.T) {
	dir := t.TempDir()
	for _, name := range commandNames(t) {
		code, viaHelp, errOut := runCLI(t, dir, nil, "help", name)
		if code != 0 {
			t.Errorf("help %s: exit %d: %s", name, code, errOut)
			continue
		}
		code, viaFlag, errOut := runCLI(t, dir, nil, name, "--help")
		if code != 0 || viaFlag != viaHelp {
			t.Errorf("%s --help: exit %d (%s), and its text differs from help %s:\n%s\n---\n%s", name, code, errOut, name, viaFlag, viaHelp)
		}
		if !strings.HasPrefix(viaHelp, "usage: conduit "+name) {
			t.Errorf("help %s does not start with its usage line:\n%s", name, viaHelp)
		}
	}
	if code, _, errOut := runCLI(t, dir, nil, "help", "nosuch"); code != 1 || !strings.Contains(errOut, `unknown command "nosuch"`) {
		t.Errorf("help nosuch: exit %d, stderr %q", code, errOut)
	}
}

// TestManPage renders `conduit man` with mandoc -Tlint and groff -man -ww (no warning
// allowed, style notes included) and checks that it documents every command `conduit help`
// lists and every flag each command's --help prints.
func TestManPage(t *testing.T) {
	mandoc := testtool.Find(t, "mandoc", ".ci/deps.sh")
	code, page, errOut := runCLI(t, t.TempDir(), nil, "man")
	if code != 0 || !strings.HasPrefix(page, ".TH CONDUIT 1 ") {
		t.Fatalf("man: exit %d, stderr %q, page:\n%.200s", code, errOut, page)
	}
	lint := exec.Command(mandoc, "-Tlint", "-W", "all")
	lint.Stdin = strings.NewReader(page)
	if out, err := lint.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("mandoc -Tlint: %v\n%s", err, out)
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		g := exec.Command(groff, "-man", "-ww", "-z")
		g.Stdin = strings.NewReader(page)
		if out, err := g.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff -man -ww: %v\n%s", err, out)
		}
	}
	render := exec.Command(mandoc, "-Tascii")
	render.Stdin = strings.NewReader(page)
	text, err := render.Output()
	if err != nil {
		t.Fatal(err)
	}
	plain := regexp.MustCompile(`.\x08`).ReplaceAllString(string(text), "")
	flagRE := regexp.MustCompile(`(?m)^  (-{1,2}[a-z][a-z0-9-]*)`)
	for _, name := range commandNames(t) {
		if !strings.Contains(plain, "conduit "+name) {
			t.Errorf("the man page has no section for %s", name)
			continue
		}
		_, help, _ := runCLI(t, t.TempDir(), nil, name, "--help")
		for _, m := range flagRE.FindAllStringSubmatch(help, -1) {
			long := m[1]
			if len(strings.TrimLeft(long, "-")) > 1 {
				long = "--" + strings.TrimLeft(long, "-")
			}
			if !strings.Contains(plain, long) {
				t.Errorf("the man page does not document %s %s", name, long)
			}
		}
	}
}
