package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/cli"
)

// compatEnv gives every $VAR of the corpus a value (a secret that stays a "$NAME"
// placeholder is an error); certificate paths point at files the test makes.
func compatEnv(dir string) map[string]string {
	return map[string]string{
		"CERT": filepath.Join(dir, "cert.pem"), "KEY": filepath.Join(dir, "key.pem"),
		"ADMIN_TOKEN": "an-admin-token-of-32-characters!", "ADMIN_PASS": "secret", "JWT_SECRET": "0123456789abcdef0123456789abcdef",
		"STICKY_SECRET": "sticky-secret", "API_KEY": "key", "REDIS_URL": "redis://127.0.0.1:6379",
		"METRICS_TOKEN": "a-metrics-token-of-32-characters", "API_KEY_PRIMARY": "primary-key", "API_KEY_SECONDARY": "secondary-key",
		"ALICE_API_KEY": "alice-key", "BOB_API_KEY": "bob-key", "READONLY_KEY": "readonly-key", "BILLING_SERVICE_PASSWORD": "billing-pass",
		"DATA_PIPELINE_JWT_SECRET": "0123456789abcdef0123456789abcdef",
	}
}

// refusedCompat are the corpus files `conduit validate` must refuse, with the error they
// must report and why. Both gate requests with `middleware` entries (an API-key check in a
// script); the standard binary has no script or wasm module, so serving them would let
// every request through the gate (docs/features.md). The full binary refuses the Rhai
// script itself (cmd/conduit-full).
var refusedCompat = map[string][]string{
	"rhai-middleware.yaml": {missingEntryType(0, "script", "script")},
	"middleware-demo.yaml": {missingEntryType(0, "script", "script"), missingEntryType(1, "wasm", "wasm"),
		missingEntryType(2, "script", "script"), missingEntryType(3, "wasm", "wasm")},
}

// missingEntryType is the error for middleware[i] of a type whose module only the full
// bundle has (this test binary is the standard one).
func missingEntryType(i int, typ, feature string) string {
	return fmt.Sprintf("error at middleware[%d].type: middleware type %q restricts access but feature %q is not compiled into this binary, so nothing would enforce it; refusing to serve without it (bundle \"full\" has it, or build one with `xbuild --features %s`; see `conduit features`; to drop the guard on purpose, list %q in global.allowMissingFeatures)", i, typ, feature, feature, feature)
}

// TestCompatCorpusLoads runs `conduit validate` on every example config of the original
// Conduit (testdata/compat, see its README.md and docs/compatibility.md). Each must load; warnings are allowed only when they name a
// feature that is not compiled in, a key that is deliberately not implemented yet, or an
// obsolete key. kitchen_sink.json and validators_sink.json are validator fixtures that
// must be diagnosed instead, and the files of refusedCompat must be refused with their
// error.
func TestCompatCorpusLoads(t *testing.T) {
	corpus, err := filepath.Abs("../../testdata/compat")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(corpus, "*.y*ml"))
	json, _ := filepath.Glob(filepath.Join(corpus, "*.json"))
	files = append(files, json...)
	sort.Strings(files)
	if len(files) < 20 {
		t.Fatalf("compat corpus missing: %d files in %s", len(files), corpus)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// Relative paths in the corpus (./dist, ./logs/access.log) resolve against the
			// working directory, as they do for a user running conduit.
			t.Chdir(dir)
			writeSideFiles(t, dir)
			env := compatEnv(dir)
			// Certificate files named by absolute path (/etc/tls/...) are created under the
			// temp dir, and the copy of the config points there; nothing else changes.
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, name)
			if err := os.WriteFile(f, []byte(strings.ReplaceAll(string(src), "/etc/tls/", dir+"/etc/tls/")), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut strings.Builder
			code := cli.Run(&cli.Env{Stdout: &out, Stderr: &errOut, Dir: dir, LookupEnv: func(k string) (string, bool) {
				v, ok := env[k]
				return v, ok
			}}, []string{"validate", "-c", f})
			sink := strings.HasSuffix(name, "_sink.json")
			if sink {
				if code != 1 || !strings.Contains(out.String(), "errors found.") {
					t.Fatalf("validator fixture must be diagnosed with errors; exit %d\n%s", code, out.String())
				}
				return
			}
			if want, refused := refusedCompat[name]; refused {
				if code != 1 || out.String() != strings.Join(want, "\n")+fmt.Sprintf("\n%d errors found.\n", len(want)) {
					t.Fatalf("must be refused with\n%s\nexit %d, stdout:\n%s", want, code, out.String())
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
			}
			if !strings.HasPrefix(out.String(), "Config is valid — ") {
				t.Fatalf("stdout %q", out.String())
			}
			for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
				if line == "" {
					continue
				}
				if !acceptableWarning(line) {
					t.Errorf("unexpected diagnostic: %s", line)
				}
			}
		})
	}
}

// acceptableWarning reports whether a validate warning names its reason: a feature not in
// this binary, an obsolete or unknown key, a key without effect, or a missing
// side file (a warning, not an error, when the file is absent).
func acceptableWarning(line string) bool {
	if !strings.HasPrefix(line, "warning at ") {
		return false
	}
	for _, ok := range []string{"is not compiled into this binary",
		"is not enforced by this build yet", "not available in any build of this version", "unknown key", "does not exist", "has no effect",
		"read as a single route object", "templates only work", "deprecated key",
		"is not set: any local process"} {
		if strings.Contains(line, ok) {
			return true
		}
	}
	return false
}

// writeSideFiles creates the certificate files the corpus names, with a fresh self-signed
// certificate (also used as the client CA of mtls.yaml).
func writeSideFiles(t *testing.T, dir string) {
	t.Helper()
	certPEM, keyPEM := selfSigned(t)
	if err := os.MkdirAll(filepath.Join(dir, "etc/tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM}
	for _, base := range []string{"api", "server"} {
		files["etc/tls/"+base+".crt"] = certPEM
		files["etc/tls/"+base+".key"] = keyPEM
	}
	files["etc/tls/client-ca.crt"] = certPEM
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost", "example.com", "api.example.com"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
