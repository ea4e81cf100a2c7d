package hostsim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

var (
	// ErrVMStart wraps a failure while starting the module: a trap in
	// _initialize/main/_start or proxy_on_context_create, or proxy_on_vm_start
	// returning false. Envoy then rejects the filter configuration.
	ErrVMStart = errors.New("hostsim: wasm vm failed to start")
	// ErrConfigure wraps proxy_on_configure returning false or trapping. Envoy then
	// rejects the filter configuration ("Unable to create Wasm HTTP filter").
	ErrConfigure = errors.New("hostsim: wasm plugin failed to configure")
)

// PluginConfig mirrors the fields of Envoy's envoy.extensions.wasm.v3.PluginConfig
// and VmConfig that hostsim uses.
type PluginConfig struct {
	Name, RootID, VMID string
	VMConfiguration    []byte            // vm_config.configuration (BufferVMConfiguration)
	Configuration      []byte            // configuration (BufferPluginConfiguration, read in proxy_on_configure)
	Environment        map[string]string // vm_config.environment_variables, seen through WASI environ
	// Node, Connection and Route stand for the rest of Envoy, as properties
	// (proxy_get_property) show it: the bootstrap node (xds.node), the
	// downstream connection of every stream (zero means DefaultConnection) and
	// the route every stream matches (nil: none). Request.Connection,
	// Request.Route, Stream.SetConnection and Stream.SetRoute override the last
	// two per stream.
	Node       Node
	Connection Connection
	Route      *Route
	// FailOpen is fail_open: after the VM fails, streams skip the filter instead of
	// getting a 503 local reply.
	FailOpen bool
	// FailurePolicy is failure_policy (failure.go); setting it together with
	// FailOpen is an error, as in Envoy.
	FailurePolicy FailurePolicy
	// ReloadBackoff is reload_config.backoff.base_interval for
	// FailurePolicyReload; zero means Envoy's 1s.
	ReloadBackoff time.Duration
	// AllowOnHeadersStopIteration is allow_on_headers_stop_iteration. When false
	// (Envoy's default) a headers callback returning StopIteration pauses the whole
	// stream (StopAllIterationAndWatermark).
	AllowOnHeadersStopIteration bool
	// BufferLimit is the most body bytes Envoy buffers for the filter
	// (per_connection_buffer_limit_bytes); zero means Envoy's default, 1 MiB.
	// Past it a buffered request gets 413, a buffered response 500 or a reset.
	BufferLimit int
	// LogLevel is what proxy_get_log_level reports; zero means LogInfo, Envoy's default.
	LogLevel LogLevel
	// Now is the wall clock for proxy_get_current_time_nanoseconds and WASI
	// clock_time_get; nil means time.Now. VM.Advance adds to what it reads.
	Now func() time.Time
	// OnLog, when set, receives every log entry as it is written and the VM keeps
	// none (for long-running hosts); when nil, VM.Logs returns them all.
	OnLog func(LogEntry)
	// MeasureGuest makes the VM time the module's own work (VM.GuestTime), for
	// benchmarks: every call in and every host function is timed, which
	// costs a few tens of nanoseconds each.
	MeasureGuest bool
	// TrapOn names a host function ("proxy_get_header_map_pairs", say) that
	// traps the callback calling it, as a panic inside the module would: a
	// way to test any module's failure policy without a buggy build of it.
	TrapOn string
	// RecordCalls makes the VM record every call across the ABI, both ways,
	// for VM.Calls (tests assert traces with it; it keeps them all).
	RecordCalls bool
	// Clusters are the upstream clusters proxy_http_call can reach, by name:
	// each handler answers the calls to its cluster, on its own goroutine. A call
	// to any other name is BadArgument, as in Envoy (httpcall.go).
	Clusters map[string]http.Handler
	// CallResponseLimit is the most response body bytes an HTTP call may
	// bring back (Envoy's runtime http.async_response_buffer_limit); zero
	// means Envoy's default, DefaultCallResponseLimit. A longer body fails
	// the call.
	CallResponseLimit int
}

// LogEntry is one message the module logged through proxy_log or wrote to
// stdout (Info) or stderr (Error).
type LogEntry struct {
	Level   LogLevel
	Message string
}

