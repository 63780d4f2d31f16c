package extauthz_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/stats"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
	_ "github.com/conduitproxy/conduit/modules/extauthz"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// authServer is a real gRPC authorization server (envoy.service.auth.v3.Authorization) on
// 127.0.0.1: decide answers each CheckRequest; every request it got is recorded.
type authServer struct {
	authv3.UnimplementedAuthorizationServer
	addr   string
	decide func(*authv3.CheckRequest) (*authv3.CheckResponse, error)
	calls  atomic.Int64
	mu     sync.Mutex
	last   *authv3.CheckRequest
}

func (a *authServer) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	a.calls.Add(1)
	a.mu.Lock()
	a.last = proto.Clone(req).(*authv3.CheckRequest)
	a.mu.Unlock()
	return a.decide(req)
}

func (a *authServer) lastRequest(t *testing.T) *authv3.CheckRequest {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		t.Fatal("the authorization server got no CheckRequest")
	}
	return a.last
}

func startAuth(t *testing.T, decide func(*authv3.CheckRequest) (*authv3.CheckResponse, error), opts ...grpc.ServerOption) *authServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &authServer{addr: l.Addr().String(), decide: decide}
	s := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(s, a)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return a
}

// allowAll answers OK with no mutation.
func allowAll(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}}, nil
}

// policy allows "Bearer good" (with mutations), denies the rest with a custom reply.
func policy(req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	if h["authorization"] != "Bearer good" {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.PermissionDenied)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
				Headers: []*corev3.HeaderValueOption{
					hv("WWW-Authenticate", `Bearer realm="corp"`, nil),
					hv("x-deny-reason", "no token", nil),
				},
				Body: "go away",
			}},
		}, nil
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				hv("x-user-id", "alice", nil),                                                // overwrites the client's copy
				hv("x-scope", "write", wrapperspb.Bool(true)),                                // appended
				hv("x-tenant", "ignored", nil, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS), // absent: no-op
				hv("x-added", "new", nil, corev3.HeaderValueOption_ADD_IF_ABSENT),
				hv("x-forwarded-for", "6.6.6.6", nil), // the proxy's own header: ignored
			},
			HeadersToRemove:         []string{"authorization", ":path", "host"},
			ResponseHeadersToAdd:    []*corev3.HeaderValueOption{hv("x-authz", "checked", nil)},
			QueryParametersToSet:    []*corev3.QueryParameter{{Key: "user", Value: "alice smith"}},
			QueryParametersToRemove: []string{"token"},
		}},
	}, nil
}

func hv(k, v string, app *wrapperspb.BoolValue, act ...corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: app}
	if len(act) > 0 {
		o.AppendAction = act[0]
	}
	return o
}

// upstream is a real HTTP server recording what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	header http.Header
	uri    string
	body   string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{header: r.Header.Clone(), uri: r.RequestURI, body: string(b)})
		u.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func (u *upstream) last(t *testing.T) seenRequest {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("nothing reached the upstream")
	}
	return u.seen[len(u.seen)-1]
}

func TestAllowAppliesMutations(t *testing.T) {
	auth := startAuth(t, policy)
	up := newUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q }\nproxy: %q\n", auth.addr, up.URL))
	r := servertest.Get(t, srv.URL(8080)+"/api/orders?token=secret&keep=1&user=mallory",
		"Authorization", "Bearer good", "X-User-Id", "admin", "X-Scope", "read")
	if r.Status != 200 || r.Body != "ok" {
		t.Fatalf("status %d %q", r.Status, r.Body)
	}
	if r.Header.Get("X-Authz") != "checked" {
		t.Errorf("response_headers_to_add did not reach the client: %v", r.Header)
	}
	got := up.last(t)
	for name, want := range map[string]string{
		"X-User-Id": "alice", "X-Scope": "read,write", "X-Added": "new", "Authorization": "", "X-Tenant": "",
		"X-Forwarded-For": "127.0.0.1",
	} {
		if v := strings.Join(got.header.Values(name), ","); v != want {
			t.Errorf("upstream %s = %q, want %q", name, v, want)
		}
	}
	if got.uri != "/api/orders?keep=1&user=alice+smith" {
		t.Errorf("upstream request-target %q", got.uri)
	}
}

