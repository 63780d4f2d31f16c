package wasm_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/conduitproxy/conduit/core/server/servertest"
	"github.com/conduitproxy/conduit/core/testtool"
)

// logFloodWAT is a conduit-ABI guest whose on_request logs 10,000 lines and gives the host
// 10,000 invalid header names (each refused with a log line), then continues.
const logFloodWAT = `(module
  (import "conduit" "conduit_log" (func $log (param i32 i32 i32)))
  (import "conduit" "conduit_set_request_header" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "flood")
  (data (i32.const 16) "bad name")
  (func (export "on_request") (result i32)
    (local $i i32)
    (loop $next
      (call $log (i32.const 3) (i32.const 0) (i32.const 5))
      (call $set (i32.const 16) (i32.const 8) (i32.const 0) (i32.const 5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 10000))))
    (i32.const 0))
  (func (export "on_response") (param i32) (result i32) (i32.const 0))
)`

// hwLogFloodWAT is an http-wasm guest whose handle_request logs 10,000 lines, then continues.
const hwLogFloodWAT = `(module
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "flood")
  (func (export "handle_request") (result i64)
    (local $i i32)
    (loop $next
      (call $log (i32.const 1) (i32.const 0) (i32.const 5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 10000))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)`

// TestGuestLogLinesBounded: through a real Conduit, a guest that logs in a loop (and, conduit
// ABI, gives the host invalid input in a loop) writes at most 100 log lines per request, plus
// one line saying the rest were dropped; the request is served.
func TestGuestLogLinesBounded(t *testing.T) {
	for _, tt := range []struct{ name, wat string }{{"conduit ABI", logFloodWAT}, {"http-wasm", hwLogFloodWAT}} {
		t.Run(tt.name, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("up")) }))
			t.Cleanup(up.Close)
			logs := &testtool.LogBuffer{}
			srv := servertest.StartLogged(t, "port: 8080\nproxy: "+up.URL+"\nmiddleware:\n  - {type: wasm, path: "+watGuest(t, tt.wat)+", timeoutMs: 5000}\n",
				slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			for range 2 {
				if rep := servertest.Get(t, srv.URL(8080)+"/"); rep.Status != 200 || rep.Body != "up" {
					t.Fatalf("got %d %q", rep.Status, rep.Body)
				}
			}
			text := logs.String()
			guest := strings.Count(text, "wasm guest: flood") + strings.Count(text, "invalid header name")
			dropped := strings.Count(text, "further log lines of this request are dropped")
			if guest > 2*100 || dropped != 2 {
				t.Fatalf("%d guest lines and %d dropped notes for 2 requests, want at most 200 and 2", guest, dropped)
			}
		})
	}
}
