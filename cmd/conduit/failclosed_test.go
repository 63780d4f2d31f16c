package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// scriptGate is a site that gates requests with a script: no build of this version runs
// scripts, so nothing would enforce it.
const scriptGate = "    middleware:\n      - type: script\n        path: ./require-api-key.rhai\n"

// TestScriptGateFailsClosed runs the conduit binary on configs with a `middleware` gate: it
// refuses to start; a SIGHUP reload that adds the gate is refused while the running
// generation keeps serving; with global.allowMissingFeatures: [script] a start and a reload
// go through and each logs the dropped guard with its site.
func TestScriptGateFailsClosed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream") }))
	defer up.Close()
	port := testtool.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "conduit.yaml")
	write := func(global, extra string) {
		t.Helper()
		body := fmt.Sprintf("global: {%s}\nsites:\n  - port: %d\n    proxy: %q\n%s", global, port, up.URL, extra)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const refusal = `middleware type \"script\" restricts access but feature \"script\" is not compiled into this binary`
	const dropped = `global.allowMissingFeatures lists \"script\", so site *:%d serves WITHOUT this guard`
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	write("", scriptGate)
	p := startConduit(t, cfg)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("conduit started with a script gate nothing enforces")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(p.stderr.String(), "error at sites[0].middleware[0].type: "+strings.ReplaceAll(refusal, `\"`, `"`)) {
		t.Fatalf("exit %d, stderr:\n%s", code, p.stderr)
	}

	write("", "")
	p = startConduit(t, cfg)
	waitReady(t, url)
	write("", scriptGate)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, "reload failed; keeping the running config")
	if !strings.Contains(p.stderr.String(), refusal) {
		t.Fatalf("refused reload does not name the gate; log:\n%s", p.stderr)
	}
	if code, body := fetch(t, url+"/"); code != 200 || body != "upstream" {
		t.Fatalf("after a refused reload: %d %q, want the running generation", code, body)
	}
	write("allowMissingFeatures: [script]", scriptGate)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, fmt.Sprintf(dropped, port))
	stopConduit(t, p)

	p = startConduit(t, cfg)
	waitReady(t, url)
	if !strings.Contains(p.stderr.String(), fmt.Sprintf(dropped, port)) {
		t.Fatalf("a start with the guard dropped does not log it; log:\n%s", p.stderr)
	}
	stopConduit(t, p)
}

// waitLog waits until the process log holds want.
func waitLog(t *testing.T, p *process, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never showed %q; log:\n%s", want, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopConduit ends the process with SIGTERM and waits for it.
func stopConduit(t *testing.T, p *process) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("conduit did not stop on SIGTERM")
	}
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
