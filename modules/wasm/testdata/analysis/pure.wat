;; pure.wat: reads its memory and changes a global, never writes memory; imports only conduit
;; functions that fill no buffer. on_request and noop are constants; on_response is not.
(module
  (import "conduit" "conduit_set_response_header" (func $set (param i32 i32 i32 i32)))
  (import "conduit" "conduit_log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (data (i32.const 0) "x-wasm1")
  (func (export "on_request") (result i32) (i32.const 0))
  (func (export "noop") (param i32 i32) (local i64))
  (func (export "on_response") (param i32) (result i32)
    (global.set $n (i32.add (global.get $n) (i32.load8_u (i32.const 6))))
    (call $set (i32.const 0) (i32.const 6) (i32.const 6) (i32.const 1))
    (global.get $n))
)
