package tcp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/config"
	"github.com/conduitproxy/conduit/core/server"
	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/server/tlstest"
	"github.com/conduitproxy/conduit/core/testtool"

	_ "github.com/conduitproxy/conduit/modules/health"
	_ "github.com/conduitproxy/conduit/modules/ipfilter"
	_ "github.com/conduitproxy/conduit/modules/metrics"
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/tcp"
)

// upstream is a raw TCP listener on 127.0.0.1 that runs serve for every connection; it
// closes when the test ends.
func upstream(t *testing.T, serve func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(60 * time.Second))
				serve(c.(*net.TCPConn))
			}()
		}
	}()
	return ln.Addr().String()
}

// echo copies what it reads back until the client's EOF, then half-closes: the client's FIN
// must reach it while the answer still flows back.
func echo(c *net.TCPConn) {
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
}

// tagged answers every read with tag followed by what it read.
func tagged(tag string) func(c *net.TCPConn) {
	return func(c *net.TCPConn) {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(append([]byte(tag), buf[:n]...)); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
}

func site(port int, tcp string) string {
	return fmt.Sprintf("port: %d\ntcp:\n%s", port, indent(tcp))
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// exchange writes msg and reads len(want) bytes back.
func exchange(t *testing.T, c net.Conn, msg, want string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading %q: %v (got %q)", want, err, got)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// closedWithin asserts that the server closes c (EOF or reset, no data) within d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	n, err := c.Read(make([]byte, 1))
	if n > 0 {
		t.Fatalf("read %d unexpected bytes", n)
	}
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection still open after %v (err %v)", d, err)
	}
	return time.Since(start)
}

func TestEchoAndClientHalfClose(t *testing.T) {
	up := upstream(t, echo)
	srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]", up)))
	c := dial(t, srv.HostPort(9000))
	exchange(t, c, "ping\n", "ping\n")
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	// The client's FIN must reach the upstream while its answer still comes back.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "last words" {
		t.Fatalf("after half-close got %q, %v; want the echo then EOF", rest, err)
	}
}

func TestUpstreamHalfCloseKeepsClientDirection(t *testing.T) {
	got := make(chan string, 1)
	up := upstream(t, func(c *net.TCPConn) {
		_, _ = c.Write([]byte("banner\n"))
		_ = c.CloseWrite() // the upstream is done talking, not listening
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]", up)))
	c := dial(t, srv.HostPort(9000))
	b, err := io.ReadAll(c) // the banner, then the upstream's FIN
	if err != nil || string(b) != "banner\n" {
		t.Fatalf("got %q, %v", b, err)
	}
	if _, err := c.Write([]byte("still sending after your FIN")); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	select {
	case s := <-got:
		if s != "still sending after your FIN" {
			t.Fatalf("upstream read %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never got the client's bytes and FIN")
	}
}

func TestLargeTransferChecksums(t *testing.T) {
	size := int64(128 << 20)
	if testing.Short() {
		size = 16 << 20
	}
	up := upstream(t, echo)
	srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]", up)))
	c := dial(t, srv.HostPort(9000))
	_ = c.SetDeadline(time.Now().Add(120 * time.Second))
	sent := sha256.New()
	errc := make(chan error, 1)
	go func() {
		rng := rand.NewChaCha8([32]byte{1, 2, 3})
		_, err := io.Copy(io.MultiWriter(c, sent), io.LimitReader(rng, size))
		if err == nil {
			err = c.CloseWrite()
		}
		errc <- err
	}()
	recv := sha256.New()
	n, err := io.Copy(recv, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(sent.Sum(nil), recv.Sum(nil)) {
		t.Fatalf("received %d bytes, checksum match %v; sent %d", n, bytes.Equal(sent.Sum(nil), recv.Sum(nil)), size)
	}
}

func TestUpstreamDownClosesClientAndLogs(t *testing.T) {
	dead := testtool.FreePort(t) // nothing listens there
	var logs testtool.LogBuffer
	srv := servertest.StartLogged(t, site(9000, fmt.Sprintf("targets: [\"127.0.0.1:%d\"]", dead)), slog.New(slog.NewTextHandler(&logs, nil)))
	c := dial(t, srv.HostPort(9000))
	if d := closedWithin(t, c, 3*time.Second); d > 2*time.Second {
		t.Fatalf("client closed after %v; want promptly", d)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "no target answered") }, "the log line for a connection without upstream: "+logs.String())
}

