package h2serve

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection, the server's accepted by a
// WrapListener.
func pair(t *testing.T) (client net.Conn, server *conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	wl := WrapListener(ln)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := wl.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	c, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = c.Close() })
	return client, c.(*conn)
}

// readN reads exactly n bytes with reads of at most step bytes.
func readN(t *testing.T, c net.Conn, n, step int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	out := make([]byte, 0, n)
	buf := make([]byte, step)
	for len(out) < n {
		k, err := c.Read(buf[:min(step, n-len(out))])
		out = append(out, buf[:k]...)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(out), n, err)
		}
	}
	return out
}

// frames returns n HTTP/2-shaped frames (9-byte header, payload) as one byte string.
func frames(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		payload := bytes.Repeat([]byte{byte('a' + i%26)}, 20+i)
		b.Write([]byte{0, byte(len(payload) >> 8), byte(len(payload)), 1, 0x04, 0, 0, 0, byte(2*i + 1)})
		b.Write(payload)
	}
	return b.Bytes()
}

func TestBufferedAfterPreface(t *testing.T) {
	tests := []struct {
		name        string
		prefaceStep int // net/http reads the preface in pieces of this size
		step        int // then reads of this size (9: a frame header)
	}{
		{"whole preface, frame headers", len(Preface), 9},
		{"preface byte by byte, small reads", 1, 5},
		{"preface in two reads, large reads", 14, 3000},
		{"reads larger than the buffer", len(Preface), ReadBufferSize + 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, srv := pair(t)
			body := frames(40)
			msg := append([]byte(Preface), body...)
			if _, err := client.Write(msg); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, srv, len(Preface), tt.prefaceStep); string(got) != Preface {
				t.Fatalf("preface read as %q", got)
			}
			if srv.buf == nil {
				t.Fatal("the preface did not switch the connection to buffered reads")
			}
			if got := readN(t, srv, len(body), tt.step); !bytes.Equal(got, body) {
				t.Fatal("bytes after the preface differ from what the client sent")
			}
		})
	}
}

func TestOneReadBringsSeveralFrames(t *testing.T) {
	client, srv := pair(t)
	body := frames(8)
	if len(body) > ReadBufferSize {
		t.Fatalf("test frames (%d bytes) exceed the buffer", len(body))
	}
	if _, err := client.Write([]byte(Preface)); err != nil {
		t.Fatal(err)
	}
	readN(t, srv, len(Preface), len(Preface))
	if _, err := client.Write(body); err != nil {
		t.Fatal(err)
	}
	// Wait until the kernel holds all of body, then read one frame header: the rest must
	// come from the same system call, into the buffer.
	time.Sleep(50 * time.Millisecond)
	readN(t, srv, 9, 9)
	if got := srv.Buffered(); got != len(body)-9 {
		t.Fatalf("after a 9-byte read %d bytes are buffered, want %d", got, len(body)-9)
	}
}

func TestNotHTTP2PassesThrough(t *testing.T) {
	tests := []struct {
		name  string
		first string
	}{
		{"HTTP/1.1 request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"preface prefix then HTTP/1.1", "PRI * HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"preface with the last byte wrong", Preface[:len(Preface)-1] + "X"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, srv := pair(t)
			if _, err := client.Write([]byte(tt.first + "tail")); err != nil {
				t.Fatal(err)
			}
			got := readN(t, srv, len(tt.first)+4, 1)
			if string(got) != tt.first+"tail" {
				t.Fatalf("read %q", got)
			}
			if srv.buf != nil || srv.Buffered() != 0 {
				t.Fatal("a connection without the preface was buffered")
			}
			if srv.seen != sniffOff {
				t.Fatalf("sniffing still on after %d bytes", len(got))
			}
		})
	}
}

func TestEOFAfterBufferedBytes(t *testing.T) {
	client, srv := pair(t)
	body := frames(3)
	if _, err := client.Write(append([]byte(Preface), body...)); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	readN(t, srv, len(Preface), len(Preface))
	got := readN(t, srv, len(body), 9)
	if !bytes.Equal(got, body) {
		t.Fatal("bytes before EOF lost")
	}
	n, err := srv.Read(make([]byte, 9))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after the last byte = %d, %v; want 0, EOF", n, err)
	}
}

func TestWrapperKeepsConnMethods(t *testing.T) {
	client, srv := pair(t)
	if srv.NetConn() == nil {
		t.Fatal("NetConn is nil")
	}
	// The wrapped *net.TCPConn half-closes: the client reads EOF.
	if err := srv.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("client read after CloseWrite: %v, want EOF", err)
	}
	var called bool
	reporter := &reportingConn{Conn: srv.Conn}
	c := &conn{Conn: reporter}
	c.OnReadError(func(error) { called = true })
	if reporter.fn == nil {
		t.Fatal("OnReadError was not passed to the wrapped connection")
	}
	reporter.fn(io.EOF)
	if !called {
		t.Fatal("the registered function was not the caller's")
	}
	if err := (&conn{Conn: struct{ net.Conn }{srv.Conn}}).CloseWrite(); err == nil {
		t.Fatal("CloseWrite on a connection that cannot half-close reported success")
	}
}

type reportingConn struct {
	net.Conn
	fn func(error)
}

func (r *reportingConn) OnReadError(fn func(error)) { r.fn = fn }
