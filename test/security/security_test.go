// Package security_test is the security regression suite: every reproduction of an identity
// bypass (Host, path, Connection tokens) as a table-driven case through a real Conduit and a
// real upstream that echoes exactly what it received. The configs are in
// testdata/security; docs/security.md states the rules the cases hold Conduit to.
package security_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/bundle/standard"
)

// seen is what the echo upstream received for one request.
type seen struct {
	Target  string      `json:"target"` // the request-target exactly as received
	Host    string      `json:"host"`
	Header  http.Header `json:"header"`
	Trailer http.Header `json:"trailer,omitempty"`
}

// echo is an upstream that answers every request with what it received (as JSON) and keeps
// a log of it. Its answers are cacheable for a minute.
type echo struct {
	*httptest.Server
	mu  sync.Mutex
	log []seen
}

func newEcho(t testing.TB) *echo {
	t.Helper()
	e := &echo{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // trailers arrive with the end of the body
		s := seen{Target: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Trailer: r.Trailer.Clone()}
		e.mu.Lock()
		e.log = append(e.log, s)
		e.mu.Unlock()
		b, _ := json.Marshal(s)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = w.Write(b)
	}))
	t.Cleanup(e.Close)
	return e
}

// since returns the requests the upstream received after the first mark ones.
func (e *echo) since(mark int) []seen {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]seen(nil), e.log[mark:]...)
}

func (e *echo) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.log)
}

// request is one raw HTTP/1.1 request sent by a case.
type request struct {
	method string // GET when empty
	target string
	host   string
	header []string // "Name: value" lines
	body   string   // sent as is after the header section (chunked framing included)
}

// answer is what the client got back.
type answer struct {
	status int
	header http.Header
	body   string
}

// send writes req on a fresh connection to addr exactly as spelled and reads the answer.
func send(t *testing.T, addr string, req request) answer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, req.target, req.host)
	for _, h := range req.header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.WriteString(req.body)
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", req.host, req.target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// step is one request of a case and what must hold for it.
type step struct {
	req    request
	status int // expected status
	// upstream, when set, is the request-target the upstream must have received for this
	// request ("" with status 200 means: served from the cache or locally, the upstream saw
	// nothing); upstreamHost likewise for Host.
	upstream     string
	upstreamHost string
	// upstreamHeader are "Name: value" pairs the upstream must have received.
	upstreamHeader []string
	// upstreamLacks are header (or trailer) names the upstream must not have received.
	upstreamLacks []string
	// upstreamLacksValue are strings no upstream header or trailer value may contain.
	upstreamLacksValue []string
	// answerHeader are "Name: value" pairs the answer must carry.
	answerHeader []string
	// bodyLacks must not appear in the answer (a victim's cookie, another host's page).
	bodyLacks []string
	// cached: the answer must (true) or must not (false) come from the cache; nil: either.
	cached *bool
}

var (
	yes = new(bool)
	no  = new(bool)
)

func init() { *yes = true }

// secCase is a config from testdata/security and the steps run against it in order.
type secCase struct {
	name   string
	config string // file in testdata/security; UPSTREAM is replaced by the echo's address
	steps  []step
}

func loadConfig(t testing.TB, name, upstream string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "security", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "UPSTREAM", upstream)
}