func TestFailoverAndRoundRobin(t *testing.T) {
	a := upstream(t, tagged("A"))
	b := upstream(t, tagged("B"))
	dead := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t))
	srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q, %q, %q]\nfailTimeoutMs: 60000", a, dead, b)))
	var got []string
	for range 6 {
		c := dial(t, srv.HostPort(9000))
		_, _ = c.Write([]byte("x"))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		got = append(got, string(buf[:1]))
		_ = c.Close()
	}
	// The dead target fails over to the next one and is then skipped: A, B (failover), then
	// the rotation over the live ones.
	if strings.Join(got, "") != "ABABAB" {
		t.Fatalf("targets chosen %v; want the live ones in turn", got)
	}
}

func TestProxyProtocolHeaderBytes(t *testing.T) {
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			hdr := make(chan []byte, 1)
			up := upstream(t, func(c *net.TCPConn) {
				want := 0
				if v == "v1" {
					// Byte by byte: what follows the header line is the client's.
					var line []byte
					b := make([]byte, 1)
					for len(line) < 107 && (len(line) == 0 || line[len(line)-1] != '\n') {
						if _, err := c.Read(b); err != nil {
							break
						}
						line = append(line, b[0])
					}
					hdr <- line
				} else {
					want = 16 + 12
					b := make([]byte, want)
					_, _ = io.ReadFull(c, b)
					hdr <- b
				}
				echo(c)
			})
			srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]\nproxyProtocol: %s", up, v)))
			c := dial(t, srv.HostPort(9000))
			exchange(t, c, "after the header", "after the header")
			got := <-hdr
			client := c.LocalAddr().(*net.TCPAddr)
			front := c.RemoteAddr().(*net.TCPAddr)
			var want []byte
			if v == "v1" {
				want = []byte(fmt.Sprintf("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n", client.Port, front.Port))
			} else {
				want = []byte{0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
					0x21,       // version 2, PROXY
					0x11,       // TCP over IPv4
					0x00, 0x0c, // 12 address bytes
					127, 0, 0, 1, 127, 0, 0, 1,
					byte(client.Port >> 8), byte(client.Port), byte(front.Port >> 8), byte(front.Port)}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("header\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestTLSTermination(t *testing.T) {
	ca := tlstest.NewCA(t, "tcp test CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "db.test").Write(t, dir, "db")
	up := upstream(t, echo)
	srv := servertest.Start(t, fmt.Sprintf("port: 9443\ntls: {cert: %q, key: %q}\ntcp:\n  targets: [%q]\n", cert, key, up))
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.HostPort(9443),
		&tls.Config{RootCAs: ca.Pool(), ServerName: "db.test", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if p := c.ConnectionState().NegotiatedProtocol; p != "" {
		t.Fatalf("ALPN negotiated %q on a tcp port; raw connections speak no HTTP", p)
	}
	exchange(t, c, "plaintext upstream", "plaintext upstream")
	// close_notify ends the client's direction; the echo's FIN comes back as EOF.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after close_notify: %q, %v", rest, err)
	}
}

func TestReloadKeepsLiveConnections(t *testing.T) {
	a := upstream(t, tagged("A"))
	b := upstream(t, tagged("B"))
	srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]", a)))
	old := dial(t, srv.HostPort(9000))
	exchange(t, old, "1", "A1")
	srv.Reload(t, site(9000, fmt.Sprintf("targets: [%q]", b)))
	fresh := dial(t, srv.HostPort(9000))
	exchange(t, fresh, "2", "B2")
	// The connection accepted before the reload still talks to its upstream.
	exchange(t, old, "3", "A3")
	exchange(t, fresh, "4", "B4")
}

func TestMaxConnections(t *testing.T) {
	up := upstream(t, tagged("A"))
	srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]\nmaxConnections: 1", up)))
	first := dial(t, srv.HostPort(9000))
	exchange(t, first, "1", "A1")
	second := dial(t, srv.HostPort(9000))
	closedWithin(t, second, 3*time.Second)
	_ = first.Close()
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", srv.HostPort(9000), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte("3"))
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		return err == nil && string(buf) == "A3"
	}, "a connection after the first one closed")
}

