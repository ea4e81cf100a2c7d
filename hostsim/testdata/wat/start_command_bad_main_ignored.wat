;; A command whose main has the wrong signature still loads: cpp-host looks
;; main up (and checks its signature) only when there is an _initialize.
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "main")
  (data (i32.const 80) "_start")
  (func $log (param $ptr i32) (param $len i32)
    (drop (call $proxy_log (i32.const 2) (local.get $ptr) (local.get $len))))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "_start") (call $log (i32.const 80) (i32.const 6)))
  (func (export "main") (param i64) (call $log (i32.const 16) (i32.const 4))))