func TestSecurityRegressions(t *testing.T) {
	for _, c := range securityCases {
		t.Run(c.name, func(t *testing.T) {
			up := newEcho(t)
			srv := servertest.Start(t, loadConfig(t, c.config, strings.TrimPrefix(up.URL, "http://")))
			addr := srv.HostPort(8080)
			for i, s := range c.steps {
				mark := up.count()
				a := send(t, addr, s.req)
				where := fmt.Sprintf("step %d (Host %q, %s)", i, s.req.host, s.req.target)
				if a.status != s.status {
					t.Fatalf("%s: status %d, want %d; body %q", where, a.status, s.status, a.body)
				}
				got := up.since(mark)
				if s.upstream != "" {
					if len(got) != 1 {
						t.Fatalf("%s: upstream got %d requests, want 1", where, len(got))
					}
					if got[0].Target != s.upstream {
						t.Errorf("%s: upstream request-target %q, want %q", where, got[0].Target, s.upstream)
					}
					if s.upstreamHost != "" && got[0].Host != s.upstreamHost {
						t.Errorf("%s: upstream Host %q, want %q", where, got[0].Host, s.upstreamHost)
					}
					for _, name := range s.upstreamLacks {
						if g := append(got[0].Header.Values(name), got[0].Trailer.Values(name)...); len(g) > 0 {
							t.Errorf("%s: upstream received %s: %q", where, name, g)
						}
					}
					for _, bad := range s.upstreamLacksValue {
						for _, h := range []http.Header{got[0].Header, got[0].Trailer} {
							for name, vv := range h {
								for _, v := range vv {
									if strings.Contains(v, bad) {
										t.Errorf("%s: upstream %s = %q contains %q", where, name, v, bad)
									}
								}
							}
						}
					}
					for _, hv := range s.upstreamHeader {
						name, val, _ := strings.Cut(hv, ": ")
						if g := got[0].Header.Values(name); len(g) != 1 || g[0] != val {
							t.Errorf("%s: upstream %s = %q, want [%q]", where, name, g, val)
						}
					}
				} else if s.status != http.StatusOK && len(got) != 0 {
					t.Errorf("%s: refused request reached the upstream as %q", where, got[0].Target)
				}
				for _, hv := range s.answerHeader {
					name, val, _ := strings.Cut(hv, ": ")
					if g := a.header.Get(name); g != val {
						t.Errorf("%s: answer %s = %q, want %q", where, name, g, val)
					}
				}
				for _, bad := range s.bodyLacks {
					if strings.Contains(a.body, bad) {
						t.Errorf("%s: answer contains %q: %s", where, bad, a.body)
					}
				}
				if s.cached != nil {
					hit := a.header.Get("X-Cache") == "HIT"
					if hit != *s.cached {
						t.Errorf("%s: X-Cache %q, want hit=%v", where, a.header.Get("X-Cache"), *s.cached)
					}
				}
			}
		})
	}
}

