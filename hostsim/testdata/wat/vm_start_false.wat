;; proxy_on_vm_start returning 0: cpp-host start() fails ("Failed to start base
;; Wasm") and proxy_on_configure is never called.
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 96) "proxy_on_context_create")
  (data (i32.const 128) "proxy_on_vm_start")
  (data (i32.const 160) "proxy_on_configure")
  (func $log (param $ptr i32) (param $len i32)
    (drop (call $proxy_log (i32.const 2) (local.get $ptr) (local.get $len))))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32) (call $log (i32.const 96) (i32.const 23)))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (call $log (i32.const 128) (i32.const 17))
    (i32.const 0))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $log (i32.const 160) (i32.const 18))
    (i32.const 1)))
