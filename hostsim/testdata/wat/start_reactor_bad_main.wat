;; A reactor whose main has the wrong signature fails to load: cpp-host
;; checks every export it looks up (src/v8/v8.cc getModuleFunctionImpl).
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "_initialize"))
  (func (export "main") (result i32) (i32.const 0)))