var securityCases = []secCase{
	{
		name:   "cache key and upstream Host agree on the port",
		config: "cache-host.yaml",
		steps: []step{
			{req: request{target: "/", host: "shop.test:666"}, status: 200, upstream: "/", upstreamHost: "shop.test:666", cached: no},
			// A different authority is a different cache entry: never the :666 answer.
			{req: request{target: "/", host: "shop.test"}, status: 200, upstream: "/", upstreamHost: "shop.test", cached: no, bodyLacks: []string{":666"}},
			// The trailing dot, upper case and the default port are the same authority.
			{req: request{target: "/", host: "SHOP.test."}, status: 200, cached: yes, bodyLacks: []string{":666", "SHOP", "test."}},
			{req: request{target: "/", host: "shop.test:80"}, status: 200, cached: yes, bodyLacks: []string{":666", ":80"}},
		},
	},
	{
		name:   "trailing dot and case select the same site",
		config: "sites-auth.yaml",
		steps: []step{
			{req: request{target: "/", host: "admin.test"}, status: 401},
			{req: request{target: "/", host: "admin.test."}, status: 401},
			{req: request{target: "/", host: "ADMIN.TEST."}, status: 401},
			{req: request{target: "/", host: "Admin.Test:8080"}, status: 401},
			{req: request{target: "/", host: "admin.test.."}, status: 400},
			{req: request{target: "/", host: "admin.test", header: []string{"X-API-Key: admin-key-0123456789abcdef"}},
				status: 200, upstream: "/", upstreamHost: "admin.test"},
			{req: request{target: "/", host: "ADMIN.TEST.", header: []string{"X-API-Key: admin-key-0123456789abcdef"}},
				status: 200, upstream: "/", upstreamHost: "admin.test"},
			{req: request{target: "/", host: "other.test"}, status: 200, upstream: "/", upstreamHost: "other.test"},
		},
	},
	{
		name:   "web cache deception through non-canonical paths",
		config: "cache-deception.yaml",
		steps: []step{
			{req: request{target: "/api//user/me", host: "shop.test", header: []string{"Cookie: session=victim"}},
				status: 200, upstream: "/api/user/me"},
			{req: request{target: "/api//user/me", host: "shop.test"}, status: 200, upstream: "/api/user/me", bodyLacks: []string{"victim"}, cached: no},
			{req: request{target: "/api/./user/me", host: "shop.test", header: []string{"Cookie: session=victim"}},
				status: 200, upstream: "/api/user/me"},
			{req: request{target: "/api/./user/me", host: "shop.test"}, status: 200, upstream: "/api/user/me", bodyLacks: []string{"victim"}, cached: no},
			{req: request{target: "/api/x/../user/me", host: "shop.test", header: []string{"Cookie: session=victim"}},
				status: 200, upstream: "/api/user/me"},
			{req: request{target: "/api/x/../user/me", host: "shop.test"}, status: 200, upstream: "/api/user/me", bodyLacks: []string{"victim"}, cached: no},
			{req: request{target: "/api/%75ser/me", host: "shop.test"}, status: 200, upstream: "/api/user/me", cached: no},
			// Cacheable paths still cache, under their canonical form.
			{req: request{target: "/api/items", host: "shop.test"}, status: 200, upstream: "/api/items", cached: no},
			{req: request{target: "/api/./items", host: "shop.test"}, status: 200, cached: yes},
			{req: request{target: "/api//%69tems", host: "shop.test"}, status: 200, cached: yes},
		},
	},
	{
		name:   "dot-segments never reach the upstream",
		config: "dot-segments.yaml",
		steps: []step{
			{req: request{target: "/pub/file.txt", host: "files.test"}, status: 200, upstream: "/public/file.txt"},
			{req: request{target: "/pub/a/../file.txt", host: "files.test"}, status: 200, upstream: "/public/file.txt"},
			// Resolved before routing: /admin/secret.txt has no route here.
			{req: request{target: "/pub/../admin/secret.txt", host: "files.test"}, status: 404},
			{req: request{target: "/pub/%2e%2e/admin/secret.txt", host: "files.test"}, status: 404},
			{req: request{target: "/pub/%2E%2e/admin/secret.txt", host: "files.test"}, status: 404},
			{req: request{target: "/pub/..%2fadmin/secret.txt", host: "files.test"}, status: 400},
			{req: request{target: "/pub/..%5cadmin/secret.txt", host: "files.test"}, status: 400},
			{req: request{target: "/pub/..\\admin/secret.txt", host: "files.test"}, status: 400},
			{req: request{target: "/pub/..;/admin/secret.txt", host: "files.test"}, status: 400},
			{req: request{target: "/pub/.;x/admin", host: "files.test"}, status: 400},
			{req: request{target: "/pub/%252e%252e/admin/secret.txt", host: "files.test"}, status: 400},
			// the same with the hex digits after %25 escaped too: once decoded still "%2E%2E"
			{req: request{target: "/pub/%252%45%252%45/admin/secret.txt", host: "files.test"}, status: 400},
			{req: request{target: "/open/%25%32%65%25%32%65/guarded/x", host: "auth.test"}, status: 400},
			{req: request{target: "/pub/%00/x", host: "files.test"}, status: 400},
			// skipPaths of forwardAuth and a consumer's allowedPaths see the canonical path.
			{req: request{target: "/open/../guarded/x", host: "auth.test"}, status: 401},
			{req: request{target: "/open/%2e%2e/guarded/x", host: "auth.test"}, status: 401},
			{req: request{target: "/open/x", host: "auth.test"}, status: 200, upstream: "/open/x"},
			{req: request{target: "/reports/../billing/x", host: "acl.test", header: []string{"X-API-Key: reports-key-0123456789abcdef"}}, status: 403},
			{req: request{target: "/reports/./q", host: "acl.test", header: []string{"X-API-Key: reports-key-0123456789abcdef"}},
				status: 200, upstream: "/reports/q", upstreamHeader: []string{"X-Consumer-Id: reports"}},
		},
	},
	{
		name:   "rate limit skipPaths see the canonical path",
		config: "ratelimit-skip.yaml",
		steps: []step{
			{req: request{target: "/public/../admin", host: "api.test"}, status: 200, upstream: "/admin"},
			{req: request{target: "/public/../admin", host: "api.test"}, status: 429},
			{req: request{target: "/public/%2e%2e/admin", host: "api.test"}, status: 429},
			{req: request{target: "/public//x", host: "api.test"}, status: 200, upstream: "/public/x"},
			{req: request{target: "/public/x", host: "api.test"}, status: 200, upstream: "/public/x"},
		},
	},
	{
		name:   "Connection cannot strip headers the gateway injects",
		config: "connection-tokens.yaml",
		steps: []step{
			{req: request{target: "/x", host: "api.test", header: []string{"X-API-Key: alice-key-0123456789abcdef", "Connection: X-Consumer-ID, X-Tier"}},
				status: 200, upstream: "/x", upstreamHeader: []string{"X-Consumer-Id: alice", "X-Tier: gold"}},
			{req: request{target: "/x", host: "api.test", header: []string{"X-API-Key: alice-key-0123456789abcdef", "Connection: keep-alive, x-consumer-id", "X-Consumer-ID: mallory"}},
				status: 200, upstream: "/x", upstreamHeader: []string{"X-Consumer-Id: alice"}},
			// A client's own hop-by-hop header still goes.
			{req: request{target: "/x", host: "api.test", header: []string{"X-API-Key: alice-key-0123456789abcdef", "Connection: X-Private", "X-Private: 1"}},
				status: 200, upstream: "/x", upstreamLacks: []string{"X-Private"}},
			{req: request{target: "/x", host: "api.test", header: []string{"X-API-Key: alice-key-0123456789abcdef", "Connection: X-Forwarded-For"}},
				status: 400},
		},
	},
	{
		name:   "forwarding and identity headers cannot be spelled by the client",
		config: "forwarding.yaml",
		steps: []step{
			// Trailers named like identity or forwarding headers never reach the upstream.
			{req: request{method: "POST", target: "/x", host: "api.test",
				header: []string{"X-API-Key: alice-key-0123456789abcdef", "Transfer-Encoding: chunked", "Trailer: X-Consumer-Id, X-Forwarded-For"},
				body:   "3\r\nabc\r\n0\r\nX-Consumer-Id: mallory\r\nX-Forwarded-For: 6.6.6.6\r\nX-Client-Cert-Subject: CN=mallory\r\n\r\n"},
				status: 200, upstream: "/x", upstreamHeader: []string{"X-Consumer-Id: alice"},
				upstreamLacksValue: []string{"mallory", "6.6.6.6"}},
			// Forwarded and X-Real-IP from an untrusted client are replaced, not passed on.
			{req: request{target: "/x", host: "api.test", header: []string{"X-API-Key: alice-key-0123456789abcdef", "Forwarded: for=6.6.6.6", "X-Real-IP: 6.6.6.6"}},
				status: 200, upstream: "/x", upstreamHeader: []string{"X-Real-Ip: 127.0.0.1"}, upstreamLacksValue: []string{"6.6.6.6"}},
			// Only a WebSocket upgrade is ever forwarded; h2c is dropped and proxied plainly.
			{req: request{target: "/x", host: "api.test", header: []string{"X-API-Key: alice-key-0123456789abcdef", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"}},
				status: 200, upstream: "/x", upstreamLacks: []string{"Upgrade", "Http2-Settings"}},
			// A redirect template starting with one "/" never yields a scheme-relative Location.
			{req: request{target: "/old//evil.example", host: "api.test", header: []string{"X-API-Key: alice-key-0123456789abcdef"}},
				status: 301, answerHeader: []string{"Location: /evil.example"}},
			{req: request{target: "/old/%2F%2Fevil.example", host: "api.test", header: []string{"X-API-Key: alice-key-0123456789abcdef"}}, status: 400},
		},
	},
}
