package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedUpstream is a raw TCP upstream: for each request read on a connection (head, and
// a Content-Length body) it writes answer(connIndex, requestIndex, head) verbatim; a ""
// answer closes the connection.
type scriptedUpstream struct {
	ln       net.Listener
	accepted atomic.Int64
	conns    sync.Map // remote address → server side net.Conn
	mu       sync.Mutex
	requests []string // raw request heads, in arrival order
	wg       sync.WaitGroup
}

func startScripted(t *testing.T, answer func(conn, req int, head string) string) *scriptedUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &scriptedUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ci := int(u.accepted.Add(1)) - 1
			u.conns.Store(c.RemoteAddr().String(), c)
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for ri := 0; ; ri++ {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					// A declared body is read and recorded after the head.
					for _, line := range strings.Split(head.String(), "\r\n") {
						name, v, ok := strings.Cut(line, ":")
						if ok && strings.EqualFold(name, "Content-Length") {
							n, _ := strconv.Atoi(strings.TrimSpace(v))
							body := make([]byte, n)
							if _, err := io.ReadFull(br, body); err != nil {
								return
							}
							head.Write(body)
						}
					}
					u.mu.Lock()
					u.requests = append(u.requests, head.String())
					u.mu.Unlock()
					a := answer(ci, ri, head.String())
					if a == "" {
						return
					}
					if _, err := io.WriteString(c, a); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); u.wg.Wait() })
	return u
}

// closeConnFrom closes the server side of the connection whose client address is remote.
func (u *scriptedUpstream) closeConnFrom(t *testing.T, remote string) {
	t.Helper()
	c, ok := u.conns.Load(remote)
	if !ok {
		t.Fatalf("no upstream connection from %s", remote)
	}
	c.(net.Conn).Close()
}

func (u *scriptedUpstream) url() string { return "http://" + u.ln.Addr().String() }

func (u *scriptedUpstream) heads() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.requests...)
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// roundTrip sends req on the pool of its URL (the route resolves its pool once instead);
// see h1Pool.roundTrip.
func (c *h1Client) roundTrip(base context.Context, req *http.Request, deadline time.Time, w http.ResponseWriter) (*http.Response, error) {
	return c.poolFor(req.URL).roundTrip(nil, base, req, deadline, time.Now(), w)
}

// testClient returns a client whose idle connections are closed when the test ends (before
// the scripted upstreams started earlier wait for their connections).
func testClient(t *testing.T) *h1Client {
	c := newH1Client(transportSettings{connect: time.Second, firstByte: time.Minute, maxIdle: 4, idleTimeout: time.Minute})
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func getReq(t *testing.T, raw string, h http.Header) *http.Request {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = http.Header{}
	}
	return &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: h, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return string(b)
}

func TestH1ClientReusesConnections(t *testing.T) {
	cases := []struct {
		name   string
		method string
		answer string
		body   string
	}{
		{"content-length", "GET", okResponse, "ok"},
		{"chunked with trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", "ok"},
		{"no content", "DELETE", "HTTP/1.1 204 No Content\r\n\r\n", ""},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", ""},
		{"not modified", "GET", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := startScripted(t, func(_, _ int, _ string) string { return tc.answer })
			c := testClient(t)
			for i := 0; i < 5; i++ {
				req := getReq(t, up.url()+"/x", nil)
				req.Method = tc.method
				resp, err := c.roundTrip(context.Background(), req, time.Time{}, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if got := readAll(t, resp); got != tc.body {
					t.Fatalf("request %d: body %q, want %q", i, got, tc.body)
				}
			}
			if n := up.accepted.Load(); n != 1 {
				t.Fatalf("5 sequential requests used %d upstream connections, want 1", n)
			}
		})
	}
}

