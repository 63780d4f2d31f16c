package proxy_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
)

// privateTLSUpstream is a real HTTPS upstream whose certificate is signed by a CA that no
// system store holds; it answers with the request's method and body length.
func privateTLSUpstream(t *testing.T) (*httptest.Server, *tlstest.CA) {
	t.Helper()
	ca := tlstest.NewCA(t, "Private upstream CA")
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %d", r.Method, n)
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}}
	up.StartTLS()
	t.Cleanup(up.Close)
	return up, ca
}

// TestTLSCAIsTheUpstreamTrustRoot: tls.ca is added to the trust store of the site's https://
// upstreams, on the hot path (a bodyless GET, h1client.go) and on net/http's Transport (a
// chunked POST); without it the private CA's certificate is refused (502).
func TestTLSCAIsTheUpstreamTrustRoot(t *testing.T) {
	up, upCA := privateTLSUpstream(t)
	dir := t.TempDir()
	siteCA := tlstest.NewCA(t, "Site CA")
	cert, key := siteCA.Server(t, "127.0.0.1").Write(t, dir, "site")
	caFile := upCA.WriteCA(t, dir, "upstream-ca")

	for _, tc := range []struct {
		name   string
		tlsExt string
		want   int
	}{
		{"without tls.ca", "", http.StatusBadGateway},
		{"with tls.ca", fmt.Sprintf(", ca: %q", caFile), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, fmt.Sprintf("port: 8443\ntls: {cert: %q, key: %q%s}\nproxy: %q\n", cert, key, tc.tlsExt, up.URL))
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: siteCA.Pool()}}}
			t.Cleanup(client.CloseIdleConnections)
			base := "https://" + srv.HostPort(8443)
			requests := map[string]func() (*http.Response, error){
				"GET (hot path)": func() (*http.Response, error) { return client.Get(base + "/x") },
				"chunked POST (Transport)": func() (*http.Response, error) {
					return client.Post(base+"/x", "text/plain", io.MultiReader(strings.NewReader("abc"), strings.NewReader("def")))
				},
			}
			for what, do := range requests {
				resp, err := do()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("%s: %d %q, want %d", what, resp.StatusCode, body, tc.want)
				}
				if tc.want == http.StatusOK && what == "chunked POST (Transport)" && string(body) != "POST 6" {
					t.Errorf("%s: body %q, want the upstream's %q", what, body, "POST 6")
				}
			}
		})
	}
}

// TestTLSCAValidation: a tls.ca that cannot be read or holds no certificate is an error at
// its exact path.
func TestTLSCAValidation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "Site CA")
	cert, key := ca.Server(t, "localhost").Write(t, dir, "site")
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := ca.WriteCA(t, dir, "good")
	for _, tc := range []struct {
		ca, want string
	}{
		{"/nonexistent/ca-bundle.pem", "error at sites[1].tls.ca: read CA bundle: open /nonexistent/ca-bundle.pem"},
		{empty, "error at sites[1].tls.ca: CA bundle " + empty + " holds no PEM certificate"},
		{good, ""},
	} {
		src := fmt.Sprintf("sites:\n  - port: 8080\n  - port: 8443\n    tls: {cert: %q, key: %q, ca: %q}\n", cert, key, tc.ca)
		_, d, err := servertest.Build(src, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if e := d.Err(); e != nil {
			got = e.Error()
		}
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("tls.ca %s:\n got %q\nwant %q", tc.ca, got, tc.want)
		}
	}
}
