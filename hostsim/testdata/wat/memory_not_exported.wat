;; A memory the module does not export: cpp-host's V8 only takes an exported
;; (or imported) memory (src/v8/v8.cc link), so as with no memory at all.
(module
  (memory 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
