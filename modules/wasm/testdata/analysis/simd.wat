;; simd.wat: a vector store writes the memory.
(module
  (memory (export "memory") 1)
  (func (export "on_request") (result i32) (v128.store (i32.const 0) (v128.const i64x2 1 2)) (i32.const 0))
)
