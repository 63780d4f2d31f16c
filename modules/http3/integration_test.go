package http3_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	qhttp3 "github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/conduitproxy/conduit/core/canonical"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
	_ "github.com/conduitproxy/conduit/modules/accesslog"
	_ "github.com/conduitproxy/conduit/modules/auth/basic"
	_ "github.com/conduitproxy/conduit/modules/cache"
	_ "github.com/conduitproxy/conduit/modules/compress"
	_ "github.com/conduitproxy/conduit/modules/headers"
	_ "github.com/conduitproxy/conduit/modules/http3"
	_ "github.com/conduitproxy/conduit/modules/ipfilter"
	_ "github.com/conduitproxy/conduit/modules/metrics"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/tap"
)

// bigSize is the size of the large download: several QUIC flow-control windows.
const bigSize = 8 << 20

// bigBody is the deterministic content of the large download.
func bigBody() []byte {
	b := make([]byte, bigSize)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// upstream is a real HTTP/1.1 server: /echo answers what it received as JSON, /sum the
// SHA-256 of the request body, /big the large download, /trailer a body with a trailer,
// /slow waits before answering, /missing is a 404.
func upstream(t testing.TB) *httptest.Server {
	t.Helper()
	big := bigBody()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sum":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
		case "/trailer":
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc123")
		case "/slow":
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(w, "slow done")
		case "/trailer-in":
			_, _ = io.Copy(io.Discard, r.Body)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"sum": r.Trailer.Get("X-Body-Sum"), "xff": r.Trailer.Get("X-Forwarded-For"),
			})
		case "/missing":
			http.NotFound(w, r)
		case "/text":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, strings.Repeat("compressible text over HTTP/3\n", 200))
		default:
			_ = json.NewEncoder(w).Encode(map[string]string{
				"proto": r.Proto, "host": r.Host, "path": r.URL.Path,
				"hostHeaders": strconv.Itoa(len(r.Header.Values("Host"))),
				"via":         r.Header.Get("Via"),
				"user":        r.Header.Get("Authorization"),
				"certSubject": r.Header.Get("X-Client-Cert-Subject"),
			})
		}
	}))
	t.Cleanup(up.Close)
	return up
}

// start serves src and fails on a warning too: a key of a module the test did not link
// would otherwise be ignored with a warning, and the test would check less than it says.
func start(t testing.TB, src string) *servertest.Server {
	t.Helper()
	return noWarnings(t, servertest.Start(t, src))
}

func noWarnings(t testing.TB, srv *servertest.Server) *servertest.Server {
	t.Helper()
	if w := srv.Diagnostics.Warnings(); len(w) > 0 {
		t.Fatalf("config warnings: %v", w)
	}
	return srv
}

// tlsFiles writes a certificate for names, signed by ca, into dir and returns the paths.
func tlsFiles(t testing.TB, ca *tlstest.CA, dir string, names ...string) (string, string) {
	t.Helper()
	return ca.Server(t, names...).Write(t, dir, "site")
}

// h3Client is a real quic-go HTTP/3 client that trusts ca and dials addr (the Conduit's UDP
// socket on 127.0.0.1) whatever the URL's host is.
func h3Client(t testing.TB, ca *tlstest.CA, addr string) (*http.Client, *qhttp3.Transport) {
	t.Helper()
	tr := &qhttp3.Transport{
		DisableCompression: true,
		TLSClientConfig:    &tls.Config{RootCAs: ca.Pool()},
		QUICConfig:         &quic.Config{HandshakeIdleTimeout: 5 * time.Second},
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, addr, tc, qc)
		},
	}
	t.Cleanup(func() { _ = tr.Close() })
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, tr
}

// tcpClient is an HTTP/1.1 or HTTP/2 client over TLS to addr.
func tcpClient(t testing.TB, ca *tlstest.CA, addr string, h2 bool) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

type reply struct {
	status int
	proto  string
	header http.Header
	body   string
	resp   *http.Response
}

// send does one request and reads the whole answer; a transport error fails the test.
func send(t *testing.T, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return reply{status: resp.StatusCode, proto: resp.Proto, header: resp.Header, body: string(b), resp: resp}
}

func get(t *testing.T, c *http.Client, url string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, c, req)
}

