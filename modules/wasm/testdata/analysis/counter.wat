;; counter.wat: a request-phase guest that counts its calls in a global and never writes
;; memory: on_request passes the request on its instance's first call and answers 500
;; (returns 1) on any later one, so it passes every request only when its global is reset.
(module
  (import "conduit" "conduit_set_response_header" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 0) "x-calls")
  (func (export "on_request") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.ne (global.get $calls) (i32.const 1)))
)
