;; Only function exports declare the version (src/bytecode_util.cc
;; getAbiVersion): the global named for 0.2.1 is skipped and 0.2.0 is taken.
(module
  (memory (export "memory") 1)
  (global (export "proxy_abi_version_0_2_1") i32 (i32.const 0))
  (func (export "proxy_abi_version_0_2_0"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
