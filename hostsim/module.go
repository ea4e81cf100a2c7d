package hostsim

import (
	"context"
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

// WithWASI selects which set of WASI functions the simulated Envoy provides
// (default WASI2025: cpp-host before commit 94091cd, as 2025 Envoy releases pin it).
func WithWASI(p WASIProfile) Option { return func(o *options) { o.wasi = p } }

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
	var o options
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
	if m.abi, err = detectABI(compiled); err != nil {
		return nil, err
	}
	host := hostFunctions(m.abi, o.wasi)
	if err := m.link(host); err != nil {
		return nil, err
	}
	if err := checkExports(compiled); err != nil {
		return nil, err
	}
	if err := instantiateHost(ctx, r, host); err != nil {
		return nil, fmt.Errorf("hostsim: %w", err)
	}
	return m, nil
}

func detectABI(c wazero.CompiledModule) (ABIVersion, error) {
	var found []ABIVersion
	fns := c.ExportedFunctions()
	for name, v := range abiVersionExports {
		if _, ok := fns[name]; ok {
			found = append(found, v)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		// Envoy takes the first in export order; hostsim refuses to guess.
		return "", fmt.Errorf("%w: module exports several proxy_abi_version_* functions", ErrLoad)
	}
	if _, ok := fns[abi010Export]; ok {
		return "", fmt.Errorf("%w: proxy-wasm ABI 0.1.0 is not supported by hostsim", ErrLoad)
	}
	return "", fmt.Errorf("%w: missing or unknown proxy-wasm ABI version", ErrLoad)
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

func checkExports(c wazero.CompiledModule) error {
	fns := c.ExportedFunctions()
	for name, want := range exportSignatures {
		def, ok := fns[name]
		if !ok {
			continue
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