func TestH1ClientRetriesAConnectionClosedWhileIdle(t *testing.T) {
	// The first connection answers once and is then closed by the upstream (an idle
	// timeout); the next request finds it dead and must be sent again on a new connection.
	up := startScripted(t, func(conn, req int, _ string) string {
		if conn == 0 && req == 1 {
			return ""
		}
		return okResponse
	})
	c := testClient(t)
	for i := 0; i < 2; i++ {
		resp, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := readAll(t, resp); got != "ok" {
			t.Fatalf("request %d: body %q", i, got)
		}
	}
	if n := up.accepted.Load(); n != 2 {
		t.Fatalf("upstream accepted %d connections, want 2 (one retry)", n)
	}
}

func TestH1ClientRefusesHeaderInjection(t *testing.T) {
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse })
	c := testClient(t)
	for _, h := range []http.Header{
		{"X-A": {"v\r\nX-Smuggled: 1"}},
		{"X-A": {"v\nGET /admin HTTP/1.1"}},
		{"Bad Name": {"v"}},
		{"User-Agent": {"ua\r\nX: y"}},
	} {
		_, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/", h), time.Time{}, nil)
		if err == nil {
			t.Fatalf("header %v: no error", h)
		}
	}
	for _, head := range up.heads() {
		t.Fatalf("the upstream received a request: %q", head)
	}
}

func TestH1ClientWritesTheRequestAsGiven(t *testing.T) {
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse })
	c := testClient(t)
	req := getReq(t, up.url()+"/a%2Fb?q=1", http.Header{"X-One": {" padded "}, "User-Agent": {""}, "Accept": {"a", "b"}})
	req.Host = "example.test"
	resp, err := c.roundTrip(context.Background(), req, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	heads := up.heads()
	if len(heads) != 1 {
		t.Fatalf("got %d requests", len(heads))
	}
	h := heads[0]
	for _, want := range []string{"GET /a%2Fb?q=1 HTTP/1.1\r\n", "Host: example.test\r\n", "X-One: padded\r\n", "Accept: a\r\n", "Accept: b\r\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("request head %q lacks %q", h, want)
		}
	}
	if strings.Contains(h, "User-Agent") || strings.Contains(h, "Content-Length") {
		t.Errorf("request head %q has a User-Agent or Content-Length", h)
	}
}

func TestH1ClientFailures(t *testing.T) {
	huge := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", h1MaxHeaderBytes) + "\r\nContent-Length: 0\r\n\r\n"
	cases := []struct {
		name   string
		answer string
		want   string
	}{
		{"header over the limit", huge, "header"},
		{"unrequested 101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "switched protocols"},
		{"too many 1xx", strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", h1Max1xx+2) + okResponse, "informational"},
		{"garbage", "NOT HTTP\r\n\r\n", "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := startScripted(t, func(_, _ int, _ string) string { return tc.answer })
			_, err := testClient(t).roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestH1ClientDropsAConnectionWithUnsolicitedBytes(t *testing.T) {
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse + "HTTP/1.1 200 OK\r\n" })
	c := testClient(t)
	for i := 0; i < 2; i++ {
		resp, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		readAll(t, resp)
	}
	if n := up.accepted.Load(); n != 2 {
		t.Fatalf("upstream accepted %d connections, want 2 (the first was not reused)", n)
	}
}

func TestH1ClientDeadlineAndCancel(t *testing.T) {
	// The upstream never answers and the header timeout is a minute: only the deadline, or
	// the cancelled context, can end these requests (a test that hangs has failed).
	release := make(chan struct{})
	hang := startScripted(t, func(_, _ int, _ string) string {
		<-release
		return ""
	})
	t.Cleanup(func() { close(release) })
	c := testClient(t)
	_, err := c.roundTrip(context.Background(), getReq(t, hang.url()+"/", nil), time.Now().Add(100*time.Millisecond), nil)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline: err = %v, want a timeout", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := c.roundTrip(ctx, getReq(t, hang.url()+"/", nil), time.Time{}, nil); err == nil {
		t.Fatal("cancelled request: no error")
	}
}

func TestH1ClientCancelMidBodyClosesTheConnection(t *testing.T) {
	// The upstream sends the header and half the body, then stalls: cancelling the
	// client's context must end the body read, and the connection must not be reused.
	up := startScripted(t, func(_, _ int, _ string) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
	})
	c := testClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.roundTrip(ctx, getReq(t, up.url()+"/", nil), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("body read ended without an error")
	}
	resp.Body.Close()
	p := c.pool("http", up.ln.Addr().String(), "127.0.0.1")
	p.mu.Lock()
	n := len(p.idle)
	p.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d connections went back to the pool after a cancelled body", n)
	}
}

