;; hwprobe.wat: an http-wasm guest for the integration tests of modules/wasm
;; (modules/wasm/httpwasm_test.go). By path prefix: /deny answers 403 itself, /redirect
;; answers 302, /trap traps, /loop never returns, /rewrite replaces the response body;
;; anything else gets the request header X-Wasm-Req: 1 and, on the way out (with
;; buffer_response), the response header X-Wasm-Ctx: the context handle_request returned.
(module
  (import "http_handler" "get_uri" (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "/deny")
  (data (i32.const 16) "/redirect")
  (data (i32.const 32) "/trap")
  (data (i32.const 48) "/loop")
  (data (i32.const 64) "/rewrite")
  (data (i32.const 96) "blocked by wasm")
  (data (i32.const 128) "Location")
  (data (i32.const 144) "/elsewhere")
  (data (i32.const 160) "X-Wasm-Req")
  (data (i32.const 176) "1")
  (data (i32.const 192) "X-Wasm-Ctx")
  (data (i32.const 208) "42")
  (data (i32.const 224) "rewritten by wasm")
  (data (i32.const 256) "bad")

  (global $uri_len (mut i32) (i32.const 0))

  ;; prefix reports whether the URI at 1024 starts with the len bytes at p.
  (func $prefix (param $p i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (global.get $uri_len) (local.get $len)) (then (return (i32.const 0))))
    (block $differ
      (loop $next
        (if (i32.ge_u (local.get $i) (local.get $len)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne
          (i32.load8_u (i32.add (i32.const 1024) (local.get $i)))
          (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func (export "handle_request") (result i64)
    (global.set $uri_len (call $get_uri (i32.const 1024) (i32.const 4096)))
    (if (call $prefix (i32.const 0) (i32.const 5))
      (then
        (call $set_status_code (i32.const 403))
        (call $write_body (i32.const 1) (i32.const 96) (i32.const 15))
        (return (i64.const 0))))
    (if (call $prefix (i32.const 16) (i32.const 9))
      (then
        (call $set_status_code (i32.const 302))
        (call $set_header_value (i32.const 1) (i32.const 128) (i32.const 8) (i32.const 144) (i32.const 10))
        (return (i64.const 0))))
    (if (call $prefix (i32.const 32) (i32.const 5)) (then unreachable))
    (if (call $prefix (i32.const 48) (i32.const 5)) (then (loop $forever (br $forever))))
    (call $set_header_value (i32.const 0) (i32.const 160) (i32.const 10) (i32.const 176) (i32.const 1))
    (drop (call $enable_features (i32.const 2)))
    ;; next = 1, ctx = 42
    (i64.or (i64.shl (i64.const 42) (i64.const 32)) (i64.const 1)))

  (func (export "handle_response") (param $ctx i32) (param $is_error i32)
    (if (i32.eq (local.get $ctx) (i32.const 42))
      (then (call $set_header_value (i32.const 1) (i32.const 192) (i32.const 10) (i32.const 208) (i32.const 2)))
      (else (call $set_header_value (i32.const 1) (i32.const 192) (i32.const 10) (i32.const 256) (i32.const 3))))
    (if (call $prefix (i32.const 64) (i32.const 8))
      (then (call $write_body (i32.const 1) (i32.const 224) (i32.const 17)))))
)
