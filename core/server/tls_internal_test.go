package server

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/tlstest"
)

func TestTLSValidation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "Validation CA")
	cert, key := ca.Server(t, "localhost").Write(t, dir, "s")
	for _, tc := range []struct {
		name, tls, path, msg string
	}{
		{"key missing", `{cert: "` + cert + `"}`, "tls.key", "is required"},
		{"cert missing", `{key: "` + key + `"}`, "tls.cert", "is required"},
		{"nothing", `{httpRedirectPort: 80}`, "tls", "needs cert and key, or acme"},
		{"old version", `{cert: "` + cert + `", key: "` + key + `", versions: [TLSv1.2, TLSv1.1]}`, "tls.versions[1]", "unsupported TLS version"},
		{"unknown cipher", `{cert: "` + cert + `", key: "` + key + `", ciphers: [TLS_RSA_WITH_RC4_128_SHA]}`, "tls.ciphers[0]", "unknown or insecure"},
		{"client CA missing", `{cert: "` + cert + `", key: "` + key + `", clientAuth: {ca: "` + dir + `/nope.pem"}}`, "tls.clientAuth.ca", "read tls.clientAuth.ca"},
		{"client CA not PEM", `{cert: "` + cert + `", key: "` + key + `", clientAuth: {ca: "` + key + `"}}`, "tls.clientAuth.ca", "no PEM certificate"},
		{"client CA required", `{cert: "` + cert + `", key: "` + key + `", clientAuth: {optional: true}}`, "tls.clientAuth.ca", "required"},
		{"bad cert file", `{cert: "` + key + `", key: "` + key + `"}`, "tls.cert", "load tls.cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := config.Parse([]byte("port: 8443\ntls: "+tc.tls+"\n"), config.FormatYAML, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, d := Build(context.Background(), doc, BuildOptions{})
			for _, e := range d.Errors() {
				if e.Path == tc.path && strings.Contains(e.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want error at %s containing %q, got %v", tc.path, tc.msg, d.Err())
		})
	}
}

func TestCheckTLSPorts(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "Ports CA")
	cert, key := ca.Server(t, "localhost").Write(t, dir, "s")
	caPath := ca.WriteCA(t, dir, "ca")
	pair := `cert: "` + cert + `", key: "` + key + `"`
	for _, tc := range []struct {
		name, a, b, path string
	}{
		{"same settings", pair, pair, ""},
		{"versions differ", pair + `, versions: [TLSv1.3]`, pair, "sites[1].tls.versions"},
		{"ciphers differ", pair, pair + `, ciphers: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]`, "sites[1].tls.ciphers"},
		{"clientAuth on one site", pair + `, clientAuth: {ca: "` + caPath + `"}`, pair, "sites[1].tls.clientAuth"},
		{"clientAuth optional differs", pair + `, clientAuth: {ca: "` + caPath + `"}`, pair + `, clientAuth: {ca: "` + caPath + `", optional: true}`, "sites[1].tls.clientAuth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "sites:\n  - {host: a.test, port: 8443, tls: {" + tc.a + "}}\n  - {host: b.test, port: 8443, tls: {" + tc.b + "}}\n"
			doc, err := config.Parse([]byte(src), config.FormatYAML, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Build runs the per-port check.
			_, d := Build(context.Background(), doc, BuildOptions{})
			errs := d.Errors()
			if tc.path == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected %v", d.Err())
				}
				return
			}
			if len(errs) != 1 || errs[0].Path != tc.path {
				t.Fatalf("want one error at %s, got %v", tc.path, d.Err())
			}
		})
	}
}

// FuzzTLSVersionsAndCiphers checks that any versions/ciphers lists validate without panics and
// leave a usable range: min ≤ max, both TLS 1.2 or 1.3, every cipher a known Go suite.
func FuzzTLSVersionsAndCiphers(f *testing.F) {
	f.Add("TLSv1.3", "TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
	f.Add("1.2", "tls_1_3", "TLS_AES_128_GCM_SHA256")
	f.Add("SSLv3", "", "")
	known := map[uint16]bool{}
	for _, cs := range tls.CipherSuites() {
		known[cs.ID] = true
	}
	f.Fuzz(func(t *testing.T, v1, v2, cipher string) {
		tc := &TLSConfig{Cert: "c", Key: "k", Versions: []string{v1, v2}, Ciphers: []string{cipher}}
		var d config.Diagnostics
		tc.validate("tls", &d)
		if tc.minVersion > tc.maxVersion || tc.minVersion < tls.VersionTLS12 || tc.maxVersion > tls.VersionTLS13 {
			t.Fatalf("versions %q/%q gave range %x..%x", v1, v2, tc.minVersion, tc.maxVersion)
		}
		for _, id := range tc.cipherIDs {
			if !known[id] {
				t.Fatalf("cipher %q gave unknown or insecure suite %x", cipher, id)
			}
		}
	})
}
