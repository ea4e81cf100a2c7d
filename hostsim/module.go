package hostsim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// ErrLoad wraps every reason a module would not load in Envoy: a missing or
// mistyped import, an unknown ABI version, an export with the wrong signature,
// no malloc/proxy_on_memory_allocate.
var ErrLoad = errors.New("hostsim: module does not load")

// compilationCache is shared by every Module in the process, so compiling the same
// bytes twice (several test packages, or a VM per test) costs little.
var compilationCache = wazero.NewCompilationCache()

// Option configures Compile.
type Option func(*options)

type options struct {
	interpreter bool
	wasi        WASIProfile
}

// WithInterpreter runs the module in wazero's interpreter instead of its compiler.
func WithInterpreter() Option { return func(o *options) { o.interpreter = true } }

// WithWASI selects which set of WASI functions the simulated Envoy provides.
// The default is WASI2026, the cpp-host of Envoy v1.40 (see defaultWASI).
func WithWASI(p WASIProfile) Option { return func(o *options) { o.wasi = p } }

// defaultWASI is the profile of the Envoy we pin, envoyproxy/envoy:v1.40.0: its
// MODULE.bazel (1.40.0-dev) takes proxy-wasm-cpp-host 0.0.0-260704-f2db56a.envoy,
// and f2db56a descends from 94091cd; Envoy's patch to it changes build files only.
const defaultWASI = WASI2026

// Module is a compiled proxy-wasm module: compile once, instantiate many VMs.
// A Module is safe for concurrent use; its VMs are not.
type Module struct {
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	abi      ABIVersion
	opts     options
	imports  []string
	exports  []string
	shared   sharedData
	queues   sharedQueues // queues.go
	stats    statsScope   // metrics.go
	canaries canaryCache  // plugin.go
}

// CompileFile reads and compiles the module at path.
func CompileFile(ctx context.Context, path string, opts ...Option) (*Module, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hostsim: %w", err)
	}
	return Compile(ctx, b, opts...)
}

// Compile validates wasm the way Envoy loads a module (ABI version export,
// import linking, export signatures) and compiles it.
func Compile(ctx context.Context, wasm []byte, opts ...Option) (*Module, error) {
	o := options{wasi: defaultWASI}
	for _, opt := range opts {
		opt(&o)
	}
	cfg := wazero.NewRuntimeConfigCompiler()
	if o.interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg.WithCompilationCache(compilationCache))
	m, err := compile(ctx, r, wasm, o)
	if err != nil {
		_ = r.Close(ctx)
		return nil, err
	}
	return m, nil
}

func compile(ctx context.Context, r wazero.Runtime, wasm []byte, o options) (*Module, error) {
	compiled, err := r.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to parse corrupted wasm module: %v", ErrLoad, err)
	}
	m := &Module{runtime: r, compiled: compiled, opts: o}
	for name := range compiled.ExportedFunctions() {
		m.exports = append(m.exports, name)
	}
	slices.Sort(m.exports)
	if m.abi, err = detectABI(wasm); err != nil {
		return nil, err
	}
	host := hostFunctions(m.abi, o.wasi)
	if err := m.link(host); err != nil {
		return nil, err
	}
	if err := checkExports(compiled); err != nil {
		return nil, err
	}
	// Envoy's V8 links a module without an exported memory and then dereferences
	// a null memory at the first host call that touches it; refuse it up front.
	if len(compiled.ExportedMemories()) == 0 {
		return nil, fmt.Errorf("%w: module exports no memory", ErrLoad)
	}
	if err := instantiateHost(ctx, r, host); err != nil {
		return nil, fmt.Errorf("hostsim: %w", err)
	}
	return m, nil
}

// detectABI is cpp-host BytecodeUtil::getAbiVersion: the first function export
// named proxy_abi_version_* in the export section decides, whatever follows it.
func detectABI(wasm []byte) (ABIVersion, error) {
	name, err := firstABIExport(wasm)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: failed to parse corrupted wasm module: %v", ErrLoad, err)
	case name == abi010Export:
		return "", fmt.Errorf("%w: proxy-wasm ABI 0.1.0 is not supported by hostsim", ErrLoad)
	case name == "":
		return "", fmt.Errorf("%w: missing or unknown proxy-wasm ABI version", ErrLoad)
	}
	return abiVersionExports[name], nil
}

