;; malloc answering 0: cpp-host allocMemory returns null, so copying data into
;; the module fails with InvalidMemoryAccess (6) and the VM keeps running
;; (include/proxy-wasm/wasm.h copyToPointerSize).
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $proxy_get_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 48) "status=?")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0))
  ;; Reads the whole plugin configuration (buffer type 7) and logs the status.
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (i32.store8 (i32.const 55)
      (i32.add (i32.const 48)
        (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (local.get $size)
          (i32.const 256) (i32.const 260))))
    (drop (call $proxy_log (i32.const 2) (i32.const 48) (i32.const 8)))
    (i32.const 1)))
