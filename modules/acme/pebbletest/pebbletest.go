// Package pebbletest runs Pebble, Let's Encrypt's ACME test CA, for end-to-end tests: on free
// loopback ports, in a temp dir, with its own freshly made listener certificate, stopped by
// PID when the test ends. Pebble is installed (pinned) by install-pebble.sh into
// $HOME/.cache/conduit-tools/bin; without it the test is skipped, or fails when CI=true.
package pebbletest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/tlstest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// Options choose the ports Pebble's validation authority connects to.
type Options struct {
	// HTTPPort is where HTTP-01 challenges are fetched (the site's httpRedirectPort).
	HTTPPort int
	// TLSPort is where TLS-ALPN-01 challenges are checked (the site's TLS port).
	TLSPort int
}

// Pebble is a running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// CAFile is a PEM file with the CA of Pebble's own HTTPS listener (what
	// CONDUIT_ACME_EXTRA_ROOT must name).
	CAFile string
	// Log returns Pebble's output so far.
	Log func() string
}

// Binary finds the pebble binary, skipping (or failing under CI=true) when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	return testtool.Find(t, "pebble", "modules/acme/pebbletest/install-pebble.sh")
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int { return testtool.FreePort(t) }

// Start runs Pebble with validation sleeps off and no nonce rejection, and waits until its
// directory answers.
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "Pebble listener CA")
	certPath, keyPath := ca.Server(t, "localhost", "127.0.0.1").Write(t, dir, "pebble")
	caFile := ca.WriteCA(t, dir, "pebble-ca")
	listen := FreePort(t)
	mgmt := FreePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(listen),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":                    certPath,
		"privateKey":                     keyPath,
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	raw, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out []byte
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, p...)
		return len(p), nil
	})
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	p := &Pebble{
		Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", listen),
		CAFile:    caFile,
		Log: func() string {
			mu.Lock()
			defer mu.Unlock()
			return string(out)
		},
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(listen), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
