package tcp_test

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// blackhole returns the address of a loopback socket that listens with a backlog of 0 and
// never accepts: once its queue is full, the kernel drops further SYNs, so a connect there
// waits until its timeout.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue.
	for range 3 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		_ = c.Close()
		t.Skip("this kernel accepted a connection beyond the listen queue; cannot make a connect time out")
	}
	return addr
}

func TestConnectTimeout(t *testing.T) {
	hole := blackhole(t)
	var logs testtool.LogBuffer
	srv := servertest.StartLogged(t, site(9000, fmt.Sprintf("targets: [%q]\nconnectTimeoutMs: 300", hole)), slog.New(slog.NewTextHandler(&logs, nil)))
	c := dial(t, srv.HostPort(9000))
	d := closedWithin(t, c, 5*time.Second)
	if d < 250*time.Millisecond || d > 2*time.Second {
		t.Fatalf("client closed after %v; want about connectTimeoutMs (300ms)", d)
	}
	waitFor(t, func() bool {
		s := logs.String()
		return strings.Contains(s, "tcp target marked down") && strings.Contains(s, "i/o timeout") && strings.Contains(s, "no target answered")
	}, "the connect timeout in the log: "+logs.String())
}
