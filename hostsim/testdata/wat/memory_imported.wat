;; An imported memory: cpp-host's V8 creates one for it (src/v8/v8.cc link);
;; hostsim refuses it.
(module
  (import "env" "memory" (memory 1))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
