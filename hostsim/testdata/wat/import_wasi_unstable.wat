;; WASI under its old module name: cpp-host registers every WASI function
;; under both wasi_unstable and wasi_snapshot_preview1 (src/wasm.cc
;; registerCallbacks). _initialize writes a line to stdout, which Envoy logs at
;; info (fd_write is allowed during start-up).
(module
  (import "wasi_unstable" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\10\00\00\00\13\00\00\00") ;; one iovec: 19 bytes at 16
  (data (i32.const 16) "from wasi_unstable\n")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "_initialize")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64)))))