// VM is one instance of a Module, like one Envoy worker thread's Wasm VM with
// its plugin configured (VM.Plugin; VM.AddPlugin adds more). It is not safe for
// concurrent use.
type VM struct {
	m   *Module
	cfg PluginConfig
	mod api.Module
	mem api.Memory
	// ctx carries the VM to the host functions.
	ctx context.Context

	fns           exports
	stack         [5]uint64
	mallocStack   [1]uint64
	restrict      restriction
	phase         string // export being called, for diagnostics
	stopIteration bool   // set by proxy_send_local_response, cleared as every callback returns
	stopped       bool   // stopIteration as the last callback left it
	tempPlugin    bool   // cpp-host temp_plugin_: the root context may read BufferPluginConfiguration

	failed  bool
	failure error

	// plugin is the VM's own plugin, the one VM.NewStream and VM.Do use;
	// roots holds every root context not yet deleted, by id (plugin.go).
	plugin    *Plugin
	roots     map[uint32]*Plugin
	nextID    uint32
	streams   map[uint32]*Stream
	root      *Plugin // plugin of the running callback
	current   *Stream // context of the running callback; nil for the root context
	effective *Stream // set by proxy_set_effective_context; nil means current
	effRoot   *Plugin // set when proxy_set_effective_context chose a root context

	// Shutdown (plugin.go): root contexts whose proxy_done awaits
	// proxy_on_delete after the running call, how deeply calls nest, and
	// whether Close was called and the instance released.
	pendingDelete []*Plugin
	callDepth     int
	closing       bool
	released      bool

	logs        []LogEntry
	diagnostics []string
	// With MeasureGuest: time inside calls into the module, and inside host
	// functions (which the module's time excludes).
	inCalls, inHost time.Duration
	metrics         metrics
	tickPeriod      time.Duration
	started         time.Time
	clock           time.Duration // added by VM.Advance (timers.go)
	timers          timerState
	reload          reloadState // FAIL_RELOAD (failure.go)
	envoyLogs       []LogEntry
	scratch         []byte

	// With RecordCalls: the calls so far, and how deeply the running one nests.
	calls []Call
	depth int

	async asyncState // HTTP calls and queue notices waiting for delivery (httpcall.go)
}

type restriction uint8

const (
	unrestricted restriction = iota
	restrictStart
	restrictMalloc
)

type exports struct {
	malloc, contextCreate, vmStart, configure, tick            api.Function
	requestHeaders, requestBody, responseHeaders, responseBody api.Function
	done, log, delete                                          api.Function
}

type vmKey struct{}

// NewVM instantiates the module and starts it the way Envoy starts a plugin on a
// worker (cpp-host src/wasm.cc WasmBase::startVm, ContextBase::onStart and
// onConfigure): _initialize then main or __main_void (reactor) or _start
// (command), with only the start-up imports allowed; proxy_on_context_create for
// the root context; proxy_on_vm_start; proxy_on_configure. When starting or
// configuring fails it returns the VM in the failed state together with an error
// wrapping ErrVMStart or ErrConfigure.
func (m *Module) NewVM(ctx context.Context, cfg PluginConfig) (*VM, error) {
	if cfg.LogLevel == 0 {
		cfg.LogLevel = LogInfo
	}
	if err := cfg.checkFailurePolicy(); err != nil {
		return nil, err
	}
	vm, err := m.newInstance(ctx, cfg)
	if err != nil {
		return nil, err
	}
	err = vm.start()
	m.canaries.recordFirst(cfg, err) // plugin.go
	if err != nil {
		return vm, err
	}
	vm.reload.running, vm.reload.lastLoad = true, vm.monotonicClock()
	vm.deliverPending()
	return vm, nil
}

// newInstance instantiates the module for a VM, not yet started.
func (m *Module) newInstance(ctx context.Context, cfg PluginConfig) (*VM, error) {
	vm := &VM{m: m, cfg: cfg, nextID: 1, streams: map[uint32]*Stream{}, roots: map[uint32]*Plugin{}, started: time.Now()}
	vm.plugin = &Plugin{vm: vm, cfg: cfg}
	vm.root = vm.plugin
	vm.ctx = context.WithValue(context.WithoutCancel(ctx), vmKey{}, vm)
	mod, err := m.runtime.InstantiateModule(vm.ctx, m.compiled,
		wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("hostsim: instantiate: %w", err)
	}
	vm.mod, vm.mem = mod, mod.Memory() // Compile refused modules without one
	vm.bindExports()
	return vm, nil
}

