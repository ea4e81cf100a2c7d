;; malloc with the wrong signature fails the load even though
;; proxy_on_memory_allocate is fine: cpp-host checks malloc first.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i64) (result i32) (i32.const 1024))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024)))
