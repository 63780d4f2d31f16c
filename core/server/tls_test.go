package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// echoUpstream answers every request with its protocol and the client-certificate headers it
// received, as JSON.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"proto":       r.Proto,
			"subject":     strings.Join(r.Header.Values("X-Client-Cert-Subject"), "|"),
			"fingerprint": strings.Join(r.Header.Values("X-Client-Cert-Fingerprint"), "|"),
			"path":        r.URL.Path,
		})
	}))
	t.Cleanup(up.Close)
	return up
}

// handshake dials addr with cfg and returns the server's leaf certificate.
func handshake(t *testing.T, addr string, cfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestTLSCertificateBySNI(t *testing.T) {
	ca := tlstest.NewCA(t, "SNI CA")
	dir := t.TempDir()
	aCert, aKey := ca.Server(t, "a.test").Write(t, dir, "a")
	bCert, bKey := ca.Server(t, "b.test").Write(t, dir, "b")
	wCert, wKey := ca.Server(t, "*.wild.test").Write(t, dir, "w")
	up := echoUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - host: a.test
    port: 8443
    tls: {cert: %q, key: %q}
    proxy: %q
  - host: b.test
    port: 8443
    tls: {cert: %q, key: %q}
    proxy: %q
  - host: www.wild.test
    port: 8443
    tls: {cert: %q, key: %q}
    proxy: %q
`, aCert, aKey, up.URL, bCert, bKey, up.URL, wCert, wKey, up.URL))
	addr := srv.HostPort(8443)
	for _, tc := range []struct{ sni, wantCN string }{
		{"a.test", "a.test"},
		{"B.TEST", "b.test"},
		{"www.wild.test", "*.wild.test"},
		{"other.wild.test", "*.wild.test"}, // no site, but the wildcard certificate covers it
		{"unknown.test", "a.test"},         // the port's first certificate
		{"", "a.test"},
	} {
		t.Run(tc.sni, func(t *testing.T) {
			leaf, err := handshake(t, addr, &tls.Config{ServerName: tc.sni, RootCAs: ca.Pool(), InsecureSkipVerify: tc.sni == "" || tc.sni == "unknown.test"})
			if err != nil {
				t.Fatal(err)
			}
			if leaf.Subject.CommonName != tc.wantCN {
				t.Fatalf("SNI %q got certificate %q, want %q", tc.sni, leaf.Subject.CommonName, tc.wantCN)
			}
		})
	}
	// A verified request through the site chosen by SNI and Host.
	client := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, DialContext: dialTo(addr)}}
	resp, err := client.Get("https://b.test:8443/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("status %d proto %s, want 200 over HTTP/2 (ALPN)", resp.StatusCode, resp.Proto)
	}
}

// dialTo makes a transport dial addr whatever the URL's host is.
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func TestTLSVersionsAndCiphers(t *testing.T) {
	ca := tlstest.NewCA(t, "Version CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "localhost").Write(t, dir, "s")
	up := echoUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - host: localhost
    port: 8443
    tls: {cert: %q, key: %q, versions: [TLSv1.3]}
    proxy: %q
  - host: localhost
    port: 9443
    tls:
      cert: %q
      key: %q
      versions: [TLSv1.2]
      ciphers: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    proxy: %q
`, cert, key, up.URL, cert, key, up.URL))
	base := &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}
	cases := []struct {
		name   string
		port   int
		client func(*tls.Config)
		ok     bool
		suite  uint16
	}{
		{"1.3 only refuses a TLS 1.2 client", 8443, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, false, 0},
		{"1.3 only accepts TLS 1.3", 8443, func(c *tls.Config) {}, true, 0},
		{"1.2 only refuses a TLS 1.3-only client", 9443, func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, false, 0},
		{"cipher allowed", 9443, func(c *tls.Config) {
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}, true, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{"cipher not allowed", 9443, func(c *tls.Config) {
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
		}, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base.Clone()
			tc.client(cfg)
			c, err := tls.Dial("tcp", srv.HostPort(tc.port), cfg)
			if !tc.ok {
				if err == nil {
					c.Close()
					t.Fatal("handshake succeeded, want refusal")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if tc.port == 8443 && st.Version != tls.VersionTLS13 {
				t.Fatalf("version %x", st.Version)
			}
			if tc.suite != 0 && st.CipherSuite != tc.suite {
				t.Fatalf("suite %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tc.suite))
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "Server CA")
	clientCA := tlstest.NewCA(t, "Client CA")
	otherCA := tlstest.NewCA(t, "Other CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "localhost").Write(t, dir, "s")
	caPath := clientCA.WriteCA(t, dir, "clients")
	good := clientCA.Client(t, "alice")
	bad := otherCA.Client(t, "mallory")
	up := echoUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - host: localhost
    port: 8443
    tls: {cert: %q, key: %q, clientAuth: {ca: %q}}
    proxy: %q
  - host: localhost
    port: 9443
    tls: {cert: %q, key: %q, clientAuth: {ca: %q, optional: true}}
    proxy: %q
`, cert, key, caPath, up.URL, cert, key, caPath, up.URL))
	sum := sha256.Sum256(good.Leaf.Raw)
	wantFP := hex.EncodeToString(sum[:])
	get := func(port int, certs []tls.Certificate, h2 bool) (map[string]string, error) {
		// GetClientCertificate sends the certificate even when the server's list of
		// acceptable CAs does not name its issuer (Go's client would otherwise send none).
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if len(certs) == 0 {
					return &tls.Certificate{}, nil
				}
				return &certs[0], nil
			}}}
		if !h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		} else {
			tr.ForceAttemptHTTP2 = true
		}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+srv.HostPort(port)+"/who", nil)
		req.Host = "localhost"
		req.Header.Set("X-Client-Cert-Subject", "CN=forged")
		req.Header.Set("X-Client-Cert-Fingerprint", "forged")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var m map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
		}
		return m, nil
	}
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			m, err := get(8443, []tls.Certificate{good.TLS}, h2)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m["subject"], "CN=alice") || m["fingerprint"] != wantFP {
				t.Fatalf("upstream saw subject %q fingerprint %q, want CN=alice / %s", m["subject"], m["fingerprint"], wantFP)
			}
			if _, err := get(8443, nil, h2); err == nil {
				t.Fatal("required clientAuth accepted a client without a certificate")
			}
			if _, err := get(8443, []tls.Certificate{bad.TLS}, h2); err == nil {
				t.Fatal("required clientAuth accepted a certificate from another CA")
			}
			m, err = get(9443, nil, h2)
			if err != nil {
				t.Fatalf("optional clientAuth refused a client without a certificate: %v", err)
			}
			if m["subject"] != "" || m["fingerprint"] != "" {
				t.Fatalf("client-sent identity headers reached the upstream: %v", m)
			}
			m, err = get(9443, []tls.Certificate{good.TLS}, h2)
			if err != nil || m["fingerprint"] != wantFP {
				t.Fatalf("optional clientAuth with a certificate: %v %v", m, err)
			}
			if _, err := get(9443, []tls.Certificate{bad.TLS}, h2); err == nil {
				t.Fatal("optional clientAuth accepted a certificate from another CA")
			}
		})
	}
}

func TestHTTPRedirectPort(t *testing.T) {
	ca := tlstest.NewCA(t, "Redirect CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "app.test").Write(t, dir, "s")
	up := echoUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - host: app.test
    port: 443
    tls: {cert: %q, key: %q, httpRedirectPort: 80}
    proxy: %q
  - host: other.test
    port: 8443
    tls: {cert: %q, key: %q, httpRedirectPort: 80}
    proxy: %q
`, cert, key, up.URL, cert, key, up.URL))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, host, target string
		status               int
		location             string
	}{
		{"GET", "app.test", "/a/b?q=1", 301, "https://app.test/a/b?q=1"},
		{"HEAD", "app.test:80", "/", 301, "https://app.test/"},
		{"POST", "app.test", "/form", 308, "https://app.test/form"},
		{"GET", "other.test", "/x", 301, "https://other.test:8443/x"},
		{"GET", "evil.test", "/", 400, ""},
	} {
		t.Run(tc.method+" "+tc.host+tc.target, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL(80)+tc.target, strings.NewReader(""))
			req.Host = tc.host
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
			}
		})
	}
}

