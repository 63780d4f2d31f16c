package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// upstream is a real HTTP server answering body.
func upstream(t *testing.T, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	t.Cleanup(s.Close)
	return s
}

// serves waits until url answers want.
func serves(t *testing.T, p *process, url, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %q (last err %v); log:\n%s", url, want, err, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSeveralConfigFilesServeReloadAndOverride runs the binary on a conf.d directory plus a
// file of the single-site shape with a --set and a CONDUIT_SET_* override, then reloads
// after files of the directory change (SIGHUP, the Admin API through `conduit reload -c DIR`,
// and the hotReload file watch); a bad file added to the directory keeps the running config
// and the log names it.
func TestSeveralConfigFilesServeReloadAndOverride(t *testing.T) {
	a, b := upstream(t, "a"), upstream(t, "b")
	dir := t.TempDir()
	confd := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(confd, 0o755); err != nil {
		t.Fatal(err)
	}
	p1, p2, p3, p4, adminPort := testtool.FreePort(t), testtool.FreePort(t), testtool.FreePort(t), testtool.FreePort(t), testtool.FreePort(t)
	writeFile(t, confd, "10-global.yaml", fmt.Sprintf("global:\n  admin: { bind: \"127.0.0.1:%d\", token: \"a-token-long-enough-1234\" }\nsites: []\n", adminPort))
	writeFile(t, confd, "20-a.yaml", fmt.Sprintf("sites:\n  - port: %d\n    hotReload: true\n    proxy: %q\n", p1, a.URL))
	writeFile(t, confd, "30-b.json", fmt.Sprintf(`[{"port": 1, "proxy": %q}]`, b.URL))
	single := writeFile(t, dir, "single.yaml", fmt.Sprintf("port: %d\nproxy: %q\n", p3, a.URL))

	cmd := exec.Command(binary, "-c", confd, "-c", single, "--bind", "127.0.0.1", "--set", fmt.Sprintf("sites[1].port=%d", p2))
	env := append(envWithout([]string{"CONDUIT_ADMIN", "CONDUIT_ADMIN_TOKEN", "CONDUIT_LOG"}), fmt.Sprintf("CONDUIT_SET_EXTRA=sites[3]={port: %d, proxy: %q}", p4, b.URL))
	p := startCommand(t, cmd, env)
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p1), "a")
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p2), "b") // port 1 of 30-b.json, overridden by --set
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p3), "a")
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p4), "b") // the site CONDUIT_SET_EXTRA adds

	// SIGHUP after a file of the directory changed.
	writeFile(t, confd, "20-a.yaml", fmt.Sprintf("sites:\n  - port: %d\n    hotReload: true\n    proxy: %q\n", p1, b.URL))
	p.cmd.Process.Signal(syscall.SIGHUP)
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p1), "b")

	// The Admin API's reload, asked by `conduit reload -c DIR` (address and token from the
	// merged config).
	writeFile(t, dir, "single.yaml", fmt.Sprintf("port: %d\nproxy: %q\n", p3, b.URL))
	if code, out, errOut := runCLI(t, dir, nil, "reload", "-c", confd); code != 0 {
		t.Fatalf("conduit reload -c conf.d: exit %d\n%s%s", code, out, errOut)
	}
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p3), "b")

	// A bad file added to the directory: the watch (a site has hotReload) reloads, the
	// reload is refused naming the file and the key, and the running config keeps serving.
	bad := writeFile(t, confd, "40-bad.yaml", fmt.Sprintf("port: %d\nproxy: not-a-url\n", p4+1))
	waitLog(t, p, "keeping the running config")
	waitLog(t, p, bad+": proxy")
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p1), "b")
	// The Admin API's answer to a refused reload names the file too.
	if code, out, errOut := runCLI(t, dir, nil, "reload", "-c", confd); code != 1 || !strings.Contains(errOut, bad+": error at proxy") {
		t.Fatalf("conduit reload with a bad file: exit %d\n%s%s", code, out, errOut)
	}
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p1), "b")

	// Fixing the directory is picked up by the watch alone.
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	writeFile(t, confd, "20-a.yaml", fmt.Sprintf("sites:\n  - port: %d\n    hotReload: true\n    proxy: %q\n", p1, a.URL))
	serves(t, p, fmt.Sprintf("http://127.0.0.1:%d/", p1), "a")
	stopConduit(t, p)
}

// TestSeveralConfigFilesValidate: validate merges, and every error names its file: a key
// two files set, two sites on one port, a syntax error, an override; and the warning of an
// unknown key.
func TestSeveralConfigFilesValidate(t *testing.T) {
	dir := t.TempDir()
	x := writeFile(t, dir, "x.yaml", "global:\n  workers: 2\nsites:\n  - port: 8080\n")
	y := writeFile(t, dir, "y.json", `{"global": {"workers": 3}, "sites": [{"port": 8081}]}`)
	z := writeFile(t, dir, "z.yaml", "port: 8080\n")
	u := writeFile(t, dir, "u.yaml", "- port: 8082\n  prxy: http://127.0.0.1:1\n")
	s := writeFile(t, dir, "s.yaml", "port: [\n")
	w := writeFile(t, dir, "w.yaml", "- port: 8084\n")
	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"unknown key", []string{"validate", "-c", x, "-c", u}, 0,
			[]string{u + ": warning at sites[0].prxy: unknown key"}},
		{"two files", []string{"validate", x, z + "x"}, 1, []string{"read config"}},
		{"valid", []string{"validate", "-c", x, "--set", "sites[2]={port: 8083}", "-c", w}, 0,
			[]string{"Config is valid — 3 sites"}},
		{"global conflict", []string{"validate", "-c", x, "-c", y}, 1,
			[]string{y + ": error at global.workers: is also set in " + x}},
		{"site conflict", []string{"validate", "-c", x, "-c", z}, 1,
			[]string{z + ": error at host: duplicate site *:8080 (also " + x + ": sites[0])"}},
		{"syntax", []string{"validate", "-c", x, "-c", s}, 1, []string{s + ": parse error at line 1, column 7"}},
		{"set names itself", []string{"validate", "-c", x, "-c", z, "--set", "sites[1].port=-5"}, 1,
			[]string{"--set: error at sites[1].port"}},
		{"bad set", []string{"validate", "-c", x, "--set", "sites[7].port=1"}, 1, []string{"there is no site 7"}},
		{"fmt refuses several files", []string{"fmt", "-c", x, "-c", z}, 1, []string{"give --write to format each in place"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, dir, nil, tt.args...)
			all := out + errOut
			if code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, all)
			}
			for _, w := range tt.wants {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestFmtWritesEachFileOfADirectory: fmt --write on a directory formats each file in place
// and leaves them separate.
func TestFmtWritesEachFileOfADirectory(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.yaml", "port:    8080\n")
	b := writeFile(t, dir, "b.json", `{"port":8081}`)
	if code, out, errOut := runCLI(t, dir, nil, "fmt", "--write", dir); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for path, want := range map[string]string{a: "port: 8080\n", b: "{\n  \"port\": 8081\n}\n"} {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
