package hostsim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// CallKind tells which side of the ABI a Call crossed.
type CallKind uint8

const (
	// ExportCall is hostsim calling a function the module exports: a proxy_on_*
	// callback, a start function, or malloc/proxy_on_memory_allocate.
	ExportCall CallKind = iota + 1
	// HostCall is the module calling a function hostsim provides.
	HostCall
)

// Call is one call across the ABI, recorded with PluginConfig.RecordCalls.
type Call struct {
	Kind CallKind
	// Module is the import module of a host call ("env", "wasi_snapshot_preview1");
	// empty for an export call.
	Module string
	// Name is the function called: the export, or the host function.
	Name string
	// Export is the callback that was running: the call itself for an export call
	// hostsim made from outside the module, the enclosing callback otherwise
	// ("" while no export runs).
	Export string
	// Context is the id of the context the callback runs for: the stream's, the
	// root context's, or 0 before the root context exists (module start-up).
	Context uint32
	// Depth is how deeply the call is nested: 0 for callbacks hostsim makes, 1
	// for the host calls they make, 2 for a malloc a host call makes, and so on.
	Depth int
	// Result is what the call returned, if HasResult: the Status of a proxy_*
	// host function, the errno of a WASI one, the raw return value of an export.
	Result    uint32
	HasResult bool
	// Trapped reports that the call did not return: it trapped, or a host
	// function it called did (PluginConfig.TrapOn, a restricted call).
	Trapped bool
}

// Status is the status a proxy_* host function returned; ok is false for
// other calls and for calls that trapped.
func (c Call) Status() (s Status, ok bool) {
	if c.Kind != HostCall || !c.HasResult || !returnsStatus(c.Module, c.Name) {
		return 0, false
	}
	return Status(c.Result), true
}

// returnsStatus is true for the host functions whose result is a proxy_status_t.
func returnsStatus(module, name string) bool {
	return module == "env" && strings.HasPrefix(name, "proxy_")
}

// String renders the call on one line for test failures, e.g.
// "proxy_get_header_map_pairs -> Ok [context 2, proxy_on_request_headers]".
func (c Call) String() string {
	s := c.line()
	if c.Kind == HostCall || c.Export != c.Name {
		s += " [context " + strconv.FormatUint(uint64(c.Context), 10)
		if c.Export != "" && c.Export != c.Name {
			s += ", " + c.Export
		}
		s += "]"
	}
	return s
}

// line is the call without where it happened: callbacks carry their context
// id as they do on the wire, "name(id)"; host calls their module unless "env".
func (c Call) line() string {
	var b strings.Builder
	switch {
	case c.Kind == ExportCall && strings.HasPrefix(c.Name, "proxy_on_") && c.Name != exportMemoryAllocate:
		fmt.Fprintf(&b, "%s(%d)", c.Name, c.Context)
	case c.Kind == HostCall && c.Module != "env":
		b.WriteString(c.Module + "." + c.Name)
	default:
		b.WriteString(c.Name)
	}
	switch {
	case c.Trapped:
		b.WriteString(" trapped")
	case !c.HasResult:
	case c.Kind == HostCall && returnsStatus(c.Module, c.Name):
		b.WriteString(" -> " + Status(c.Result).String())
	case c.Kind == ExportCall && isMalloc(c.Name):
		// The address depends on the module's allocator, not on what it was asked.
	case c.Kind == ExportCall && isHTTPCallback(c.Name):
		b.WriteString(" -> " + Action(c.Result).String())
	default:
		b.WriteString(" -> " + strconv.FormatUint(uint64(c.Result), 10))
	}
	return b.String()
}

func isMalloc(name string) bool { return name == exportMalloc || name == exportMemoryAllocate }

func isHTTPCallback(name string) bool {
	switch name {
	case exportRequestHeaders, exportRequestBody, exportRequestTrailers,
		exportResponseHeaders, exportResponseBody, exportResponseTrailers:
		return true
	}
	return false
}

// Trace renders calls one per line, indented two spaces per level of nesting,
// so a test compares a whole sequence at once:
//
//	proxy_on_context_create(2)
//	proxy_on_request_headers(2) -> Continue
//	  proxy_get_header_map_pairs -> Ok
//	    proxy_on_memory_allocate
//	  proxy_set_header_map_pairs -> Ok
//	proxy_on_log(2)
//	proxy_on_done(2) -> 1
//	proxy_on_delete(2)
func Trace(calls []Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = strings.Repeat("  ", c.Depth) + c.line()
	}
	return out
}

// WithoutWASI returns calls less the WASI host calls. A Go module's runtime
// reads the clock whenever its garbage collector runs, so those come and go
// with unrelated changes; a trace that should stay exact leaves them out.
func WithoutWASI(calls []Call) []Call {
	var out []Call
	for _, c := range calls {
		if c.Kind != HostCall || c.Module == "env" {
			out = append(out, c)
		}
	}
	return out
}

// Calls returns every call recorded since the VM started or ResetCalls, in the
// order they began; nil unless PluginConfig.RecordCalls.
func (vm *VM) Calls() []Call { return append([]Call(nil), vm.calls...) }

// ResetCalls forgets the calls recorded so far, e.g. those of start-up.
func (vm *VM) ResetCalls() { vm.calls = vm.calls[:0] }

// contextID is the id of the context the running callback is for.
func (vm *VM) contextID() uint32 {
	if vm.current != nil {
		return vm.current.id
	}
	return vm.root.rootID
}

// beginCall records the start of a call as trapped, until endCall says otherwise.
// It returns the call's index.
func (vm *VM) beginCall(c Call) int {
	c.Context, c.Depth, c.Trapped = vm.contextID(), vm.depth, true
	if c.Export == "" {
		c.Export = c.Name
	}
	vm.calls = append(vm.calls, c)
	vm.depth++
	return len(vm.calls) - 1
}

// endCall records how call i returned. A trap unwinds every call it passes
// through without endCall: depth is what the call began with.
func (vm *VM) endCall(i int, trapped bool, results int, result uint64) {
	c := &vm.calls[i]
	vm.depth = c.Depth
	c.Trapped = trapped
	if !trapped && results > 0 {
		c.Result, c.HasResult = uint32(result), true
	}
}

// callExport calls fn recording it; the arguments and the result are in stack.
func (vm *VM) callExport(fn api.Function, name string, stack []uint64) error {
	export := ""
	if vm.depth > 0 {
		export = vm.phase
	}
	i := vm.beginCall(Call{Kind: ExportCall, Name: name, Export: export})
	err := fn.CallWithStack(vm.ctx, stack)
	vm.endCall(i, err != nil, len(fn.Definition().ResultTypes()), stack[0])
	return err
}

// callHost runs a host function recording it. A panic (a trap) leaves the call
// marked trapped.
func (vm *VM) callHost(hf *hostFunc, stack []uint64) {
	i := vm.beginCall(Call{Kind: HostCall, Module: hf.module, Name: hf.name, Export: vm.phase})
	hf.run(vm, stack)
	results := 0
	if _, out, _ := strings.Cut(hf.sig, "->"); out != "" {
		results = 1
	}
	vm.endCall(i, false, results, stack[0])
}
