package h2serve_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/conduitproxy/conduit/core/h2serve"
	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/proxy"
)

// These tests send HTTP/2 through a real Conduit (h2c port, proxy module) to a real upstream,
// so that net/http's HTTP/2 server writes through core/h2serve's connection as in production.

// body returns the deterministic upstream body of n bytes.
func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%23)
	}
	return b
}

// upstream serves /size/N (N bytes, with Content-Length), /stream/N (N bytes in 1 KiB
// pieces, flushed, no Content-Length) and /slow (headers, then a body after a pause), and
// returns its address.
func upstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/size/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(body(n))
	})
	mux.HandleFunc("/stream/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		b := body(n)
		for len(b) > 0 {
			k := min(len(b), 1024)
			if _, err := w.Write(b[:k]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			b = b[k:]
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "late body")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// conduit starts Conduit with an h2c port proxying to up and returns the port's address.
func conduit(t *testing.T, up string) string {
	t.Helper()
	srv := servertest.Start(t, fmt.Sprintf("sites:\n  - port: 8080\n    http2: { h2c: true }\n    proxy: \"http://%s\"\n", up))
	return srv.HostPort(8080)
}

// h2cClient is an HTTP/2 prior-knowledge client; it keeps one connection per address.
func h2cClient() *http.Client {
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: protos}, Timeout: 30 * time.Second}
}

// fetch GETs url and checks the answer is HTTP/2 and want.
func fetch(ctx context.Context, c *http.Client, url string, want []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: body after %d bytes: %w", url, len(got), err)
	}
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %d", url, resp.Proto, resp.StatusCode)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: %d bytes (sha256 %x), want %d (sha256 %x)", url, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
	return nil
}

func TestConduitConcurrentStreams(t *testing.T) {
	addr := conduit(t, upstream(t))
	c := h2cClient()
	defer c.CloseIdleConnections()
	sizes := []int{0, 1, 27, 1000, 4095, 4096, 4097, 16 << 10, 100 << 10, 1 << 20}
	var wg sync.WaitGroup
	errs := make(chan error, 201)
	for i := range 201 {
		n := sizes[i%len(sizes)]
		if i == 200 {
			n = 4 << 20
		}
		path := "/size/"
		if i%3 == 0 {
			path = "/stream/"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fetch(context.Background(), c, "http://"+addr+path+strconv.Itoa(n), body(n)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestConduitStreamReset: clients cancel requests mid-body (RST_STREAM) while other streams
// of the same connection go on; the connection stays usable.
func TestConduitStreamReset(t *testing.T) {
	addr := conduit(t, upstream(t))
	c := h2cClient()
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if err := fetch(context.Background(), c, "http://"+addr+"/size/30000", body(30000)); err != nil {
					errs <- err
				}
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stream/4000000", nil)
			resp, err := c.Do(req)
			if err != nil {
				cancel()
				errs <- err
				return
			}
			_, _ = io.ReadFull(resp.Body, make([]byte, 5000))
			cancel()
			_ = resp.Body.Close()
		}()
	}
	// A stream whose upstream sends its headers, then its body after a pause, reset while
	// waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := fetch(ctx, c, "http://"+addr+"/slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reset /slow: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := fetch(context.Background(), c, "http://"+addr+"/slow", []byte("late body")); err != nil {
		t.Fatalf("after the resets: %v", err)
	}
}

// rawStream opens an h2c connection that grants a large flow-control window and sends a
// GET for path.
func rawStream(t *testing.T, addr, path string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, h2serve.StartStream(t, c, path, 1<<31-1)
}

// readBody reads stream 1's HEADERS and DATA until END_STREAM, a few bytes at a time when
// slow, and returns the body.
func readBody(t *testing.T, c net.Conn, fr *http2.Framer) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got []byte
	sawHeaders := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			sawHeaders = true
			if f.StreamEnded() {
				return got
			}
		case *http2.DataFrame:
			if !sawHeaders {
				t.Fatal("DATA before HEADERS")
			}
			got = append(got, f.Data()...)
			if f.StreamEnded() {
				return got
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("%v after %d bytes", f.Header(), len(got))
		}
	}
}

// slowReader reads its connection a few bytes at a time with pauses.
type slowReader struct {
	net.Conn
	reads int
}

func (s *slowReader) Read(p []byte) (int, error) {
	s.reads++
	if s.reads%50 == 0 {
		time.Sleep(time.Millisecond)
	}
	return s.Conn.Read(p[:min(len(p), 700)])
}

// TestConduitSlowClient: a client that waits before reading and then reads in small pieces
// gets every byte of a body larger than the socket buffers, in order.
func TestConduitSlowClient(t *testing.T) {
	addr := conduit(t, upstream(t))
	for _, path := range []string{"/size/3000000", "/stream/300000", "/size/27"} {
		t.Run(path, func(t *testing.T) {
			c, _ := rawStream(t, addr, path)
			time.Sleep(300 * time.Millisecond)
			sr := &slowReader{Conn: c}
			fr := http2.NewFramer(c, sr)
			got := readBody(t, c, fr)
			n, _ := strconv.Atoi(path[len("/size/"):])
			if path[1:7] == "stream" {
				n, _ = strconv.Atoi(path[len("/stream/"):])
			}
			if !bytes.Equal(got, body(n)) {
				t.Fatalf("%d bytes differ from the %d sent", len(got), n)
			}
		})
	}
}

// TestConduitClientCloses: clients drop their connections with streams in every state
// (headers sent, body half sent, waiting for a slow upstream); Conduit goes on serving.
func TestConduitClientCloses(t *testing.T) {
	addr := conduit(t, upstream(t))
	for i := range 20 {
		path := []string{"/slow", "/size/2000000", "/stream/50000", "/size/27"}[i%4]
		c, fr := rawStream(t, addr, path)
		// Read up to a few frames, then close.
		_ = c.SetReadDeadline(time.Now().Add(time.Duration(i%5) * 10 * time.Millisecond))
		for range i % 4 {
			if _, err := fr.ReadFrame(); err != nil {
				break
			}
		}
		_ = c.Close()
	}
	cl := h2cClient()
	defer cl.CloseIdleConnections()
	if err := fetch(context.Background(), cl, "http://"+addr+"/size/100000", body(100000)); err != nil {
		t.Fatal(err)
	}
}
