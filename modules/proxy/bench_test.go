package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
)

// benchBody is the upstream's response body: 128 bytes, as the bench harness's nginx.
var benchBody = strings.Repeat("x", 128)

// rawUpstream is a real HTTP/1.1 upstream on 127.0.0.1 that answers every request on a
// keep-alive connection with a fixed 200 and benchBody, reading requests with no
// allocation per request, so that a benchmark's allocations are the proxy's.
func rawUpstream(tb testing.TB) string {
	tb.Helper()
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(benchBody)) + "\r\n\r\n" + benchBody)
	return listenRaw(tb, func(c net.Conn) { serveRaw(c, resp) })
}

// listenRaw listens on 127.0.0.1 and serves each accepted connection with serve in its own
// goroutine until the test ends; it returns the http:// URL.
func listenRaw(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return "http://" + ln.Addr().String()
}

// serveRaw answers each bodyless request head read from c with resp.
func serveRaw(c net.Conn, resp []byte) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 16<<10)
	for {
		// A request head ends at an empty line; the benchmark sends no bodies.
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// BenchmarkProxyKeepAliveGET measures one keep-alive GET through the whole server (engine,
// pipeline, proxy handler) to a real upstream on 127.0.0.1, as the bench harness's plain
// proxy row does. allocs/op counts the whole process; the client and upstream add none
// per request (fixed byte slices, bufio). gc/10k-req is the collector's cycles per 10,000
// requests (under the test binary's GOGC, not conduit run's heap floor). cpu-ns/req is
// the process's user and system CPU time per request (client, proxy and upstream: the
// client's and upstream's share is the same in every build), steadier than ns/op on a
// shared machine.
func BenchmarkProxyKeepAliveGET(b *testing.B) {
	up := rawUpstream(b)
	srv := servertest.Start(b, fmt.Sprintf("port: 8080\nproxy: %q\n", up))
	c, err := net.Dial("tcp", srv.HostPort(8080))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bench?x=1 HTTP/1.1\r\nHost: " + srv.HostPort(8080) +
		"\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 16<<10)
	body := make([]byte, len(benchBody))
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		status, err := br.ReadSlice('\n')
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
			b.Fatalf("status line %q", status)
		}
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
		if n != len(benchBody) {
			b.Fatalf("Content-Length %d", n)
		}
		if _, err := io.ReadFull(br, body); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ { // warm the pools and the upstream connection
		roundTrip()
	}
	if string(body) != benchBody {
		b.Fatalf("body %q", body)
	}
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip()
	}
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.NumGC-before.NumGC)*10000/float64(b.N), "gc/10k-req")
	if cpu0 >= 0 {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/req")
	}
}
