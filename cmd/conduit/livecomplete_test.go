package main

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// TestBashCompletesRoutesAndTargetsOfARunningConduit: bash, with the completion script
// sourced, completes --route, --target and --site of `conduit upstreams …` from a running
// Conduit's Admin API (address and token from -c FILE), and offers nothing, quickly, when
// the instance does not answer.
func TestBashCompletesRoutesAndTargetsOfARunningConduit(t *testing.T) {
	bash := testtool.Find(t, "bash", ".ci/deps.sh")
	a, b := upstream(t, "a"), upstream(t, "b")
	dir := t.TempDir()
	port, adminPort := testtool.FreePort(t), testtool.FreePort(t)
	cfg := writeFile(t, dir, "conduit.yaml", fmt.Sprintf("global:\n  admin: { bind: \"127.0.0.1:%d\", token: \"a-token-long-enough-1234\" }\nsites:\n  - port: %d\n    proxy:\n      /api: { targets: [%q, %q] }\n      /web: %q\n", adminPort, port, a.URL, b.URL, a.URL))
	p := startConduit(t, cfg)
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", port))

	// A port that accepts and never answers: completion must give up within its timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{"upstreams", "add", "-c", "conduit.yaml", "--route", ""}, []string{"/api", "/web"}},
		{[]string{"upstreams", "drain", "-c", "conduit.yaml", "--route", "/a"}, []string{"/api"}},
		{[]string{"upstreams", "remove", "-c", "conduit.yaml", "--route", "/api", "--target", ""}, []string{a.URL, b.URL}},
		{[]string{"upstreams", "remove", "-c", "conduit.yaml", "--route=/web", "--target", "http"}, []string{a.URL}},
		{[]string{"upstreams", "add", "-c", "conduit.yaml", "--site", ""}, []string{"*"}},
		{[]string{"upstreams", "add", "--admin", silent.Addr().String(), "--route", ""}, nil},
		{[]string{"upstreams", "add", "--admin", "127.0.0.1:1", "--route", ""}, nil},
	}
	for _, tc := range tests {
		words := append([]string{"conduit"}, tc.words...)
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		script := `source <(conduit completions bash)
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_conduit_complete conduit "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
		cmd.Dir = dir
		cmd.Env = shellEnv()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%q took %v", tc.words, took)
		}
		got := strings.Fields(string(out))
		slices.Sort(got)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("conduit %s<TAB>: bash offers %q, want %q", strings.Join(tc.words, " "), got, tc.want)
		}
	}
	stopConduit(t, p)
}
