package h1engine

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core"
	"github.com/conduitproxy/conduit/core/h1guard"
)

// startWith serves h with the named engine, core.WithConnInfo as ConnContext and (engine)
// core.BeginRequest/EndRequest as the request context hooks (what
// core/server installs), returning the address and the engine server (nil for std).
func startWith(t testing.TB, engine string, h http.Handler) (string, func(context.Context) error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := h1guard.Wrap(ln, h1guard.Options{})
	var shutdown func(context.Context) error
	if engine == "conduit" {
		srv := &Server{Handler: h, ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 2 * time.Second, ConnContext: core.WithConnInfo,
			RequestContext: core.BeginRequest, EndRequestContext: core.EndRequest, ErrorLog: quietLog}
		go func() { _ = srv.Serve(gl) }()
		t.Cleanup(func() { _ = srv.Close() })
		shutdown = srv.Shutdown
	} else {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 2 * time.Second, ConnContext: core.WithConnInfo, ErrorLog: quietLog}
		go func() { _ = srv.Serve(gl) }()
		t.Cleanup(func() { _ = srv.Close() })
		shutdown = srv.Shutdown
	}
	return ln.Addr().String(), shutdown
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// gone is a core.ClientWatcher that closes its channel.
type gone chan struct{}

func (g gone) ClientGone() { close(g) }

// TestClientGone: a client that closes, or half-closes, while its request is served
// cancels the request context and reaches a core.WatchClient watcher; a client that
// half-closes behind a pipelined request does not cancel the first one.
func TestClientGone(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			started := make(chan struct{}, 4)
			result := make(chan string, 4)
			addr, _ := startWith(t, engine, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				g := make(gone)
				watched := core.WatchClient(r, g)
				started <- struct{}{}
				if r.URL.Path == "/quick" {
					_, _ = io.WriteString(w, "q")
					return
				}
				select {
				case <-r.Context().Done():
					if watched {
						select {
						case <-g:
						case <-time.After(2 * time.Second):
							result <- "context cancelled, watcher not told"
							return
						}
					}
					result <- "cancelled"
				case <-time.After(3 * time.Second):
					result <- "not cancelled"
					_, _ = io.WriteString(w, "late")
				}
				if watched {
					core.UnwatchClient(r, g)
				}
			}))
			for _, mode := range []string{"close", "half-close"} {
				c := dial(t, addr)
				_, _ = io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
				<-started
				if mode == "close" {
					c.Close()
				} else {
					_ = c.(*net.TCPConn).CloseWrite()
				}
				if got := <-result; got != "cancelled" {
					t.Errorf("%s: %s", mode, got)
				}
			}
			// Pipelined: the half-close comes behind a second request, so the first is not
			// cancelled (its answer is read), then the second one is.
			c := dial(t, addr)
			_, _ = io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: a\r\n\r\nGET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
			_ = c.(*net.TCPConn).CloseWrite()
			<-started
			<-started
			if got := <-result; got != "cancelled" {
				t.Errorf("pipelined second: %s", got)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("pipelined first: %v %v", resp, err)
			}
		})
	}
}

// TestHijack: a handler that hijacks gets the bytes the client sent behind the request, and
// the connection is its own (as for a WebSocket upgrade).
func TestHijack(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			addr, _ := startWith(t, engine, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				nc, rw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer nc.Close()
				h1guard.Passthrough(nc)
				_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
				_ = rw.Flush()
				line, _ := rw.ReadString('\n')
				_, _ = rw.WriteString("echo:" + line)
				_ = rw.Flush()
			}))
			c := dial(t, addr)
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n\x81hello\n")
			out, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(out), "HTTP/1.1 101 ") || !strings.HasSuffix(string(out), "echo:\x81hello\n") {
				t.Fatalf("got %q", out)
			}
		})
	}
}

