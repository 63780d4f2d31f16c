package h1engine

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/h1guard"
)

// engines are the two HTTP/1 servers the tests compare.
var engines = []string{"conduit", "std"}

// closes counts the connections a test server closed, so that a test can wait until the
// server is done with a connection (its handler returned).
type closes struct {
	mu sync.Mutex
	n  int
}

func (c *closes) hook(_ net.Conn, st http.ConnState) {
	if st == http.StateClosed || st == http.StateHijacked {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
}

func (c *closes) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// waitAbove waits until more than n connections were closed, at most 5 seconds.
func (c *closes) waitAbove(n int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for c.count() <= n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// startEngine serves h on 127.0.0.1:0 behind the framing guard with the named engine.
func startEngine(t testing.TB, engine string, h http.Handler, opts h1guard.Options) (addr string) {
	addr, _ = startCounted(t, engine, h, opts)
	return addr
}

// startCounted is startEngine that also counts closed connections.
func startCounted(t testing.TB, engine string, h http.Handler, opts h1guard.Options) (addr string, cl *closes) {
	t.Helper()
	cl = &closes{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := h1guard.Wrap(ln, opts)
	switch engine {
	case "conduit":
		srv := &Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, ConnState: cl.hook, ErrorLog: quietLog,
			RequestContext: core.BeginRequest, EndRequestContext: core.EndRequest} // as core/server
		go func() { _ = srv.Serve(gl) }()
		t.Cleanup(func() { _ = srv.Close() })
	default:
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, ConnState: cl.hook, ErrorLog: quietLog}
		go func() { _ = srv.Serve(gl) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return ln.Addr().String(), cl
}

// quietLog drops the servers' logs (superfluous WriteHeader and the like).
var quietLog = log.New(io.Discard, "", 0)

// rawExchange writes raw on a new connection, half-closes it when half is set, and returns
// everything read until the server closes or the deadline passes.
func rawExchange(t testing.TB, addr string, raw []byte, half bool, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	if half {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	out, _ := io.ReadAll(c)
	return out
}

// readResponses parses the responses in raw (methods[i] is the method of request i, for
// HEAD), stopping at the first that does not parse.
func readResponses(raw []byte, methods []string) []*http.Response {
	br := bufio.NewReader(bytesReader(raw))
	var out []*http.Response
	for i := 0; ; i++ {
		var req *http.Request
		if i < len(methods) {
			req = &http.Request{Method: methods[i]}
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return out
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytesReader(body))
		out = append(out, resp)
		if err != nil {
			return out
		}
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
