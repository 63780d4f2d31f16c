package h2serve

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// recConn records the writes that reach the wrapped connection.
type recConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (r *recConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, bytes.Clone(p))
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// count returns how many writes reached the connection.
func (r *recConn) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes)
}

// h2pair returns a loopback TCP connection whose server end is a conn holding writes for
// hold, switched to HTTP/2 by a preface the client sent, with its writes recorded.
func h2pair(t *testing.T, hold time.Duration) (client net.Conn, srv *conn, rec *recConn) {
	t.Helper()
	client, raw := pair(t)
	rec = &recConn{Conn: raw.Conn}
	srv = &conn{Conn: rec, hold: hold}
	t.Cleanup(func() { _ = srv.Close() })
	if _, err := io.WriteString(client, Preface); err != nil {
		t.Fatal(err)
	}
	readN(t, srv, len(Preface), len(Preface))
	if !srv.h2.Load() {
		t.Fatal("the preface did not switch the connection to HTTP/2")
	}
	return client, srv, rec
}

// frame returns one HTTP/2 frame with a payload of n bytes.
func frame(typ, flags byte, stream uint32, n int) []byte {
	b := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
	return append(b, bytes.Repeat([]byte{byte(stream)}, n)...)
}

const (
	typData     = 0x0
	typSettings = 0x4
	typRST      = 0x3
	flagsNone   = 0
)

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestWriteCoalescing(t *testing.T) {
	headers := frame(frameHeaders, flagEndHeaders, 1, 120)
	headers3 := frame(frameHeaders, flagEndHeaders, 3, 90)
	data := frame(typData, flagEndStream, 1, 300)
	big := frame(typData, flagsNone, 5, 3*holdMax)
	tests := []struct {
		name string
		// writes are what net/http writes, in order.
		writes [][]byte
		// sent is how many writes reach the socket before the hold delay.
		sent int
		// held says whether bytes are still held after the last write.
		held bool
	}{
		{"settings go at once", [][]byte{frame(typSettings, 0, 0, 18)}, 1, false},
		{"headers with END_STREAM go at once", [][]byte{frame(frameHeaders, flagEndHeaders|flagEndStream, 1, 80)}, 1, false},
		{"headers are held for their body", [][]byte{headers}, 0, true},
		{"headers and body leave together", [][]byte{headers, data}, 1, false},
		{"several streams' headers wait for the first body", [][]byte{headers, headers3, data}, 1, false},
		{"a header block continued in the next write", [][]byte{
			frame(frameHeaders, flagsNone, 1, 50), frame(frameContinuation, flagEndHeaders, 1, 40), data,
		}, 1, false},
		{"continuation of a block that ends the stream", [][]byte{
			frame(frameHeaders, flagEndStream, 1, 50), frame(frameContinuation, flagEndHeaders, 1, 40),
		}, 2, false},
		{"held headers then a write too large to join", [][]byte{headers, big}, 2, false},
		{"a reset after held headers", [][]byte{headers, frame(typRST, 0, 1, 4)}, 1, false},
		{"a frame cut across writes, then headers", [][]byte{
			big[:holdMax], big[holdMax : holdMax+5], big[holdMax+5:], headers[:4], headers[4:],
		}, 4, true},
		{"headers after a data frame in the same write", [][]byte{cat(data, headers)}, 0, true},
		{"headers larger than the hold limit go at once", [][]byte{frame(frameHeaders, flagEndHeaders, 1, holdMax)}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, srv, rec := h2pair(t, time.Hour)
			var want []byte
			for _, p := range tt.writes {
				n, err := srv.Write(p)
				if n != len(p) || err != nil {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
				}
				want = append(want, p...)
			}
			if got := rec.count(); got != tt.sent {
				t.Errorf("%d writes reached the socket, want %d", got, tt.sent)
			}
			if held := srv.wr.held != nil; held != tt.held {
				t.Errorf("bytes held: %v, want %v", held, tt.held)
			}
			// Close sends what is held: the client reads every byte, in order.
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(client)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("client read %d bytes differing from the %d written", len(got), len(want))
			}
		})
	}
}

func TestHeldBytesLeaveAfterTheDelay(t *testing.T) {
	const hold = 50 * time.Millisecond
	client, srv, rec := h2pair(t, hold)
	headers := frame(frameHeaders, flagEndHeaders, 1, 100)
	for round := range 3 {
		start := time.Now()
		if _, err := srv.Write(headers); err != nil {
			t.Fatal(err)
		}
		if rec.count() != round {
			t.Fatalf("round %d: headers written at once", round)
		}
		got := readN(t, client, len(headers), len(headers))
		if waited := time.Since(start); waited < hold {
			t.Fatalf("round %d: held bytes arrived after %v, before the hold delay %v", round, waited, hold)
		}
		if !bytes.Equal(got, headers) {
			t.Fatalf("round %d: read %x", round, got)
		}
	}
}

