;; An import Envoy does not register: "Failed to load Wasm module due to a
;; missing import: env.proxy_does_not_exist" (cpp-host src/v8/v8.cc link).
(module
  (import "env" "proxy_does_not_exist" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