// port returns the port number of a host:port.
func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHTTP3ThroughProxy(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	cert, key := tlsFiles(t, ca, t.TempDir(), "a.test")
	up := upstream(t)
	// An HTTP/2 upstream (cleartext, prior knowledge) beside the HTTP/1.1 one.
	up2 := httptest.NewUnstartedServer(up.Config.Handler)
	up2.Config.Protocols = new(http.Protocols)
	up2.Config.Protocols.SetUnencryptedHTTP2(true)
	up2.Start()
	t.Cleanup(up2.Close)
	logPath := filepath.Join(t.TempDir(), "access.log")
	srv := start(t, fmt.Sprintf(`
sites:
  - host: a.test
    port: 8443
    tls: {cert: %q, key: %q}
    http3: true
    compression: true
    logging: {format: common, file: %q}
    proxy:
      /: %q
      /h2: {targets: [%q], http2: true, stripPrefix: true}
      /cached: {targets: [%q], stripPrefix: true, cache: {store: memory, ttlSecs: 60}}
      /down: "http://127.0.0.1:1"
`, cert, key, logPath, up.URL, up2.URL, up.URL))
	addr := srv.HostPort(8443)
	p := port(t, addr)
	base := "https://a.test:" + p
	c, _ := h3Client(t, ca, addr)

	t.Run("GET", func(t *testing.T) {
		r := get(t, c, base+"/echo")
		var got map[string]string
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatalf("%d %q: %v", r.status, r.body, err)
		}
		if r.status != 200 || r.proto != "HTTP/3.0" {
			t.Fatalf("status %d proto %s", r.status, r.proto)
		}
		if got["proto"] != "HTTP/1.1" || got["host"] != "a.test:"+p || got["hostHeaders"] != "0" || got["via"] != "3.0 conduit" {
			t.Errorf("upstream saw %v", got)
		}
		if r.header.Get("Alt-Svc") != "" {
			t.Errorf("an HTTP/3 answer carries Alt-Svc %q", r.header.Get("Alt-Svc"))
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("no X-Request-ID: the site pipeline did not run")
		}
	})

	t.Run("POST streamed body", func(t *testing.T) {
		pr, pw := io.Pipe()
		want := sha256.New()
		go func() {
			chunk := make([]byte, 32<<10)
			for i := range 64 {
				for j := range chunk {
					chunk[j] = byte(i + j)
				}
				want.Write(chunk)
				if _, err := pw.Write(chunk); err != nil {
					return
				}
				if i%16 == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			_ = pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, base+"/sum", pr)
		r := send(t, c, req)
		if r.status != 200 || r.body != fmt.Sprintf("%d %s", 64*32<<10, hex.EncodeToString(want.Sum(nil))) {
			t.Errorf("%d %q", r.status, r.body)
		}
	})

	t.Run("large download", func(t *testing.T) {
		r := get(t, c, base+"/big")
		if r.status != 200 || len(r.body) != bigSize || sha([]byte(r.body)) != sha(bigBody()) {
			t.Errorf("status %d, %d bytes, checksum match %v", r.status, len(r.body), sha([]byte(r.body)) == sha(bigBody()))
		}
	})

	t.Run("trailer", func(t *testing.T) {
		r := get(t, c, base+"/trailer")
		if r.status != 200 || r.body != "body" || r.resp.Trailer.Get("X-Checksum") != "abc123" {
			t.Errorf("%d %q trailer %v", r.status, r.body, r.resp.Trailer)
		}
	})

	t.Run("HTTP/2 upstream", func(t *testing.T) {
		r := get(t, c, base+"/h2/echo")
		var got map[string]string
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatalf("%d %q: %v", r.status, r.body, err)
		}
		if r.status != 200 || got["proto"] != "HTTP/2.0" || got["path"] != "/echo" {
			t.Errorf("%d, upstream saw %v", r.status, got)
		}
		pr, pw := io.Pipe()
		go func() {
			for range 16 {
				if _, err := pw.Write(bytes.Repeat([]byte("h2"), 16<<10)); err != nil {
					return
				}
			}
			_ = pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, base+"/h2/sum", pr)
		want := sha(bytes.Repeat([]byte("h2"), 16*16<<10))
		if r := send(t, c, req); r.status != 200 || r.body != fmt.Sprintf("%d %s", 16*32<<10, want) {
			t.Errorf("streamed POST to the HTTP/2 upstream: %d %q", r.status, r.body)
		}
	})

	t.Run("compression", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base+"/text", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		r := send(t, c, req)
		if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%d Content-Encoding %q", r.status, r.header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || string(plain) != strings.Repeat("compressible text over HTTP/3\n", 200) {
			t.Errorf("decompressed %d bytes (%v)", len(plain), err)
		}
	})

	t.Run("request trailer", func(t *testing.T) {
		body := bytes.Repeat([]byte("t"), 100<<10)
		// A body of unknown length: trailers go upstream on a chunked body.
		req, _ := http.NewRequest(http.MethodPost, base+"/trailer-in", io.MultiReader(bytes.NewReader(body)))
		req.ContentLength = -1
		req.Trailer = http.Header{"X-Body-Sum": {sha(body)}, "X-Forwarded-For": {"192.0.2.1"}}
		r := send(t, c, req)
		var got map[string]string
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatalf("%d %q: %v", r.status, r.body, err)
		}
		// The checksum trailer reaches the upstream; a forwarding header as a trailer never does.
		if r.status != 200 || got["sum"] != sha(body) || got["xff"] != "" {
			t.Errorf("%d, upstream saw trailers %v", r.status, got)
		}
	})

	t.Run("cache", func(t *testing.T) {
		first := get(t, c, base+"/cached/text")
		second := get(t, c, base+"/cached/text")
		if first.status != 200 || first.header.Get("X-Cache") != "MISS" || second.header.Get("X-Cache") != "HIT" || second.body != first.body {
			t.Errorf("X-Cache %q then %q", first.header.Get("X-Cache"), second.header.Get("X-Cache"))
		}
	})

	t.Run("404 and 502", func(t *testing.T) {
		if r := get(t, c, base+"/missing"); r.status != 404 {
			t.Errorf("upstream 404: %d", r.status)
		}
		if r := get(t, c, base+"/down/x"); r.status != 502 {
			t.Errorf("unreachable upstream: %d %q", r.status, r.body)
		}
	})

	t.Run("access log", func(t *testing.T) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, _ := os.ReadFile(logPath)
			if strings.Contains(string(b), `"GET /echo HTTP/3.0" 200`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no HTTP/3.0 line in the access log:\n%s", b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestAltSvcOnTCPAnswers(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	dir := t.TempDir()
	cert, key := tlsFiles(t, ca, dir, "a.test", "b.test", "c.test")
	up := upstream(t)
	srv := start(t, fmt.Sprintf(`
global:
  http3: true
sites:
  - host: a.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    proxy: %[3]q
  - host: b.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    http3: {advertise: false}
    proxy: %[3]q
  - host: c.test
    port: 8080
    proxy: %[3]q
`, cert, key, up.URL))
	addr := srv.HostPort(8443)
	want := `h3=":` + port(t, addr) + `"; ma=2592000`
	for _, h2 := range []bool{false, true} {
		c := tcpClient(t, ca, addr, h2)
		r := get(t, c, "https://a.test/echo")
		if (r.proto == "HTTP/2.0") != h2 || r.header.Get("Alt-Svc") != want {
			t.Errorf("a.test over %s: Alt-Svc %q, want %q", r.proto, r.header.Get("Alt-Svc"), want)
		}
		if r := get(t, c, "https://b.test/echo"); r.header.Get("Alt-Svc") != "" {
			t.Errorf("b.test (advertise: false) over %s: Alt-Svc %q", r.proto, r.header.Get("Alt-Svc"))
		}
	}
	// global.http3 is the default of TLS sites only: the plain site has no UDP socket and
	// advertises nothing.
	if r := servertest.Get(t, srv.URL(8080)+"/echo", "Host", "c.test"); r.Status != 200 || r.Header.Get("Alt-Svc") != "" {
		t.Errorf("plain site: %d Alt-Svc %q", r.Status, r.Header.Get("Alt-Svc"))
	}
	// b.test does not advertise but is served over HTTP/3 (one socket serves the port).
	c, _ := h3Client(t, ca, addr)
	if r := get(t, c, "https://b.test/echo"); r.status != 200 || r.proto != "HTTP/3.0" {
		t.Errorf("b.test over HTTP/3: %d %s", r.status, r.proto)
	}
}

func TestHTTP3GuardsAndCanonicalAuthority(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	dir := t.TempDir()
	cert, key := tlsFiles(t, ca, dir, "a.test", "deny.test", "auth.test")
	up := upstream(t)
	srv := start(t, fmt.Sprintf(`
global:
  http3: true
sites:
  - host: a.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    proxy: %[3]q
  - host: deny.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    ipFilter: {deny: ["127.0.0.0/8"]}
    proxy: %[3]q
  - host: auth.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    basicAuth: {users: {alice: "wonderland-secret"}}
    proxy: %[3]q
`, cert, key, up.URL))
	addr := srv.HostPort(8443)
	p := port(t, addr)
	c, _ := h3Client(t, ca, addr)

	for _, tc := range []struct {
		name, url, host, user string
		status                int
		upstreamHost, path    string
	}{
		{name: "ipFilter deny", url: "https://deny.test/echo", status: 403},
		{name: "basicAuth without credentials", url: "https://auth.test/echo", status: 401},
		{name: "basicAuth wrong password", url: "https://auth.test/echo", user: "wrong", status: 401},
		{name: "basicAuth", url: "https://auth.test/echo", user: "wonderland-secret", status: 200, upstreamHost: "auth.test", path: "/echo"},
		// :authority is made canonical like Host: lower case, no trailing dot, default port
		// dropped; the site is chosen and the upstream addressed with the canonical value.
		{name: "authority case and dot", url: "https://a.test/echo", host: "A.TEST.:" + p, status: 200, upstreamHost: "a.test:" + p, path: "/echo"},
		{name: "authority default port", url: "https://a.test/echo", host: "A.Test:443", status: 200, upstreamHost: "a.test", path: "/echo"},
		{name: "guarded site by a spelling of its name", url: "https://deny.test/echo", host: "DENY.test.", status: 403},
		{name: "unknown authority", url: "https://a.test/echo", host: "other.test", status: 400},
		{name: "dot-segments", url: "https://a.test/x/%2e%2e/echo", status: 200, upstreamHost: "a.test", path: "/echo"},
		{name: "double-encoded dot", url: "https://a.test/x/%252e%252e/echo", status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.user != "" {
				req.SetBasicAuth("alice", tc.user)
			}
			r := send(t, c, req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%q)", r.status, tc.status, r.body)
			}
			if tc.upstreamHost == "" {
				if strings.Contains(r.body, `"proto"`) {
					t.Fatalf("the upstream answered: %q", r.body)
				}
				return
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("%q: %v", r.body, err)
			}
			if got["host"] != tc.upstreamHost || got["path"] != tc.path || got["hostHeaders"] != "0" {
				t.Errorf("upstream saw host %q path %q (%s Host headers), want %q %q", got["host"], got["path"], got["hostHeaders"], tc.upstreamHost, tc.path)
			}
		})
	}
}

