package h1guard

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/testtool"
)

// slowReaderSize is larger than what the loopback socket buffers of both ends hold, so a
// client that stops reading blocks the server's writes.
const slowReaderSize = 48 << 20

// TestWriteTimeout serves a large response through each of the guard's write paths (Write
// with one huge buffer, and ReadFrom as net/http uses for a file) and checks that a client
// that stops reading is disconnected after Options.WriteTimeout, while a client that reads
// gets every byte.
func TestWriteTimeout(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big")
	testtool.SparseFile(t, path, slowReaderSize)
	big := bytes.Repeat([]byte("x"), slowReaderSize)
	handlers := map[string]http.HandlerFunc{
		"Write": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			_, _ = w.Write(big)
		},
		"ReadFrom": func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(path)
			if err != nil {
				panic(err)
			}
			defer f.Close()
			w.Header().Set("Content-Length", fmt.Sprint(slowReaderSize))
			_, _ = w.(io.ReaderFrom).ReadFrom(f) // net/http's writer: sendfile through the guard's ReadFrom
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			addr := startServer(t, h, Options{WriteTimeout: 300 * time.Millisecond})
			if n, err := testtool.PausedDownload(t, addr, "/", 0); err != nil || n != slowReaderSize {
				t.Fatalf("a reading client got %d bytes (err %v), want %d", n, err, slowReaderSize)
			}
			n, err := testtool.PausedDownload(t, addr, "/", 1500*time.Millisecond)
			if err == nil || n >= slowReaderSize {
				t.Fatalf("a client that stopped reading for 1.5 s got %d bytes (err %v), want the connection cut", n, err)
			}
		})
	}
}

// BenchmarkWrite measures a 4 KiB write on a guarded loopback connection with and without
// Options.WriteTimeout (the deadline is moved at most once per second, so the difference is
// the clock read and the comparison).
func BenchmarkWrite(b *testing.B) {
	for _, timeout := range []time.Duration{0, time.Minute} {
		b.Run(fmt.Sprintf("WriteTimeout=%v", timeout), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
			}()
			raw, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			opts := Options{WriteTimeout: timeout}.withDefaults()
			c := newConn(raw, &opts)
			defer c.Close()
			buf := make([]byte, 4096)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
