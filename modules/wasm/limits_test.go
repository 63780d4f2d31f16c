package wasm_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// watGuest compiles the WAT source src with wat2wasm into a temporary directory and returns
// the .wasm file's path.
func watGuest(t *testing.T, src string) string {
	t.Helper()
	wat2wasm := testtool.Find(t, "wat2wasm", ".ci/deps.sh (Debian wabt)")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "guest.wat"), filepath.Join(dir, "guest.wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(wat2wasm, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	return out
}

// floodWAT is a conduit-ABI guest that sets 64 headers of 64 KiB each (4 MiB in all), each
// under a name of its own ("xAA", "xBA", …), so that none replaces another: on_request with
// the request header x-op: q sets request headers and continues, with x-op: a sets headers
// of its own answer and answers 403; on_response sets response headers.
const floodWAT = `(module
  (import "conduit" "conduit_get_header" (func $get_header (param i32 i32 i32 i32) (result i32)))
  (import "conduit" "conduit_set_request_header" (func $set_request_header (param i32 i32 i32 i32)))
  (import "conduit" "conduit_set_response_header" (func $set_response_header (param i32 i32 i32 i32)))
  (import "conduit" "conduit_set_response_status" (func $set_response_status (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "x-op")
  (data (i32.const 16) "x")
  ;; flood calls the setter (0: request header, 1: response header) 64 times, with the
  ;; value at 65536 (64 KiB of 'a').
  (func $flood (param $which i32)
    (local $i i32)
    (memory.fill (i32.const 65536) (i32.const 0x61) (i32.const 65536))
    (loop $next
      (i32.store8 (i32.const 17) (i32.add (i32.const 0x41) (i32.rem_u (local.get $i) (i32.const 26))))
      (i32.store8 (i32.const 18) (i32.add (i32.const 0x41) (i32.div_u (local.get $i) (i32.const 26))))
      (if (local.get $which)
        (then (call $set_response_header (i32.const 16) (i32.const 3) (i32.const 65536) (i32.const 65536)))
        (else (call $set_request_header (i32.const 16) (i32.const 3) (i32.const 65536) (i32.const 65536))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 64)))))
  (func (export "on_request") (result i32)
    (drop (call $get_header (i32.const 0) (i32.const 4) (i32.const 32) (i32.const 1)))
    (if (i32.eq (i32.load8_u (i32.const 32)) (i32.const 0x71)) ;; q
      (then (call $flood (i32.const 0)) (return (i32.const 0))))
    (if (i32.eq (i32.load8_u (i32.const 32)) (i32.const 0x61)) ;; a
      (then
        (call $flood (i32.const 1))
        (call $set_response_status (i32.const 403))
        (return (i32.const 1))))
    (i32.const 0))
  (func (export "on_response") (param i32) (result i32)
    (call $flood (i32.const 1))
    (i32.const 0))
)`

// hwFloodWAT is an http-wasm guest that adds 64 values of 64 KiB (4 MiB in all) to the
// request header X-Big and continues.
const hwFloodWAT = `(module
  (import "http_handler" "add_header_value" (func $add_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "X-Big")
  (func (export "handle_request") (result i64)
    (local $i i32)
    (memory.fill (i32.const 65536) (i32.const 0x61) (i32.const 65536))
    (loop $next
      (call $add_header_value (i32.const 0) (i32.const 0) (i32.const 5) (i32.const 65536) (i32.const 65536))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 64))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)`

// TestGuestHeaderChangesBounded checks that a guest cannot make the host hold an unbounded
// amount of header data: the header changes one guest call keeps (conduit ABI) or one
// request's calls make (http-wasm) are bounded, and a guest that goes past the bound fails
// (here onError: deny answers 500). Without the bound each of these guests made the host
// copy and keep 4 MiB per request, and a loop running until timeoutMs could make it keep
// gigabytes.
func TestGuestHeaderChangesBounded(t *testing.T) {
	up := upstream(t)
	conduit := watGuest(t, floodWAT)
	hw := watGuest(t, hwFloodWAT)
	for _, tc := range []struct {
		name, entry string
		hdr         []string
	}{
		{"conduit request headers", `{type: wasm, path: "` + conduit + `", onError: deny, timeoutMs: 10000}`, []string{"X-Op", "q"}},
		{"conduit answer's headers", `{type: wasm, path: "` + conduit + `", onError: deny, timeoutMs: 10000}`, []string{"X-Op", "a"}},
		{"conduit response headers", `{type: wasm, path: "` + conduit + `", onError: deny, timeoutMs: 10000, phase: response}`, nil},
		{"http-wasm request header values", `{type: wasm, path: "` + hw + `", onError: deny, timeoutMs: 10000}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servertest.Start(t, site(up.URL, tc.entry))
			r := servertest.Get(t, srv.URL(8080)+"/", tc.hdr...)
			if r.Status != 500 || !strings.Contains(r.Body, "wasm middleware failed") {
				n := 0
				for _, vv := range r.Header {
					for _, v := range vv {
						n += len(v)
					}
				}
				t.Fatalf("got %d %q with %d bytes of header values; want the guest stopped (500)", r.Status, r.Body, n)
			}
		})
	}
}

// hwBodyWAT is an http-wasm guest that turns buffer_request on, reads the whole request
// body and continues (a body inspector, such as a WAF).
const hwBodyWAT = `(module
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    (drop (call $enable_features (i32.const 1))) ;; buffer_request
    (loop $more
      (br_if $more (i64.eqz (i64.shr_u
        (call $read_body (i32.const 0) (i32.const 1024) (i32.const 4096))
        (i64.const 32)))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)`

// TestHTTPWasmBodyOverBufferRefused checks that a request body larger than buffer_request
// holds, which the guest tried to read, is answered 413 and does not reach the upstream,
// whatever onError says. Before, the guest's read failed, the failure let the request
// pass (onError: allow, the default) and the upstream got the whole body the guest never
// saw: padding a body past 8 MiB got it past an inspecting guest.
func TestHTTPWasmBodyOverBufferRefused(t *testing.T) {
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		reached.Add(1)
		_, _ = io.WriteString(w, strconv.FormatInt(n, 10))
	}))
	defer up.Close()
	guest := watGuest(t, hwBodyWAT)
	for _, onError := range []string{"allow", "deny"} {
		t.Run(onError, func(t *testing.T) {
			srv := servertest.Start(t, site(up.URL, `{type: wasm, path: "`+guest+`", onError: `+onError+`, timeoutMs: 10000}`))
			post := func(size int) (int, string) {
				resp, err := http.Post(srv.URL(8080)+"/", "application/octet-stream", bytes.NewReader(make([]byte, size)))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			reached.Store(0)
			if status, body := post(1000); status != 200 || body != "1000" {
				t.Fatalf("a small body: got %d %q, want 200 and the upstream's count", status, body)
			}
			reached.Store(0)
			status, body := post(8<<20 + 1)
			if status != http.StatusRequestEntityTooLarge || reached.Load() != 0 {
				t.Fatalf("a body over 8 MiB: got %d %q, the upstream reached %d times; want 413 and not reached", status, body, reached.Load())
			}
		})
	}
}
