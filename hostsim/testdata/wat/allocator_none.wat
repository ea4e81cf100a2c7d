;; Neither malloc nor proxy_on_memory_allocate: "Wasm module is missing malloc
;; function." (cpp-host src/wasm.cc getFunctions).
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1")))
