;; No memory at all. Envoy's V8 links it (src/v8/v8.cc link) and would then
;; dereference a null memory at the first host call that touches memory;
;; hostsim refuses it instead.
(module
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
