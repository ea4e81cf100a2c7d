;; Both allocators: cpp-host looks up malloc first and proxy_on_memory_allocate
;; only when there is no malloc (src/wasm.cc getFunctions). proxy_on_configure
;; copies the plugin configuration into the module (proxy_get_buffer_bytes,
;; which allocates); each allocator logs its name when called.
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $proxy_get_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "malloc")
  (data (i32.const 16) "proxy_on_memory_allocate")
  (data (i32.const 48) "status=?")
  (func $log (param $ptr i32) (param $len i32)
    (drop (call $proxy_log (i32.const 2) (local.get $ptr) (local.get $len))))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32)
    (call $log (i32.const 0) (i32.const 6))
    (i32.const 1024))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32)
    (call $log (i32.const 16) (i32.const 24))
    (i32.const 2048))
  ;; Reads the whole plugin configuration (buffer type 7) and logs the status.
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (i32.store8 (i32.const 55)
      (i32.add (i32.const 48)
        (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (local.get $size)
          (i32.const 256) (i32.const 260))))
    (call $log (i32.const 48) (i32.const 8))
    (i32.const 1)))
