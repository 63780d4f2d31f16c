package extproc_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/extproc"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// phase is what the processor decides for one message it gets.
type phase func(req *procv3.ProcessingRequest) *procv3.ProcessingResponse

// processor is a real gRPC ExternalProcessor server on 127.0.0.1. For each message it
// records the headers and answers with onRequest or onResponse (nil: close the stream).
type processor struct {
	procv3.UnimplementedExternalProcessorServer
	addr                  string
	onRequest, onResponse phase
	mu                    sync.Mutex
	seen                  []map[string]string // headers of every message, in order
	kinds                 []string
	eos                   []bool
	protocol              []bool // the message carried protocol_config
}

func (p *processor) Process(srv grpc.BidiStreamingServer[procv3.ProcessingRequest, procv3.ProcessingResponse]) error {
	for {
		req, err := srv.Recv()
		if err != nil {
			return nil
		}
		var hm *corev3.HeaderMap
		var next phase
		kind := ""
		switch v := req.GetRequest().(type) {
		case *procv3.ProcessingRequest_RequestHeaders:
			hm, next, kind = v.RequestHeaders.GetHeaders(), p.onRequest, "request"
			p.mu.Lock()
			p.eos = append(p.eos, v.RequestHeaders.GetEndOfStream())
			p.mu.Unlock()
		case *procv3.ProcessingRequest_ResponseHeaders:
			hm, next, kind = v.ResponseHeaders.GetHeaders(), p.onResponse, "response"
		default:
			return fmt.Errorf("unexpected message %T", v)
		}
		m := map[string]string{}
		for _, h := range hm.GetHeaders() {
			if prev, ok := m[h.GetKey()]; ok {
				m[h.GetKey()] = prev + "," + string(h.GetRawValue())
			} else {
				m[h.GetKey()] = string(h.GetRawValue())
			}
		}
		p.mu.Lock()
		p.seen = append(p.seen, m)
		p.kinds = append(p.kinds, kind)
		p.protocol = append(p.protocol, req.GetProtocolConfig() != nil)
		p.mu.Unlock()
		if next == nil {
			return nil
		}
		if err := srv.Send(next(req)); err != nil {
			return err
		}
	}
}

func (p *processor) messages() ([]string, []map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.kinds...), append([]map[string]string(nil), p.seen...)
}

func startProcessor(t *testing.T, onRequest, onResponse phase) *processor {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &processor{addr: l.Addr().String(), onRequest: onRequest, onResponse: onResponse}
	s := grpc.NewServer()
	procv3.RegisterExternalProcessorServer(s, p)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return p
}

func set(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

func continueRequest(m *procv3.HeaderMutation) phase {
	return func(*procv3.ProcessingRequest) *procv3.ProcessingResponse {
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &procv3.HeadersResponse{Response: &procv3.CommonResponse{HeaderMutation: m}}}}
	}
}

func continueResponse(m *procv3.HeaderMutation) phase {
	return func(*procv3.ProcessingRequest) *procv3.ProcessingResponse {
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &procv3.HeadersResponse{Response: &procv3.CommonResponse{HeaderMutation: m}}}}
	}
}

func immediate(code typev3.StatusCode, body string, hdr ...*corev3.HeaderValueOption) phase {
	return func(*procv3.ProcessingRequest) *procv3.ProcessingResponse {
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &procv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: code}, Body: []byte(body),
				Headers: &procv3.HeaderMutation{SetHeaders: hdr}}}}
	}
}

// upstream records the headers it got and answers with X-Upstream-Secret and a body.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	count int
	last  http.Header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.count++
		u.last = r.Header.Clone()
		u.mu.Unlock()
		w.Header().Set("X-Upstream-Secret", "s3cr3t")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "from upstream")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen() (int, http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.count, u.last
}

func start(t *testing.T, p *processor, up *upstream, extra string) *servertest.Server {
	return servertest.Start(t, fmt.Sprintf("port: 8080\nextProc:\n  grpc: %q\n  %s\nproxy: %q\n", p.addr, extra, up.URL))
}

