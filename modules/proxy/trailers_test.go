package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/auth/consumers"
	_ "github.com/conduitproxy/conduit/modules/auth/forwardauth"
)

// trailerUpstream is a real upstream that answers with the request trailers it received
// (as JSON) and sends the response trailers it is given.
func trailerUpstream(t *testing.T, respTrailers map[string]string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // trailers arrive after the body
		for k := range respTrailers {
			w.Header().Add("Trailer", k)
		}
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(r.Trailer)
		for k, v := range respTrailers {
			w.Header().Set(k, v)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// trailerCase is one request trailer name and whether the upstream may receive it.
type trailerCase struct {
	name    string
	forward bool
	// h1Refused: the HTTP/1.1 framing guard already refuses the name in a trailer section
	// (core/h1guard), so it is only sent over HTTP/2.
	h1Refused bool
	// h2Refused: net/http's HTTP/2 server refuses the name in a trailer section
	// (httpguts.ValidTrailerHeader: a stream error), so it is only sent over HTTP/1.1.
	h2Refused bool
	// undeclared: sent without being named in the Trailer header (HTTP/1.1 only; HTTP/2
	// servers drop undeclared trailers themselves).
	undeclared bool
}

var trailerCases = []trailerCase{
	{name: "X-Checksum", forward: true},
	{name: "X-Undeclared-Ok", forward: true, undeclared: true},
	{name: "X-Who"},       // consumers.idHeader
	{name: "X-Tier"},      // a consumer's injected header
	{name: "X-Auth-User"}, // forwardAuth.responseHeaders
	{name: "X-Consumer-Id"},
	{name: "X-Client-Cert-Subject"},
	{name: "X-Client-Cert-Fingerprint"},
	{name: "X-Forwarded-For"},
	{name: "X-Forwarded-Host"},
	{name: "X-Forwarded-Proto"},
	{name: "X-Forwarded-Uri"},
	{name: "Forwarded"},
	{name: "X-Real-Ip"},
	{name: "Via"},
	{name: "X-Request-Id"},
	{name: "X-Added"},     // requestTransform sets it
	{name: "X-Nominated"}, // named in the client's Connection header
	{name: "X-Tier-Undeclared", forward: true, undeclared: true},
	{name: "Upgrade", h1Refused: true},
	{name: "Http2-Settings"},
	{name: "Proxy-Connection", h1Refused: true, h2Refused: true},
}

const trailerConfig = `
port: 8080
http2: { h2c: true }
consumers:
  idHeader: X-Who
  consumers:
    - { username: alice, apiKey: alice-key-123456, headers: { X-Tier: gold } }
forwardAuth: { url: %q, responseHeaders: [X-Auth-User] }
requestTransform:
  setHeaders: { X-Added: "yes" }
proxy: %q
`

// approveAll is a real forwardAuth service that approves every request as "alice".
func approveAll(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Auth-User", "alice")
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// TestRequestTrailersCannotCarryIdentityOrForwardingHeaders sends a chunked HTTP/1.1
// request whose trailers spell identity, forwarding and hop-by-hop header names (declared in
// Trailer and undeclared) and checks what a real upstream received, and which response
// trailers reach the client.
func TestRequestTrailersCannotCarryIdentityOrForwardingHeaders(t *testing.T) {
	up := trailerUpstream(t, map[string]string{"X-Checksum": "abc", "Upgrade": "h2c"})
	srv := servertest.Start(t, fmt.Sprintf(trailerConfig, approveAll(t), up.URL))
	var declared []string
	var trailers strings.Builder
	for _, c := range trailerCases {
		if c.h1Refused {
			continue
		}
		if !c.undeclared {
			declared = append(declared, c.name)
		}
		fmt.Fprintf(&trailers, "%s: from-client\r\n", c.name)
	}
	conn, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /t HTTP/1.1\r\nHost: x\r\nX-Api-Key: alice-key-123456\r\nConnection: X-Nominated\r\n"+
		"Transfer-Encoding: chunked\r\nTrailer: %s\r\n\r\n4\r\nbody\r\n0\r\n%s\r\n",
		strings.Join(declared, ", "), trailers.String())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := decodeTrailers(t, resp)
	for _, c := range trailerCases {
		if c.h1Refused {
			continue
		}
		if _, present := got[c.name]; present != c.forward {
			t.Errorf("HTTP/1.1: request trailer %s reached the upstream: %v, want %v (upstream saw %v)", c.name, present, c.forward, keys(got))
		}
	}
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("response trailer X-Checksum = %q, want abc", resp.Trailer.Get("X-Checksum"))
	}
	if v := resp.Trailer.Get("Upgrade"); v != "" {
		t.Errorf("hop-by-hop response trailer Upgrade reached the client: %q", v)
	}
}

// TestRequestTrailersOverHTTP2AreFiltered is the same over h2c, where no framing guard
// refuses hop-by-hop or routing names in a trailer section.
func TestRequestTrailersOverHTTP2AreFiltered(t *testing.T) {
	up := trailerUpstream(t, nil)
	srv := servertest.Start(t, fmt.Sprintf(trailerConfig, approveAll(t), up.URL))
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL(8080)+"/t", io.NopCloser(strings.NewReader("body")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("X-Api-Key", "alice-key-123456")
	req.Trailer = http.Header{}
	for _, c := range trailerCases {
		if !c.undeclared && !c.h2Refused {
			req.Trailer[c.name] = []string{"from-client"}
		}
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("client spoke %s, want HTTP/2", resp.Proto)
	}
	got := decodeTrailers(t, resp)
	for _, c := range trailerCases {
		if c.undeclared || c.h2Refused || c.name == "X-Nominated" {
			continue // HTTP/2 has neither undeclared trailers nor Connection
		}
		if _, present := got[c.name]; present != c.forward {
			t.Errorf("HTTP/2: request trailer %s reached the upstream: %v, want %v (upstream saw %v)", c.name, present, c.forward, keys(got))
		}
	}
}

func decodeTrailers(t *testing.T, resp *http.Response) http.Header {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v: %s", resp.StatusCode, err, b)
	}
	var got http.Header
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("upstream answer %q: %v", b, err)
	}
	return got
}

func keys(h http.Header) []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