func (vm *VM) bindExports() {
	fn := func(name string) api.Function { return vm.mod.ExportedFunction(name) }
	vm.fns = exports{
		malloc:          fn(exportMalloc),
		contextCreate:   fn(exportContextCreate),
		vmStart:         fn(exportVMStart),
		configure:       fn(exportConfigure),
		tick:            fn(exportTick),
		requestHeaders:  fn(exportRequestHeaders),
		requestBody:     fn(exportRequestBody),
		responseHeaders: fn(exportResponseHeaders),
		responseBody:    fn(exportResponseBody),
		done:            fn(exportDone),
		log:             fn(exportLog),
		delete:          fn(exportDelete),
	}
	if vm.fns.malloc == nil {
		vm.fns.malloc = fn(exportMemoryAllocate)
	}
}

func (vm *VM) start() error {
	vm.metrics.init(&vm.m.stats) // each instance numbers its metric ids anew
	vm.restrict = restrictStart
	if init := vm.mod.ExportedFunction(exportInitialize); init != nil {
		// cpp-host startVm calls main even when _initialize trapped: the
		// failure is only looked at afterwards.
		vm.callVoid(init, exportInitialize)
		if main := vm.mod.ExportedFunction(exportMain); main != nil {
			vm.stack[0], vm.stack[1] = 0, 0
			vm.call(main, exportMain)
		} else if mainVoid := vm.mod.ExportedFunction(exportMainVoid); mainVoid != nil {
			vm.call(mainVoid, exportMainVoid)
		}
	} else if start := vm.mod.ExportedFunction(exportStart); start != nil {
		vm.callVoid(start, exportStart)
	}
	vm.restrict = unrestricted
	if vm.failed {
		return fmt.Errorf("%w: %v", ErrVMStart, vm.failure)
	}
	return vm.startPlugin(vm.plugin)
}

// startPlugin is startRoot for the VM's first plugin (and a reload): any
// failure fails the VM.
func (vm *VM) startPlugin(p *Plugin) error {
	step, cause := vm.startRoot(p)
	if step == nil {
		return nil
	}
	vm.fail(cause) // no-op after a trap: the failure stays the trap
	return fmt.Errorf("%w: %v", step, vm.failure)
}

// startRoot creates p's root context and configures it, as cpp-host
// WasmBase::start (ContextBase::onStart: proxy_on_context_create(root, 0),
// proxy_on_vm_start) then WasmBase::configure (proxy_on_configure) do for
// every plugin, the first and each one added later to the same VM. On failure
// it returns ErrVMStart or ErrConfigure and why; a trap has failed the VM, a
// false return has not.
func (vm *VM) startRoot(p *Plugin) (step, cause error) {
	p.rootID = vm.allocID()
	vm.roots[p.rootID] = p
	if vm.fns.contextCreate != nil {
		// cpp-host ContextBase::onStart sets temp_plugin_ around this call
		// only, so proxy_on_vm_start cannot read the plugin configuration.
		vm.tempPlugin = true
		vm.stack[0], vm.stack[1] = uint64(p.rootID), 0
		vm.callRoot(p, vm.fns.contextCreate, exportContextCreate)
		vm.tempPlugin = false
	}
	p.created = true
	if vm.fns.vmStart != nil {
		vm.stack[0], vm.stack[1] = uint64(p.rootID), uint64(len(vm.cfg.VMConfiguration))
		if r, ok := vm.callRoot(p, vm.fns.vmStart, exportVMStart); ok && uint32(r) == 0 {
			return ErrVMStart, errors.New("proxy_on_vm_start returned false")
		}
	}
	if vm.failed {
		return ErrVMStart, vm.failure
	}

	if vm.fns.configure != nil {
		vm.tempPlugin = true // ContextBase::onConfigure
		vm.stack[0], vm.stack[1] = uint64(p.rootID), uint64(len(p.cfg.Configuration))
		r, ok := vm.callRoot(p, vm.fns.configure, exportConfigure)
		vm.tempPlugin = false
		if ok && uint32(r) == 0 {
			return ErrConfigure, errors.New("proxy_on_configure returned false")
		}
	}
	if vm.failed {
		return ErrConfigure, vm.failure
	}
	return nil, nil
}

func (vm *VM) allocID() uint32 {
	id := vm.nextID
	vm.nextID++
	return id
}

