package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// TestRustLogIsAnAliasOfConduitLog runs the binary under each environment, sends a request
// the listener refuses (logged at debug), stops it and reads its log: RUST_LOG sets the
// level Conduit takes from it, CONDUIT_LOG wins when both are set.
func TestRustLogIsAnAliasOfConduitLog(t *testing.T) {
	for _, tc := range []struct {
		env         []string
		debug, info bool
	}{
		{[]string{"RUST_LOG=debug"}, true, true},
		{[]string{"RUST_LOG=conduit=debug,hyper=info"}, true, true},
		{[]string{"RUST_LOG=hyper=debug"}, false, true},
		{[]string{"RUST_LOG=error"}, false, false},
		{[]string{"CONDUIT_LOG=info", "RUST_LOG=debug"}, false, true},
	} {
		t.Run(strings.Join(tc.env, " "), func(t *testing.T) {
			log := runAndStop(t, tc.env)
			if got := strings.Contains(log, "refused malformed request"); got != tc.debug {
				t.Errorf("debug line logged: %v, want %v\n%s", got, tc.debug, log)
			}
			if got := strings.Contains(log, "conduit started"); got != tc.info {
				t.Errorf("info line logged: %v, want %v\n%s", got, tc.info, log)
			}
		})
	}
}

// runAndStop starts conduit with env, sends one malformed request, stops it with SIGTERM and
// returns its log.
func runAndStop(t *testing.T, env []string) string {
	t.Helper()
	port := testtool.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "conduit.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("port: %d\n", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startConduitEnv(t, cfg, env)
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", port))
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	// Content-Length and Transfer-Encoding together: refused by the framing guard.
	fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed request: %d, want 400", resp.StatusCode)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("conduit did not exit after SIGTERM")
	}
	return p.stderr.String()
}
