;; ABI 0.1.0, which cpp-host still loads (src/bytecode_util.cc getAbiVersion)
;; and hostsim refuses.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_1_0"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
