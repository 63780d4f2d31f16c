package xbuild

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

const examplePlugin = "github.com/conduitproxy/conduit-example-header"

// exampleBuild is the one full build the package's tests share: the minimal bundle plus the
// example-header plugin, made with xbuild exactly as a user would.
var exampleBuild struct {
	once     sync.Once
	dir      string
	res      *Result
	err      error
	features []string
	progress string // what Options.Progress received
}

func TestMain(m *testing.M) {
	code := m.Run()
	if exampleBuild.dir != "" {
		os.RemoveAll(exampleBuild.dir)
	}
	os.Exit(code)
}

// buildExample runs xbuild once per test binary:
//
//	xbuild --features <fallback or static> \
//	  --with github.com/conduitproxy/conduit-example-header=./plugins/example-header \
//	  --output $tmp/conduit-x
func buildExample(t *testing.T) (*Result, []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Conduit binary (slow); run without -short")
	}
	root := repoRoot(t)
	exampleBuild.once.Do(func() {
		set, err := LoadFeatures(root)
		if err != nil {
			exampleBuild.err = err
			return
		}
		for _, f := range []string{"fallback", "static"} {
			if _, ok := set.Lookup(f); ok {
				exampleBuild.features = append(exampleBuild.features, f)
			}
		}
		exampleBuild.dir, err = os.MkdirTemp("", "xbuild-test-")
		if err != nil {
			exampleBuild.err = err
			return
		}
		p, err := ParseWith(examplePlugin+"=./plugins/example-header", root)
		if err != nil {
			exampleBuild.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var log, progress strings.Builder
		defer func() { exampleBuild.progress = progress.String() }()
		exampleBuild.res, exampleBuild.err = Build(ctx, Options{
			Progress: &progress,
			Features: exampleBuild.features,
			With:     []Plugin{p},
			Output:   filepath.Join(exampleBuild.dir, "conduit-x"),
			Dir:      root,
			Log:      &log,
		})
		if exampleBuild.err != nil {
			exampleBuild.err = fmt.Errorf("%w\nlog:\n%s", exampleBuild.err, log.String())
		}
	})
	if exampleBuild.err != nil {
		t.Fatalf("xbuild: %v", exampleBuild.err)
	}
	return exampleBuild.res, exampleBuild.features
}

// TestIntegrationExampleHeader builds the plugin into a binary, serves a real request through
// it and checks the plugin's header.
func TestIntegrationExampleHeader(t *testing.T) {
	res, features := buildExample(t)
	found := false
	for _, m := range res.Modules {
		if m.Package == examplePlugin {
			found = true
			// The replaced plugin is shown as `go list -m` shows it, not "…@=> /dir".
			if want := examplePlugin + " => " + filepath.Join(repoRoot(t), "plugins", "example-header"); m.Version != want {
				t.Errorf("plugin version %q, want %q", m.Version, want)
			}
		}
	}
	if !found {
		t.Fatalf("the smoke test did not report the plugin's module: %+v", res.Modules)
	}

	dir := t.TempDir()
	port := testtool.FreePort(t)
	cfg := fmt.Sprintf("port: %d\nexampleHeader:\n  name: X-Example\n  value: hello\n", port)
	wantBody := ""
	switch {
	case slices.Contains(features, "fallback"):
		cfg += "fallback:\n  status: 200\n  body: ok\n"
		wantBody = "ok"
	case slices.Contains(features, "static"):
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("ok"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg += "static: " + dir + "\n"
		wantBody = "ok"
	}
	cfgPath := filepath.Join(dir, "conduit.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// The binary's own validate must accept the plugin's key.
	if out, err := exec.Command(res.Output, "validate", "-c", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}

	// `features -c` names the plugin's key as a third-party module and rebuilds it by path.
	out, err := exec.Command(res.Output, "features", "-c", cfgPath, "--json").Output()
	if err != nil {
		t.Fatalf("features -c: %v\n%s", err, out)
	}
	var rep struct {
		Required []string `json:"required"`
		Build    string   `json:"build"`
		Missing  []string `json:"missing"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("features -c: %v\n%s", err, out)
	}
	if !slices.Contains(rep.Required, "exampleheader") || len(rep.Missing) != 0 ||
		!strings.Contains(rep.Build, "--with "+examplePlugin+"="+filepath.Join(repoRoot(t), "plugins", "example-header")) {
		t.Errorf("features -c = %s", out)
	}

	stop := startBinary(t, res.Output, "-c", cfgPath, "--bind", "127.0.0.1")
	defer stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	resp := waitGet(t, url, 15*time.Second)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("X-Example"); got != "hello" {
		t.Errorf("X-Example = %q, want hello (status %d, headers %v)", got, resp.StatusCode, resp.Header)
	}
	if wantBody != "" && (resp.StatusCode != 200 || strings.TrimSpace(string(body)) != wantBody) {
		t.Errorf("response = %d %q, want 200 %q", resp.StatusCode, body, wantBody)
	}
}

// startBinary starts bin and returns a function that stops exactly that process (by its PID),
// first with SIGTERM, then SIGKILL.
func startBinary(t *testing.T, bin string, args ...string) func() {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("%s did not stop on SIGTERM", bin)
			}
			if t.Failed() {
				t.Logf("%s stderr:\n%s", filepath.Base(bin), stderr.String())
			}
		})
	}
}

// waitGet retries a GET until the server answers or the timeout passes.
func waitGet(t *testing.T, url string, timeout time.Duration) *http.Response {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIntegrationProgress checks the progress lines of the shared build: every line carries
// the elapsed time, the times never go back, and the slow steps are named.
func TestIntegrationProgress(t *testing.T) {
	buildExample(t)
	lines := strings.Split(strings.TrimSpace(exampleBuild.progress), "\n")
	prev := -1.0
	for _, l := range lines {
		var secs float64
		if _, err := fmt.Sscanf(l, "xbuild: [%fs]", &secs); err != nil {
			t.Fatalf("progress line %q: %v", l, err)
		}
		if secs < prev {
			t.Errorf("progress line %q goes back in time (previous %.1fs)", l, prev)
		}
		prev = secs
	}
	for _, want := range []string{"resolving the core", "go mod tidy", "compiling", "compiled ", "smoke test", "done"} {
		if !strings.Contains(exampleBuild.progress, want) {
			t.Errorf("no progress line mentions %q:\n%s", want, exampleBuild.progress)
		}
	}
}