// writeConfig writes src to the config file at path.
func writeConfig(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHTTP3ReloadKeepsTheUDPSocketUnderLoad(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	dir := t.TempDir()
	cert, key := tlsFiles(t, ca, dir, "a.test")
	up := upstream(t)
	cfgPath := filepath.Join(dir, "conduit.yaml")
	conf := func(tag string) string {
		return fmt.Sprintf(`
sites:
  - host: a.test
    port: 8443
    tls: {cert: %q, key: %q}
    http3: {maxStreams: 50}
    headers: {X-Generation: %q}
    proxy: %q
`, cert, key, tag, up.URL)
	}
	writeConfig(t, cfgPath, conf("one"))
	srv := noWarnings(t, servertest.StartFile(t, cfgPath))
	addr := srv.HostPort(8443)
	c, _ := h3Client(t, ca, addr)
	if r := get(t, c, "https://a.test/echo"); r.status != 200 || r.header.Get("X-Generation") != "one" {
		t.Fatalf("before the reload: %d %q", r.status, r.header.Get("X-Generation"))
	}

	var ok, failed atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			lc, _ := h3Client(t, ca, addr)
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := lc.Get("https://a.test/echo")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	for i, tag := range []string{"two", "three", "four"} {
		time.Sleep(150 * time.Millisecond)
		writeConfig(t, cfgPath, conf(tag))
		if _, err := srv.Server.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests answered, %d failed (first: %v)", ok.Load(), failed.Load(), firstErr)
	}
	// The client's connection from before the reloads still works, and sees the new
	// generation; so does a new connection.
	if r := get(t, c, "https://a.test/echo"); r.status != 200 || r.header.Get("X-Generation") != "four" {
		t.Errorf("old connection after the reloads: %d %q", r.status, r.header.Get("X-Generation"))
	}
	nc, _ := h3Client(t, ca, addr)
	if r := get(t, nc, "https://a.test/echo"); r.status != 200 || r.header.Get("X-Generation") != "four" {
		t.Errorf("new connection after the reloads: %d %q", r.status, r.header.Get("X-Generation"))
	}
	t.Logf("%d HTTP/3 requests during 3 reloads, none failed", ok.Load())

	// Adding or removing the UDP socket is a cold change.
	writeConfig(t, cfgPath, strings.Replace(conf("five"), "http3: {maxStreams: 50}", "http3: false", 1))
	if _, err := srv.Server.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "UDP listener of port 8443 removed (sites[0])") {
		t.Errorf("reload that removes HTTP/3: %v", err)
	}
}