// callIn runs fn with its arguments already in vm.stack, on behalf of stream c,
// as cpp-host's SaveRestoreContext does: the effective context is reset for the
// call and restored after it. A trap marks the VM failed
// (FailState::RuntimeError) and returns ok false.
func (vm *VM) callIn(c *Stream, fn api.Function, name string) (uint64, bool) {
	return vm.callAs(c.plugin, c, fn, name)
}

// callRoot is callIn on behalf of p's root context.
func (vm *VM) callRoot(p *Plugin, fn api.Function, name string) (uint64, bool) {
	return vm.callAs(p, nil, fn, name)
}

func (vm *VM) callAs(p *Plugin, c *Stream, fn api.Function, name string) (uint64, bool) {
	savedRoot, savedCur, savedEff, savedEffRoot := vm.root, vm.current, vm.effective, vm.effRoot
	vm.root, vm.current, vm.effective, vm.effRoot = p, c, nil, nil
	vm.callDepth++
	r, ok := vm.call(fn, name)
	vm.callDepth--
	vm.root, vm.current, vm.effective, vm.effRoot = savedRoot, savedCur, savedEff, savedEffRoot
	// cpp-host ~DeferAfterCallActions (src/context.cc) clears the flag after
	// every callback, stream or not; a filter callback's status conversion
	// reads it first (Stream.run).
	stop := vm.stopIteration
	vm.stopIteration = false
	vm.afterCall() // may run other callbacks (proxy_on_delete)
	vm.stopped = stop
	return r, ok
}

func (vm *VM) call(fn api.Function, name string) (uint64, bool) {
	saved := vm.phase
	vm.phase = name
	var start time.Time
	if vm.cfg.MeasureGuest {
		start = time.Now()
	}
	var err error
	if vm.cfg.RecordCalls {
		err = vm.callExport(fn, name, vm.stack[:])
	} else {
		err = fn.CallWithStack(vm.ctx, vm.stack[:])
	}
	if vm.cfg.MeasureGuest {
		vm.inCalls += time.Since(start)
	}
	vm.phase = saved
	if err != nil {
		vm.envoyLog(LogError, "Function: "+name+" failed: "+err.Error())
		vm.fail(fmt.Errorf("function: %s failed: %w", name, err))
		return 0, false
	}
	return vm.stack[0], true
}

func (vm *VM) callVoid(fn api.Function, name string) bool {
	_, ok := vm.call(fn, name)
	return ok
}

func (vm *VM) fail(err error) {
	if vm.failed {
		return
	}
	vm.failed, vm.failure = true, err
	vm.diagnose("vm failed: %v", err)
}

// malloc allocates n bytes in the module through malloc or
// proxy_on_memory_allocate, with only the imports Envoy allows there. It
// returns 0 when allocation fails or traps.
func (vm *VM) malloc(n uint32) uint32 {
	saved := vm.restrict
	vm.restrict = restrictMalloc
	vm.mallocStack[0] = uint64(n)
	var err error
	if vm.cfg.RecordCalls {
		err = vm.callExport(vm.fns.malloc, vm.fns.malloc.Definition().ExportNames()[0], vm.mallocStack[:])
	} else {
		err = vm.fns.malloc.CallWithStack(vm.ctx, vm.mallocStack[:])
	}
	vm.restrict = saved
	if err != nil {
		vm.envoyLog(LogError, "Function: malloc failed: "+err.Error())
		vm.fail(fmt.Errorf("function: malloc failed: %w", err))
		return 0
	}
	p := uint32(vm.mallocStack[0])
	if p == 0 || uint64(p)+uint64(n) > uint64(vm.mem.Size()) {
		return 0
	}
	return p
}

// maxDiagnostics bounds what a misbehaving module can make a long-running VM keep.
const maxDiagnostics = 1000

func (vm *VM) diagnose(format string, args ...any) {
	if len(vm.diagnostics) >= maxDiagnostics {
		return
	}
	phase := vm.phase
	if phase == "" {
		phase = "host"
	}
	vm.diagnostics = append(vm.diagnostics, phase+": "+fmt.Sprintf(format, args...))
}

func (vm *VM) log(level LogLevel, msg string) {
	e := LogEntry{Level: level, Message: msg}
	if vm.cfg.OnLog != nil {
		vm.cfg.OnLog(e)
		return
	}
	vm.logs = append(vm.logs, e)
}

