package h2serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// countingListener counts the writes that reach its connections' sockets.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// serveCounted serves h with net/http over HTTP/1.1 and h2c behind a listener whose
// connections hold writes for hold (0: the wrapper without holding), and returns the address
// and the count of socket writes.
func serveCounted(tb testing.TB, h http.Handler, hold time.Duration) (string, *atomic.Int64) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	writes := new(atomic.Int64)
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: Handler(h), Protocols: protos, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(&listener{Listener: countingListener{ln, writes}, hold: hold}) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), writes
}

// small answers with a short body, as a proxied API response.
var small = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "27")
	_, _ = io.WriteString(w, `{"ok":true,"from":"upstrm"}`)
})

// getSmall sends a GET for small's answer and checks it.
func getSmall(tb testing.TB, c *http.Client, addr string) {
	tb.Helper()
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		tb.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.ProtoMajor != 2 || len(body) != 27 {
		tb.Fatalf("%s, %d bytes, %v", resp.Proto, len(body), err)
	}
}

// sequentialWrites sends n GET requests one after the other on one h2c connection, after a
// warm-up request, and returns the socket writes they took.
func sequentialWrites(tb testing.TB, c *http.Client, addr string, writes *atomic.Int64, n int) int64 {
	tb.Helper()
	getSmall(tb, c, addr)
	// The connection's SETTINGS exchange may still be under way: let it settle.
	time.Sleep(20 * time.Millisecond)
	before := writes.Load()
	for range n {
		getSmall(tb, c, addr)
	}
	return writes.Load() - before
}

// TestOneWritePerResponse: net/http writes a response's HEADERS and DATA frames as two
// writes; holding the HEADERS joins them. The hold is long here so that a loaded machine
// cannot make the test flaky (the production delay is HoldDelay).
func TestOneWritePerResponse(t *testing.T) {
	const n = 50
	got := map[string]int64{}
	for _, tc := range []struct {
		name string
		hold time.Duration
	}{{"not held", 0}, {"held", time.Second}} {
		addr, writes := serveCounted(t, small, tc.hold)
		c := client(true)
		got[tc.name] = sequentialWrites(t, c, addr, writes, n)
		c.CloseIdleConnections()
	}
	t.Logf("socket writes for %d responses: %v", n, got)
	if got["held"] != n {
		t.Errorf("%d socket writes for %d responses with holding, want one each", got["held"], n)
	}
	if got["not held"] <= got["held"] {
		t.Errorf("holding did not save writes: %v", got)
	}
}

// TestCloseSendsHeldHeaders: a handler flushes its headers and then waits; the server closes
// the connection while the HEADERS frame is held. The client still gets it.
func TestCloseSendsHeldHeaders(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	flushed := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Held", "yes")
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
		close(flushed)
		<-release
	})}
	go func() { _ = srv.Serve(&listener{Listener: ln, hold: time.Hour}) }()
	defer srv.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fr := StartStream(t, c, "/", 0)
	select {
	case <-flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not run")
	}
	// The HEADERS frame is held (the hold is an hour): nothing for stream 1 arrives yet.
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if f.Header().StreamID == 1 {
			t.Fatalf("%v arrived while it should be held", f.Header())
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended (%v) without the held HEADERS", err)
		}
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 1 {
			fields, err := dec.DecodeFull(h.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{":status": "202", "x-held": "yes"}
			for _, f := range fields {
				if v, ok := want[f.Name]; ok && v == f.Value {
					delete(want, f.Name)
				}
			}
			if len(want) > 0 {
				t.Fatalf("HEADERS %v lack %v", fields, want)
			}
			return
		}
	}
}

// StartStream writes the client preface and SETTINGS on c (with window > 0, an initial
// window of window bytes per stream and for the connection) and a GET for path on stream 1,
// and returns c's framer. (Exported for the tests of package h2serve_test.)
func StartStream(t *testing.T, c net.Conn, path string, window uint32) *http2.Framer {
	t.Helper()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	var settings []http2.Setting
	if window > 0 {
		settings = append(settings, http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	}
	if err := fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	if window > 65535 {
		if err := fr.WriteWindowUpdate(0, window-65535); err != nil {
			t.Fatal(err)
		}
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "localhost"}, {":path", path}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	return fr
}

// TestHeldHeadersOfAStreamingResponse: a handler flushes its headers, then sends its body
// in pieces after pauses longer than the hold. The headers arrive once the hold has ended,
// long before the first piece is written, and each piece arrives.
func TestHeldHeadersOfAStreamingResponse(t *testing.T) {
	const hold = 30 * time.Millisecond
	addr, _ := serveCounted(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range 3 {
			pause := 2 * hold
			if i == 0 {
				pause = 20 * hold // the headers must not wait for this piece
			}
			time.Sleep(pause)
			fmt.Fprintf(w, "piece %d\n", i)
			w.(http.Flusher).Flush()
		}
	}), hold)
	c := client(true)
	defer c.CloseIdleConnections()
	start := time.Now()
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if took := time.Since(start); took < hold || took >= 10*hold {
		t.Fatalf("headers arrived after %v: the hold is %v, the first piece is written after %v", took, hold, 20*hold)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "piece 0\npiece 1\npiece 2\n" {
		t.Fatalf("body %q", body)
	}
}

// BenchmarkH2CResponses measures sequential small h2c responses through net/http's server,
// with and without holding; writes/op is socket writes per response.
func BenchmarkH2CResponses(b *testing.B) {
	for _, hold := range []time.Duration{0, HoldDelay} {
		b.Run("hold="+hold.String(), func(b *testing.B) {
			addr, writes := serveCounted(b, small, hold)
			c := client(true)
			defer c.CloseIdleConnections()
			getSmall(b, c, addr)
			time.Sleep(20 * time.Millisecond)
			before := writes.Load()
			for b.Loop() {
				getSmall(b, c, addr)
			}
			b.ReportMetric(float64(writes.Load()-before)/float64(b.N), "writes/op")
		})
	}
}

// BenchmarkH2CConcurrent measures small h2c responses on one connection with 16 streams in
// flight; writes/op is socket writes per response.
func BenchmarkH2CConcurrent(b *testing.B) {
	for _, hold := range []time.Duration{0, HoldDelay} {
		b.Run("hold="+hold.String(), func(b *testing.B) {
			addr, writes := serveCounted(b, small, hold)
			c := client(true)
			defer c.CloseIdleConnections()
			url := "http://" + addr + "/"
			get := func() error {
				resp, err := c.Get(url)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				n, err := io.Copy(io.Discard, resp.Body)
				if err == nil && n != 27 {
					err = errors.New("short body: " + strconv.FormatInt(n, 10))
				}
				return err
			}
			if err := get(); err != nil {
				b.Fatal(err)
			}
			before := writes.Load()
			b.ResetTimer()
			var wg sync.WaitGroup
			var failed atomic.Value
			work := make(chan struct{})
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if err := get(); err != nil {
							failed.CompareAndSwap(nil, err)
						}
					}
				}()
			}
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(writes.Load()-before)/float64(b.N), "writes/op")
		})
	}
}