func TestHTTP3CertificateRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	dir := t.TempDir()
	first := ca.Server(t, "a.test")
	cert, key := first.Write(t, dir, "site")
	up := upstream(t)
	srv := start(t, fmt.Sprintf(`
host: a.test
port: 8443
tls: {cert: %q, key: %q}
http3: true
proxy: %q
`, cert, key, up.URL))
	addr := srv.HostPort(8443)
	serial := func() string {
		c, tr := h3Client(t, ca, addr)
		r := get(t, c, "https://a.test/echo")
		_ = tr.Close()
		if r.status != 200 || r.resp.TLS == nil || len(r.resp.TLS.PeerCertificates) == 0 {
			t.Fatalf("status %d, TLS %v", r.status, r.resp.TLS)
		}
		return r.resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	if got := serial(); got != first.Leaf.SerialNumber.String() {
		t.Fatalf("first certificate: serial %s", got)
	}
	second := ca.Server(t, "a.test")
	second.Write(t, dir, "site")
	// The files are checked at most once a second, by a handshake.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := serial()
		if got == second.Leaf.SerialNumber.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated certificate was not served over HTTP/3: serial %s", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestHTTP3GracefulShutdownFinishesRequests(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	cert, key := tlsFiles(t, ca, t.TempDir(), "a.test")
	// The upstream signals when the request arrives, so shutdown starts with it in flight
	// however slow the machine is.
	arrived := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, "slow done")
	}))
	t.Cleanup(up.Close)
	srv := start(t, fmt.Sprintf(`
host: a.test
port: 8443
tls: {cert: %q, key: %q}
http3: true
proxy: %q
`, cert, key, up.URL))
	addr := srv.HostPort(8443)
	c, _ := h3Client(t, ca, addr)
	done := make(chan reply, 1)
	go func() {
		resp, err := c.Get("https://a.test/slow")
		if err != nil {
			done <- reply{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			done <- reply{body: err.Error()}
			return
		}
		done <- reply{status: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if r := <-done; r.status != 200 || r.body != "slow done" {
		t.Fatalf("the request in flight: %d %q", r.status, r.body)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("shutdown took %v: the client did not close after GOAWAY", time.Since(start))
	}
	// The UDP socket is closed: a new connection fails.
	nc, _ := h3Client(t, ca, addr)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	req, _ := http.NewRequestWithContext(ctx2, http.MethodGet, "https://a.test/echo", nil)
	if resp, err := nc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a request after shutdown was answered %d", resp.StatusCode)
	}
}

// rawRequest sends one HTTP/3 request made of exactly fields (a client library would fix
// them up) on a fresh QUIC connection and returns the answer's status ("" when the stream
// was refused) and body.
func rawRequest(t *testing.T, ca *tlstest.CA, addr string, fields ...qpack.HeaderField) (status, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "a.test", NextProtos: []string{qhttp3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	ctrl, err := conn.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = ctrl.Write([]byte{0x00, 0x04, 0x00}) // the control stream: an empty SETTINGS frame
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var blk bytes.Buffer
	enc := qpack.NewEncoder(&blk)
	for _, f := range fields {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	frame := quicvarint.Append(quicvarint.Append(nil, 0x01), uint64(blk.Len())) // HEADERS
	if _, err := str.Write(append(frame, blk.Bytes()...)); err != nil {
		t.Fatal(err)
	}
	_ = str.Close()
	_ = str.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, _ := io.ReadAll(str)
	r := bytes.NewReader(data)
	for r.Len() > 0 {
		typ, err1 := quicvarint.Read(r)
		n, err2 := quicvarint.Read(r)
		if err1 != nil || err2 != nil || n > uint64(r.Len()) {
			t.Fatalf("malformed answer %q", data)
		}
		payload := make([]byte, n)
		_, _ = io.ReadFull(r, payload)
		switch typ {
		case 0x01:
			df := qpack.NewDecoder().Decode(payload)
			for {
				hf, err := df()
				if err != nil {
					break
				}
				if hf.Name == ":status" && status == "" {
					status = hf.Value
				}
			}
		case 0x00:
			body += string(payload)
		}
	}
	return status, body
}

// TestHTTP3HostFieldIsNotASecondAuthority sends requests a client library would not: a Host
// field beside :authority, or instead of it. The one authority is the canonical one, and the
// upstream never receives the client's Host field.
func TestHTTP3HostFieldIsNotASecondAuthority(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	cert, key := tlsFiles(t, ca, t.TempDir(), "a.test", "deny.test")
	up := upstream(t)
	// A route that matches a Host header field: net/http never leaves one in the header map
	// of an HTTP/1 or HTTP/2 request, so neither may HTTP/3.
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "routed by a Host field")
	}))
	t.Cleanup(second.Close)
	srv := start(t, fmt.Sprintf(`
global:
  http3: true
sites:
  - host: a.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    routes:
      - match: {headers: {Host: ".+"}}
        proxy: %[4]q
    proxy: %[3]q
  - host: deny.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    ipFilter: {deny: ["127.0.0.0/8"]}
    proxy: %[3]q
`, cert, key, up.URL, second.URL))
	addr := srv.HostPort(8443)
	f := func(name, value string) qpack.HeaderField { return qpack.HeaderField{Name: name, Value: value} }
	req := func(extra ...qpack.HeaderField) []qpack.HeaderField {
		return append([]qpack.HeaderField{f(":method", "GET"), f(":scheme", "https"), f(":path", "/echo")}, extra...)
	}
	for _, tc := range []struct {
		name       string
		fields     []qpack.HeaderField
		status     string
		wantHost   string
		wantRefuse bool
	}{
		{name: "Host equal to :authority", fields: req(f(":authority", "A.TEST."), f("host", "A.TEST.")), status: "200", wantHost: "a.test"},
		{name: "Host without :authority", fields: req(f("host", "A.Test")), status: "200", wantHost: "a.test"},
		{name: "Host naming a guarded site without :authority", fields: req(f("host", "Deny.Test.")), status: "403"},
		{name: "Host differing from :authority", fields: req(f(":authority", "a.test"), f("host", "deny.test")), wantRefuse: true},
		// Conduit tunnels nothing: CONNECT gets 501 as over HTTP/1.1 (core/h1guard).
		{name: "CONNECT", fields: []qpack.HeaderField{f(":method", "CONNECT"), f(":authority", "a.test:443")}, status: "501"},
		{name: "extended CONNECT", fields: []qpack.HeaderField{f(":method", "CONNECT"), f(":protocol", "websocket"), f(":scheme", "https"), f(":path", "/echo"), f(":authority", "a.test")}, status: "501"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawRequest(t, ca, addr, tc.fields...)
			if tc.wantRefuse {
				if status != "" {
					t.Fatalf("answered %s %q, want the stream refused", status, body)
				}
				return
			}
			if status != tc.status {
				t.Fatalf("status %q, want %s (%q)", status, tc.status, body)
			}
			if tc.wantHost == "" {
				return
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%q: %v", body, err)
			}
			if got["host"] != tc.wantHost || got["hostHeaders"] != "0" {
				t.Errorf("upstream saw host %q (%s Host headers), want %q", got["host"], got["hostHeaders"], tc.wantHost)
			}
		})
	}
}