func TestDenyRelaysTheServicesReply(t *testing.T) {
	auth := startAuth(t, policy)
	up := newUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q }\nproxy: %q\n", auth.addr, up.URL))
	r := servertest.Get(t, srv.URL(8080)+"/api", "Authorization", "Bearer bad")
	if r.Status != 401 || r.Body != "go away" || r.Header.Get("Www-Authenticate") != `Bearer realm="corp"` ||
		r.Header.Get("X-Deny-Reason") != "no token" {
		t.Fatalf("denial: %d %q %v", r.Status, r.Body, r.Header)
	}
	r = servertest.Do(t, http.MethodHead, srv.URL(8080)+"/api")
	if r.Status != 401 || r.Body != "" {
		t.Fatalf("HEAD denial: %d %q", r.Status, r.Body)
	}
	if up.count() != 0 {
		t.Fatal("a denied request reached the upstream")
	}
	// A denial without a denied_response is 403, as in Envoy.
	bare := startAuth(t, func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}}, nil
	})
	srv2 := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q }\nproxy: %q\n", bare.addr, up.URL))
	if r := servertest.Get(t, srv2.URL(8080)+"/x"); r.Status != 403 {
		t.Fatalf("bare denial: %d", r.Status)
	}
	if up.count() != 0 {
		t.Fatal("a denied request reached the upstream")
	}
}

