package evloop

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream is a real net/http server with one handler per framing the proxy relays; each
// connection it closes is signalled on closed when that is not nil.
func upstream(t *testing.T, closed ...chan struct{}) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/cl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "hello")
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for _, part := range []string{"one ", "two ", "three"} {
			_, _ = io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "13")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(bigBody(n))
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host+" "+r.Header.Get("Connection"))
	})
	up := httptest.NewUnstartedServer(mux)
	if len(closed) > 0 {
		up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				closed[0] <- struct{}{}
			}
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	return up
}

func bigBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// serve starts a proxy with n loops in front of upstream and stops it at the end of the test.
func serve(t *testing.T, upstream string, n int) string {
	t.Helper()
	s, err := Listen("127.0.0.1:0", upstream, n)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return s.Addr()
}

// rawConn is one client connection with a deadline on every exchange.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// response reads one response to a request with the given method.
func (r *rawConn) response(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp, string(body)
}

func TestKeepAliveAndFramings(t *testing.T) {
	up := upstream(t)
	addr := serve(t, up.Listener.Addr().String(), 1)
	c := dial(t, addr)
	for i := range 50 {
		c.send("GET /cl HTTP/1.1\r\nHost: a.test\r\n\r\n")
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello" || resp.Close {
			t.Fatalf("request %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
	}
	c.send("GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n")
	resp, body := c.response("GET")
	if body != "one two three" || len(resp.TransferEncoding) != 1 || resp.Trailer.Get("X-Sum") != "13" {
		t.Fatalf("chunked: %q %v trailer %v", body, resp.TransferEncoding, resp.Trailer)
	}
	c.send("HEAD /cl HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if resp, body := c.response("HEAD"); resp.StatusCode != 200 || body != "" || resp.ContentLength != 5 {
		t.Fatalf("HEAD: %d %q %d", resp.StatusCode, body, resp.ContentLength)
	}
	c.send("GET /nocontent HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 204 {
		t.Fatalf("204: %d", resp.StatusCode)
	}
	c.send("GET /host HTTP/1.1\r\nHost: b.test\r\nConnection: keep-alive\r\n\r\n")
	if _, body := c.response("GET"); body != "b.test " {
		t.Fatalf("host and hop-by-hop fields: %q, want the client's Host and no Connection", body)
	}
}

func TestPipelinedRequests(t *testing.T) {
	up := upstream(t)
	c := dial(t, serve(t, up.Listener.Addr().String(), 1))
	c.send(strings.Repeat("GET /cl HTTP/1.1\r\nHost: a.test\r\n\r\n", 3) + "GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n")
	for i := range 3 {
		if _, body := c.response("GET"); body != "hello" {
			t.Fatalf("pipelined %d: %q", i, body)
		}
	}
	if _, body := c.response("GET"); body != "one two three" {
		t.Fatalf("pipelined chunked: %q", body)
	}
}

func TestBodiesBothWays(t *testing.T) {
	up := upstream(t)
	addr := serve(t, up.Listener.Addr().String(), 2)
	client := &http.Client{Timeout: 20 * time.Second}
	body := bigBody(3<<20 + 7)
	sum := sha256.Sum256(body)
	resp, err := client.Post("http://"+addr+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", len(body), sum); string(got) != want {
		t.Fatalf("POST echo: %q, want %q", got, want)
	}
	resp, err = client.Get("http://" + addr + "/big?n=" + strconv.Itoa(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("large download: %d bytes (%v), want %d identical", len(got), err, len(body))
	}
}

func TestConcurrentClientsOnTwoLoops(t *testing.T) {
	up := upstream(t)
	addr := serve(t, up.Listener.Addr().String(), 2)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				resp, err := client.Get("http://" + addr + "/cl")
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "hello" {
					errs <- fmt.Errorf("body %q", b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestUpstreamClosesConnections(t *testing.T) {
	closed := make(chan struct{}, 64)
	up := upstream(t, closed)
	c := dial(t, serve(t, up.Listener.Addr().String(), 1))
	c.send("GET /close HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if resp, body := c.response("GET"); body != "bye" || resp.Close {
		t.Fatalf("Connection: close from the upstream: %q close=%v (the client connection stays open)", body, resp.Close)
	}
	<-closed
	c.send("GET /cl HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if _, body := c.response("GET"); body != "hello" {
		t.Fatalf("after an upstream close: %q", body)
	}
	up.CloseClientConnections() // the pooled connection goes stale
	<-closed
	for i := range 3 {
		c.send("GET /cl HTTP/1.1\r\nHost: a.test\r\n\r\n")
		if _, body := c.response("GET"); body != "hello" {
			t.Fatalf("request %d after the pool went stale: %q", i, body)
		}
	}
}

func TestClientHalfClose(t *testing.T) {
	up := upstream(t)
	c := dial(t, serve(t, up.Listener.Addr().String(), 1))
	c.send("GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, body := c.response("GET"); body != "one two three" {
		t.Fatalf("after the client's half-close: %q, want the whole answer", body)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v, want EOF (the proxy closes the connection)", err)
	}
}

func TestRefusals(t *testing.T) {
	up := upstream(t)
	addr := serve(t, up.Listener.Addr().String(), 1)
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"HTTP/1.0", "GET /cl HTTP/1.0\r\n\r\n", 505},
		{"no Host", "GET /cl HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET /cl HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"request Transfer-Encoding", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"bad Content-Length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
		{"space before colon", "GET /cl HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"obs-fold", "GET /cl HTTP/1.1\r\nHost: a\r\n X: b\r\n\r\n", 400},
		{"head too large", "GET /cl HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", maxHead) + "\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(tc.req)
			resp, _ := c.response("GET")
			if resp.StatusCode != tc.status || !resp.Close {
				t.Fatalf("%d close=%v, want %d and the connection closed", resp.StatusCode, resp.Close, tc.status)
			}
			if _, err := c.br.ReadByte(); err != io.EOF {
				t.Fatalf("after the refusal: %v, want EOF", err)
			}
		})
	}
}

func TestUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	c := dial(t, serve(t, addr, 1))
	c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 502 {
		t.Fatalf("%d, want 502", resp.StatusCode)
	}
}

func TestChunkScanner(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int // bytes of the body
		done bool
		err  bool
	}{
		{"5\r\nhello\r\n0\r\n\r\n", 15, true, false},
		{"5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET", 29, true, false},
		{"5 \t;x\r\nhello\r\n0 \r\n\r\n", 20, true, false},
		{"5 x\r\n", 2, false, true},
		{"A\r\n0123456789\r\n0\r\n\r\n", 20, true, false},
		{"5\r\nhel", 6, false, false},
		{"0\r\n\r", 4, false, false},
		{"\r\n", 0, false, true},
		{"g\r\n", 0, false, true},
		{"5\nhello", 1, false, true},
		{"5\r\nhelloX", 8, false, true},
		{"1000000000000000\r\n", 15, false, true},
		{"0\r\nX\n", 4, false, true},
	} {
		var s chunkScanner
		n, done, err := s.scan([]byte(tc.in))
		if n != tc.n || done != tc.done || (err != nil) != tc.err {
			t.Errorf("%q: n=%d done=%v err=%v, want n=%d done=%v err=%v", tc.in, n, done, err, tc.n, tc.done, tc.err)
		}
	}
}

// FuzzChunkScanner checks that feeding a body in two pieces finds the same end as feeding it
// whole, and that a body it accepts decodes with net/http's chunked reader.
func FuzzChunkScanner(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), 3)
	f.Add([]byte("1;a=b\r\nx\r\n0\r\n\r\n"), 0)
	f.Fuzz(func(t *testing.T, p []byte, cut int) {
		if len(p) > 4096 { // below net/http's limit on chunk-extension overhead
			return
		}
		var whole chunkScanner
		n1, done1, err1 := whole.scan(p)
		cut = min(max(cut, 0), len(p))
		var split chunkScanner
		a, doneA, errA := split.scan(p[:cut])
		n2, done2, err2 := a, doneA, errA
		if errA == nil && !doneA {
			b, doneB, errB := split.scan(p[cut:])
			n2, done2, err2 = a+b, doneB, errB
		}
		if n1 != n2 || done1 != done2 || (err1 != nil) != (err2 != nil) {
			t.Fatalf("whole: %d %v %v; split at %d: %d %v %v", n1, done1, err1, cut, n2, done2, err2)
		}
		if done1 {
			r := bufio.NewReader(bytes.NewReader(p[:n1]))
			if _, err := io.ReadAll(httputil.NewChunkedReader(r)); err != nil {
				t.Fatalf("accepted %q, net/http's chunked reader says %v", p[:n1], err)
			}
		}
	})
}