// TestHTTP3SlowClients checks that global.clientBodyTimeoutMs and global.clientSendTimeoutMs
// bound HTTP/3 streams as they bound HTTP/1 connections and HTTP/2 streams: a client that
// stalls its upload gets 408, and a client that stops reading a download has its stream
// reset instead of holding the handler forever.
func TestHTTP3SlowClients(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	cert, key := tlsFiles(t, ca, t.TempDir(), "a.test")
	upstreamDone := make(chan error, 4) // how /endless ended
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			_, _ = io.Copy(io.Discard, r.Body)
		case "/endless":
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for i := 0; i < 4096; i++ { // 256 MiB at most
				if _, err := w.Write(chunk); err != nil {
					upstreamDone <- err
					return
				}
			}
			upstreamDone <- nil
		}
	}))
	t.Cleanup(up.Close)
	srv := start(t, fmt.Sprintf(`
global: {clientBodyTimeoutMs: 300, clientSendTimeoutMs: 300}
sites:
  - host: a.test
    port: 8443
    tls: {cert: %q, key: %q}
    http3: true
    proxy: %q
`, cert, key, up.URL))
	addr := srv.HostPort(8443)

	t.Run("stalled upload", func(t *testing.T) {
		c, _ := h3Client(t, ca, addr)
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() { _, _ = pw.Write([]byte("ten bytes!")) }() // then nothing
		req, _ := http.NewRequest(http.MethodPost, "https://a.test/upload", pr)
		req.ContentLength = 1 << 20
		start := time.Now()
		r := send(t, c, req)
		if r.status != http.StatusRequestTimeout || time.Since(start) > 5*time.Second {
			t.Errorf("status %d after %v, want 408 after about 300 ms", r.status, time.Since(start))
		}
	})

	t.Run("reader that stops", func(t *testing.T) {
		// Small flow-control windows: the server's writes block as soon as the client stops
		// reading.
		tr := &qhttp3.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
			QUICConfig: &quic.Config{InitialStreamReceiveWindow: 64 << 10, MaxStreamReceiveWindow: 64 << 10,
				InitialConnectionReceiveWindow: 128 << 10, MaxConnectionReceiveWindow: 128 << 10},
			Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				return quic.DialAddr(ctx, addr, tc, qc)
			},
		}
		t.Cleanup(func() { _ = tr.Close() })
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://a.test/endless")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
		// Stop reading. The proxy's write to the stream must give up after about 300 ms,
		// which ends the upstream request too.
		select {
		case err := <-upstreamDone:
			if err == nil {
				t.Fatal("the upstream sent everything to a client that did not read")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the download to a client that stopped reading was not cut")
		}
		if _, err := io.Copy(io.Discard, resp.Body); err == nil {
			t.Error("the client read the whole endless body")
		}
	})
}