// rawConn is one kept-open TLS connection that sends HTTP/1.1 requests.
type rawConn struct {
	c  *tls.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string, ca *tlstest.CA) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) get(t *testing.T) int {
	t.Helper()
	if _, err := io.WriteString(rc.c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (rc *rawConn) serial() string {
	return rc.c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// waitForSerial dials until a new handshake presents want (the rotation is picked up by the
// first handshake at least a second after the files change).
func waitForSerial(t *testing.T, addr string, ca *tlstest.CA, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		leaf, err := handshake(t, addr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()})
		if err == nil && leaf.SerialNumber.String() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("new handshakes never presented the rotated certificate (last err %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateFileRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "Rotation CA")
	dir := t.TempDir()
	first := ca.Server(t, "localhost")
	cert, key := first.Write(t, dir, "s")
	up := echoUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf("host: localhost\nport: 8443\ntls: {cert: %q, key: %q}\nproxy: %q\n", cert, key, up.URL))
	addr := srv.HostPort(8443)
	old := dialRaw(t, addr, ca)
	if old.get(t) != 200 || old.serial() != first.Leaf.SerialNumber.String() {
		t.Fatal("first connection did not get the first certificate")
	}

	// A half-done rotation (new certificate, old key) keeps the old certificate.
	second := ca.Server(t, "localhost")
	replaceFile(t, cert, second.CertPEM)
	time.Sleep(1100 * time.Millisecond)
	if leaf, err := handshake(t, addr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}); err != nil || leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) != 0 {
		t.Fatalf("mismatched pair: got %v, %v; want the previous certificate", leaf, err)
	}
	replaceFile(t, key, second.KeyPEM)
	waitForSerial(t, addr, ca, second.Leaf.SerialNumber.String())

	if old.get(t) != 200 || old.serial() != first.Leaf.SerialNumber.String() {
		t.Fatal("the established connection stopped working after the rotation")
	}
}

