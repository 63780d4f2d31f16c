;; grow.wat: memory.grow changes the memory.
(module
  (memory (export "memory") 1)
  (func (export "on_request") (result i32) (drop (memory.grow (i32.const 1))) (i32.const 0))
)