func (vm *VM) now() time.Time {
	if vm.cfg.Now != nil {
		return vm.cfg.Now().Add(vm.clock)
	}
	return time.Now().Add(vm.clock)
}

func (vm *VM) monotonic() int64 { return int64(vm.monotonicClock()) + 1 }

// monotonicClock is the time since the VM started, plus VM.Advance's.
func (vm *VM) monotonicClock() time.Duration { return time.Since(vm.started) + vm.clock }

// Failed reports whether the VM failed (a trap, or a failed start or configure).
func (vm *VM) Failed() bool { return vm.failed }

// Failure returns why the VM failed, or nil.
func (vm *VM) Failure() error { return vm.failure }

// GuestTime is the time the module spent in its own code so far: calls into
// it less the host functions they called (a malloc the host makes inside a
// host function counts as host time). Zero unless PluginConfig.MeasureGuest.
func (vm *VM) GuestTime() time.Duration { return vm.inCalls - vm.inHost }

// MemorySize is the guest's linear memory in bytes. Wasm memory never
// shrinks, so its growth over many requests shows a leak or a steady state
// that allocates.
func (vm *VM) MemorySize() uint32 { return vm.mem.Size() }

// Logs returns every message the module logged, in order, whatever
// PluginConfig.LogLevel: Envoy would print only those at or above it, but tests
// scan them all.
func (vm *VM) Logs() []LogEntry { return append([]LogEntry(nil), vm.logs...) }

// Diagnostics returns hostsim's notes on guest misuse and failures (the first
// 1000): each names the export that was running, the host function, the status
// returned and why.
func (vm *VM) Diagnostics() []string { return append([]string(nil), vm.diagnostics...) }

// TickPeriod is the period last set with proxy_set_tick_period_milliseconds,
// by any root context (Plugin.TickPeriod is one root context's).
func (vm *VM) TickPeriod() time.Duration { return vm.tickPeriod }

// Tick calls proxy_on_tick on every root context not yet deleted (including
// those waiting for proxy_done), in creation order, now and whatever their
// periods: a manual trigger. VM.Advance fires ticks as Envoy's timers do.
func (vm *VM) Tick() {
	if vm.failed || vm.released || vm.fns.tick == nil {
		return
	}
	for _, p := range vm.liveRoots() {
		if vm.roots[p.rootID] == nil || vm.failed { // deleted by an earlier tick's proxy_done
			continue
		}
		vm.stack[0] = uint64(p.rootID)
		vm.callRoot(p, vm.fns.tick, exportTick)
	}
	vm.deliverPending()
}

// goFunc adapts a host function to wazero's stack-based calling convention.
func (hf *hostFunc) goFunc() api.GoModuleFunc {
	return func(ctx context.Context, _ api.Module, stack []uint64) {
		vm := ctx.Value(vmKey{}).(*VM)
		if vm.cfg.RecordCalls {
			vm.callHost(hf, stack)
			return
		}
		hf.run(vm, stack)
	}
}

// run checks Envoy's restrictions, then runs the host function. It is small
// enough to be inlined into goFunc: the common path is three compares.
func (hf *hostFunc) run(vm *VM, stack []uint64) {
	if vm.restrict != unrestricted || hf.name == vm.cfg.TrapOn {
		hf.refuse(vm)
	}
	if vm.cfg.MeasureGuest {
		hf.runMeasured(vm, stack)
		return
	}
	hf.impl(vm, stack)
}

// refuse traps a call Envoy restricts in this phase, or one PluginConfig.TrapOn names.
func (hf *hostFunc) refuse(vm *VM) {
	if vm.restrict == restrictStart && !hf.duringStart ||
		vm.restrict == restrictMalloc && !hf.duringMalloc {
		panic(fmt.Errorf("restricted_callback: %s.%s may not be called in %s", hf.module, hf.name, vm.restrictedPhase()))
	}
	if hf.name == vm.cfg.TrapOn {
		panic(fmt.Errorf("trap injected by PluginConfig.TrapOn at %s.%s in %s", hf.module, hf.name, vm.phase))
	}
}

func (hf *hostFunc) runMeasured(vm *VM, stack []uint64) {
	start := time.Now()
	hf.impl(vm, stack)
	vm.inHost += time.Since(start)
}

func (vm *VM) restrictedPhase() string {
	if vm.restrict == restrictMalloc {
		return "malloc"
	}
	return vm.phase
}
