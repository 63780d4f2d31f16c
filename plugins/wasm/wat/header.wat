;; header.wat: the smallest useful guest of the conduit ABI, for the `conduit-wasm`
;; benchmark row and docs/wasm.md: in the response phase it adds X-Wasm: 1.
(module
  (import "conduit" "conduit_set_response_header" (func $set_response_header (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-wasm")
  (data (i32.const 16) "1")
  (func (export "on_request") (result i32) (i32.const 0))
  (func (export "on_response") (param $status i32) (result i32)
    (call $set_response_header (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 1))
    (i32.const 0))
)
