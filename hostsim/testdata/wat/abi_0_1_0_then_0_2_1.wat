;; Two version exports, 0.1.0 first: cpp-host takes 0.1.0, so hostsim refuses
;; the module.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_1_0"))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
