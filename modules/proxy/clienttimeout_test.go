package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// upstreamBody is what the upstream saw of a request body: how many bytes, and how the read
// ended.
type upstreamBody struct {
	n   int64
	err error
}

// TestClientBodyTimeouts sends request bodies over a raw socket on a schedule and checks that
// global.clientBodyTimeoutMs and limits.minUploadRateBytesPerSec cut slow ones with 408 (and
// end the upstream's request), while a slow but steady upload passes.
func TestClientBodyTimeouts(t *testing.T) {
	const big = 4 << 20 // larger than limits.maxBodyBufferBytes: the body streams to the upstream
	cases := []struct {
		name     string
		limits   string
		declared int           // Content-Length
		chunks   int           // chunks actually sent
		chunk    int           // bytes per chunk
		every    time.Duration // pause before each chunk after the first
		want     int
	}{
		// A client that sends 10 bytes and stalls.
		{name: "stall", declared: big, chunks: 1, chunk: 10, want: 408},
		// One byte every 600 ms: progress, but slower than the 300 ms body timeout.
		{name: "trickle slower than the timeout", declared: big, chunks: 20, chunk: 1, every: 600 * time.Millisecond, want: 408},
		// One byte every 50 ms (20 B/s) never waits 300 ms, but is below 1000 B/s.
		{name: "below minUploadRateBytesPerSec", limits: "limits: { minUploadRateBytesPerSec: 1000 }", declared: big, chunks: 200, chunk: 1, every: 50 * time.Millisecond, want: 408},
		// 100 bytes every 100 ms (1000 B/s) for one second: within both limits.
		{name: "slow but steady", limits: "limits: { minUploadRateBytesPerSec: 200 }", declared: 1000, chunks: 10, chunk: 100, every: 100 * time.Millisecond, want: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan upstreamBody, 1)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, err := io.Copy(io.Discard, r.Body)
				seen <- upstreamBody{n, err}
			}))
			t.Cleanup(up.Close)
			srv := servertest.Start(t, fmt.Sprintf("global: { clientBodyTimeoutMs: 300 }\nsites:\n  - port: 8080\n    proxy: %q\n    %s\n", up.URL, tc.limits))
			conn, err := net.Dial("tcp", srv.HostPort(8080))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", tc.declared)
			lastSent := make(chan time.Time, tc.chunks)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := range tc.chunks {
					if i > 0 {
						select {
						case <-time.After(tc.every):
						case <-stop:
							return
						}
					}
					if _, err := conn.Write([]byte(strings.Repeat("x", tc.chunk))); err != nil {
						return
					}
					lastSent <- time.Now()
				}
			}()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			answered := time.Now()
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			var last time.Time
			for len(lastSent) > 0 {
				last = <-lastSent
			}
			select {
			case got := <-seen:
				if tc.want == 200 {
					if got.err != nil || got.n != int64(tc.declared) {
						t.Fatalf("upstream read %d bytes, err %v; want all %d", got.n, got.err, tc.declared)
					}
					return
				}
				if got.err == nil || got.n >= int64(tc.declared) {
					t.Fatalf("upstream read %d bytes, err %v; want its request ended early", got.n, got.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream's request was not ended")
			}
			if wait := answered.Sub(last); tc.name != "below minUploadRateBytesPerSec" && (wait < 300*time.Millisecond || wait > 2*time.Second) {
				t.Fatalf("answered %v after the last byte, want between the 300 ms timeout and 2 s", wait)
			}
		})
	}
}

// TestClientBodyTimeoutHTTP2 stalls a request body on an h2c stream: the stream's read
// deadline cuts it with 408 as on HTTP/1, and the upstream's request ends.
func TestClientBodyTimeoutHTTP2(t *testing.T) {
	seen := make(chan upstreamBody, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		seen <- upstreamBody{n, err}
	}))
	t.Cleanup(up.Close)
	srv := servertest.Start(t, fmt.Sprintf("global: { clientBodyTimeoutMs: 300 }\nsites:\n  - port: 8080\n    http2: { h2c: true }\n    proxy: %q\n", up.URL))
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: protos}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	body, feed := io.Pipe()
	defer feed.Close()
	go func() { _, _ = feed.Write([]byte("0123456789")) }() // then nothing
	start := time.Now()
	resp, err := client.Post(srv.URL(8080)+"/upload", "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("HTTP/%d %d, want HTTP/2 408", resp.ProtoMajor, resp.StatusCode)
	}
	if wait := time.Since(start); wait > 3*time.Second {
		t.Fatalf("answered after %v", wait)
	}
	select {
	case got := <-seen:
		if got.err == nil {
			t.Fatalf("upstream read %d bytes and a clean end; want its request ended early", got.n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream's request was not ended")
	}
}