func TestIdleTimeout(t *testing.T) {
	t.Run("nothing moves", func(t *testing.T) {
		up := upstream(t, echo)
		srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]\nidleTimeoutMs: 300", up)))
		c := dial(t, srv.HostPort(9000))
		exchange(t, c, "x", "x")
		d := closedWithin(t, c, 5*time.Second)
		if d < 250*time.Millisecond || d > 2*time.Second {
			t.Fatalf("idle connection closed after %v; want about 300ms", d)
		}
	})
	t.Run("one direction busy keeps the other open", func(t *testing.T) {
		// The upstream streams for 4 idle periods while the client sends nothing: the
		// connection is not idle.
		up := upstream(t, func(c *net.TCPConn) {
			for i := range 16 {
				if _, err := c.Write([]byte{byte('a' + i)}); err != nil {
					return
				}
				time.Sleep(75 * time.Millisecond)
			}
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		})
		srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]\nidleTimeoutMs: 300", up)))
		c := dial(t, srv.HostPort(9000))
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "abcdefghijklmnop" {
			t.Fatalf("got %q, %v: the stream was cut", b, err)
		}
	})
}

func TestMaxDuration(t *testing.T) {
	up := upstream(t, echo)
	srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]\nmaxDurationMs: 400", up)))
	c := dial(t, srv.HostPort(9000))
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		if _, err := c.Write([]byte("busy")); err != nil {
			break
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(start); d < 350*time.Millisecond || d > 2*time.Second {
		t.Fatalf("busy connection ended after %v; want about 400ms", d)
	}
}

func TestShutdownClosesConnectionsAtTheTimeout(t *testing.T) {
	up := upstream(t, echo)
	srv := servertest.Start(t, fmt.Sprintf("global: {shutdownTimeoutSecs: 1}\nsites:\n  - port: 9000\n    tcp: {targets: [%q]}\n", up))
	c := dial(t, srv.HostPort(9000))
	exchange(t, c, "x", "x")
	start := time.Now()
	err := srv.Shutdown(context.Background())
	if err == nil || !strings.Contains(err.Error(), "closed 1 connections") {
		t.Fatalf("shutdown: %v; want the connection closed at the timeout", err)
	}
	closedWithin(t, c, 2*time.Second)
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("shutdown cut the connection after %v; want it to wait shutdownTimeoutSecs", d)
	}
}