func TestHeaderPhases(t *testing.T) {
	p := startProcessor(t,
		continueRequest(&procv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{set("x-user", "alice"), set("x-forwarded-for", "6.6.6.6")},
			RemoveHeaders: []string{"authorization", "host", ":path"}}),
		continueResponse(&procv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{set("x-processed", "yes")},
			RemoveHeaders: []string{"x-upstream-secret"}}))
	up := newUpstream(t)
	srv := start(t, p, up, "")
	r := servertest.Get(t, srv.URL(8080)+"/api/%2e%2e/items?x=1", "Authorization", "Bearer t", "X-User", "mallory", "Host", "Shop.Example.")
	if r.Status != 201 || r.Body != "from upstream" {
		t.Fatalf("status %d %q", r.Status, r.Body)
	}
	if r.Header.Get("X-Processed") != "yes" || r.Header.Get("X-Upstream-Secret") != "" {
		t.Errorf("response mutations not applied: %v", r.Header)
	}
	if _, h := up.seen(); h.Get("X-User") != "alice" || h.Get("Authorization") != "" || h.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("request mutations: upstream saw %v", h)
	}
	kinds, seen := p.messages()
	if strings.Join(kinds, ",") != "request,response" {
		t.Fatalf("messages %v", kinds)
	}
	req, resp := seen[0], seen[1]
	for k, want := range map[string]string{":path": "/items?x=1", ":authority": "shop.example", ":method": "GET", ":scheme": "http", "x-user": "mallory", "authorization": "Bearer t"} {
		if req[k] != want {
			t.Errorf("request headers %s = %q, want %q", k, req[k], want)
		}
	}
	if resp[":status"] != "201" || resp["x-upstream-secret"] != "s3cr3t" {
		t.Errorf("response headers: %v", resp)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.protocol[0] || p.protocol[1] || !p.eos[0] {
		t.Errorf("protocol_config on %v, end_of_stream %v", p.protocol, p.eos)
	}
}

func TestImmediateResponses(t *testing.T) {
	up := newUpstream(t)
	deny := startProcessor(t, immediate(typev3.StatusCode_Forbidden, "blocked", set("x-reason", "policy")), nil)
	srv := start(t, deny, up, "")
	r := servertest.Get(t, srv.URL(8080)+"/x")
	if r.Status != 403 || r.Body != "blocked" || r.Header.Get("X-Reason") != "policy" {
		t.Fatalf("request-phase immediate response: %d %q %v", r.Status, r.Body, r.Header)
	}
	if n, _ := up.seen(); n != 0 {
		t.Fatal("the request reached the upstream")
	}
	replace := startProcessor(t, continueRequest(nil), immediate(typev3.StatusCode_BadGateway, "replaced"))
	srv2 := start(t, replace, up, "")
	r = servertest.Get(t, srv2.URL(8080)+"/x")
	if r.Status != 502 || r.Body != "replaced" || r.Header.Get("X-Upstream-Secret") != "" || r.Header.Get("X-Request-Id") == "" {
		t.Fatalf("response-phase immediate response: %d %q %v", r.Status, r.Body, r.Header)
	}
}

func TestModes(t *testing.T) {
	up := newUpstream(t)
	p := startProcessor(t, continueRequest(nil), continueResponse(nil))
	srv := start(t, p, up, "processingMode: { requestHeaderMode: skip }")
	if r := servertest.Get(t, srv.URL(8080)+"/x"); r.Status != 201 {
		t.Fatalf("status %d", r.Status)
	}
	p2 := startProcessor(t, continueRequest(nil), continueResponse(nil))
	srv2 := start(t, p2, up, "processingMode: { responseHeaderMode: SKIP }\n  skipPaths: [/health]")
	if r := servertest.Get(t, srv2.URL(8080)+"/x"); r.Status != 201 {
		t.Fatalf("status %d", r.Status)
	}
	if r := servertest.Get(t, srv2.URL(8080)+"/health"); r.Status != 201 {
		t.Fatalf("status %d", r.Status)
	}
	if k, _ := p.messages(); strings.Join(k, ",") != "response" {
		t.Errorf("requestHeaderMode skip: messages %v", k)
	}
	if k, _ := p2.messages(); strings.Join(k, ",") != "request" {
		t.Errorf("responseHeaderMode skip + skipPaths: messages %v", k)
	}
}

