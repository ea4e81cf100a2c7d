;; A network-filter callback hostsim never calls still has its signature
;; checked at load (cpp-host FOR_ALL_MODULE_FUNCTIONS in wasm.h).
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_downstream_data") (param i32 i32) (result i32) (i32.const 0)))
