;; atomic.wat: an atomic read-modify-write writes the memory (wat2wasm --enable-threads).
(module
  (memory (export "memory") 1 1 shared)
  (func (export "on_request") (result i32) (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
)
