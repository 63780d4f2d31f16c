package h2serve

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// deep recurses n levels with a 256-byte frame each, then answers: a handler whose stack
// needs more than the initial goroutine stack.
//
//go:noinline
func deep(n int, w io.Writer, msg string) {
	var pad [256]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		_, _ = io.WriteString(w, msg)
		return
	}
	deep(n-1, w, msg)
	_ = pad[0]
}

// serveH2C serves h over HTTP/1.1 and h2c on a loopback listener wrapped as Conduit wraps its
// h2c ports, and returns the address.
func serveH2C(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: Handler(h), Protocols: protos, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(WrapListener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func client(h2c bool) *http.Client {
	protos := new(http.Protocols)
	if h2c {
		protos.SetUnencryptedHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	return &http.Client{Transport: &http.Transport{Protocols: protos}, Timeout: 10 * time.Second}
}

func TestServesHTTP1AndH2C(t *testing.T) {
	addr := serveH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		deep(64, w, fmt.Sprintf("%s %d %s", r.Proto, len(body), r.URL.Path))
	}))
	tests := []struct {
		name  string
		h2c   bool
		proto string
	}{
		{"HTTP/1.1", false, "HTTP/1.1"},
		{"h2c", true, "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(tt.h2c)
			defer c.CloseIdleConnections()
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					reqBody := strings.Repeat("x", i*500)
					resp, err := c.Post(fmt.Sprintf("http://%s/r%d", addr, i), "text/plain", strings.NewReader(reqBody))
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					got, err := io.ReadAll(resp.Body)
					if err != nil {
						errs <- err
						return
					}
					want := fmt.Sprintf("%s %d /r%d", tt.proto, len(reqBody), i)
					if resp.Proto != tt.proto || string(got) != want {
						errs <- fmt.Errorf("request %d: %s %q, want %s %q", i, resp.Proto, got, tt.proto, want)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestHandlerPassesPanicsAndWriter(t *testing.T) {
	// net/http resets an HTTP/2 stream whose handler panics with http.ErrAbortHandler: the
	// wrapper must not swallow the panic.
	addr := serveH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("X-Test", "1")
		w.WriteHeader(http.StatusTeapot)
	}))
	c := client(true)
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + addr + "/abort")
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("aborted stream read without an error")
	}
	resp, err = c.Get("http://" + addr + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Test") != "1" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
}

// stackWork needs about 12 KiB of stack, as Conduit's proxy path does below the handler.
func stackWork() { deep(40, io.Discard, "") }

// BenchmarkStreamGoroutine compares what a new goroutine per stream costs when its work
// needs a grown stack: growing on the way down (as net/http's stream goroutines did), growing
// once up front (Handler), and handing the work to a parked goroutine that kept its stack.
func BenchmarkStreamGoroutine(b *testing.B) {
	b.Run("grow-deep", func(b *testing.B) {
		done := make(chan struct{})
		for b.Loop() {
			go func() { stackWork(); done <- struct{}{} }()
			<-done
		}
	})
	b.Run("grow-up-front", func(b *testing.B) {
		done := make(chan struct{})
		for b.Loop() {
			go func() { growStack(); stackWork(); done <- struct{}{} }()
			<-done
		}
	})
	b.Run("parked-worker", func(b *testing.B) {
		jobs, done := make(chan struct{}), make(chan struct{})
		go func() {
			for range jobs {
				stackWork()
				done <- struct{}{}
			}
		}()
		defer close(jobs)
		for b.Loop() {
			// The stream goroutine net/http starts, handing its work to the worker.
			go func() { jobs <- struct{}{}; <-done; done <- struct{}{} }()
			<-done
		}
	})
}
