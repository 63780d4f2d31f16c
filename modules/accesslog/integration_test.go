//go:build unix

package accesslog_test

import (
	"encoding/json"
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

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/accesslog"
	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// waitLines polls path until it holds n lines.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 {
			lines = nil
		}
		if len(lines) >= n || time.Now().After(deadline) {
			if len(lines) != n {
				t.Fatalf("%s: %d lines, want %d: %q", path, len(lines), n, lines)
			}
			return lines
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJSONFileThroughProxyAndSIGUSR1Reopen(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer up.Close()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
logging:
  format: json
  file: %q
  stripQuery: true
  skipPaths: [/__health__]
proxy:
  /api: { targets: [%q] }
`, logPath, up.URL))

	servertest.Get(t, srv.URL(8080)+"/api/x?token=secret")
	servertest.Get(t, srv.URL(8080)+"/__health__")
	servertest.Get(t, srv.URL(8080)+"/local")
	lines := waitLines(t, logPath, 2)

	var proxied, local map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &proxied); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &local); err != nil {
		t.Fatal(err)
	}
	if proxied["path"] != "/api/x" || proxied["status"] != 200.0 || proxied["bytes"] != 5.0 ||
		proxied["upstream"] != up.URL || proxied["ip"] != "127.0.0.1" || proxied["request_id"] == "" {
		t.Errorf("proxied line %v", proxied)
	}
	if _, ok := proxied["upstream_ms"]; !ok {
		t.Errorf("proxied line lacks upstream_ms")
	}
	if local["path"] != "/local" || local["status"] != 404.0 || local["upstream"] != nil {
		t.Errorf("local line %v", local)
	}
	if _, ok := local["upstream_ms"]; ok {
		t.Errorf("local line has upstream_ms")
	}
	if strings.Contains(lines[0], "secret") {
		t.Errorf("stripQuery: query logged")
	}

	// logrotate: rename, then SIGUSR1; the next line goes to a new file at the old path.
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	// The signal is handled asynchronously: keep sending requests until one lands in the
	// new file (each one before the reopen lands in the rotated file).
	deadline := time.Now().Add(10 * time.Second)
	for {
		servertest.Get(t, srv.URL(8080)+"/after")
		if b, _ := os.ReadFile(logPath); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGUSR1 did not reopen the log file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	old, _ := os.ReadFile(rotated)
	if !strings.Contains(string(old), `"/api/x"`) {
		t.Errorf("rotated file lost its lines: %q", old)
	}
}

// TestCredentialQueryParametersAreRedacted: API keys, tokens and signatures in the query
// never reach the access log in any format, however the parameter name is spelled; the
// upstream still receives them.
func TestCredentialQueryParametersAreRedacted(t *testing.T) {
	got := make(chan string, 8)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.RawQuery
	}))
	defer up.Close()
	const secret = "k3y-s3cr3t-value"
	query := "page=2&api_key=" + secret + "&API%5FKEY=" + secret + ";access_token=" + secret + "&X-Amz-Signature=" + secret
	want := "page=2&api_key=REDACTED&API%5FKEY=REDACTED;access_token=REDACTED&X-Amz-Signature=REDACTED"
	for _, format := range []string{"combined", "common", "json", "dev", "short"} {
		t.Run(format, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "access.log")
			srv := servertest.Start(t, fmt.Sprintf("port: 8080\nlogging: { format: %s, file: %q }\nproxy: %q\n", format, logPath, up.URL))
			servertest.Get(t, srv.URL(8080)+"/api/items?"+query)
			if q := <-got; q != query {
				t.Fatalf("upstream query %q, want it unchanged %q", q, query)
			}
			line := waitLines(t, logPath, 1)[0]
			if strings.Contains(line, secret) {
				t.Fatalf("the log line holds the secret: %s", line)
			}
			if format != "json" && !strings.Contains(line, "/api/items?"+want) {
				t.Fatalf("log line %q lacks the redacted target %q", line, want)
			}
			if format == "json" && !strings.Contains(line, want) {
				t.Fatalf("log line %q lacks the redacted query %q", line, want)
			}
		})
	}
}
