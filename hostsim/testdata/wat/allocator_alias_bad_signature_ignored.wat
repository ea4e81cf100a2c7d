;; proxy_on_memory_allocate with the wrong signature is never looked up when
;; malloc exists (cpp-host src/wasm.cc getFunctions), so the module loads.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_memory_allocate") (param i64) (result i64) (i64.const 1024)))
