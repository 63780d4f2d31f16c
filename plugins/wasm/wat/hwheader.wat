;; hwheader.wat: the smallest useful http-wasm guest, for the `conduit-httpwasm`
;; benchmark row and docs/wasm.md: it adds the request header X-Wasm: 1.
(module
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "X-Wasm")
  (data (i32.const 16) "1")
  (func (export "handle_request") (result i64)
    (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 1))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