func TestH1ClientSweepsIdleConnections(t *testing.T) {
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse })
	c := newH1Client(transportSettings{connect: time.Second, firstByte: time.Second, maxIdle: 4, idleTimeout: 50 * time.Millisecond})
	resp, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	p := c.pool("http", up.ln.Addr().String(), "127.0.0.1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		n, sweeping := len(p.idle), p.sweeping
		p.mu.Unlock()
		if n == 0 && !sweeping {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle connections after the idle timeout: %d (sweeping %v)", n, sweeping)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestH1ClientForwardsEarlyHints(t *testing.T) {
	up := startScripted(t, func(_, _ int, _ string) string {
		return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + okResponse
	})
	rec := httptest.NewRecorder()
	resp, err := testClient(t).roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "ok" {
		t.Fatalf("body %q", got)
	}
	if rec.Code != http.StatusEarlyHints {
		t.Fatalf("forwarded status %d, want 103 (and no 100)", rec.Code)
	}
	if rec.Header().Get("Link") != "" {
		t.Fatal("the 103's Link header stayed on the final response header")
	}
}

func TestH1ClientHTTPS(t *testing.T) {
	var conns atomic.Int64
	var sni atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "tls "+r.Host)
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni.Store(h.ServerName)
		return nil, nil
	}}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	insecure := newH1Client(transportSettings{connect: time.Second, firstByte: time.Minute, maxIdle: 4, idleTimeout: time.Minute, serverName: "backend.internal"})
	t.Cleanup(insecure.CloseIdleConnections)
	for i := 0; i < 3; i++ {
		req := getReq(t, srv.URL+"/", nil)
		req.Host = "app.example"
		resp, err := insecure.roundTrip(context.Background(), req, time.Time{}, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := readAll(t, resp); got != "tls app.example" {
			t.Fatalf("body %q", got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("3 requests used %d TLS connections, want 1", n)
	}
	if got := sni.Load(); got != "backend.internal" {
		t.Fatalf("SNI %v, want upstreamTls.serverName", got)
	}

	// verify: true (the default) refuses the test server's self-signed certificate.
	verifying := newH1Client(transportSettings{connect: time.Second, firstByte: time.Minute, maxIdle: 4, idleTimeout: time.Minute, verify: true})
	t.Cleanup(verifying.CloseIdleConnections)
	if _, err := verifying.roundTrip(context.Background(), getReq(t, srv.URL+"/", nil), time.Time{}, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("verify: true against a self-signed certificate: err = %v", err)
	}
}

func TestH1Eligible(t *testing.T) {
	cases := []struct {
		method           string
		length           int64
		hasBody, upgrade bool
		want             bool
	}{
		{"GET", 0, false, false, true},
		{"HEAD", 0, false, false, true},
		{"DELETE", 0, false, false, true},
		{"OPTIONS", 0, false, false, true},
		{"GET", 0, false, true, false},
		{"POST", 0, false, false, canCheckAlive},
		{"POST", 100, true, false, canCheckAlive},
		{"PUT", h1MaxBody, true, false, canCheckAlive},
		{"POST", h1MaxBody + 1, true, false, false},
		{"POST", -1, true, false, false}, // chunked: streamed by the Transport
		{"PATCH", 10, true, true, false},
	}
	for _, tc := range cases {
		if got := h1Eligible(tc.method, tc.length, tc.hasBody, tc.upgrade); got != tc.want {
			t.Errorf("h1Eligible(%s, %d, body=%v, upgrade=%v) = %v", tc.method, tc.length, tc.hasBody, tc.upgrade, got)
		}
	}
}

func postReq(t *testing.T, raw, body string) *http.Request {
	req := getReq(t, raw, nil)
	req.Method = http.MethodPost
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	return req
}

func TestH1ClientSendsBodies(t *testing.T) {
	// The upstream echoes the body length it read (Content-Length framing only).
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse })
	c := testClient(t)
	for i, body := range []string{"a=1", strings.Repeat("x", 40<<10)} {
		resp, err := c.roundTrip(context.Background(), postReq(t, up.url()+"/f", body), time.Time{}, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		readAll(t, resp)
	}
	req := getReq(t, up.url()+"/empty", nil)
	req.Method = http.MethodPost
	resp, err := c.roundTrip(context.Background(), req, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	heads := up.heads()
	if len(heads) != 3 {
		t.Fatalf("upstream saw %d requests: %q", len(heads), heads)
	}
	for i, want := range []string{"Content-Length: 3\r\n", fmt.Sprintf("Content-Length: %d\r\n", 40<<10), "Content-Length: 0\r\n"} {
		if !strings.HasPrefix(heads[i], "POST ") || !strings.Contains(heads[i], want) {
			t.Errorf("request %d head %q lacks %q", i, heads[i], want)
		}
	}
}

// FuzzH1ClientResponse feeds arbitrary upstream bytes to the client: it must return an
// error or a response whose body reads to an end, never panic or hang.
func FuzzH1ClientResponse(f *testing.F) {
	f.Add([]byte(okResponse))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nclose-delimited"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, server := net.Pipe()
		go func() {
			br := bufio.NewReader(server)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\r\n" {
					break
				}
			}
			server.Write(answer)
			server.Close()
		}()
		c := newH1Client(transportSettings{firstByte: time.Second, maxIdle: 1})
		p := c.pool("http", "fuzz", "fuzz")
		pc := &h1Conn{nc: client, pool: p}
		pc.lim.r = client
		pc.br = bufio.NewReaderSize(&pc.lim, h1BufferSize)
		pc.bw = bufio.NewWriterSize(client, h1BufferSize)
		u, _ := url.Parse("http://fuzz/")
		req := &http.Request{Method: http.MethodGet, URL: u, Host: "fuzz", Header: http.Header{}}
		now := time.Now()
		resp, err, _ := pc.exchange(nil, context.Background(), req, now.Add(2*time.Second), now, nil)
		if err != nil {
			client.Close()
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
		client.Close()
	})
}