func TestIPFilterAndMetrics(t *testing.T) {
	up := upstream(t, echo)
	srv := servertest.Start(t, `sites:
  - port: 9000
    ipFilter: {deny: [127.0.0.1]}
    tcp: {targets: [`+strconv.Quote(up)+`]}
  - port: 9001
    ipFilter: {allow: [127.0.0.0/8]}
    tcp: {targets: [`+strconv.Quote(up)+`]}
  - port: 9002
    metrics: {}
`)
	closedWithin(t, dial(t, srv.HostPort(9000)), 3*time.Second)
	c := dial(t, srv.HostPort(9001))
	exchange(t, c, "allowed", "allowed")
	_ = c.Close()
	waitFor(t, func() bool {
		r := servertest.Get(t, srv.URL(9002)+"/__metrics__")
		return strings.Contains(r.Body, `conduit_tcp_connections_total{site="*",upstream="`+up+`"} 1`) &&
			strings.Contains(r.Body, `conduit_tcp_bytes_total{site="*",direction="in"} 7`) &&
			strings.Contains(r.Body, `conduit_ip_filter_denied_total{site="*"} 1`)
	}, "the tcp and ip filter metrics")
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadBetweenTCPAndHTTPNeedsARestart: a port cannot switch between raw connections and
// HTTP on a reload; the running generation keeps serving.
func TestReloadBetweenTCPAndHTTPNeedsARestart(t *testing.T) {
	up := upstream(t, tagged("A"))
	srv := servertest.Start(t, site(9000, fmt.Sprintf("targets: [%q]", up)))
	doc, err := config.Parse([]byte("port: 9000\nproxy: http://127.0.0.1:1\n"), config.FormatYAML, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, d := server.Build(context.Background(), doc, srv.BuildOptions())
	if d.HasErrors() {
		t.Fatal(d.Err())
	}
	err = srv.Swap(g)
	var cold *server.ColdFieldsError
	if !errors.As(err, &cold) || !strings.Contains(err.Error(), "port 9000 switches between raw connections and HTTP") {
		t.Fatalf("swap: %v", err)
	}
	g.Stop(context.Background())
	exchange(t, dial(t, srv.HostPort(9000)), "1", "A1")
}

func TestLeastConn(t *testing.T) {
	a := upstream(t, tagged("A"))
	b := upstream(t, tagged("B"))
	srv := servertest.Start(t, fmt.Sprintf("sites:\n  - port: 9000\n    tcp: {targets: [%q, %q], strategy: least-conn}\n  - port: 9001\n    metrics: {}\n", a, b))
	active := func(n int) func() bool {
		return func() bool {
			r := servertest.Get(t, srv.URL(9001)+"/__metrics__")
			return strings.Contains(r.Body, fmt.Sprintf(`conduit_tcp_active_connections{site="*"} %d`, n))
		}
	}
	first := dial(t, srv.HostPort(9000))
	exchange(t, first, "1", "A1") // a tie: round-robin starts with A
	// While the first connection holds A, B has fewer connections every time.
	for i := range 3 {
		c := dial(t, srv.HostPort(9000))
		exchange(t, c, strconv.Itoa(i), "B"+strconv.Itoa(i))
		_ = c.Close()
		waitFor(t, active(1), "the connection to B to end")
	}
}

func TestMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "tcp test CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "db.test").Write(t, dir, "db")
	caFile := ca.WriteCA(t, dir, "clients")
	up := upstream(t, echo)
	srv := servertest.Start(t, fmt.Sprintf("port: 9443\ntls: {cert: %q, key: %q, clientAuth: {ca: %q}}\ntcp:\n  targets: [%q]\n", cert, key, caFile, up))
	dialTLS := func(certs ...tls.Certificate) (*tls.Conn, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.HostPort(9443),
			&tls.Config{RootCAs: ca.Pool(), ServerName: "db.test", Certificates: certs})
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			// TLS 1.3 reports a refused client certificate on the first read.
			_, err = c.Write([]byte("x"))
			if err == nil {
				b := make([]byte, 1)
				_, err = io.ReadFull(c, b)
			}
		}
		return c, err
	}
	if c, err := dialTLS(); err == nil {
		c.Close()
		t.Fatal("a client without a certificate was relayed")
	}
	c, err := dialTLS(ca.Client(t, "app").TLS)
	if err != nil {
		t.Fatalf("a client with a certificate: %v", err)
	}
	c.Close()
}

