package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// TestBindFlagTakesHostOrHostPort: `--bind HOST:PORT` moves the listener of the sites without
// a bind key to PORT (a site with its own bind keeps its port); sites without a bind key on
// several ports, or a port out of range, are refused with a message before anything listens.
func TestBindFlagTakesHostOrHostPort(t *testing.T) {
	moved, kept, other := testtool.FreePort(t), testtool.FreePort(t), testtool.FreePort(t)
	for _, tc := range []struct {
		name   string
		config string
		bind   string
		ready  []int  // ports that must answer /__health__
		errMsg string // when set: conduit exits 1 with this on stderr
	}{
		{"host:port on one port", "port: 8080\n", fmt.Sprintf("127.0.0.1:%d", moved), []int{moved}, ""},
		{"a bound site keeps its port", fmt.Sprintf("sites:\n  - port: 8080\n  - port: %d\n    bind: 127.0.0.1\n", kept),
			fmt.Sprintf("127.0.0.1:%d", moved), []int{moved, kept}, ""},
		{"several unbound ports", fmt.Sprintf("sites:\n  - port: %d\n  - port: %d\n", kept, other),
			fmt.Sprintf("127.0.0.1:%d", moved), nil, "leave the port out of --bind"},
		{"port out of range", "port: 8080\n", "127.0.0.1:0", nil, "the port must be from 1 to 65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "conduit.yaml")
			if err := os.WriteFile(cfg, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.errMsg != "" {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				var stderr bytes.Buffer
				cmd := exec.CommandContext(ctx, binary, "-c", cfg, "--bind", tc.bind)
				cmd.Stderr, cmd.Stdout = &stderr, io.Discard
				err := cmd.Run()
				if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), tc.errMsg) {
					t.Fatalf("err %v, stderr %q; want exit 1 with %q", err, stderr.String(), tc.errMsg)
				}
				return
			}
			p := startConduitArgs(t, cfg, "--bind", tc.bind)
			for _, port := range tc.ready {
				waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", port))
			}
			stopConduit(t, p)
		})
	}
}
