;; consts.wat: which exports are constants. The guest writes no memory (it has none).
(module
  (import "conduit" "conduit_log" (func $log (param i32 i32 i32)))
  (func (export "empty"))
  (func (export "locals") (param i32) (local i32 i64))
  (func (export "minus5") (result i32) (i32.const -5))
  (func (export "i64max") (result i64) (i64.const 0x7fffffffffffffff))
  (func (export "minus1") (result i64) (i64.const -1))
  (func (export "nop") (nop))
  (func (export "two") (result i32) (i32.const 1) (drop) (i32.const 2))
  (func (export "unreachable") (unreachable))
  (export "log" (func $log))
)
