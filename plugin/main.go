// Command plugin is secretgate's proxy-wasm module: an Envoy HTTP filter that
// swaps placeholders for real secret values only when the request goes to one
// of that secret's allowed hosts. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/secretgate.wasm ./plugin
//
// The decisions live in package policies; this package only moves bytes
// between the host and policies (filter.go) through the ABI glue in
// abi_wasip1.go.
package main

// main is not run in a WASI reactor (-buildmode=c-shared); the glue sets
// itself up in package initialisation, which _initialize runs.
func main() {}