// TestShutdown: Shutdown closes idle connections at once and lets a request in flight
// finish.
func TestShutdown(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			inside := make(chan struct{})
			release := make(chan struct{})
			addr, shutdown := startWith(t, engine, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					close(inside)
					<-release
				}
				_, _ = io.WriteString(w, "done")
			}))
			idle := dial(t, addr)
			_, _ = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			ibr := bufio.NewReader(idle)
			if resp, err := http.ReadResponse(ibr, nil); err != nil || resp.StatusCode != 200 {
				t.Fatal(resp, err)
			} else {
				_, _ = io.ReadAll(resp.Body)
			}
			busy := dial(t, addr)
			_, _ = io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
			<-inside
			done := make(chan error, 1)
			go func() { done <- shutdown(context.Background()) }()
			// The idle connection is closed by the server.
			if _, err := ibr.ReadByte(); err == nil {
				t.Error("idle connection still open")
			}
			close(release)
			resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if string(body) != "done" {
				t.Errorf("in-flight: %q", body)
			}
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

// TestReadHeaderTimeout: a head that stops arriving closes the connection after the timeout.
func TestReadHeaderTimeout(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			addr, _ := startWith(t, engine, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			c := dial(t, addr)
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost:")
			start := time.Now()
			_, err := c.Read(make([]byte, 1))
			if err == nil || time.Since(start) > 5*time.Second {
				t.Fatalf("read: %v after %v", err, time.Since(start))
			}
		})
	}
}

// TestResponseController: deadlines, full duplex and flush through
// http.ResponseController; a read deadline in the past fails the body read.
func TestResponseController(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			var readErr atomic.Value
			addr, _ := startWith(t, engine, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rc := http.NewResponseController(w)
				if err := rc.EnableFullDuplex(); err != nil {
					t.Error(err)
				}
				if err := rc.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
					t.Error(err)
				}
				_, _ = io.WriteString(w, "early ")
				if err := rc.Flush(); err != nil {
					t.Error(err)
				}
				if err := rc.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
					t.Error(err)
				}
				_, err := io.ReadAll(r.Body)
				readErr.Store(err)
				_, _ = io.WriteString(w, "late")
			}))
			c := dial(t, addr)
			_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if string(body) != "early late" {
				t.Errorf("body %q", body)
			}
			if err, _ := readErr.Load().(error); !errors.Is(err, errors.Unwrap(err)) || err == nil {
				t.Errorf("body read after a past deadline: %v", err)
			}
		})
	}
}

// TestTimeoutsBounded: with the read deadline re-armed at most once per slack
// (armReadDeadline), the idle timeout still closes a keep-alive connection after its last
// request, and the header timeout a head that stops arriving, no earlier than the timeout
// and at most the slack (min(1s, timeout/4)) plus scheduling later.
func TestTimeoutsBounded(t *testing.T) {
	const idle, header = 800 * time.Millisecond, 400 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ReadHeaderTimeout: header, IdleTimeout: idle, ErrorLog: quietLog}
	go func() { _ = srv.Serve(h1guard.Wrap(ln, h1guard.Options{})) }()
	t.Cleanup(func() { _ = srv.Close() })
	closedAfter := func(br *bufio.Reader, start time.Time) time.Duration {
		t.Helper()
		if _, err := br.ReadByte(); err == nil {
			t.Fatal("the server sent more than its responses")
		}
		return time.Since(start)
	}
	check := func(what string, got, timeout time.Duration) {
		t.Helper()
		if got < timeout || got > timeout+deadlineSlack(timeout)+300*time.Millisecond {
			t.Errorf("%s timeout %v closed the connection after %v", what, timeout, got)
		}
	}
	t.Run("idle", func(t *testing.T) {
		c := dial(t, ln.Addr().String())
		br := bufio.NewReader(c)
		var last time.Time
		// Requests spread over more than one slack, so that the deadline is re-armed.
		for i := 0; i < 6; i++ {
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			last = time.Now()
			time.Sleep(100 * time.Millisecond)
		}
		check("idle", closedAfter(br, last), idle)
	})
	t.Run("header", func(t *testing.T) {
		c := dial(t, ln.Addr().String())
		br := bufio.NewReader(c)
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHo")
		check("header", closedAfter(br, time.Now()), header)
	})
}
