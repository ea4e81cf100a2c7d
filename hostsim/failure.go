package hostsim

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/tetratelabs/wazero"
)

// FailurePolicy is envoy.extensions.wasm.v3.FailurePolicy: what streams get
// once the VM failed at runtime (a trap).
type FailurePolicy uint8

const (
	// FailurePolicyUnspecified is UNSPECIFIED: fail closed, unless the legacy
	// PluginConfig.FailOpen is set (Envoy wasm.cc PluginConfig::PluginConfig).
	FailurePolicyUnspecified FailurePolicy = iota
	// FailurePolicyClosed is FAIL_CLOSED: every later stream gets 503
	// wasm_fail_stream.
	FailurePolicyClosed
	// FailurePolicyOpen is FAIL_OPEN: later streams skip the filter. Unlike
	// the legacy FailOpen, the stream that trapped still gets 503, because
	// Envoy hands cpp-host only the legacy bool (plugin.h passes
	// config.fail_open() to PluginBase, which CHECK_FAIL reads).
	FailurePolicyOpen
	// FailurePolicyReload is FAIL_RELOAD: the stream that trapped gets 503;
	// a later stream, once the reload backoff has passed, starts a fresh
	// instance (started and configured again) and runs on it; streams in the
	// backoff fail closed.
	FailurePolicyReload
)

// errFailOpenAndPolicy is Envoy's EnvoyException for a configuration that
// sets both (wasm.cc PluginConfig::PluginConfig).
var errFailOpenAndPolicy = errors.New("hostsim: only one of fail_open or failure_policy can be set")

// defaultReloadBackoff is reload_config.backoff.base_interval's default.
const defaultReloadBackoff = time.Second

// failurePolicy is the effective policy: the legacy fail_open means FAIL_OPEN.
func (c *PluginConfig) failurePolicy() FailurePolicy {
	switch {
	case c.FailOpen:
		return FailurePolicyOpen
	case c.FailurePolicy == FailurePolicyUnspecified:
		return FailurePolicyClosed
	}
	return c.FailurePolicy
}

func (c *PluginConfig) checkFailurePolicy() error {
	if c.FailOpen && c.FailurePolicy != FailurePolicyUnspecified {
		return errFailOpenAndPolicy
	}
	return nil
}

// reloadState is what Envoy's SinglePluginHandle and PluginConfig keep for
// FAIL_RELOAD: when the instance was last loaded, on the VM's clock.
type reloadState struct {
	running  bool          // the instance started: only a runtime failure reloads
	lastLoad time.Duration // monotonic time of the last load or reload attempt
	stats    ReloadStats
}

// ReloadStats counts FAIL_RELOAD events as Envoy's wasm.<name>. stats do
// (stats_handler WasmEvent::VmReloadBackoff, VmReloadSuccess, VmReloadFailure).
type ReloadStats struct {
	Backoff, Success, Failure int
}

// ReloadStats returns the FAIL_RELOAD events so far.
func (vm *VM) ReloadStats() ReloadStats { return vm.reload.stats }

// EnvoyLogs returns what Envoy itself would log about this VM (its wasm
// logger, not the module's proxy_log): on a trap, at error,
// "Function: <callback> failed: <trap>" (cpp-host WasmVm::fail through
// EnvoyWasmVmIntegration::error; V8 words the trap and backtrace its own way).
func (vm *VM) EnvoyLogs() []LogEntry { return append([]LogEntry(nil), vm.envoyLogs...) }

func (vm *VM) envoyLog(level LogLevel, msg string) {
	if len(vm.envoyLogs) < maxDiagnostics {
		vm.envoyLogs = append(vm.envoyLogs, LogEntry{Level: level, Message: msg})
	}
}

// maybeReload is Envoy's PluginConfig::maybeReloadHandleIfNeeded, run as a
// new stream is created under p: with FAIL_RELOAD and a VM that failed at
// runtime, once a jittered backoff of [base, 1.5 base) ms has passed since
// the last (re)load, a fresh instance replaces the failed one.
func (vm *VM) maybeReload(p *Plugin) {
	if !vm.failed || !vm.reload.running || vm.closing || vm.released ||
		p.cfg.failurePolicy() != FailurePolicyReload {
		return
	}
	base := p.cfg.ReloadBackoff
	if base <= 0 {
		base = defaultReloadBackoff
	}
	// JitteredLowerBoundBackOffStrategy::nextBackOffMs, drawn on every try.
	ms := base.Milliseconds()
	if half := ms >> 1; half > 0 {
		ms += rand.Int64N(half)
	}
	now := vm.monotonicClock()
	if now-vm.reload.lastLoad < time.Duration(ms)*time.Millisecond {
		vm.reload.stats.Backoff++
		return
	}
	vm.reload.lastLoad = now
	if vm.reloadInstance() {
		vm.reload.stats.Success++
	} else {
		vm.reload.stats.Failure++
	}
}

// reloadInstance replaces the failed instance with a new one, started and
// configured again (cpp-host getOrCreateThreadLocalPlugin after the fail
// callback dropped the failed VM from its caches). Streams still open keep
// the failed instance in Envoy, so here they fail as on it; HTTP calls in
// flight are dropped. Every plugin not removed gets a new root context, in
// creation order; removed ones are gone with the old instance.
func (vm *VM) reloadInstance() bool {
	for _, s := range vm.streams {
		s.mode = streamNull
	}
	for _, c := range vm.async.calls {
		c.cancel()
	}
	vm.async.calls = nil
	var others []*Plugin // plugins besides the VM's own that start again
	for _, p := range vm.liveRoots() {
		switch {
		case p.removed:
			p.state = pluginDeleted
		case p != vm.plugin:
			others = append(others, p)
		}
	}
	for _, p := range append(others, vm.plugin) {
		p.rootID, p.created, p.state = 0, false, pluginActive
	}
	_ = vm.mod.Close(vm.ctx)
	mod, err := vm.m.runtime.InstantiateModule(vm.ctx, vm.m.compiled,
		wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		vm.released = true
		return false
	}
	vm.mod, vm.mem = mod, mod.Memory()
	vm.failed, vm.failure = false, nil
	vm.streams, vm.roots, vm.nextID = map[uint32]*Stream{}, map[uint32]*Plugin{}, 1
	vm.pendingDelete = nil
	vm.timers, vm.tickPeriod = timerState{}, 0
	vm.bindExports()
	if vm.start() != nil {
		return false
	}
	for _, p := range others {
		if vm.startPlugin(p) != nil {
			return false
		}
	}
	return true
}
