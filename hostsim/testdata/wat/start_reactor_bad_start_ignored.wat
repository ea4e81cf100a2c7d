;; A reactor whose _start has the wrong signature still loads: cpp-host looks
;; _start up (and checks its signature) only when there is no _initialize.
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "_initialize")
  (data (i32.const 80) "_start")
  (func $log (param $ptr i32) (param $len i32)
    (drop (call $proxy_log (i32.const 2) (local.get $ptr) (local.get $len))))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "_initialize") (call $log (i32.const 0) (i32.const 11)))
  (func (export "_start") (param i32) (call $log (i32.const 80) (i32.const 6))))