// TestHTTP3MetricsAndTap checks that the observers see HTTP/3 requests with their protocol:
// conduit_requests_by_protocol_total{protocol="3"} and the tap event's proto.
func TestHTTP3MetricsAndTap(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	cert, key := tlsFiles(t, ca, t.TempDir(), "a.test")
	up := upstream(t)
	// The tap stage is in the chain when an Admin API is configured; this test serves the
	// tap endpoint itself (servertest does not open the Admin API's listener).
	srv := start(t, fmt.Sprintf(`
global:
  admin: {bind: "127.0.0.1:2019", token: "h3-test-admin-token-0123456789"}
sites:
  - host: a.test
    port: 8443
    tls: {cert: %q, key: %q}
    http3: true
    metrics: true
    proxy: %q
`, cert, key, up.URL))
	addr := srv.HostPort(8443)
	admin := httptest.NewServer(servertest.AdminHandler(t, srv.Generation, http.MethodGet, "/tap"))
	t.Cleanup(admin.Close)
	tapResp, err := http.Get(admin.URL + "/tap?path=/echo")
	if err != nil {
		t.Fatal(err)
	}
	defer tapResp.Body.Close()
	events := make(chan map[string]any, 16)
	go func() {
		dec := json.NewDecoder(tapResp.Body)
		for {
			var ev map[string]any
			if dec.Decode(&ev) != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()

	c, _ := h3Client(t, ca, addr)
	for range 3 {
		if r := get(t, c, "https://a.test/echo"); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	select {
	case ev := <-events:
		if ev["proto"] != "HTTP/3.0" || ev["path"] != "/echo" || ev["host"] != "a.test" {
			t.Errorf("tap event %v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no tap event")
	}
	r := get(t, c, "https://a.test/__metrics__")
	if !strings.Contains(r.body, `conduit_requests_by_protocol_total{protocol="3"} 3`) {
		t.Errorf("metrics over HTTP/3:\n%s", r.body)
	}
}

// TestHTTP3ClientCertificates checks that tls.clientAuth (mTLS) holds over QUIC: without a
// client certificate no request is served, with one the upstream learns its subject, and a
// client's own X-Client-Cert-Subject is replaced.
func TestHTTP3ClientCertificates(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	clientCA := tlstest.NewCA(t, "h3 client CA")
	dir := t.TempDir()
	cert, key := tlsFiles(t, ca, dir, "a.test")
	caPath := clientCA.WriteCA(t, dir, "clients")
	up := upstream(t)
	srv := start(t, fmt.Sprintf(`
host: a.test
port: 8443
tls: {cert: %q, key: %q, clientAuth: {ca: %q}}
http3: true
proxy: %q
`, cert, key, caPath, up.URL))
	addr := srv.HostPort(8443)

	anon, _ := h3Client(t, ca, addr)
	req, _ := http.NewRequest(http.MethodGet, "https://a.test/echo", nil)
	if resp, err := anon.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate was answered %d", resp.StatusCode)
	}

	c, tr := h3Client(t, ca, addr)
	tr.TLSClientConfig.Certificates = []tls.Certificate{clientCA.Client(t, "alice").TLS}
	req, _ = http.NewRequest(http.MethodGet, "https://a.test/echo", nil)
	req.Header.Set("X-Client-Cert-Subject", "CN=admin")
	r := send(t, c, req)
	var got map[string]string
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("%d %q: %v", r.status, r.body, err)
	}
	if r.status != 200 || !strings.Contains(got["certSubject"], "CN=alice") || strings.Contains(got["certSubject"], "admin") {
		t.Errorf("%d, upstream saw X-Client-Cert-Subject %q", r.status, got["certSubject"])
	}
}

// FuzzHTTP3RequestIdentity sends HTTP/3 requests with fuzzed :authority, Host field and
// :path. Whatever the spelling, the guarded site's upstream is never reached, a request for
// a spelling of the guarded host is never answered 200, and the open site's upstream only
// sees the canonical form of the authority the client used.
func FuzzHTTP3RequestIdentity(f *testing.F) {
	for _, s := range [][3]string{
		{"a.test", "", "/echo"}, {"DENY.test.", "", "/"}, {"", "deny.test", "/x"},
		{"a.test", "deny.test", "/"}, {"A.TEST:443", "A.TEST:443", "/a/../echo"},
		{"deny.test:0443", "", "/"}, {"a.test", "", "/%2e%2e/x"}, {"xn--dny-fna.test", "", "/"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	ca := tlstest.NewCA(f, "h3 fuzz CA")
	cert, key := tlsFiles(f, ca, f.TempDir(), "a.test", "deny.test")
	open := upstream(f)
	var denied atomic.Int64
	guarded := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { denied.Add(1) }))
	f.Cleanup(guarded.Close)
	srv := servertest.Start(f, fmt.Sprintf(`
global:
  http3: true
sites:
  - host: a.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    proxy: %[3]q
  - host: deny.test
    port: 8443
    tls: {cert: %[1]q, key: %[2]q}
    ipFilter: {deny: ["127.0.0.0/8"]}
    proxy: %[4]q
`, cert, key, open.URL, guarded.URL))
	addr := srv.HostPort(8443)
	f.Fuzz(func(t *testing.T, authority, host, path string) {
		fields := []qpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: path}}
		if authority != "" {
			fields = append(fields, qpack.HeaderField{Name: ":authority", Value: authority})
		}
		if host != "" {
			fields = append(fields, qpack.HeaderField{Name: "host", Value: host})
		}
		status, body := rawRequest(t, ca, addr, fields...)
		if n := denied.Load(); n != 0 {
			t.Fatalf(":authority %q Host %q :path %q reached the guarded upstream", authority, host, path)
		}
		used := authority
		if used == "" {
			used = host
		}
		name, port, err := canonical.Host(used, "https")
		if err == nil && name == "deny.test" && status == "200" {
			t.Fatalf("%q names the guarded site but was answered 200", used)
		}
		if status != "200" {
			return
		}
		var got map[string]string
		if json.Unmarshal([]byte(body), &got) != nil {
			return // a local answer, not the echo
		}
		if err != nil || got["host"] != canonical.Authority(name, port) {
			t.Fatalf("the client used %q (canonical %q, %v); the upstream saw %q", used, canonical.Authority(name, port), err, got["host"])
		}
	})
}

