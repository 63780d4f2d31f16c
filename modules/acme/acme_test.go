package acme_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/acme"
	"github.com/conduitproxy/conduit/modules/acme/pebbletest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// startConduit serves src with every configured port bound as-is on 127.0.0.1 (the tests
// choose free ports, which Pebble must know in advance).
func startConduit(t *testing.T, src string) *server.Server {
	t.Helper()
	doc, err := config.Parse([]byte(src), config.FormatYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{BindHost: "127.0.0.1"})
	g, d := server.Build(context.Background(), doc, srv.BuildOptions())
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	if err := srv.Start(g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// waitForIssued handshakes with sni until the presented certificate was issued by Pebble.
func waitForIssued(t *testing.T, addr, sni string, pebble *pebbletest.Pebble) *tls.ConnectionState {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true}) //nolint:gosec // Pebble's roots are random per run; the issuer is checked below
		if err == nil {
			st := c.ConnectionState()
			c.Close()
			leaf := st.PeerCertificates[0]
			if strings.Contains(leaf.Issuer.CommonName, "Pebble") && leaf.VerifyHostname(sni) == nil {
				return &st
			}
			last = fmt.Errorf("certificate issued by %q", leaf.Issuer.CommonName)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no Pebble certificate for %s: %v\npebble log:\n%s", sni, last, pebble.Log())
	return nil
}

func upstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from upstream")
	}))
	t.Cleanup(up.Close)
	return up
}

func TestACMEWithPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("ACME end-to-end: skipped in -short mode")
	}
	pebbletest.Binary(t)
	up := upstream(t)
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			tlsPort, httpPort := pebbletest.FreePort(t), pebbletest.FreePort(t)
			pebble := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
			t.Setenv("CONDUIT_ACME_EXTRA_ROOT", pebble.CAFile)
			storage := t.TempDir()
			srv := startConduit(t, fmt.Sprintf(`
host: localhost
port: %d
tls:
  httpRedirectPort: %d
  acme:
    email: ops@example.com
    storage: %q
    directory: %q
    challenge: %s
proxy: %q
`, tlsPort, httpPort, storage, pebble.Directory, challenge, up.URL))
			addr := "127.0.0.1:" + strconv.Itoa(tlsPort)
			waitForIssued(t, addr, "localhost", pebble)

			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}}} //nolint:gosec // issuer checked above
			req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
			req.Host = "localhost"
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// The redirect port still redirects everything that is not a challenge.
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ = http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/x", nil)
			req.Host = "localhost"
			resp, err = noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 301 || resp.Header.Get("Location") != fmt.Sprintf("https://localhost:%d/x", tlsPort) {
				t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			_ = srv
		})
	}
}

func TestACMEOnDemandAllowList(t *testing.T) {
	if testing.Short() {
		t.Skip("ACME end-to-end: skipped in -short mode")
	}
	pebbletest.Binary(t)
	up := upstream(t)
	tlsPort := pebbletest.FreePort(t)
	pebble := pebbletest.Start(t, pebbletest.Options{HTTPPort: pebbletest.FreePort(t), TLSPort: tlsPort})
	t.Setenv("CONDUIT_ACME_EXTRA_ROOT", pebble.CAFile)
	startConduit(t, fmt.Sprintf(`
port: %d
tls:
  acme:
    email: ops@example.com
    storage: %q
    directory: %q
    challenge: tls-alpn-01
    onDemand: [localhost, "*.allowed.test"]
proxy: %q
`, tlsPort, t.TempDir(), pebble.Directory, up.URL))
	addr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	// A name off the list is refused in the handshake, without asking the CA.
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "denied.test", InsecureSkipVerify: true}); err == nil { //nolint:gosec // refusal expected
		c.Close()
		t.Fatal("handshake for a name off the onDemand list succeeded")
	}
	// A listed name gets its certificate during the first handshake.
	st := waitForIssued(t, addr, "localhost", pebble)
	if st.PeerCertificates[0].Subject.CommonName != "localhost" && !contains(st.PeerCertificates[0].DNSNames, "localhost") {
		t.Fatalf("on-demand certificate names %v", st.PeerCertificates[0].DNSNames)
	}
	if strings.Contains(pebble.Log(), "denied.test") {
		t.Fatal("Pebble was asked about a name that is not on the allow-list")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestACMEValidation(t *testing.T) {
	for _, tc := range []struct {
		name, src, wantPath, wantMsg string
	}{
		{"email required", "host: a.example.com\ntls: {acme: {storage: /tmp/x}}\n", "tls.acme.email", "required"},
		{"bad email", "host: a.example.com\ntls: {acme: {email: nope}}\n", "tls.acme.email", "email address"},
		{"dns-01", "host: a.example.com\ntls: {acme: {email: a@b.c, challenge: dns-01}}\n", "tls.acme.challenge", "dns-01 is not supported"},
		{"unknown challenge", "host: a.example.com\ntls: {acme: {email: a@b.c, challenge: http-02}}\n", "tls.acme.challenge", "http-01 or tls-alpn-01"},
		{"http directory", "host: a.example.com\ntls: {acme: {email: a@b.c, directory: \"http://ca/dir\"}}\n", "tls.acme.directory", "https://"},
		{"catch-all without onDemand", "tls: {acme: {email: a@b.c}}\n", "tls.acme", "onDemand"},
		{"IP host", "host: 10.0.0.1\ntls: {acme: {email: a@b.c}}\n", "host", "DNS name"},
		{"onDemand star", "tls: {acme: {email: a@b.c, onDemand: [\"*\"]}}\n", "tls.acme.onDemand", "any name"},
		{"onDemand bad pattern", "tls: {acme: {email: a@b.c, onDemand: [\"a.*.com\"]}}\n", "tls.acme.onDemand", "not a valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build(tc.src, config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range d.Errors() {
				if e.Path == tc.wantPath && strings.Contains(e.Message, tc.wantMsg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want error at %s containing %q; got %v", tc.wantPath, tc.wantMsg, d.Err())
			}
		})
	}
	t.Run("unknown key warns", func(t *testing.T) {
		_, d, _ := servertest.Build("host: a.example.com\ntls: {acme: {email: a@b.c, storage: "+t.TempDir()+", emial: x}}\n", config.FormatYAML)
		if d.HasErrors() {
			t.Fatal(d.Err())
		}
		ok := false
		for _, w := range d.Warnings() {
			if w.Path == "tls.acme.emial" {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("no warning for tls.acme.emial: %v", d.Warnings())
		}
	})
}