func TestH1ClientNeverSendsABodyTwice(t *testing.T) {
	if !canCheckAlive {
		t.Skip("requests that cannot be retried stay on the Transport on this platform")
	}
	// The first connection answers once and is then closed by the upstream while idle. A
	// GET would be retried after the failure; a POST must not be sent on the dead
	// connection at all: the liveness check finds it closed and a new one is dialled.
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse })
	c := testClient(t)
	resp, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/first", nil), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	// Close the upstream side of the pooled connection, as an idle timeout would.
	p := c.pool("http", up.ln.Addr().String(), "127.0.0.1")
	p.mu.Lock()
	if len(p.idle) != 1 {
		p.mu.Unlock()
		t.Fatalf("%d pooled connections, want 1", len(p.idle))
	}
	raw := p.idle[0].raw
	p.mu.Unlock()
	up.closeConnFrom(t, raw.LocalAddr().String())
	for deadline := time.Now().Add(5 * time.Second); connectionAlive(raw); {
		if time.Now().After(deadline) {
			t.Fatal("the upstream's close never reached the pooled connection")
		}
		time.Sleep(5 * time.Millisecond)
	}

	resp, err = c.roundTrip(context.Background(), postReq(t, up.url()+"/pay", "amount=1"), time.Time{}, nil)
	if err != nil {
		t.Fatalf("POST after the idle connection closed: %v", err)
	}
	readAll(t, resp)
	posts := 0
	for _, h := range up.heads() {
		if strings.HasPrefix(h, "POST /pay ") {
			posts++
		}
	}
	if posts != 1 || up.accepted.Load() != 2 {
		t.Fatalf("upstream saw %d POSTs on %d connections, want 1 on a new connection", posts, up.accepted.Load())
	}
}