// TestHTTP3StreamsWithoutHeadersAreBounded: a client that keeps its connection alive with
// PINGs while it holds a request stream open without finishing its HEADERS frame (the QUIC
// form of a slowloris) is disconnected after idleTimeoutSecs, while a request that takes
// longer than that is not cut.
func TestHTTP3StreamsWithoutHeadersAreBounded(t *testing.T) {
	ca := tlstest.NewCA(t, "h3 CA")
	cert, key := tlsFiles(t, ca, t.TempDir(), "a.test")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(1500 * time.Millisecond)
		_, _ = io.WriteString(w, "late")
	}))
	t.Cleanup(up.Close)
	srv := start(t, fmt.Sprintf(`
host: a.test
port: 8443
tls: {cert: %q, key: %q}
http3: {idleTimeoutSecs: 1}
proxy: %q
`, cert, key, up.URL))
	addr := srv.HostPort(8443)

	t.Run("a request longer than the idle timeout", func(t *testing.T) {
		c, _ := h3Client(t, ca, addr)
		if r := get(t, c, "https://a.test/"); r.status != 200 || r.body != "late" {
			t.Errorf("%d %q", r.status, r.body)
		}
	})

	t.Run("a stream that never sends its headers", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "a.test", NextProtos: []string{qhttp3.NextProtoH3}},
			&quic.Config{KeepAlivePeriod: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseWithError(0, "")
		ctrl, err := conn.OpenUniStream()
		if err != nil {
			t.Fatal(err)
		}
		_, _ = ctrl.Write([]byte{0x00, 0x04, 0x00})
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = str.Write([]byte{0x01}) // the type of a HEADERS frame, and nothing more
		start := time.Now()
		select {
		case <-conn.Context().Done():
			if d := time.Since(start); d < 500*time.Millisecond {
				t.Errorf("closed after %v, before the idle timeout", d)
			}
		case <-ctx.Done():
			t.Fatal("the connection is still open after 10 s")
		}
	})
}
