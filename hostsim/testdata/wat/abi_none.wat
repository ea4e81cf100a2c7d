;; No proxy_abi_version_* export: "Missing or unknown Proxy-Wasm ABI version"
;; (cpp-host src/wasm.cc load).
(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