// rawGet sends a request-target and Host exactly as given, bypassing Go's client.
func rawGet(t *testing.T, addr, target, host string, extra ...string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + strings.Join(extra, "") + "Connection: close\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestCheckRequestCarriesTheCanonicalIdentity(t *testing.T) {
	auth := startAuth(t, allowAll)
	up := newUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
extAuthz:
  grpc: %q
  contextExtensions: { tier: gold }
  metadata: { acme: { team: payments, level: 3 } }
proxy: %q
`, auth.addr, up.URL))
	code := rawGet(t, srv.HostPort(8080), "/pub/%2e%2e/Admin//x?q=%41", "API.Example.:80",
		"X-Mixed-Case: v1\r\n", "X-Mixed-Case: v2\r\n", "X-Request-ID: req-123\r\n", "X-Bin: a\xffb\r\n")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	req := auth.lastRequest(t)
	a := req.GetAttributes()
	h := a.GetRequest().GetHttp()
	checks := []struct{ what, got, want string }{
		{"path", h.GetPath(), "/Admin/x?q=%41"},
		{"host", h.GetHost(), "api.example"},
		{"method", h.GetMethod(), "GET"},
		{"scheme", h.GetScheme(), "http"},
		{"protocol", h.GetProtocol(), "HTTP/1.1"},
		{"id", h.GetId(), "req-123"},
		{":authority", h.GetHeaders()[":authority"], "api.example"},
		{":path", h.GetHeaders()[":path"], "/Admin/x?q=%41"},
		{":method", h.GetHeaders()[":method"], "GET"},
		{"x-mixed-case", h.GetHeaders()["x-mixed-case"], "v1,v2"},
		{"x-bin (invalid UTF-8 replaced)", h.GetHeaders()["x-bin"], "a!b"},
		{"source ip", a.GetSource().GetAddress().GetSocketAddress().GetAddress(), "127.0.0.1"},
		{"destination ip", a.GetDestination().GetAddress().GetSocketAddress().GetAddress(), "127.0.0.1"},
		{"context extension", a.GetContextExtensions()["tier"], "gold"},
		{"metadata", a.GetMetadataContext().GetFilterMetadata()["acme"].GetFields()["team"].GetStringValue(), "payments"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	for k := range h.GetHeaders() {
		if k != strings.ToLower(k) {
			t.Errorf("header name %q is not lower-cased", k)
		}
	}
	if _, ok := h.GetHeaders()["host"]; ok {
		t.Error("Host is sent as a header instead of :authority")
	}
	if a.GetSource().GetAddress().GetSocketAddress().GetPortValue() == 0 {
		t.Error("source port missing")
	}
	if p := a.GetDestination().GetAddress().GetSocketAddress().GetPortValue(); fmt.Sprint(p) != strings.Split(srv.HostPort(8080), ":")[1] {
		t.Errorf("destination port %d, want the listener's %s", p, srv.HostPort(8080))
	}
	if a.GetMetadataContext().GetFilterMetadata()["acme"].GetFields()["level"].GetNumberValue() != 3 {
		t.Error("numeric metadata lost")
	}
	if a.GetRequest().GetTime().AsTime().IsZero() {
		t.Error("request time missing")
	}
	if up.last(t).uri != "/Admin/x?q=%41" {
		t.Errorf("upstream got %q", up.last(t).uri)
	}
}

func TestFailureModes(t *testing.T) {
	up := newUpstream(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := startAuth(t, func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return allowAll(nil)
	})
	failing := startAuth(t, func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return nil, grpcstatus.Error(codes.Internal, "policy engine crashed")
	})
	errorReply := startAuth(t, func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.Unavailable)},
			HttpResponse: &authv3.CheckResponse_ErrorResponse{ErrorResponse: &authv3.DeniedHttpResponse{
				Headers: []*corev3.HeaderValueOption{hv("Retry-After", "7", nil)}, Body: "try later",
			}},
		}, nil
	})
	badMutation := startAuth(t, func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{hv("x-user", "a\r\nx-admin: true", nil)},
			}},
		}, nil
	})
	for _, tc := range []struct {
		name, target, extra string
		status              int
		body                string
		allowedHeader       bool
	}{
		{"down", down, "", 403, "", false},
		{"down statusOnError", down, "statusOnError: 503", 503, "", false},
		{"timeout", slow.addr, "timeoutMs: 50", 403, "", false},
		{"rpc error", failing.addr, "", 403, "", false},
		{"error_response", errorReply.addr, "", 403, "try later", false},
		{"error_response statusOnError", errorReply.addr, "statusOnError: 503", 503, "try later", false},
		{"unsendable mutation", badMutation.addr, "", 403, "", false},
		{"down, failureModeAllow", down, "failureModeAllow: true", 200, "ok", false},
		{"timeout, failureModeAllow + header", slow.addr, "timeoutMs: 50\n  failureModeAllow: true\n  failureModeAllowHeaderAdd: true", 200, "ok", true},
		{"error_response, failureModeAllow", errorReply.addr, "failureModeAllow: true", 200, "ok", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.count()
			srv := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz:\n  grpc: %q\n  %s\nproxy: %q\n", tc.target, tc.extra, up.URL))
			start := time.Now()
			r := servertest.Get(t, srv.URL(8080)+"/api", "X-Envoy-Auth-Failure-Mode-Allowed", "forged")
			if r.Status != tc.status || r.Body != tc.body {
				t.Fatalf("got %d %q, want %d %q", r.Status, r.Body, tc.status, tc.body)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatalf("took %v: the deadline did not bound the check", time.Since(start))
			}
			passed := up.count() - before
			if (tc.status == 200) != (passed == 1) {
				t.Fatalf("%d requests reached the upstream", passed)
			}
			if passed == 1 {
				got := up.last(t).header.Values("X-Envoy-Auth-Failure-Mode-Allowed")
				if tc.allowedHeader && (len(got) != 1 || got[0] != "true") {
					t.Fatalf("failure-mode header upstream = %q", got)
				}
			}
			if strings.Contains(tc.name, "error_response") && tc.status != 200 && r.Header.Get("Retry-After") != "7" {
				t.Fatalf("error_response headers lost: %v", r.Header)
			}
		})
	}
}

func TestRequestBody(t *testing.T) {
	auth := startAuth(t, allowAll)
	up := newUpstream(t)
	post := func(t *testing.T, url, body string, chunked bool) (int, string) {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(strings.NewReader(body)) // unknown length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, url, rd)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, cfg, body  string
		chunked          bool
		status           int
		sent, partialHdr string
		raw              bool
	}{
		{"whole", "{ maxBytes: 8 }", "hello", false, 200, "hello", "false", false},
		{"exactly max", "{ maxBytes: 5 }", "hello", true, 200, "hello", "false", false},
		{"partial", "{ maxBytes: 8, allowPartial: true }", "0123456789abcdef", false, 200, "01234567", "true", false},
		{"partial chunked", "{ maxBytes: 8, allowPartial: true }", "0123456789abcdef", true, 200, "01234567", "true", false},
		{"too large", "{ maxBytes: 8 }", "0123456789abcdef", false, 413, "", "", false},
		{"too large chunked", "{ maxBytes: 8 }", "0123456789abcdef", true, 413, "", "", false},
		{"bytes", "{ maxBytes: 64, packAsBytes: true }", "bin\xff\x00ary", false, 200, "bin\xff\x00ary", "false", true},
		{"invalid UTF-8 as text", "{ maxBytes: 64 }", "bin\xffary", false, 200, "bin!ary", "false", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, calls := up.count(), auth.calls.Load()
			srv := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q, withRequestBody: %s }\nproxy: %q\n", auth.addr, tc.cfg, up.URL))
			status, _ := post(t, srv.URL(8080)+"/upload", tc.body, tc.chunked)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if tc.status != 200 {
				if up.count() != before || auth.calls.Load() != calls {
					t.Fatal("a refused body reached the upstream or the service")
				}
				return
			}
			h := auth.lastRequest(t).GetAttributes().GetRequest().GetHttp()
			got := h.GetBody()
			if tc.raw {
				got = string(h.GetRawBody())
				if h.GetBody() != "" {
					t.Error("packAsBytes also filled body")
				}
			}
			if got != tc.sent || h.GetHeaders()["x-envoy-auth-partial-body"] != tc.partialHdr {
				t.Fatalf("service got body %q partial %q, want %q %q", got, h.GetHeaders()["x-envoy-auth-partial-body"], tc.sent, tc.partialHdr)
			}
			if b := up.last(t).body; b != tc.body {
				t.Fatalf("upstream got body %q, want the whole %q", b, tc.body)
			}
		})
	}
}

func TestSkipPathsAndRouteLevel(t *testing.T) {
	auth := startAuth(t, policy)
	up := newUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
extAuthz: { grpc: %q, skipPaths: [/public/**] }
proxy: %q
`, auth.addr, up.URL))
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/public/logo.png", 200},
		{"/public", 200},
		{"/public/../private", 401},
		{"/publicity", 401},
	} {
		calls := auth.calls.Load()
		code := rawGet(t, srv.HostPort(8080), tc.path, "localhost")
		if code != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, code, tc.status)
		}
		if checked := auth.calls.Load() != calls; checked != (tc.status != 200) {
			t.Errorf("%s: checked=%v", tc.path, checked)
		}
	}

	srv2 := servertest.Start(t, fmt.Sprintf(`
port: 8080
proxy:
  /api: { targets: [%q], extAuthz: { grpc: %q, contextExtensions: { route: api } } }
  /open: %q
`, up.URL, auth.addr, up.URL))
	if r := servertest.Get(t, srv2.URL(8080)+"/open/x"); r.Status != 200 {
		t.Fatalf("/open: %d", r.Status)
	}
	if r := servertest.Get(t, srv2.URL(8080)+"/api/x"); r.Status != 401 {
		t.Fatalf("/api without a token: %d", r.Status)
	}
	if r := servertest.Get(t, srv2.URL(8080)+"/api/x", "Authorization", "Bearer good"); r.Status != 200 || r.Header.Get("X-Authz") != "checked" {
		t.Fatalf("/api with a token: %d %v", r.Status, r.Header)
	}
	if got := auth.lastRequest(t).GetAttributes().GetContextExtensions()["route"]; got != "api" {
		t.Fatalf("route context extension %q", got)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"missing grpc", `extAuthz: {}`, "error at extAuthz.grpc: is required"},
		{"url", `extAuthz: { grpc: "http://auth:9191" }`, "error at extAuthz.grpc: must be host:port or dns:///host:port"},
		{"no port", `extAuthz: { grpc: "auth" }`, "error at extAuthz.grpc: must be host:port"},
		{"admin", `extAuthz: { grpc: "127.0.0.1:2019" }`, "error at extAuthz.grpc: points at the Admin API"},
		{"timeout 0", `extAuthz: { grpc: "auth:9191", timeoutMs: 0 }`, "error at extAuthz.timeoutMs: must be ≥ 1"},
		{"status 200", `extAuthz: { grpc: "auth:9191", statusOnError: 200 }`, "error at extAuthz.statusOnError: must be an error status"},
		{"maxBytes 0", `extAuthz: { grpc: "auth:9191", withRequestBody: { maxBytes: 0 } }`, "error at extAuthz.withRequestBody.maxBytes: must be between 1"},
		{"maxBytes missing", `extAuthz: { grpc: "auth:9191", withRequestBody: {} }`, "error at extAuthz.withRequestBody.maxBytes: is required"},
		{"cert without key", `extAuthz: { grpc: "auth:9191", tls: { cert: /x.pem } }`, "error at extAuthz.tls: cert and key go together"},
		{"missing ca", `extAuthz: { grpc: "auth:9191", tls: { ca: /nonexistent/ca.pem } }`, "error at extAuthz.tls: reading ca"},
		{"metadata", `extAuthz: { grpc: "auth:9191", metadata: { ns: 3 } }`, "error at extAuthz.metadata.ns: must be an object"},
		{"skipPaths", `extAuthz: { grpc: "auth:9191", skipPaths: [public] }`, "error at extAuthz.skipPaths[0]"},
		{"cache size", `extAuthz: { grpc: "auth:9191", decisionCache: { maxEntries: 0 } }`, "error at extAuthz.decisionCache.maxEntries: must be ≥ 1"},
		{"route", "proxy:\n  /api: { targets: [\"http://127.0.0.1:9\"], extAuthz: { grpc: \"x\" } }", "error at proxy./api.extAuthz.grpc: must be host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, err := servertest.Build("port: 8080\n"+tc.cfg+"\n", config.FormatYAML)
			if err != nil {
				t.Fatal(err)
			}
			if e := d.Err(); e == nil || !strings.Contains(e.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, e)
			}
		})
	}
	_, d, err := servertest.Build("port: 8080\nextAuthz: { grpc: \"dns:///authz.internal:9191\", failureModeAllowHeaderAdd: true }\n", config.FormatYAML)
	if err != nil || d.Err() != nil {
		t.Fatalf("a valid dns:/// target refused: %v %v", err, d.Err())
	}
	if !strings.Contains(fmt.Sprint(d.Warnings()), "failureModeAllowHeaderAdd") {
		t.Fatalf("no warning for failureModeAllowHeaderAdd without failureModeAllow: %v", d.Warnings())
	}
}

