package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// runCLI runs the conduit binary in dir with env ("NAME=value" entries added to the test's
// environment minus CONDUIT_ADMIN and CONDUIT_ADMIN_TOKEN) and returns its exit code, stdout
// and stderr.
func runCLI(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = envWithout([]string{"CONDUIT_ADMIN", "CONDUIT_ADMIN_TOKEN"}, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// writeFile writes src to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGlobalOptionsBeforeOrAfterCommand: -c FILE works before or after the command, and a
// config-reading command takes the file by name. The working directory holds an invalid
// conduit.yaml, so a command that ignored the file it was given and discovered that one fails.
func TestGlobalOptionsBeforeOrAfterCommand(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "conduit.yaml", "port: \"abc\"\n")
	f := writeFile(t, dir, "app.yaml", "port: 8080\nproxy: http://127.0.0.1:9\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"validate", "-c", f}, "Config is valid — 1 sites"},
		{[]string{"-c", f, "validate"}, "Config is valid — 1 sites"},
		{[]string{"--config", f, "validate"}, "Config is valid — 1 sites"},
		{[]string{"--config=" + f, "validate"}, "Config is valid — 1 sites"},
		{[]string{"validate", f}, "Config is valid — 1 sites"},
		{[]string{"fmt", f}, "proxy: http://127.0.0.1:9"},
		{[]string{"-c", f, "fmt"}, "proxy: http://127.0.0.1:9"},
		{[]string{"fmt", f, "--write"}, ""},
		{[]string{"features", f}, "proxy"},
		{[]string{"-c", f, "features", "--json"}, `"required"`},
		{[]string{"features", "--json", f}, `"required"`},
		// Commands that read no config accept the global option and ignore it.
		{[]string{"-c", f, "version"}, "modules:"},
		{[]string{"--config=" + f, "version"}, "modules:"},
		{[]string{"-c", f, "help"}, "usage: conduit"},
	}
	for _, tc := range tests {
		code, out, errOut := runCLI(t, dir, nil, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("conduit %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 0 and %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	// One file by -c and another by name are a mistake; several by name are merged (the
	// second here does not exist).
	for _, tc := range []struct {
		args []string
		want string
	}{{[]string{"-c", f, "validate", f + "2"}, "unexpected argument"}, {[]string{"validate", f, f + "2"}, "app.yaml2: no such file"}} {
		if code, _, errOut := runCLI(t, dir, nil, tc.args...); code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("conduit %s: exit %d, stderr %q; want exit 1 and %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}

// commandNames returns the commands `conduit help` lists.
func commandNames(t *testing.T) []string {
	t.Helper()
	code, out, _ := runCLI(t, t.TempDir(), nil, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	var names []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "commands:":
			in = true
		case in && strings.HasPrefix(line, "  "):
			names = append(names, strings.Fields(line)[0])
		case in:
			in = false
		}
	}
	if len(names) < 10 {
		t.Fatalf("help lists %d commands:\n%s", len(names), out)
	}
	return names
}

// TestHelpOnEveryCommand: `conduit CMD --help` and `-h` exit 0 and print the command's usage
// on stdout, for every command help lists; help names the Admin API variables.
func TestHelpOnEveryCommand(t *testing.T) {
	for _, name := range commandNames(t) {
		for _, flag := range []string{"--help", "-h"} {
			code, out, errOut := runCLI(t, t.TempDir(), nil, name, flag)
			want := "usage: conduit " + name
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("conduit %s %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 0 and %q", name, flag, code, out, errOut, want)
			}
		}
	}
	_, out, _ := runCLI(t, t.TempDir(), nil, "help")
	for _, v := range []string{"CONDUIT_ADMIN ", "CONDUIT_ADMIN_TOKEN"} {
		if !strings.Contains(out, v) {
			t.Errorf("help does not name %s:\n%s", v, out)
		}
	}
}

// TestAdminCommandsReadConfig: with -c FILE (before or after the command), the Admin API
// commands take the address and the token from global.admin of the file, the token's $VAR
// resolved from the environment; without it they go to CONDUIT_ADMIN with no token and
// are refused.
func TestAdminCommandsReadConfig(t *testing.T) {
	dir := t.TempDir()
	adminPort, sitePort := testtool.FreePort(t), testtool.FreePort(t)
	cfg := writeFile(t, dir, "conduit.yaml", fmt.Sprintf(`global:
  admin: { bind: "127.0.0.1:%d", token: $T_ADMIN_TOKEN }
sites:
  - port: %d
    proxy: http://127.0.0.1:9
`, adminPort, sitePort))
	tokenEnv := []string{"T_ADMIN_TOKEN=a-long-enough-admin-token"}
	startConduitEnv(t, cfg, tokenEnv)
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", sitePort))
	other := t.TempDir() // no config to discover here
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"status", "-c", cfg}, "configured_upstreams"},
		{[]string{"-c", cfg, "status", "--json"}, `"configured_upstreams"`},
		{[]string{"upstreams", "-c", cfg}, "http://127.0.0.1:9"},
		{[]string{"-c", cfg, "reload"}, "reload"},
		{[]string{"top", "-c", cfg, "--once", "--interval", "100ms"}, ""},
	}
	for _, tc := range tests {
		code, out, errOut := runCLI(t, other, tokenEnv, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("conduit %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 0 and %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	addrOnly := append([]string{fmt.Sprintf("CONDUIT_ADMIN=127.0.0.1:%d", adminPort)}, tokenEnv...)
	if code, _, errOut := runCLI(t, other, addrOnly, "status"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("status without -c: exit %d, stderr %q; want 401 (no token without the file)", code, errOut)
	}
	// The file's token is an error when its variable is unset: never sent as "$T_ADMIN_TOKEN".
	if code, _, errOut := runCLI(t, other, nil, "status", "-c", cfg); code != 1 || !strings.Contains(errOut, "T_ADMIN_TOKEN is not set") {
		t.Errorf("status -c with the token variable unset: exit %d, stderr %q", code, errOut)
	}
}

// TestEmptyConfigFileIsAnError: validate and start refuse a config file with no content
// (empty, or only comments), while `sites: []` stays the documented empty catch-all site.
func TestEmptyConfigFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, src string
		code      int
		want      string
	}{
		{"empty.yaml", "", 1, "the config file is empty (no sites)"},
		{"comments.yaml", "# nothing yet\n", 1, "the config file is empty (no sites)"},
		{"empty.json", "\n", 1, "the config file is empty (no sites)"},
		{"nosites.yaml", "sites: []\n", 0, "Config is valid — 1 sites"},
	}
	for _, tc := range tests {
		f := writeFile(t, dir, tc.name, tc.src)
		code, out, errOut := runCLI(t, dir, nil, "validate", f)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("validate %s: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d and %q", tc.name, code, out, errOut, tc.code, tc.want)
		}
	}
	p := startConduitEnv(t, writeFile(t, dir, "start.yaml", ""), nil)
	select {
	case err := <-p.done:
		if err == nil || !strings.Contains(p.stderr.String(), "the config file is empty") {
			t.Fatalf("start on an empty file: %v\n%s", err, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("conduit started on an empty config file")
	}
}

// TestFeaturesRefusesUnknownKeys: `conduit features -c` on a config with a key no module
// owns exits 1 and recommends no build (one would serve the config without the key).
func TestFeaturesRefusesUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "typo.yaml", "port: 8080\nproxy: http://127.0.0.1:9\njwtAuht: { secret: x }\n")
	code, out, _ := runCLI(t, dir, nil, "features", "-c", f)
	if code != 1 || !strings.Contains(out, "unknown key jwtAuht") || strings.Contains(out, "build:") {
		t.Errorf("features on an unknown key: exit %d, stdout:\n%s\nwant exit 1, the key named, no build line", code, out)
	}
	good := writeFile(t, dir, "good.yaml", "port: 8080\nproxy: http://127.0.0.1:9\n")
	if code, out, _ := runCLI(t, dir, nil, "features", "-c", good); code != 0 || !strings.Contains(out, "build:") {
		t.Errorf("features on a good config: exit %d, stdout:\n%s", code, out)
	}
}
