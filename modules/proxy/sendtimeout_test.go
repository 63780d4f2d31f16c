package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// stalledUpstream is a raw TCP upstream that accepts connections and never reads from
// them, so a large request body fills the socket buffers and the proxy's write blocks.
func stalledUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// postLarge sends a POST with a declared body of n bytes on a raw connection and returns
// the response status and how long it took, or fails after limit. The body is written from
// another goroutine (its errors are expected: the proxy answers before reading it all).
func postLarge(t *testing.T, addr string, n int, limit time.Duration) (int, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(limit))
	start := time.Now()
	if _, err := fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", n); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(c, io.LimitReader(zeros{}, int64(n))) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response within %v: %v", limit, err)
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestSendTimeoutAgainstAStalledUpstream: timeout.sendMs bounds writing the request to an
// upstream that stops reading; the answer is 504, as for the other upstream timeouts. The
// 64 MiB body goes through net/http's Transport (the hot path takes at most 64 KiB, see
// TestH1ClientSendTimeout for its deadline).
func TestSendTimeoutAgainstAStalledUpstream(t *testing.T) {
	up := stalledUpstream(t)
	srv := servertest.Start(t, fmt.Sprintf(`
port: 8080
limits: { maxBodyBytes: 1073741824 }
proxy:
  /: { targets: [%q], timeout: { sendMs: 300, readMs: 60000 } }
`, up))
	status, took := postLarge(t, srv.HostPort(8080), 64<<20, 10*time.Second)
	if status != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", status)
	}
	t.Logf("504 after %v with sendMs 300", took)
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("answered after %v, want between sendMs (300 ms) and 5 s", took)
	}
}

// TestSendTimeoutValidation: sendMs is a number of milliseconds.
func TestSendTimeoutValidation(t *testing.T) {
	_, d, err := servertest.Build(`{"proxy":{"/api":{"targets":["http://a:1"],"timeout":{"sendMs":"soon"}}}}`, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := d.Err(); e == nil || !strings.Contains(e.Error(), "error at proxy./api.timeout.sendMs") {
		t.Fatalf("got %v, want an error at proxy./api.timeout.sendMs", e)
	}
}