// firstABIExport walks the sections of a module wazero has already validated
// and returns the name of the first ABI version function export, or "".
func firstABIExport(wasm []byte) (string, error) {
	const exportSection, functionExport = 7, 0
	r := wasmReader{b: wasm[min(8, len(wasm)):]} // magic and version
	for len(r.b) > 0 {
		id := r.byte()
		section := wasmReader{b: r.bytes(r.u32())}
		if id != exportSection {
			continue
		}
		for n := section.u32(); n > 0 && section.err == nil; n-- {
			name := string(section.bytes(section.u32()))
			kind := section.byte()
			section.u32() // index
			if _, ok := abiVersionExports[name]; (ok || name == abi010Export) && kind == functionExport {
				return name, section.err
			}
		}
		return "", section.err
	}
	return "", r.err
}

// wasmReader reads LEB128 integers and byte strings; past the end it records
// an error and yields zeros.
type wasmReader struct {
	b   []byte
	err error
}

func (r *wasmReader) byte() byte {
	b := r.bytes(1)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func (r *wasmReader) u32() uint32 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<32-1 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

func (r *wasmReader) bytes(n uint32) []byte {
	if uint64(n) > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *wasmReader) fail() {
	if r.err == nil {
		r.err = errors.New("unexpected end of section")
	}
	r.b = nil
}

// link checks every import against what the simulated Envoy registers, with
// Envoy's messages (cpp-host src/v8/v8.cc V8::link): an unknown import or a
// signature mismatch fails the load.
func (m *Module) link(host []hostFunc) error {
	byName := make(map[string]*hostFunc, len(host))
	for i := range host {
		byName[host[i].module+"."+host[i].name] = &host[i]
	}
	for _, def := range m.compiled.ImportedFunctions() {
		mod, name, _ := def.Import()
		full := mod + "." + name
		m.imports = append(m.imports, full)
		hf, ok := byName[full]
		if !ok {
			return fmt.Errorf("%w: failed to load wasm module due to a missing import: %s", ErrLoad, full)
		}
		want := signature(def.ParamTypes(), def.ResultTypes())
		if want != hf.sig {
			return fmt.Errorf("%w: failed to load wasm module due to an import type mismatch: %s, want: %s, but host exports: %s",
				ErrLoad, full, want, hf.sig)
		}
	}
	for _, def := range m.compiled.ImportedMemories() {
		mod, name, _ := def.Import()
		return fmt.Errorf("%w: imported memory %s.%s is not supported by hostsim", ErrLoad, mod, name)
	}
	slices.Sort(m.imports)
	m.imports = slices.Compact(m.imports)
	return nil
}

// checkExports is cpp-host WasmBase::getFunctions: it looks exports up in this
// order and fails the load at the first one found with another signature.
// Start functions and the allocator alias are looked up only where cpp-host
// would call them, so an unused one with a wrong signature does not matter.
func checkExports(c wazero.CompiledModule) error {
	fns := c.ExportedFunctions()
	lookup := []string{exportInitialize}
	if _, reactor := fns[exportInitialize]; reactor {
		lookup = append(lookup, exportMain, exportMainVoid)
	} else {
		lookup = append(lookup, exportStart)
	}
	lookup = append(lookup, exportMalloc)
	if _, ok := fns[exportMalloc]; !ok {
		lookup = append(lookup, exportMemoryAllocate)
	}
	lookup = append(lookup, moduleCallbacks...)
	for _, name := range lookup {
		def, ok := fns[name]
		if !ok {
			continue
		}
		want, ok := exportSignatures[name]
		if !ok {
			want = otherCallbackSignatures[name]
		}
		if got := signature(def.ParamTypes(), def.ResultTypes()); got != want {
			return fmt.Errorf("%w: bad function signature for: %s, want: %s, but the module exports: %s",
				ErrLoad, name, want, got)
		}
	}
	// cpp-host WasmBase::getFunctions: "Wasm module is missing malloc function."
	if _, ok := fns[exportMalloc]; !ok {
		if _, ok := fns[exportMemoryAllocate]; !ok {
			return fmt.Errorf("%w: wasm module is missing malloc function", ErrLoad)
		}
	}
	return nil
}

// moduleCallbacks is cpp-host FOR_ALL_MODULE_FUNCTIONS, then the ABI 0.2.x
// headers callbacks and proxy_on_foreign_function (include/proxy-wasm/wasm.h,
// src/wasm.cc getFunctions).
var moduleCallbacks = []string{
	"proxy_validate_configuration", exportVMStart, exportConfigure, exportTick, exportContextCreate,
	"proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data",
	"proxy_on_downstream_connection_close", "proxy_on_upstream_connection_close",
	exportRequestBody, exportRequestTrailers, "proxy_on_request_metadata",
	exportResponseBody, exportResponseTrailers, "proxy_on_response_metadata",
	exportHTTPCallResponse, "proxy_on_grpc_receive", "proxy_on_grpc_close",
	"proxy_on_grpc_receive_initial_metadata", "proxy_on_grpc_receive_trailing_metadata",
	exportQueueReady, exportDone, exportLog, exportDelete,
	exportRequestHeaders, exportResponseHeaders, "proxy_on_foreign_function",
}

// otherCallbackSignatures are the callbacks Envoy checks at load that hostsim
// never calls (network filters, gRPC, metadata), as cpp-host's WasmCall* types.
var otherCallbackSignatures = map[string]string{
	"proxy_validate_configuration":            "ii->i",
	"proxy_on_new_connection":                 "i->i",
	"proxy_on_downstream_data":                "iii->i",
	"proxy_on_upstream_data":                  "iii->i",
	"proxy_on_downstream_connection_close":    "ii->",
	"proxy_on_upstream_connection_close":      "ii->",
	"proxy_on_request_metadata":               "ii->i",
	"proxy_on_response_metadata":              "ii->i",
	"proxy_on_grpc_receive":                   "iii->",
	"proxy_on_grpc_close":                     "iii->",
	"proxy_on_grpc_receive_initial_metadata":  "iii->",
	"proxy_on_grpc_receive_trailing_metadata": "iii->",
	"proxy_on_foreign_function":               "iii->",
}

func signature(params, results []api.ValueType) string {
	var b strings.Builder
	for _, p := range params {
		b.WriteByte(valueTypeLetter(p))
	}
	b.WriteString("->")
	for _, r := range results {
		b.WriteByte(valueTypeLetter(r))
	}
	return b.String()
}

func valueTypeLetter(t api.ValueType) byte {
	switch t {
	case api.ValueTypeI32:
		return 'i'
	case api.ValueTypeI64:
		return 'I'
	case api.ValueTypeF32:
		return 'f'
	case api.ValueTypeF64:
		return 'F'
	}
	return '?'
}

func instantiateHost(ctx context.Context, r wazero.Runtime, host []hostFunc) error {
	builders := map[string]wazero.HostModuleBuilder{}
	var order []string
	for i := range host {
		hf := &host[i]
		b, ok := builders[hf.module]
		if !ok {
			b = r.NewHostModuleBuilder(hf.module)
			builders[hf.module] = b
			order = append(order, hf.module)
		}
		params, results := valueTypes(hf.sig)
		b.NewFunctionBuilder().WithGoModuleFunction(hf.goFunc(), params, results).Export(hf.name)
	}
	for _, name := range order {
		if _, err := builders[name].Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}

func valueTypes(sig string) (params, results []api.ValueType) {
	in, out, _ := strings.Cut(sig, "->")
	conv := func(s string) []api.ValueType {
		ts := make([]api.ValueType, len(s))
		for i := range s {
			if s[i] == 'I' {
				ts[i] = api.ValueTypeI64
			} else {
				ts[i] = api.ValueTypeI32
			}
		}
		return ts
	}
	return conv(in), conv(out)
}

// ABI returns the Proxy-Wasm ABI version the module declares.
func (m *Module) ABI() ABIVersion { return m.abi }

// Imports returns "module.name" of every imported function, sorted.
func (m *Module) Imports() []string { return slices.Clone(m.imports) }

// Exports returns the names of every exported function, sorted.
func (m *Module) Exports() []string { return slices.Clone(m.exports) }

// Close releases the compiled module and every VM still open.
func (m *Module) Close(ctx context.Context) error { return m.runtime.Close(ctx) }

// sharedData is Envoy's per-vm_id key-value store (proxy_get/set_shared_data).
type sharedData struct {
	mu      sync.Mutex
	data    map[string]map[string]sharedValue
	nextCas uint32
}

type sharedValue struct {
	value []byte
	cas   uint32
}