// startAuthOn serves the authorization server on addr (a port that was free a moment ago).
func startAuthOn(t *testing.T, addr string, decide func(*authv3.CheckRequest) (*authv3.CheckResponse, error)) {
	t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, &authServer{addr: addr, decide: decide})
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
}

func TestRecoversWhenTheServiceComesBack(t *testing.T) {
	up := newUpstream(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	port := strings.Split(addr, ":")[1]
	// dns:/// with localhost: the name resolver and round-robin balancer path.
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: \"dns:///localhost:%s\" }\nproxy: %q\n", port, up.URL))
	if r := servertest.Get(t, srv.URL(8080)+"/x"); r.Status != 403 {
		t.Fatalf("service down: %d", r.Status)
	}
	startAuthOn(t, addr, allowAll)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := servertest.Get(t, srv.URL(8080)+"/x")
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d 10 s after the service came back", r.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMTLS: the client's verified certificate reaches the service (principal, and the
// certificate with includePeerCertificate), and Conduit reaches the service over mTLS.
func TestMTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "extAuthz CA")
	dir := t.TempDir()
	caPath := ca.WriteCA(t, dir, "ca")
	siteCert, siteKey := ca.Server(t, "localhost").Write(t, dir, "site")
	gwCert, gwKey := ca.Client(t, "conduit-gateway").Write(t, dir, "gw")
	alice := ca.Client(t, "alice")

	var sawClient atomic.Value
	svcPair := ca.Server(t, "127.0.0.1")
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{svcPair.TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(),
		VerifyConnection: func(cs tls.ConnectionState) error {
			sawClient.Store(cs.PeerCertificates[0].Subject.CommonName)
			return nil
		},
	})
	auth := startAuth(t, allowAll, grpc.Creds(creds))
	up := newUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8443
