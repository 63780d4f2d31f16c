package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The h1Client keeps a connection's read deadline when the next exchange asks for one
// within deadlineSlack of it (h1client.go, setDeadline). These tests check that the
// first-byte timeout still ends a stalled exchange on a reused connection, that a body
// slower than the first-byte timeout is not cut by the deadline left from its head, and
// that a header deadline gone by while the connection idled does not fail the liveness
// check of a request that cannot be retried.

func TestH1ClientFirstByteTimeoutOnAReusedConnection(t *testing.T) {
	const fast = 20
	release := make(chan struct{})
	up := startScripted(t, func(_, req int, _ string) string {
		if req == fast {
			<-release // stall: only the first-byte timeout can end this exchange
			return ""
		}
		return okResponse
	})
	t.Cleanup(func() { close(release) }) // before the upstream's cleanup waits for its handlers
	const firstByte = 300 * time.Millisecond
	c := newH1Client(transportSettings{connect: time.Second, firstByte: firstByte, maxIdle: 4, idleTimeout: time.Minute})
	t.Cleanup(c.CloseIdleConnections)
	for i := 0; i < fast; i++ {
		resp, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := readAll(t, resp); got != "ok" {
			t.Fatalf("request %d: body %q", i, got)
		}
	}
	start := time.Now()
	_, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, nil)
	elapsed := time.Since(start)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stalled exchange: err = %v, want a timeout", err)
	}
	if early := firstByte - firstByte/deadlineSlack; elapsed < early || elapsed > 3*firstByte {
		t.Fatalf("stalled exchange ended after %v, want about %v", elapsed, firstByte)
	}
	if n := up.accepted.Load(); n != 1 {
		t.Fatalf("upstream accepted %d connections, want 1", n)
	}
}

func TestH1ClientBodySlowerThanTheFirstByteTimeout(t *testing.T) {
	// Each answer is the head and half the body; the test writes the other half on the
	// upstream's side of the connection after twice the first-byte timeout.
	up := startScripted(t, func(_, _ int, _ string) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"
	})
	const firstByte = 200 * time.Millisecond
	c := newH1Client(transportSettings{connect: time.Second, firstByte: firstByte, maxIdle: 4, idleTimeout: time.Minute})
	t.Cleanup(c.CloseIdleConnections)
	for i := 0; i < 2; i++ {
		resp, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		time.AfterFunc(2*firstByte, func() {
			up.conns.Range(func(_, c any) bool {
				_, _ = io.WriteString(c.(net.Conn), "cd")
				return true
			})
		})
		if got := readAll(t, resp); got != "abcd" {
			t.Fatalf("request %d: body %q, want abcd", i, got)
		}
	}
	if n := up.accepted.Load(); n != 1 {
		t.Fatalf("upstream accepted %d connections, want 1", n)
	}
}

func TestH1ClientLivenessCheckAfterTheHeaderDeadlinePassed(t *testing.T) {
	if !canCheckAlive {
		t.Skip("no liveness check on this platform")
	}
	up := startScripted(t, func(_, _ int, _ string) string { return okResponse })
	const firstByte = 100 * time.Millisecond
	c := newH1Client(transportSettings{connect: time.Second, firstByte: firstByte, maxIdle: 4, idleTimeout: time.Minute})
	t.Cleanup(c.CloseIdleConnections)
	resp, err := c.roundTrip(context.Background(), getReq(t, up.url()+"/", nil), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	time.Sleep(3 * firstByte) // the head's read deadline, still on the idle connection, passes
	req := getReq(t, up.url()+"/", nil)
	req.Method = http.MethodPost
	req.Body = io.NopCloser(strings.NewReader("x"))
	req.ContentLength = 1
	resp, err = c.roundTrip(context.Background(), req, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "ok" {
		t.Fatalf("body %q", got)
	}
	if n := up.accepted.Load(); n != 1 {
		t.Fatalf("upstream accepted %d connections, want 1 (the idle one passes the liveness check)", n)
	}
}