func TestCertsReloadEndpoint(t *testing.T) {
	ca := tlstest.NewCA(t, "Admin CA")
	dir := t.TempDir()
	first := ca.Server(t, "localhost")
	cert, key := first.Write(t, dir, "s")
	up := echoUpstream(t)
	cfgPath := filepath.Join(dir, "conduit.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, "host: localhost\nport: 8443\ntls: {cert: %q, key: %q}\nproxy: %q\n", cert, key, up.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, api := startWithAdmin(t, cfgPath)
	addr := srv.Addr(8443).String()

	old := dialRaw(t, addr, ca)
	if old.get(t) != 200 {
		t.Fatal("first request failed")
	}
	second := ca.Server(t, "localhost")
	body, _ := json.Marshal(map[string]string{"cert": string(second.CertPEM), "key": string(second.KeyPEM)})
	resp, err := http.Post("http://"+api.Addr().String()+"/certs/reload", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /certs/reload: %d %s", resp.StatusCode, out)
	}
	// The reload swapped in a generation that loaded the new files: no waiting needed.
	leaf, err := handshake(t, addr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()})
	if err != nil || leaf.SerialNumber.Cmp(second.Leaf.SerialNumber) != 0 {
		t.Fatalf("after POST /certs/reload a new handshake got %v (%v), want the uploaded certificate", leaf.SerialNumber, err)
	}
	if old.get(t) != 200 || old.serial() != first.Leaf.SerialNumber.String() {
		t.Fatal("the established connection stopped working after /certs/reload")
	}
}

func TestHTTP2Negotiation(t *testing.T) {
	ca := tlstest.NewCA(t, "H2 CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "localhost").Write(t, dir, "s")
	up := echoUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
sites:
  - {host: localhost, port: 8443, tls: {cert: %q, key: %q}, proxy: %q}
  - {host: localhost, port: 9443, tls: {cert: %q, key: %q}, http2: false, proxy: %q}
  - {port: 8080, http2: {h2c: true}, proxy: %q}
  - {port: 8081, proxy: %q}
`, cert, key, up.URL, cert, key, up.URL, up.URL, up.URL))
	tlsClient := func() *http.Client {
		return &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}}}
	}
	h2cClient := func() *http.Client {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		return &http.Client{Transport: &http.Transport{Protocols: p}}
	}
	for _, tc := range []struct {
		name   string
		url    string
		client *http.Client
		proto  int
		fail   bool
	}{
		{"TLS ALPN h2", "https://" + srv.HostPort(8443) + "/", tlsClient(), 2, false},
		{"TLS http2: false", "https://" + srv.HostPort(9443) + "/", tlsClient(), 1, false},
		{"h2c prior knowledge", srv.URL(8080) + "/", h2cClient(), 2, false},
		{"HTTP/1.1 on the h2c port", srv.URL(8080) + "/", http.DefaultClient, 1, false},
		{"h2c refused without http2.h2c", srv.URL(8081) + "/", h2cClient(), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tc.url, nil)
			req.Host = "localhost"
			resp, err := tc.client.Do(req)
			if tc.fail {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got %s, want a failure", resp.Proto)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != tc.proto || resp.StatusCode != 200 {
				t.Fatalf("got %d over %s, want 200 over HTTP/%d", resp.StatusCode, resp.Proto, tc.proto)
			}
		})
	}
}

func TestHTTP2ToUpstreams(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Trailer")
		fmt.Fprint(w, r.Proto)
		w.Header().Set("X-Trailer", "done")
	})
	tlsUp := httptest.NewUnstartedServer(handler)
	tlsUp.EnableHTTP2 = true
	tlsUp.StartTLS()
	t.Cleanup(tlsUp.Close)
	h2cUp := httptest.NewUnstartedServer(handler)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	h2cUp.Config.Protocols = p
	h2cUp.Start()
	t.Cleanup(h2cUp.Close)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /tls: {targets: [%q], http2: true, upstreamTls: {verify: false}}
  /h2c: {targets: [%q], http2: true}
  /h1: {targets: [%q]}
`, tlsUp.URL, h2cUp.URL, h2cUp.URL))
	for _, tc := range []struct{ path, want string }{
		{"/tls", "HTTP/2.0"}, {"/h2c", "HTTP/2.0"}, {"/h1", "HTTP/1.1"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL(8080) + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != tc.want {
				t.Fatalf("upstream saw %q, want %q", b, tc.want)
			}
			if got := resp.Trailer.Get("X-Trailer"); got != "done" {
				t.Fatalf("trailer X-Trailer = %q, want done", got)
			}
		})
	}
}
