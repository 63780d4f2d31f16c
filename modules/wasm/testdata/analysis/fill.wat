;; fill.wat: a bulk memory instruction writes the memory.
(module
  (memory (export "memory") 1)
  (func (export "on_request") (result i32) (memory.fill (i32.const 0) (i32.const 7) (i32.const 4)) (i32.const 0))
)