func TestHeldWriteErrors(t *testing.T) {
	headers := frame(frameHeaders, flagEndHeaders, 1, 100)
	t.Run("timer write fails: the connection closes, later writes fail", func(t *testing.T) {
		_, srv, rec := h2pair(t, 20*time.Millisecond)
		if _, err := srv.Write(headers); err != nil {
			t.Fatal(err)
		}
		// Break the socket under the wrapper: the timer's write fails.
		_ = rec.Conn.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			srv.wr.mu.Lock()
			err := srv.wr.err
			srv.wr.mu.Unlock()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("held write error %v does not wrap net.ErrClosed", err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the timer did not report the failed write")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n, err := srv.Write(frame(typData, flagEndStream, 1, 10)); n != 0 || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after the failure = %d, %v", n, err)
		}
	})
	t.Run("joined write fails: no bytes of it are reported written", func(t *testing.T) {
		_, srv, rec := h2pair(t, time.Hour)
		if _, err := srv.Write(headers); err != nil {
			t.Fatal(err)
		}
		_ = rec.Conn.Close()
		if n, err := srv.Write(frame(typData, flagEndStream, 1, 10)); n != 0 || err == nil {
			t.Fatalf("write = %d, %v; want 0 and an error", n, err)
		}
	})
	t.Run("deadline passed: the joined write reports it", func(t *testing.T) {
		_, srv, _ := h2pair(t, time.Hour)
		if _, err := srv.Write(headers); err != nil {
			t.Fatal(err)
		}
		_ = srv.SetWriteDeadline(time.Now().Add(-time.Second))
		if _, err := srv.Write(frame(typData, flagEndStream, 1, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write after the deadline: %v", err)
		}
	})
}

func TestCloseDoesNotWaitForAStalledWrite(t *testing.T) {
	client, srv, _ := h2pair(t, time.Hour)
	// The client never reads: a large write fills both socket buffers and blocks.
	big := frame(typData, flagsNone, 1, 1<<16)
	blocked := make(chan error, 1)
	go func() {
		for {
			if _, err := srv.Write(big); err != nil {
				blocked <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked write did not end with Close")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %v", took)
	}
	_ = client.Close()
}

func TestHTTP1WritesPassThrough(t *testing.T) {
	client, raw := pair(t)
	rec := &recConn{Conn: raw.Conn}
	srv := &conn{Conn: rec, hold: time.Hour}
	if _, err := io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	readN(t, srv, 10, 10)
	// Bytes that look like a HEADERS frame are not held on an HTTP/1 connection.
	msg := frame(frameHeaders, flagEndHeaders, 1, 20)
	if _, err := srv.Write(msg); err != nil {
		t.Fatal(err)
	}
	if rec.count() != 1 {
		t.Fatalf("%d writes reached the socket, want 1", rec.count())
	}
	if got := readN(t, client, len(msg), len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("read %x", got)
	}
}

// shortConn accepts only the first limit bytes of a longer write and fails it with a
// timeout, as a write deadline reached during a write does; net/http's HTTP/2 server then
// writes the rest again (WriteByteTimeout). Later writes go through whole.
type shortConn struct {
	net.Conn
	limit int
}

func (s *shortConn) Write(p []byte) (int, error) {
	if s.limit > 0 && len(p) > s.limit {
		n, _ := s.Conn.Write(p[:s.limit])
		s.limit = 0
		return n, os.ErrDeadlineExceeded
	}
	return s.Conn.Write(p)
}

// TestPartialWriteRetried: after a write that reached the socket only in part and was
// written again from where it stopped, the frame boundaries are still known, so the next
// stream's headers are held for their body.
func TestPartialWriteRetried(t *testing.T) {
	client, raw := pair(t)
	sc := &shortConn{Conn: raw.Conn}
	rec := &recConn{Conn: sc}
	srv := &conn{Conn: rec, hold: time.Hour}
	t.Cleanup(func() { _ = srv.Close() })
	if _, err := io.WriteString(client, Preface); err != nil {
		t.Fatal(err)
	}
	readN(t, srv, len(Preface), len(Preface))
	data := frame(typData, flagEndStream, 1, 100)
	sc.limit = 50
	n, err := srv.Write(data)
	if n != 50 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("short Write = %d, %v", n, err)
	}
	if n, err := srv.Write(data[n:]); n != len(data)-50 || err != nil {
		t.Fatalf("retried Write = %d, %v", n, err)
	}
	sent := rec.count()
	headers := frame(frameHeaders, flagEndHeaders, 3, 40)
	if n, err := srv.Write(headers); n != len(headers) || err != nil {
		t.Fatalf("Write(headers) = %d, %v", n, err)
	}
	if rec.count() != sent || srv.wr.held == nil {
		t.Fatalf("the headers after a retried partial write were not held (%d writes, was %d)", rec.count(), sent)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Write(headers); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
	}
	got := readN(t, client, len(data)+len(headers), 1)
	if !bytes.Equal(got, cat(data, headers)) {
		t.Fatalf("the client read %x", got)
	}
}
