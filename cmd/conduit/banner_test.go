package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/testtool"
)

// TestStartBannerNamesURLsSitesAndModules: at start the binary logs each listener as a URL
// (https for the TLS site's port) with its bind address, each site with its active modules,
// and the config's warnings with their text.
func TestStartBannerNamesURLsSitesAndModules(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	for name, data := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	plain, secure := testtool.FreePort(t), testtool.FreePort(t)
	cfg := filepath.Join(dir, "conduit.yaml")
	src := fmt.Sprintf(`sites:
  - port: %d
    proxy:
      /api: { targets: ["http://127.0.0.1:9"] }
    helthCheck: { path: /h }
  - port: %d
    host: example.com
    tls: { cert: %q, key: %q }
`, plain, secure, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startConduit(t, cfg)
	waitLog(t, p, "msg=\"site example.com:")
	stopConduit(t, p)
	log := p.stderr.String()
	for _, want := range []string{
		`msg="conduit started"`,
		fmt.Sprintf(`msg="listening on http://127.0.0.1:%d" bind=127.0.0.1:%d sites=*`, plain, plain),
		fmt.Sprintf(`msg="listening on https://127.0.0.1:%d" bind=127.0.0.1:%d sites=example.com:%d`, secure, secure, secure),
		fmt.Sprintf(`msg="site *" port=%d tls=false modules=`, plain),
		fmt.Sprintf(`msg="site example.com:%d" port=%d tls=true modules=`, secure, secure),
		`level=WARN msg="unknown key \"helthCheck\"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("start log lacks %q; log:\n%s", want, log)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="site *"`) && !strings.Contains(line, "proxy") {
			t.Errorf("plain site's modules do not name proxy: %s", line)
		}
	}
}

// TestStartLinesAreJSONWithLoggingJSON: with `logging: json` the process log's start lines
// (banner, warnings) are JSON objects, one per line, like the access log beside them.
func TestStartLinesAreJSONWithLoggingJSON(t *testing.T) {
	dir := t.TempDir()
	port := testtool.FreePort(t)
	cfg := filepath.Join(dir, "conduit.yaml")
	src := fmt.Sprintf("port: %d\nlogging: json\nproxy: http://127.0.0.1:9\nhelthCheck: {path: /h}\n", port)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startConduit(t, cfg)
	waitLog(t, p, `"msg":"site *"`)
	stopConduit(t, p)
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg == "" {
			t.Fatalf("process log line is not a JSON record (%v): %s", err, line)
		}
		msgs = append(msgs, rec.Level+" "+rec.Msg)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"INFO conduit started", fmt.Sprintf("INFO listening on http://127.0.0.1:%d", port), `WARN unknown key "helthCheck"`} {
		if !strings.Contains(all, want) {
			t.Errorf("JSON start lines lack %q:\n%s", want, all)
		}
	}
}
