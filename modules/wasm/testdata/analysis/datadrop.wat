;; datadrop.wat: data.drop changes what a later memory.init would write.
(module
  (memory (export "memory") 1)
  (data $d "abc")
  (func (export "on_request") (result i32) (data.drop $d) (i32.const 0))
)