host: localhost
tls: { cert: %q, key: %q, clientAuth: { ca: %q, optional: true } }
extAuthz:
  grpc: %q
  includePeerCertificate: true
  tls: { ca: %q, cert: %q, key: %q }
proxy: %q
`, siteCert, siteKey, caPath, auth.addr, caPath, gwCert, gwKey, up.URL))
	get := func(t *testing.T, cert *tls.Certificate) int {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if cert == nil {
					return &tls.Certificate{}, nil
				}
				return cert, nil
			}}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+srv.HostPort(8443)+"/me", nil)
		req.Host = "localhost"
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(t, &alice.TLS); code != 200 {
		t.Fatalf("status %d", code)
	}
	if sawClient.Load() != "conduit-gateway" {
		t.Fatalf("the service saw client certificate %v, want conduit-gateway", sawClient.Load())
	}
	a := auth.lastRequest(t).GetAttributes()
	if p := a.GetSource().GetPrincipal(); !strings.Contains(p, "CN=alice") {
		t.Errorf("principal %q", p)
	}
	pemText, err := url.PathUnescape(a.GetSource().GetCertificate())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(pemText))
	if blk == nil || !bytes.Equal(blk.Bytes, alice.Leaf.Raw) {
		t.Errorf("certificate %q is not alice's, URL-encoded PEM", a.GetSource().GetCertificate())
	}
	if a.GetRequest().GetHttp().GetScheme() != "https" || a.GetTlsSession().GetSni() != "localhost" {
		t.Errorf("scheme %q sni %q", a.GetRequest().GetHttp().GetScheme(), a.GetTlsSession().GetSni())
	}
	// Without a client certificate there is no principal, whatever the client sends.
	if code := get(t, nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	if a := auth.lastRequest(t).GetAttributes(); a.GetSource().GetPrincipal() != "" || a.GetSource().GetCertificate() != "" {
		t.Errorf("principal %q certificate %q without a client certificate", a.GetSource().GetPrincipal(), a.GetSource().GetCertificate())
	}

	// A service whose certificate the configured CA did not sign is a failure: fail closed.
	other := tlstest.NewCA(t, "other CA")
	otherPath := other.WriteCA(t, dir, "other")
	srv2 := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q, tls: { ca: %q, cert: %q, key: %q } }\nproxy: %q\n",
		auth.addr, otherPath, gwCert, gwKey, up.URL))
	if r := servertest.Get(t, srv2.URL(8080)+"/x"); r.Status != 403 {
		t.Fatalf("untrusted service certificate: %d", r.Status)
	}
}

// TestRequestTrailersCannotRespellMutatedHeaders: a header the service set cannot be sent
// again as a request trailer.
func TestRequestTrailersCannotRespellMutatedHeaders(t *testing.T) {
	auth := startAuth(t, policy)
	var mu sync.Mutex
	var trailer http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		trailer = r.Trailer.Clone()
		mu.Unlock()
	}))
	defer up.Close()
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q }\nproxy: %q\n", auth.addr, up.URL))
	c, err := net.DialTimeout("tcp", srv.HostPort(8080), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "POST /api HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer good\r\n"+
		"Transfer-Encoding: chunked\r\nTrailer: X-User-Id, X-Note\r\nConnection: close\r\n\r\n"+
		"5\r\nhello\r\n0\r\nX-User-Id: admin\r\nX-Note: kept\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if trailer.Get("X-User-Id") != "" {
		t.Fatalf("the client's X-User-Id trailer reached the upstream: %v", trailer)
	}
	if trailer.Get("X-Note") != "kept" {
		t.Fatalf("an unrelated trailer was dropped (the test would prove nothing): %v", trailer)
	}
}

func TestDecisionCache(t *testing.T) {
	// The service allows /ok (giving a TTL of 60 s on /ttl), denies the rest.
	auth := startAuth(t, func(req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		path := req.GetAttributes().GetRequest().GetHttp().GetPath()
		resp := &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}}
		if strings.HasPrefix(path, "/deny") {
			resp.Status.Code = int32(codes.PermissionDenied)
		}
		if strings.HasPrefix(path, "/ttl") {
			resp.DynamicMetadata, _ = structpb.NewStruct(map[string]any{"conduit_cache_ttl_ms": 60000})
		}
		if strings.HasPrefix(path, "/nocache") {
			resp.DynamicMetadata, _ = structpb.NewStruct(map[string]any{"conduit_cache_ttl_ms": 0})
		}
		return resp, nil
	})
	up := newUpstream(t)
	calls := func(t *testing.T, srv *servertest.Server, path string, want int, hdr ...string) int64 {
		t.Helper()
		before := auth.calls.Load()
		if r := servertest.Get(t, srv.URL(8080)+path, hdr...); r.Status != want {
			t.Fatalf("%s: status %d, want %d", path, r.Status, want)
		}
		return auth.calls.Load() - before
	}
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q, decisionCache: { ttlMs: 300 } }\nproxy: %q\n", auth.addr, up.URL))
	for _, tc := range []struct {
		path   string
		status int
		hdr    []string
		asked  int64
	}{
		{"/ok", 200, nil, 1},
		{"/ok", 200, nil, 0},                       // same request (another X-Request-ID, another source port): reused
		{"/ok", 200, []string{"X-Tenant", "b"}, 1}, // another header: asked
		{"/ok?x=1", 200, nil, 1},
		{"/deny", 403, nil, 1},
		{"/deny", 403, nil, 0}, // denials are reused too
		{"/nocache", 200, nil, 1},
		{"/nocache", 200, nil, 1}, // the service said 0: never reused
	} {
		if got := calls(t, srv, tc.path, tc.status, tc.hdr...); got != tc.asked {
			t.Errorf("%s %v: the service was asked %d times, want %d", tc.path, tc.hdr, got, tc.asked)
		}
	}
	time.Sleep(400 * time.Millisecond)
	if got := calls(t, srv, "/ok", 200); got != 1 {
		t.Errorf("after the TTL: asked %d times, want 1", got)
	}

	// Without ttlMs only decisions the service gives a TTL are reused; without decisionCache none.
	srv2 := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q, decisionCache: {} }\nproxy: %q\n", auth.addr, up.URL))
	srv3 := servertest.Start(t, fmt.Sprintf("port: 8080\nextAuthz: { grpc: %q }\nproxy: %q\n", auth.addr, up.URL))
	for _, tc := range []struct {
		srv   *servertest.Server
		path  string
		asked int64
	}{
		{srv2, "/ok", 1}, {srv2, "/ok", 1}, {srv2, "/ttl", 1}, {srv2, "/ttl", 0},
		{srv3, "/ttl", 1}, {srv3, "/ttl", 1},
	} {
		if got := calls(t, tc.srv, tc.path, 200); got != tc.asked {
			t.Errorf("%s: asked %d times, want %d", tc.path, got, tc.asked)
		}
	}
}

// TestHTTP2: over h2c the CheckRequest names HTTP/2, and the buffered body still reaches
// the upstream whole.
func TestHTTP2(t *testing.T) {
	auth := startAuth(t, allowAll)
	up := newUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf("port: 8080\nhttp2: { h2c: true }\nextAuthz: { grpc: %q, withRequestBody: { maxBytes: 4, allowPartial: true } }\nproxy: %q\n", auth.addr, up.URL))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, srv.URL(8080)+"/h2", strings.NewReader("0123456789"))
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("status %d over %s", resp.StatusCode, resp.Proto)
	}
	h := auth.lastRequest(t).GetAttributes().GetRequest().GetHttp()
	if h.GetProtocol() != "HTTP/2" || h.GetBody() != "0123" || h.GetHeaders()["x-envoy-auth-partial-body"] != "true" {
		t.Fatalf("protocol %q body %q partial %q", h.GetProtocol(), h.GetBody(), h.GetHeaders()["x-envoy-auth-partial-body"])
	}
	if b := up.last(t).body; b != "0123456789" {
		t.Fatalf("upstream body %q", b)
	}
}

// TestReloadSwitchesService: a reload to another target takes effect for new requests, and
// the retired generation's connection to the old service is closed.
func TestReloadSwitchesService(t *testing.T) {
	var conns sync.Map // remote address → open
	track := grpc.StatsHandler(&connTracker{open: &conns})
	allow := startAuth(t, allowAll, track)
	deny := startAuth(t, func(*authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}}, nil
	})
	up := newUpstream(t)
	cfg := "port: 8080\nextAuthz: { grpc: %q }\nproxy: %q\n"
	srv := servertest.Start(t, fmt.Sprintf(cfg, allow.addr, up.URL))
	if r := servertest.Get(t, srv.URL(8080)+"/x"); r.Status != 200 {
		t.Fatalf("before the reload: %d", r.Status)
	}
	if n := countOpen(&conns); n != 1 {
		t.Fatalf("%d connections to the first service, want 1", n)
	}
	srv.Reload(t, fmt.Sprintf(cfg, deny.addr, up.URL))
	if r := servertest.Get(t, srv.URL(8080)+"/x"); r.Status != 403 {
		t.Fatalf("after the reload: %d", r.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for countOpen(&conns) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the retired generation's connection to the first service is still open")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connTracker records the server side's open connections.
type connTracker struct{ open *sync.Map }

func (c *connTracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connTracker) HandleRPC(context.Context, stats.RPCStats)                       {}
func (c *connTracker) TagConn(ctx context.Context, i *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, i.RemoteAddr.String())
}
func (c *connTracker) HandleConn(ctx context.Context, s stats.ConnStats) {
	addr, _ := ctx.Value(connKey{}).(string)
	switch s.(type) {
	case *stats.ConnBegin:
		c.open.Store(addr, true)
	case *stats.ConnEnd:
		c.open.Delete(addr)
	}
}

type connKey struct{}

func countOpen(m *sync.Map) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}
