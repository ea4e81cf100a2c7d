;; Two version exports: cpp-host takes the first in the export section
;; (src/bytecode_util.cc getAbiVersion), here 0.2.0.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_0"))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
