;; importedmemory.wat: a memory the guest imports may be written from outside.
(module
  (import "env" "memory" (memory 1))
  (func (export "on_request") (result i32) (i32.const 0))
)
