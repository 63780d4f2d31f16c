package wasm_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduitproxy/conduit/core/server/servertest"
	_ "github.com/conduitproxy/conduit/modules/limits"
)

// hwReadBodyWAT is an http-wasm guest that reads the whole request body without
// buffer_request (the host reads it from the client inside the call) and continues.
const hwReadBodyWAT = `(module
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    (loop $more
      (br_if $more (i64.eqz (i64.shr_u
        (call $read_body (i32.const 0) (i32.const 1024) (i32.const 4096))
        (i64.const 32)))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)`

// hwBodySpinWAT is hwBodyWAT (buffer_request, then the whole body) followed by a loop that
// never ends: a guest that runs out of time on its own.
const hwBodySpinWAT = `(module
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    (drop (call $enable_features (i32.const 1)))
    (loop $more
      (br_if $more (i64.eqz (i64.shr_u
        (call $read_body (i32.const 0) (i32.const 1024) (i32.const 4096))
        (i64.const 32)))))
    (loop $spin (br $spin))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)`

// recordingUpstream counts the requests that reach it and answers 200 "up".
func recordingUpstream(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "up")
	}))
	t.Cleanup(up.Close)
	return up, &reached
}

// slowPost sends a POST with an 8-byte body to addr over raw TCP: the headers at once, then
// one byte of the body every gap. It returns the response (its body read) within 10 s.
func slowPost(t *testing.T, addr string, gap time.Duration) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 8\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for range 8 {
			select {
			case <-done:
				return
			case <-time.After(gap):
			}
			if _, err := conn.Write([]byte("a")); err != nil {
				return // the server answered and closed
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// TestHTTPWasmSlowBodyRefused checks that a client that sends its body slowly cannot get
// a request past an http-wasm guest that reads the body: the host reads the body from the
// client inside the guest's call, so the slow body made the call run past timeoutMs, the
// call failed and (onError: allow, the default) the request went on without the guest's
// decision. It is now answered 408 with Connection: close, whatever onError says, and the
// upstream is not reached. The cases: buffer_request turned on inside handle_request (before,
// the upstream got the whole body uninspected: 200), a read without buffer_request (before,
// the request went on to the proxy with a body the library had closed: 502), and a read that
// stalls for longer than global.clientBodyTimeoutMs inside a call with a long timeoutMs
// (before, the request went on to the proxy: 504); with onError: deny they were 500.
func TestHTTPWasmSlowBodyRefused(t *testing.T) {
	up, reached := recordingUpstream(t)
	buffered, unbuffered := watGuest(t, hwBodyWAT), watGuest(t, hwReadBodyWAT)
	for _, tc := range []struct {
		name, global, guest, timeout string
		gap                          time.Duration // between two bytes of the body
	}{
		{"buffer_request in handle_request", "", buffered, "100", 60 * time.Millisecond},
		{"read_body without buffer_request", "", unbuffered, "100", 60 * time.Millisecond},
		{"clientBodyTimeoutMs inside the call", "clientBodyTimeoutMs: 100, ", buffered, "10000", 400 * time.Millisecond},
	} {
		for _, onError := range []string{"allow", "deny"} {
			t.Run(tc.name+"/"+onError, func(t *testing.T) {
				src := "global: {" + tc.global + "wasm: {diskCache: false}}\nsites:\n  - port: 8080\n    middleware:\n" +
					`      - {type: wasm, path: "` + tc.guest + `", onError: ` + onError + `, timeoutMs: ` + tc.timeout + "}\n" +
					"    proxy:\n      /: \"" + up.URL + "\"\n"
				srv := servertest.Start(t, src)
				reached.Store(0)
				resp := slowPost(t, srv.HostPort(8080), tc.gap)
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusRequestTimeout || !resp.Close || reached.Load() != 0 {
					t.Fatalf("got %d %q (Connection: %q), the upstream reached %d times; want 408, Connection: close and not reached",
						resp.StatusCode, b, resp.Header.Get("Connection"), reached.Load())
				}
			})
		}
	}
}

// TestHTTPWasmOwnFailureKeepsOnError checks that a guest that runs out of time on its own,
// after reading the body of a fast client, still gets onError's answer: the request passes
// with allow, and is answered 500 with deny.
func TestHTTPWasmOwnFailureKeepsOnError(t *testing.T) {
	up, reached := recordingUpstream(t)
	guest := watGuest(t, hwBodySpinWAT)
	for _, tc := range []struct {
		onError string
		status  int
		reached int32
	}{{"allow", 200, 1}, {"deny", 500, 0}} {
		t.Run(tc.onError, func(t *testing.T) {
			srv := servertest.Start(t, site(up.URL, `{type: wasm, path: "`+guest+`", onError: `+tc.onError+`, timeoutMs: 100}`))
			reached.Store(0)
			resp, err := http.Post(srv.URL(8080)+"/", "text/plain", strings.NewReader("aaaaaaaa"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || reached.Load() != tc.reached {
				t.Fatalf("got %d %q, the upstream reached %d times; want %d and %d", resp.StatusCode, b, reached.Load(), tc.status, tc.reached)
			}
		})
	}
}

// TestHTTPWasmBodyOverLimitIs413: a chunked body past limits.maxBodyBytes that an http-wasm
// guest reads inside its call is answered 413 (the limit's answer, as the proxy gives it),
// whatever onError says, and does not reach the upstream.
func TestHTTPWasmBodyOverLimitIs413(t *testing.T) {
	up, reached := recordingUpstream(t)
	guest := watGuest(t, hwReadBodyWAT)
	for _, onError := range []string{"allow", "deny"} {
		t.Run(onError, func(t *testing.T) {
			src := "port: 8080\nlimits: {maxBodyBytes: 10}\nmiddleware:\n" +
				`  - {type: wasm, path: "` + guest + `", onError: ` + onError + "}\nproxy: \"" + up.URL + "\"\n"
			srv := servertest.Start(t, src)
			reached.Store(0)
			// io.MultiReader hides the length: the body goes chunked, past the limit only
			// when it is read.
			resp, err := http.Post(srv.URL(8080)+"/", "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("a", 100))))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close || reached.Load() != 0 {
				t.Fatalf("got %d %q, the upstream reached %d times; want 413 with Connection: close, not reached", resp.StatusCode, b, reached.Load())
			}
		})
	}
}
