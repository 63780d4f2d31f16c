package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
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

// binary is the conduit binary built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "conduit-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "conduit")
	out, err := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build conduit: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running conduit binary, stopped by PID when the test ends.
type process struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startConduit(t *testing.T, configPath string) *process {
	t.Helper()
	return startConduitEnv(t, configPath, nil)
}

// startConduitEnv starts conduit with the test's environment minus the log variables, plus
// env ("NAME=value" entries).
func startConduitEnv(t *testing.T, configPath string, env []string) *process {
	t.Helper()
	var full []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONDUIT_LOG=") && !strings.HasPrefix(kv, "RUST_LOG=") {
			full = append(full, kv)
		}
	}
	return startConduitWithEnv(t, configPath, append(full, env...))
}

// startConduitWithEnv starts conduit with exactly env as its environment.
func startConduitWithEnv(t *testing.T, configPath string, env []string) *process {
	t.Helper()
	return startCommand(t, exec.Command(binary, "-c", configPath, "--bind", "127.0.0.1"), env)
}

// startConduitArgs starts conduit -c configPath with args and the test's environment.
func startConduitArgs(t *testing.T, configPath string, args ...string) *process {
	t.Helper()
	return startCommand(t, exec.Command(binary, append([]string{"-c", configPath}, args...)...), os.Environ())
}

// startCommand starts cmd with env, its stderr collected, and kills it by PID when the test
// ends if it still runs.
func startCommand(t *testing.T, cmd *exec.Cmd, env []string) *process {
	t.Helper()
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stderr: &stderr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/__health__")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("conduit at %s did not become ready", url)
}

func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	}))
	defer up.Close()
	port := testtool.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "conduit.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("global: { shutdownTimeoutSecs: 10 }\nsites:\n  - port: %d\n    proxy: %q\n", port, up.URL)), 0o600)
	p := startConduit(t, cfg)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, url)

	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	<-entered
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once shutdown began; the request in flight still finishes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-res
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("conduit did not exit after SIGTERM")
	}
}

func TestSIGHUPReloadsAndKeepsConfigOnError(t *testing.T) {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") }))
	defer b.Close()
	port := testtool.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "conduit.yaml")
	write := func(body string) {
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("port: %d\nproxy: %q\n", port, a.URL))
	p := startConduit(t, cfg)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", port))
	body := func() string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := body(); got != "a" {
		t.Fatalf("before reload: %q", got)
	}
	waitFor := func(want string) {
		deadline := time.Now().Add(10 * time.Second)
		for body() != want {
			if time.Now().After(deadline) {
				t.Fatalf("never served %q; log:\n%s", want, p.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	write(fmt.Sprintf("port: %d\nproxy: %q\n", port, b.URL))
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("b")
	write(fmt.Sprintf("port: %d\nproxy: not-a-url\n", port))
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "keeping the running config") {
		if time.Now().After(deadline) {
			t.Fatalf("bad reload not reported; log:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := body(); got != "b" {
		t.Fatalf("after a bad reload: %q, want the previous config still serving", got)
	}
	write(fmt.Sprintf("port: %d\nproxy: %q\n", port+1, a.URL))
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "cold fields changed") {
		if time.Now().After(deadline) {
			t.Fatalf("cold change not refused; log:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := body(); got != "b" {
		t.Fatalf("after a refused reload: %q", got)
	}
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte("- port: 8080\n  proxy: { /api: http://a:1, /b: [http://b:1, http://c:1] }\n- port: 8081\n  static: ./x\n"), 0o600)
	os.WriteFile(bad, []byte(`{"sites":[{"port":70000,"proxy":{"/api":{"targets":["http://a"],"timeout":{"connectMs":-1}}}}]}`), 0o600)
	out, err := exec.Command(binary, "validate", "-c", good).Output()
	if err != nil || !strings.HasPrefix(string(out), "Config is valid — 2 sites, ") {
		t.Fatalf("good config: %v %q", err, out)
	}
	cmd := exec.Command(binary, "validate", "-c", bad)
	out, err = cmd.Output()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("bad config must exit 1: %v", err)
	}
	want := "error at sites[0].port: must be between 1 and 65535\n" +
		"error at sites[0].proxy./api.timeout.connectMs: must be a non-negative integer, got -1\n" +
		"2 errors found.\n"
	if string(out) != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if out, err := exec.Command(binary, "validate", "-c", filepath.Join(dir, "missing.yaml")).CombinedOutput(); err == nil {
		t.Fatalf("missing file must fail: %s", out)
	}
	out, _ = exec.Command(binary, "version").Output()
	for _, id := range []string{"http.handlers.proxy", "http.handlers.static", "http.handlers.health"} {
		if !strings.Contains(string(out), id) {
			t.Errorf("version does not list %s:\n%s", id, out)
		}
	}
}
