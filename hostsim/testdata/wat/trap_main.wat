;; A trap in main fails the VM during start-up, after _initialize ran; no root
;; context is created.
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "_initialize")
  (data (i32.const 16) "main(0,0)")
  (data (i32.const 80) "_start")
  (data (i32.const 96) "proxy_on_context_create")
  (func $log (param $ptr i32) (param $len i32)
    (drop (call $proxy_log (i32.const 2) (local.get $ptr) (local.get $len))))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "_initialize") (call $log (i32.const 0) (i32.const 11)))
  (func (export "main") (param i32 i32) (result i32) (call $log (i32.const 16) (i32.const 9)) (unreachable))
  (func (export "proxy_on_context_create") (param i32 i32) (call $log (i32.const 96) (i32.const 23))))