// TestConnectionOutlivesItsRetiredGeneration: the generation a connection was accepted on is
// stopped shutdownTimeoutSecs after a reload; the connection goes on regardless.
func TestConnectionOutlivesItsRetiredGeneration(t *testing.T) {
	a := upstream(t, tagged("A"))
	b := upstream(t, tagged("B"))
	cfg := func(up string) string {
		return fmt.Sprintf("global: {shutdownTimeoutSecs: 1}\nsites:\n  - port: 9000\n    tcp: {targets: [%q]}\n", up)
	}
	srv := servertest.Start(t, cfg(a))
	old := dial(t, srv.HostPort(9000))
	exchange(t, old, "1", "A1")
	srv.Reload(t, cfg(b))
	time.Sleep(1500 * time.Millisecond) // the old generation is stopped by now
	exchange(t, old, "2", "A2")
	exchange(t, dial(t, srv.HostPort(9000)), "3", "B3")
}

func TestShutdownWaitsForConnectionsThatEnd(t *testing.T) {
	up := upstream(t, echo)
	srv := servertest.Start(t, fmt.Sprintf("global: {shutdownTimeoutSecs: 5}\nsites:\n  - port: 9000\n    tcp: {targets: [%q]}\n", up))
	c := dial(t, srv.HostPort(9000))
	exchange(t, c, "x", "x")
	last := make(chan string, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		// Still served while the server shuts down.
		_, _ = c.Write([]byte("last"))
		_ = c.CloseWrite()
		b, _ := io.ReadAll(c)
		last <- string(b)
	}()
	start := time.Now()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := <-last; got != "last" {
		t.Fatalf("the connection got %q while the server shut down", got)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 4*time.Second {
		t.Fatalf("shutdown took %v; want it to end with the connection (about 300ms)", d)
	}
	if _, err := net.DialTimeout("tcp", srv.HostPort(9000), time.Second); err == nil {
		t.Fatal("the port still accepts after shutdown")
	}
}

// TestMaxConnectionsCoversTLSHandshakes: on a TLS port, maxConnections counts a connection
// from its accept, not from the end of its handshake. A connection over the limit is closed
// at once, before any handshake work; it used to be held for up to 10 s of handshake (and
// given one), so the limit bounded nothing for a client that never finished a handshake.
// A handshake that fails gives its slot back.
func TestMaxConnectionsCoversTLSHandshakes(t *testing.T) {
	ca := tlstest.NewCA(t, "tcp test CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "db.test").Write(t, dir, "db")
	up := upstream(t, echo)
	srv := servertest.Start(t, fmt.Sprintf("port: 9443\ntls: {cert: %q, key: %q}\ntcp:\n  targets: [%q]\n  maxConnections: 1\n", cert, key, up))
	dialTLS := func() (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.HostPort(9443), &tls.Config{RootCAs: ca.Pool(), ServerName: "db.test"})
	}
	first, err := dialTLS()
	if err != nil {
		t.Fatal(err)
	}
	_ = first.SetDeadline(time.Now().Add(10 * time.Second))
	exchange(t, first, "1", "1")
	// Over the limit: closed at once although no handshake started.
	for range 5 {
		if d := closedWithin(t, dial(t, srv.HostPort(9443)), 3*time.Second); d > time.Second {
			t.Fatalf("a connection over maxConnections was closed after %v", d)
		}
	}
	_ = first.Close()
	// A connection that fails its handshake gives its slot back.
	var bad *net.TCPConn
	waitFor(t, func() bool {
		bad = dial(t, srv.HostPort(9443))
		_ = bad.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := bad.Read(make([]byte, 1))
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() // held: in its handshake, not refused
	}, "the first connection's slot")
	_, _ = bad.Write([]byte("not a TLS client hello\r\n\r\n"))
	closedWithin(t, bad, 3*time.Second)
	waitFor(t, func() bool {
		c, err := dialTLS()
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("2")); err != nil {
			return false
		}
		b := make([]byte, 1)
		_, err = io.ReadFull(c, b)
		return err == nil && b[0] == '2'
	}, "a TLS connection after a failed handshake")
}