func TestH1ClientShortBodyIsTheClientsFault(t *testing.T) {
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse })
	req := postReq(t, up.url()+"/", "12345")
	req.ContentLength = 10 // declared more than it has
	_, err := testClient(t).roundTrip(context.Background(), req, time.Now().Add(5*time.Second), nil)
	var werr *h1WriteError
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &werr) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF (the client's), not a write error", err)
	}
}

// slowReader delivers its text in pieces, pausing before each.
type slowReader struct {
	parts []string
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	if s.parts[0] == "" {
		s.parts = s.parts[1:]
	}
	return n, nil
}

func TestH1ClientTimeoutsStartWhereTheyShould(t *testing.T) {
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse })
	// The response-header timeout (100 ms) starts once the request is written: a client
	// body that takes longer than that to arrive does not use it up.
	c := newH1Client(transportSettings{connect: time.Second, firstByte: 100 * time.Millisecond, maxIdle: 4, idleTimeout: time.Minute})
	t.Cleanup(c.CloseIdleConnections)
	req := getReq(t, up.url()+"/upload", nil)
	req.Method = http.MethodPost
	req.Body = io.NopCloser(&slowReader{parts: []string{"ab", "cd", "ef"}, pause: 80 * time.Millisecond})
	req.ContentLength = 6
	resp, err := c.roundTrip(context.Background(), req, time.Time{}, nil)
	if err != nil {
		t.Fatalf("slow 240 ms body with a 100 ms header timeout: %v", err)
	}
	readAll(t, resp)

	// A deadline of one request does not stay on the pooled connection for the next.
	hold := make(chan struct{})
	slow := startScripted(t, func(_, req int, _ string) string {
		if req == 1 {
			<-hold
		}
		return okResponse
	})
	c2 := newH1Client(transportSettings{connect: time.Second, maxIdle: 4, idleTimeout: time.Minute}) // no header timeout
	t.Cleanup(c2.CloseIdleConnections)
	resp, err = c2.roundTrip(context.Background(), getReq(t, slow.url()+"/1", nil), time.Now().Add(150*time.Millisecond), nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	time.AfterFunc(300*time.Millisecond, func() { close(hold) })
	resp, err = c2.roundTrip(context.Background(), getReq(t, slow.url()+"/2", nil), time.Time{}, nil)
	if err != nil {
		t.Fatalf("second request on the same connection, no deadline, answered after the first one's deadline: %v", err)
	}
	readAll(t, resp)
	if n := slow.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (the test is about a reused connection)", n)
	}
}

// TestH1ClientSendTimeout: the hot path's write deadline is timeout.sendMs from the start of
// the exchange, so an upstream that stops reading fails the request with a timeout (504 on
// the route) instead of holding it. The body is larger than the socket buffers (the route
// only sends up to h1MaxBody this way; the client itself takes any declared length).
func TestH1ClientSendTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // never read
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	})
	c := newH1Client(transportSettings{connect: time.Second, send: 200 * time.Millisecond, maxIdle: 4, idleTimeout: time.Minute})
	t.Cleanup(c.CloseIdleConnections)
	req := getReq(t, "http://"+ln.Addr().String()+"/upload", nil)
	req.Method = http.MethodPost
	req.ContentLength = 64 << 20
	req.Body = io.NopCloser(bytes.NewReader(make([]byte, req.ContentLength)))
	start := time.Now()
	_, err = c.roundTrip(context.Background(), req, time.Now().Add(10*time.Second), nil)
	took := time.Since(start)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a write timeout", err)
	}
	t.Logf("write timeout after %v with send 200 ms", took)
	if took < 200*time.Millisecond || took > 3*time.Second {
		t.Fatalf("failed after %v, want between sendMs (200 ms) and 3 s", took)
	}
}
