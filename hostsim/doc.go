// Package hostsim is a Proxy-Wasm host (ABI 0.2.0 and 0.2.1) on wazero that
// behaves like Envoy's: proxy-wasm-cpp-host plus Envoy's
// source/extensions/common/wasm/context.cc and the Wasm HTTP filter. It runs any
// proxy-wasm module, so that tests and a local dev proxy see what Envoy would do:
// which modules load, which statuses host calls return, how header maps change,
// what is logged and counted, and how failures fail closed.
//
// Compile a module once, start a VM per test (or per worker), then send requests
// through streams:
//
//	m, err := hostsim.CompileFile(ctx, "plugin.wasm")
//	vm, err := m.NewVM(ctx, hostsim.PluginConfig{Configuration: cfg})
//	out, err := vm.Do(ctx, hostsim.Request{Headers: hostsim.Headers{{Name: ":path", Value: "/"}}})
//
// VM.AddPlugin configures more plugins (root contexts) in the same VM, and
// VM.Reconfigure models a configuration update while streams are open.
//
// Each behaviour names the Envoy or cpp-host source it follows in a comment.
// What hostsim does not model yet is listed in DEVIATIONS.md.
package hostsim
