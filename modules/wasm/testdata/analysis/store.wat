;; store.wat: an i32.store in a function no export calls still makes the guest one that
;; writes its memory (the analysis does not follow calls).
(module
  (memory (export "memory") 1)
  (func $unused (i32.store (i32.const 0) (i32.const 1)))
  (func (export "on_request") (result i32) (i32.const 0))
)