func TestFailures(t *testing.T) {
	up := newUpstream(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := &processor{addr: l.Addr().String()}
	l.Close()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := startProcessor(t, func(*procv3.ProcessingRequest) *procv3.ProcessingResponse {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return continueRequest(nil)(nil)
	}, nil)
	closesOnResponse := startProcessor(t, continueRequest(nil), nil)
	outOfTurn := startProcessor(t, continueResponse(nil), nil)
	bodyMutation := startProcessor(t, func(*procv3.ProcessingRequest) *procv3.ProcessingResponse {
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestHeaders{RequestHeaders: &procv3.HeadersResponse{
			Response: &procv3.CommonResponse{BodyMutation: &procv3.BodyMutation{Mutation: &procv3.BodyMutation_Body{Body: []byte("x")}}}}}}
	}, nil)
	badHeader := startProcessor(t, continueRequest(&procv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{set("x-a", "1\r\nx-b: 2")}}), nil)
	for _, tc := range []struct {
		name   string
		p      *processor
		extra  string
		status int
		passed bool
	}{
		{"down", down, "", 500, false},
		{"down statusOnError", down, "statusOnError: 503", 503, false},
		{"timeout", slow, "timeoutMs: 50", 504, false},
		{"stream closed before the response phase", closesOnResponse, "", 500, true},
		{"out-of-turn answer", outOfTurn, "", 500, false},
		{"body mutation", bodyMutation, "", 500, false},
		{"unsendable header", badHeader, "", 500, false},
		{"down, failureModeAllow", down, "failureModeAllow: true", 201, true},
		{"timeout, failureModeAllow", slow, "timeoutMs: 50\n  failureModeAllow: true", 201, true},
		{"response phase, failureModeAllow", closesOnResponse, "failureModeAllow: true", 201, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := up.seen()
			srv := start(t, tc.p, up, tc.extra)
			began := time.Now()
			r := servertest.Get(t, srv.URL(8080)+"/x")
			if r.Status != tc.status {
				t.Fatalf("status %d %q, want %d", r.Status, r.Body, tc.status)
			}
			if time.Since(began) > 3*time.Second {
				t.Fatalf("took %v", time.Since(began))
			}
			if tc.status >= 500 && strings.Contains(r.Body, "from upstream") {
				t.Fatal("the upstream's body leaked into the error answer")
			}
			if after, _ := up.seen(); (after > before) != tc.passed {
				t.Fatalf("reached the upstream: %v, want %v", after > before, tc.passed)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"missing grpc", `extProc: {}`, "error at extProc.grpc: is required"},
		{"bad target", `extProc: { grpc: "http://p:9000" }`, "error at extProc.grpc: must be host:port"},
		{"admin", `extProc: { grpc: "localhost:2019" }`, "error at extProc.grpc: points at the Admin API"},
		{"timeout 0", `extProc: { grpc: "p:9000", timeoutMs: 0 }`, "error at extProc.timeoutMs: must be ≥ 1"},
		{"status", `extProc: { grpc: "p:9000", statusOnError: 302 }`, "error at extProc.statusOnError"},
		{"mode", `extProc: { grpc: "p:9000", processingMode: { requestHeaderMode: buffered } }`, "error at extProc.processingMode.requestHeaderMode: must be send or skip"},
		{"tls", `extProc: { grpc: "p:9000", tls: { key: /k.pem } }`, "error at extProc.tls: cert and key go together"},
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
}
