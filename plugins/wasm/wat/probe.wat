;; probe.wat: a guest of the conduit ABI that exercises every host function, for the
;; integration tests of modules/wasm (modules/wasm/conduit_test.go). The request header
;; x-op picks what on_request does (its first byte) and x-arg is its argument; the
;; upstream's response header x-rop picks what on_response does. Most ops answer with the
;; value they read as the body of a 200 (a number in decimal).
(module
  (import "conduit" "conduit_get_method" (func $get_method (param i32 i32) (result i32)))
  (import "conduit" "conduit_get_path" (func $get_path (param i32 i32) (result i32)))
  (import "conduit" "conduit_get_query" (func $get_query (param i32 i32) (result i32)))
  (import "conduit" "conduit_get_uri" (func $get_uri (param i32 i32) (result i32)))
  (import "conduit" "conduit_get_client_ip" (func $get_client_ip (param i32 i32) (result i32)))
  (import "conduit" "conduit_get_request_id" (func $get_request_id (param i32 i32) (result i32)))
  (import "conduit" "conduit_get_header" (func $get_header (param i32 i32 i32 i32) (result i32)))
  (import "conduit" "conduit_get_header_count" (func $get_header_count (result i32)))
  (import "conduit" "conduit_get_header_names" (func $get_header_names (param i32 i32) (result i32)))
  (import "conduit" "conduit_get_plugin_config" (func $get_plugin_config (param i32 i32) (result i32)))
  (import "conduit" "conduit_set_request_header" (func $set_request_header (param i32 i32 i32 i32)))
  (import "conduit" "conduit_remove_request_header" (func $remove_request_header (param i32 i32) (result i32)))
  (import "conduit" "conduit_set_response_status" (func $set_response_status (param i32)))
  (import "conduit" "conduit_set_response_header" (func $set_response_header (param i32 i32 i32 i32)))
  (import "conduit" "conduit_set_response_body" (func $set_response_body (param i32 i32)))
  (import "conduit" "conduit_abort_with_redirect" (func $abort_with_redirect (param i32 i32)))
  (import "conduit" "conduit_log" (func $log (param i32 i32 i32)))
  (import "conduit" "conduit_get_response_status" (func $get_response_status (result i32)))
  (import "conduit" "conduit_get_response_header" (func $get_response_header (param i32 i32 i32 i32) (result i32)))
  (import "conduit" "conduit_remove_response_header" (func $remove_response_header (param i32 i32) (result i32)))
  ;; WASI, to check what the entry's env and mounts give a guest.
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "x-op")
  (data (i32.const 16) "x-arg")
  (data (i32.const 32) "x-added")
  (data (i32.const 48) "x-drop")
  (data (i32.const 64) "x-abort")
  (data (i32.const 80) "yes")
  (data (i32.const 96) "denied")
  (data (i32.const 112) "hello from wasm")
  (data (i32.const 128) "x-rop")
  (data (i32.const 144) "x-wasm")
  (data (i32.const 160) "x-remove-me")
  (data (i32.const 176) "x-status")
  (data (i32.const 192) "x-up")
  (data (i32.const 208) "x-up-copy")
  (data (i32.const 224) "replaced")
  (data (i32.const 240) "1")
  (data (i32.const 256) "x-counter")

  ;; op at 1024 (16 bytes), arg at 1100 (512 bytes), out at 2048 (8192 bytes), digits at 12000.
  (global $counter (mut i32) (i32.const 0))

  ;; itoa writes v in decimal at 12000 and returns the length.
  (func $itoa (param $v i32) (result i32)
    (local $neg i32) (local $tmp i32) (local $len i32) (local $i i32) (local $j i32) (local $c i32)
    (if (i32.lt_s (local.get $v) (i32.const 0))
      (then (local.set $neg (i32.const 1)) (local.set $v (i32.sub (i32.const 0) (local.get $v)))))
    ;; digits in reverse at 12100
    (loop $digits
      (i32.store8 (i32.add (i32.const 12100) (local.get $len))
        (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digits (i32.ne (local.get $v) (i32.const 0))))
    (if (local.get $neg)
      (then (i32.store8 (i32.const 12000) (i32.const 45)) (local.set $j (i32.const 1))))
    (local.set $i (local.get $len))
    (loop $copy
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (i32.const 12000) (local.get $j))
        (i32.load8_u (i32.add (i32.const 12100) (local.get $i))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br_if $copy (i32.gt_s (local.get $i) (i32.const 0))))
    (local.get $j))

  ;; atoi reads a non-negative decimal at ptr, len.
  (func $atoi (param $ptr i32) (param $len i32) (result i32)
    (local $v i32) (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $v (i32.add (i32.mul (local.get $v) (i32.const 10))
          (i32.sub (i32.load8_u (i32.add (local.get $ptr) (local.get $i))) (i32.const 48))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $v))

  ;; reply answers 200 with the bytes at ptr, len.
  (func $reply (param $ptr i32) (param $len i32) (result i32)
    (call $set_response_status (i32.const 200))
    (call $set_response_body (local.get $ptr) (local.get $len))
    (i32.const 1))

  (func $reply_num (param $v i32) (result i32)
    (call $reply (i32.const 12000) (call $itoa (local.get $v))))

  ;; reply_out answers with the n bytes at 2048, or with n when it is negative.
  (func $reply_out (param $n i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $n) (i32.const 0))
      (then (call $reply_num (local.get $n)))
      (else (call $reply (i32.const 2048) (local.get $n)))))

  (func (export "on_request") (result i32)
    (local $op i32) (local $arglen i32) (local $n i32)
    (if (i32.le_s (call $get_header (i32.const 0) (i32.const 4) (i32.const 1024) (i32.const 16)) (i32.const 0))
      (then (return (i32.const 0))))
    (local.set $arglen (call $get_header (i32.const 16) (i32.const 5) (i32.const 1100) (i32.const 512)))
    (if (i32.lt_s (local.get $arglen) (i32.const 0)) (then (local.set $arglen (i32.const 0))))
    (local.set $op (i32.load8_u (i32.const 1024)))
    ;; M: method
    (if (i32.eq (local.get $op) (i32.const 77))
      (then (return (call $reply_out (call $get_method (i32.const 2048) (i32.const 8192))))))
    ;; P: path
    (if (i32.eq (local.get $op) (i32.const 80))
      (then (return (call $reply_out (call $get_path (i32.const 2048) (i32.const 8192))))))
    ;; Q: query
    (if (i32.eq (local.get $op) (i32.const 81))
      (then (return (call $reply_out (call $get_query (i32.const 2048) (i32.const 8192))))))
    ;; U: uri
    (if (i32.eq (local.get $op) (i32.const 85))
      (then (return (call $reply_out (call $get_uri (i32.const 2048) (i32.const 8192))))))
    ;; I: client IP
    (if (i32.eq (local.get $op) (i32.const 73))
      (then (return (call $reply_out (call $get_client_ip (i32.const 2048) (i32.const 8192))))))
    ;; R: request ID
    (if (i32.eq (local.get $op) (i32.const 82))
      (then (return (call $reply_out (call $get_request_id (i32.const 2048) (i32.const 8192))))))
    ;; H: the header named by x-arg
    (if (i32.eq (local.get $op) (i32.const 72))
      (then (return (call $reply_out
        (call $get_header (i32.const 1100) (local.get $arglen) (i32.const 2048) (i32.const 8192))))))
    ;; C: header count
    (if (i32.eq (local.get $op) (i32.const 67))
      (then (return (call $reply_num (call $get_header_count)))))
    ;; N: header names
    (if (i32.eq (local.get $op) (i32.const 78))
      (then (return (call $reply_out (call $get_header_names (i32.const 2048) (i32.const 8192))))))
    ;; G: plugin config
    (if (i32.eq (local.get $op) (i32.const 71))
      (then (return (call $reply_out (call $get_plugin_config (i32.const 2048) (i32.const 8192))))))
    ;; T: the path into a buffer of x-arg bytes (truncation)
    (if (i32.eq (local.get $op) (i32.const 84))
      (then (return (call $reply_out
        (call $get_path (i32.const 2048) (call $atoi (i32.const 1100) (local.get $arglen)))))))
    ;; S: set x-added to x-arg, remove x-drop, continue
    (if (i32.eq (local.get $op) (i32.const 83))
      (then
        (call $set_request_header (i32.const 32) (i32.const 7) (i32.const 1100) (local.get $arglen))
        (drop (call $remove_request_header (i32.const 48) (i32.const 6)))
        (return (i32.const 0))))
    ;; A: abort with status x-arg, header x-abort: yes, body "denied"
    (if (i32.eq (local.get $op) (i32.const 65))
      (then
        (call $set_response_status (call $atoi (i32.const 1100) (local.get $arglen)))
        (call $set_response_header (i32.const 64) (i32.const 7) (i32.const 80) (i32.const 3))
        (call $set_response_body (i32.const 96) (i32.const 6))
        (return (i32.const 7))))
    ;; D: abort with nothing set (500), after a request header change that must not apply
    (if (i32.eq (local.get $op) (i32.const 68))
      (then
        (call $set_request_header (i32.const 32) (i32.const 7) (i32.const 80) (i32.const 3))
        (return (i32.const 1))))
    ;; L: redirect to x-arg (the return value does not matter)
    (if (i32.eq (local.get $op) (i32.const 76))
      (then
        (call $abort_with_redirect (i32.const 1100) (local.get $arglen))
        (return (i32.const 0))))
    ;; g: log at level x-arg, continue
    (if (i32.eq (local.get $op) (i32.const 103))
      (then
        (call $log (call $atoi (i32.const 1100) (local.get $arglen)) (i32.const 112) (i32.const 15))
        (return (i32.const 0))))
    ;; m: grow memory by x-arg pages, answer memory.grow's result
    (if (i32.eq (local.get $op) (i32.const 109))
      (then (return (call $reply_num (memory.grow (call $atoi (i32.const 1100) (local.get $arglen)))))))
    ;; K: count calls in a global and answer the count (instance reuse)
    (if (i32.eq (local.get $op) (i32.const 75))
      (then
        (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
        (return (call $reply_num (global.get $counter)))))
    ;; k: count calls in memory (at 13000) and answer the count (instance reuse)
    (if (i32.eq (local.get $op) (i32.const 107))
      (then
        (i32.store (i32.const 13000) (i32.add (i32.load (i32.const 13000)) (i32.const 1)))
        (return (call $reply_num (i32.load (i32.const 13000))))))
    ;; E: the number of WASI environment variables
    (if (i32.eq (local.get $op) (i32.const 69))
      (then
        (drop (call $environ_sizes_get (i32.const 13100) (i32.const 13104)))
        (return (call $reply_num (i32.load (i32.const 13100))))))
    ;; F: fd_prestat_get(3): 0 when a directory is mounted, 8 (EBADF) when none is
    (if (i32.eq (local.get $op) (i32.const 70))
      (then (return (call $reply_num (call $fd_prestat_get (i32.const 3) (i32.const 13200))))))
    ;; O: read into a buffer outside memory (a trap)
    (if (i32.eq (local.get $op) (i32.const 79))
      (then (return (call $get_method (i32.const -16) (i32.const 100)))))
    ;; Z: trap
    (if (i32.eq (local.get $op) (i32.const 90)) (then unreachable))
    ;; W: loop forever
    (if (i32.eq (local.get $op) (i32.const 87)) (then (loop $forever (br $forever))))
    (i32.const 0))

  (func (export "on_response") (param $status i32) (result i32)
    (local $op i32) (local $n i32)
    (if (i32.le_s (call $get_response_header (i32.const 128) (i32.const 5) (i32.const 1024) (i32.const 16)) (i32.const 0))
      (then (return (i32.const 0))))
    (local.set $op (i32.load8_u (i32.const 1024)))
    ;; h: header work
    (if (i32.eq (local.get $op) (i32.const 104))
      (then
        (call $set_response_header (i32.const 144) (i32.const 6) (i32.const 240) (i32.const 1))
        (drop (call $remove_response_header (i32.const 160) (i32.const 11)))
        (call $set_response_header (i32.const 176) (i32.const 8) (i32.const 12000)
          (call $itoa (i32.add (i32.mul (call $get_response_status) (i32.const 1000)) (local.get $status))))
        (local.set $n (call $get_response_header (i32.const 192) (i32.const 4) (i32.const 2048) (i32.const 8192)))
        (call $set_response_header (i32.const 208) (i32.const 9) (i32.const 12000) (call $itoa (local.get $n)))
        (return (i32.const 0))))
    ;; b: replace the body
    (if (i32.eq (local.get $op) (i32.const 98))
      (then (call $set_response_body (i32.const 224) (i32.const 8)) (return (i32.const 0))))
    ;; c: replace the body with the plugin config
    (if (i32.eq (local.get $op) (i32.const 99))
      (then
        (local.set $n (call $get_plugin_config (i32.const 2048) (i32.const 8192)))
        (if (i32.ge_s (local.get $n) (i32.const 0))
          (then (call $set_response_body (i32.const 2048) (local.get $n))))
        (return (i32.const 0))))
    ;; l: log at warn
    (if (i32.eq (local.get $op) (i32.const 108))
      (then (call $log (i32.const 3) (i32.const 112) (i32.const 15)) (return (i32.const 0))))
    ;; Z: trap
    (if (i32.eq (local.get $op) (i32.const 90)) (then unreachable))
    (i32.const 0))
)
