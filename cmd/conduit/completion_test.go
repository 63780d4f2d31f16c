package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// shellEnv is the environment for a shell that finds the built binary as `conduit` on PATH.
func shellEnv() []string {
	return append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+os.TempDir())
}

// TestBashCompletes sources `conduit completions bash` into a real bash, sets the words of a
// partial command line the way readline does, calls the function `complete -p conduit`
// names and checks COMPREPLY: commands, flags, flag values, file names, words after `=`.
func TestBashCompletes(t *testing.T) {
	bash := testtool.Find(t, "bash", ".ci/deps.sh")
	dir := t.TempDir()
	writeFile(t, dir, "app.yaml", "port: 8080\n")
	writeFile(t, dir, "api.json", "{}\n")
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		words []string // COMP_WORDS after "conduit"; the last is completed
		want  []string // COMPREPLY, in any order
	}{
		{[]string{"vali"}, []string{"validate"}},
		{[]string{"ver"}, []string{"version"}},
		{[]string{"st"}, []string{"status"}},
		{[]string{"validate", "--c"}, []string{"--config"}},
		{[]string{"status", "--u"}, []string{"--upstream"}},
		{[]string{"validate", "a"}, []string{"api.json", "app.yaml"}},
		{[]string{"validate", "-c", "app"}, []string{"app.yaml"}},
		{[]string{"-c", "app.yaml", "val"}, []string{"validate"}},
		{[]string{"completions", "p"}, []string{"powershell", "power-shell"}},
		{[]string{"completions", "bash", ""}, nil},
		{[]string{"help", "upst"}, []string{"upstreams"}},
		{[]string{"run", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"run", "--log-level", "=", "w"}, []string{"warn"}},
		{[]string{"upstreams", "w"}, []string{"weight"}},
		{[]string{"--bi"}, []string{"--bind"}},
		{[]string{"nosuch", ""}, nil},
	}
	for _, tc := range tests {
		words := append([]string{"conduit"}, tc.words...)
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		script := `source <(conduit completions bash)
fn=$(complete -p conduit | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
"$fn" conduit "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
		cmd.Dir = dir
		cmd.Env = shellEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("conduit %s<TAB>: bash offers %q, want %q", strings.Join(tc.words, " "), got, want)
		}
	}
}

// TestBashCompletesInATerminal types `conduit vali<TAB>` into an interactive bash running in
// a real tmux pane with the script sourced, and reads the line readline completed.
func TestBashCompletesInATerminal(t *testing.T) {
	bash := testtool.Find(t, "bash", ".ci/deps.sh")
	dir := t.TempDir()
	rc := writeFile(t, dir, "bashrc", "PS1='READY$ '\nsource <(conduit completions bash)\n")
	tm := startTmux(t, dir, bash, "--noprofile", "--rcfile", rc, "-i")
	tm.wait("READY$")
	tm.keys("conduit vali")
	tm.keys("Tab")
	tm.wait("READY$ conduit validate")
	tm.keys("-l", "--", "--c")
	tm.keys("Tab")
	tm.wait("READY$ conduit validate --config")
}

// tmuxPane is a command running in a detached tmux session on its own socket: a real
// pseudo-terminal that tests type into and read from.
type tmuxPane struct {
	t    *testing.T
	tmux string
	sock string
	dir  string
}

// startTmux runs argv in a new 120x30 tmux pane in dir, with the built binary on PATH; the
// tmux server is killed when the test ends.
func startTmux(t *testing.T, dir string, argv ...string) *tmuxPane {
	t.Helper()
	tm := &tmuxPane{t: t, tmux: testtool.Find(t, "tmux", ".ci/deps.sh"), sock: filepath.Join(t.TempDir(), "tmux.sock"), dir: dir}
	tm.run(append([]string{"-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "30"}, argv...)...)
	t.Cleanup(func() { _ = exec.Command(tm.tmux, "-S", tm.sock, "kill-server").Run() })
	return tm
}

func (tm *tmuxPane) run(args ...string) string {
	tm.t.Helper()
	cmd := exec.Command(tm.tmux, append([]string{"-S", tm.sock}, args...)...)
	cmd.Env = shellEnv()
	cmd.Dir = tm.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keys sends keys to the pane (tmux send-keys arguments: "Tab", "Enter", or -l TEXT).
func (tm *tmuxPane) keys(args ...string) {
	tm.t.Helper()
	tm.run(append([]string{"send-keys"}, args...)...)
}

// line types text and Enter.
func (tm *tmuxPane) line(text string) {
	tm.t.Helper()
	if text != "" {
		tm.keys("-l", "--", text)
	}
	tm.keys("Enter")
}

// wait waits up to 5 s for the pane to show want and returns the pane.
func (tm *tmuxPane) wait(want string) string {
	tm.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var pane string
	for time.Now().Before(deadline) {
		pane = tm.run("capture-pane", "-p")
		if strings.Contains(pane, want) {
			return pane
		}
		time.Sleep(50 * time.Millisecond)
	}
	tm.t.Fatalf("the pane never showed %q; it shows:\n%s", want, pane)
	return ""
}

// TestFishCompletes loads `conduit completions fish` into a real fish and asks it for the
// completions of partial command lines (`complete -C`).
func TestFishCompletes(t *testing.T) {
	fish := testtool.Find(t, "fish", ".ci/deps.sh")
	dir := t.TempDir()
	writeFile(t, dir, "app.yaml", "port: 8080\n")
	tests := []struct {
		line string
		want []string
	}{
		{"conduit vali", []string{"validate"}},
		{"conduit validate --c", []string{"--config"}},
		{"conduit completions p", []string{"power-shell", "powershell"}},
		{"conduit validate ap", []string{"app.yaml"}},
		{"conduit run --log-level=w", []string{"--log-level=warn"}},
	}
	for _, tc := range tests {
		cmd := exec.Command(fish, "--no-config", "-c", "conduit completions fish | source; complete -C '"+tc.line+"'")
		cmd.Dir = dir
		cmd.Env = shellEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("fish: %s<TAB> offers %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestZshScriptParses checks the zsh script with `zsh -n` (its completion widget needs an
// interactive zsh with compinit; what it prints comes from the same __complete answers the
// bash and fish tests check).
func TestZshScriptParses(t *testing.T) {
	zsh := testtool.Find(t, "zsh", ".ci/deps.sh")
	code, script, errOut := runCLI(t, t.TempDir(), nil, "completions", "zsh")
	if code != 0 {
		t.Fatalf("completions zsh: exit %d: %s", code, errOut)
	}
	cmd := exec.Command(zsh, "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
}

// TestCompletionsCommand: every shell name (and the power-shell spelling) prints a script
// that registers the conduit command; an unknown shell or none is exit 1.
func TestCompletionsCommand(t *testing.T) {
	for _, tc := range []struct {
		shell, want string
	}{
		{"bash", "complete -F _conduit_complete conduit"},
		{"zsh", "compdef _conduit conduit"},
		{"fish", "complete -c conduit"},
		{"powershell", "Register-ArgumentCompleter -Native -CommandName conduit"},
		{"power-shell", "Register-ArgumentCompleter -Native -CommandName conduit"},
	} {
		code, out, errOut := runCLI(t, t.TempDir(), nil, "completions", tc.shell)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("completions %s: exit %d, stderr %q, want %q in:\n%s", tc.shell, code, errOut, tc.want, out)
		}
	}
	for _, args := range [][]string{{"completions"}, {"completions", "tcsh"}, {"completions", "bash", "zsh"}} {
		if code, _, _ := runCLI(t, t.TempDir(), nil, args...); code != 1 {
			t.Errorf("%s: exit %d, want 1", strings.Join(args, " "), code)
		}
	}
}
