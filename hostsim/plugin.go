package hostsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrPluginRemoved is returned by Plugin.Do once the plugin was removed.
var ErrPluginRemoved = errors.New("hostsim: plugin was removed")

// Plugin is one plugin configured in a VM: a root context and the streams
// created under it (cpp-host's PluginBase and its root ContextBase). Every VM
// has its own (VM.Plugin); VM.AddPlugin adds more to the same instance, as
// Envoy does for plugins whose vm_config shares the VM's vm_id and code.
type Plugin struct {
	vm *VM
	// cfg is the VM's configuration with this plugin's Name, RootID,
	// Configuration, FailOpen and AllowOnHeadersStopIteration.
	cfg     PluginConfig
	rootID  uint32
	created bool // in_vm_context_created_ of the root context
	streams int  // streams not yet closed: each holds the plugin, as Envoy's filters hold its PluginHandle
	// refs counts the AddPlugin calls that returned this plugin again, each one
	// more configuration holding it; Remove drops one before removing it.
	refs    int
	removed bool
	state   pluginState
}

type pluginState uint8

const (
	pluginActive pluginState = iota
	// pluginDonePending: proxy_on_done returned false (cpp-host pending_done_).
	pluginDonePending
	// pluginDeleting: the module called proxy_done; proxy_on_delete runs after
	// the running call (cpp-host pending_delete_).
	pluginDeleting
	pluginDeleted
)

// Plugin returns the VM's own plugin: the one NewVM configured, or the latest
// Reconfigure made. VM.NewStream and VM.Do use it.
func (vm *VM) Plugin() *Plugin { return vm.plugin }

// RootID is the plugin's root context id (0 when the VM failed before creating it).
func (p *Plugin) RootID() uint32 { return p.rootID }

// pluginKey is what identifies a plugin in a VM: cpp-host PluginBase::key()
// hashes root_id, configuration and Envoy's part, which is the name plus
// the listener's direction and metadata (Envoy plugin.h createPluginKey; one
// listener here).
type pluginKey struct{ name, rootID, configuration string }

func (c *PluginConfig) key() pluginKey {
	return pluginKey{c.Name, c.RootID, string(c.Configuration)}
}

// AddPlugin configures another plugin in the VM, as Envoy does for a second
// filter whose vm_config names the same vm_id and code: a new root context in
// the same instance, proxy_on_context_create(root, 0), proxy_on_vm_start and
// proxy_on_configure (cpp-host getOrCreateThreadLocalPlugin: WasmBase::start
// then configure). Of cfg only Name, RootID, Configuration, FailOpen,
// FailurePolicy, ReloadBackoff and AllowOnHeadersStopIteration are used; the
// rest stay the VM's.
//
// Before that the plugin goes through Envoy's canary (VM.canary): a
// throwaway instance of the Module runs the same start-up for it first, so
// the module sees each new plugin twice. When the canary traps or returns
// false the error wraps ErrVMStart or ErrConfigure and the configuration is
// rejected: this VM never sees it, does not fail, and its plugins keep
// serving; the returned plugin is removed. A rejected configure is
// remembered, so the same key is refused again without calling the module.
//
// A plugin with the same key (Name, RootID, Configuration) that is still held,
// by a configuration or by an open stream, is returned again without calling
// the module (getOrCreateThreadLocalPlugin finds its live PluginHandle); the
// other fields of cfg are then ignored, and Remove must be called once per
// AddPlugin that returned it.
//
// When the canary passed but this VM's proxy_on_vm_start or
// proxy_on_configure returns false, the error is the same and the plugin is
// not added; its root context stays in the VM until the VM closes, as
// cpp-host leaves it in root_contexts_. A trap there fails the VM, as in
// NewVM.
func (vm *VM) AddPlugin(_ context.Context, cfg PluginConfig) (*Plugin, error) {
	pc := vm.cfg
	pc.Name, pc.RootID, pc.Configuration = cfg.Name, cfg.RootID, cfg.Configuration
	pc.FailOpen, pc.AllowOnHeadersStopIteration = cfg.FailOpen, cfg.AllowOnHeadersStopIteration
	pc.FailurePolicy, pc.ReloadBackoff = cfg.FailurePolicy, cfg.ReloadBackoff
	if err := pc.checkFailurePolicy(); err != nil {
		return nil, err
	}
	p := &Plugin{vm: vm, cfg: pc}
	if vm.closing {
		return p, errors.New("hostsim: AddPlugin on a closed VM")
	}
	// Envoy runs the canary when the configuration arrives, before any
	// worker looks at its own VM.
	if err := vm.canary(pc); err != nil {
		p.removed = true
		return p, err
	}
	if vm.failed {
		return p, nil // Envoy adds no root context to a failed VM; streams fail as configured
	}
	if live := vm.livePlugin(pc.key()); live != nil {
		if live.removed {
			live.removed = false
		} else {
			live.refs++
		}
		return live, nil
	}
	step, cause := vm.startRoot(p)
	var err error
	switch {
	case step != nil && !vm.failed:
		p.removed = true
		err = fmt.Errorf("%w: %v", step, cause)
	case step != nil:
		err = fmt.Errorf("%w: %v", step, vm.failure)
	}
	vm.deliverPending()
	return p, err
}

// canaryCache is cpp-host's plugin_canary_cache_, which lives in the base
// Wasm of a vm_key (vm_id, vm configuration and code; the Module is the
// code): for each plugin key, whether its canary configured. A canary that
// failed before proxy_on_configure returned is not remembered and runs again
// next time (WasmHandleBase::canary caches only configure's verdict).
type canaryCache struct {
	mu       sync.Mutex
	verdicts map[canaryKey]error // nil: configured
}

type canaryKey struct {
	vmID, vmConfiguration string
	plugin                pluginKey
}

func canaryKeyOf(c *PluginConfig) canaryKey {
	return canaryKey{c.VMID, string(c.VMConfiguration), c.key()}
}

func (cc *canaryCache) lookup(k canaryKey) (verdict error, found bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	verdict, found = cc.verdicts[k]
	return verdict, found
}

// record keeps a verdict when configure gave one: nil, or ErrConfigure.
func (cc *canaryCache) record(k canaryKey, err error) {
	if err != nil && !errors.Is(err, ErrConfigure) {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.verdicts == nil {
		cc.verdicts = map[canaryKey]error{}
	}
	cc.verdicts[k] = err
}

// recordFirst keeps the verdict of NewVM's own start-up, unless one is known:
// Envoy runs the canary for the first plugin of a base Wasm too (createWasm),
// and the VM's start-up is the same run.
func (cc *canaryCache) recordFirst(cfg PluginConfig, err error) {
	k := canaryKeyOf(&cfg)
	if _, found := cc.lookup(k); !found {
		cc.record(k, err)
	}
}

// canary is cpp-host WasmHandleBase::canary: Envoy tries a new plugin in a
// throwaway clone of the base VM before any worker's VM sees it. The clone is
// a fresh instance of the same Module with the VM's WASI profile, vm
// configuration and environment: it runs the start functions, then
// proxy_on_context_create, proxy_on_vm_start and proxy_on_configure for the
// plugin, and is dropped without proxy_on_done or proxy_on_delete (kill(),
// or a failed VM's shutdown, which calls nothing). It shares what Envoy's
// clone shares: the Module's metrics, shared data and queues, and the log,
// so its lines reach VM.Logs (or OnLog) as Envoy prints them; its calls are
// not in VM.Calls. Its failures add Envoy's own lines to VM.EnvoyLogs.
func (vm *VM) canary(pc PluginConfig) error {
	key := canaryKeyOf(&pc)
	if verdict, found := vm.m.canaries.lookup(key); found {
		return verdict
	}
	cfg := pc
	cfg.OnLog = func(e LogEntry) { vm.log(e.Level, e.Message) }
	cfg.Now = vm.now
	cfg.RecordCalls, cfg.MeasureGuest = false, false
	c, err := vm.m.newInstance(vm.ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrVMStart, err)
	}
	err = c.start()
	c.kill()
	for _, e := range c.envoyLogs {
		vm.envoyLog(e.Level, e.Message)
	}
	// WasmBase::fail's message, through Envoy's Wasm::error.
	switch {
	case err == nil:
	case errors.Is(err, ErrConfigure):
		vm.envoyLog(LogError, "Wasm VM failed Failed to configure base Wasm plugin")
	case c.plugin.rootID == 0: // a start function trapped
		vm.envoyLog(LogError, "Wasm VM failed Failed to initialize Wasm code")
	default:
		vm.envoyLog(LogError, "Wasm VM failed Failed to start base Wasm")
	}
	vm.m.canaries.record(key, err)
	return err
}

// kill drops an instance without shutting its root contexts down
// (WasmHandleBase::kill); HTTP calls in flight are abandoned.
func (vm *VM) kill() {
	for _, c := range vm.async.calls {
		c.cancel()
	}
	vm.async.calls = nil
	vm.closing, vm.released = true, true
	_ = vm.mod.Close(vm.ctx)
}

// livePlugin is the plugin with that key whose handle something still holds:
// a configuration, or an open stream of a removed plugin (not yet shut down).
func (vm *VM) livePlugin(key pluginKey) *Plugin {
	for _, p := range vm.liveRoots() {
		if p.state == pluginActive && (!p.removed || p.streams > 0) && p.cfg.key() == key {
			return p
		}
	}
	return nil
}

// Reconfigure is a configuration update of the VM's own plugin, as Envoy
// applies one with an unchanged vm_config: a new plugin (root context) in the
// same VM becomes the VM's own, and the old one is removed (Plugin.Remove).
// Streams already open keep the old plugin; new streams use the new one; the
// old root context gets proxy_on_done and proxy_on_delete once its last
// stream closes. An update with the same key changes nothing. When the new
// plugin is rejected (AddPlugin, its canary included) the old one stays the
// VM's own and serves.
func (vm *VM) Reconfigure(ctx context.Context, cfg PluginConfig) (*Plugin, error) {
	p, err := vm.AddPlugin(ctx, cfg)
	if err != nil {
		return p, err
	}
	old := vm.plugin
	vm.plugin = p
	old.Remove()
	return p, nil
}

// Remove takes the plugin out of the configuration, as Envoy drops its
// PluginHandle: once no stream holds it (now, or when its last open stream
// closes) the root context gets proxy_on_done, then proxy_on_delete at once
// or, when proxy_on_done returned false, after the module calls proxy_done
// (cpp-host WasmBase::startShutdown(plugin_key), done, finishShutdown).
// A plugin that AddPlugin returned again is removed by its last holder's
// Remove. Creating a stream under a removed plugin panics (Do returns
// ErrPluginRemoved); remove the VM's own plugin only to retire it for good.
func (p *Plugin) Remove() {
	if p.removed {
		return
	}
	if p.refs > 0 {
		p.refs--
		return
	}
	p.removed = true
	if p.streams == 0 {
		p.shutdown()
		p.vm.deliverPending()
	}
}

// streamClosed is a stream releasing the plugin (Envoy's filter destroyed
// along with its PluginHandle reference).
func (p *Plugin) streamClosed() {
	p.streams--
	if p.removed && p.streams == 0 {
		p.shutdown()
	}
}

// shutdown is cpp-host WasmBase::startShutdown for one root context:
// proxy_on_done; proxy_on_delete if it returned true, else wait for proxy_done.
// A failed VM calls neither (ContextBase::onDone/onDelete check isFailed).
func (p *Plugin) shutdown() {
	vm := p.vm
	if p.state != pluginActive || p.rootID == 0 || vm.released {
		return
	}
	done := true
	if !vm.failed && vm.fns.done != nil {
		vm.stack[0] = uint64(p.rootID)
		r, ok := vm.callRoot(p, vm.fns.done, exportDone)
		done = !ok || uint32(r) != 0
	}
	if done {
		p.delete()
		return
	}
	p.state = pluginDonePending
}

// delete is ContextBase::onDelete for the root context, then its removal:
// set_effective_context and deliveries no longer find it.
func (p *Plugin) delete() {
	vm := p.vm
	p.state = pluginDeleted
	if p.created && !vm.failed && vm.fns.delete != nil {
		vm.stack[0] = uint64(p.rootID)
		vm.callRoot(p, vm.fns.delete, exportDelete)
	}
	delete(vm.roots, p.rootID)
}

// proxyDone is cpp-host WasmBase::done for the root context of the calling
// (or effective) context's plugin: Ok when that root context is waiting for
// it, and proxy_on_delete then runs after the running call returns (the
// ShutdownHandle queued with addAfterVmCallAction); NotFound otherwise,
// including from inside proxy_on_done itself and on a second call.
func (vm *VM) proxyDone(s []uint64) {
	p := vm.targetPlugin()
	if p == nil || p.state != pluginDonePending {
		vm.misuse(s, "proxy_done", StatusNotFound, "the plugin is not pending done")
		return
	}
	p.state = pluginDeleting
	vm.pendingDelete = append(vm.pendingDelete, p)
	ok(s)
}

// afterCall is cpp-host's doAfterVmCallActions after a call into the module:
// proxy_on_delete for root contexts that called proxy_done, then, once a
// closed VM has no root context left and no call runs, the instance goes.
func (vm *VM) afterCall() {
	for len(vm.pendingDelete) > 0 {
		p := vm.pendingDelete[0]
		vm.pendingDelete = vm.pendingDelete[1:]
		p.delete()
	}
	if vm.closing && vm.callDepth == 0 {
		_ = vm.release(vm.ctx)
	}
}

// release closes the instance once Close was called and every root context
// was deleted (or the VM failed, when none will be).
func (vm *VM) release(ctx context.Context) error {
	if vm.released || !vm.failed && len(vm.roots) > 0 {
		return nil
	}
	vm.released = true
	return vm.mod.Close(ctx)
}

// liveRoots lists the root contexts not yet deleted, in creation order.
func (vm *VM) liveRoots() []*Plugin {
	ps := make([]*Plugin, 0, len(vm.roots))
	for _, p := range vm.roots {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *Plugin) int { return int(a.rootID) - int(b.rootID) })
	return ps
}

// targetPlugin is the plugin of the calling or effective context
// (contextOrEffectiveContext()->plugin_ in cpp-host).
func (vm *VM) targetPlugin() *Plugin {
	if c := vm.target(); c != nil {
		return c.plugin
	}
	if vm.effRoot != nil {
		return vm.effRoot
	}
	return vm.root
}

// Close shuts the VM down as Envoy does when its last handle goes
// (WasmHandleBase's destructor, WasmBase::startShutdown): every root context
// not yet shut down, in creation order, gets proxy_on_done, and
// proxy_on_delete if that returned true. One whose proxy_on_done returned
// false stays until the module calls proxy_done from a later callback (VM.Tick,
// a delivered HTTP-call response or queue notice), then gets proxy_on_delete;
// the instance is released once none is left. Streams still open are not
// closed (in Envoy they would hold the VM). Calling Close again does nothing.
func (vm *VM) Close(ctx context.Context) error {
	if vm.closing {
		return nil
	}
	vm.closing = true
	for _, p := range vm.liveRoots() {
		p.shutdown()
	}
	vm.deliverPending()
	return vm.release(ctx)
}

// NewStream creates a stream context under the plugin, as Envoy creates the
// filter for a new request. The module sees it (proxy_on_context_create with
// the plugin's root id) with the first callback. It panics once the plugin
// was removed: Envoy creates no filter from a removed configuration.
func (p *Plugin) NewStream(context.Context) *Stream {
	if p.removed {
		panic("hostsim: NewStream on a removed plugin")
	}
	vm := p.vm
	vm.maybeReload(p) // FAIL_RELOAD (failure.go)
	s := &Stream{vm: vm, plugin: p, req: newHeaderMap(MapRequestHeaders), resp: newHeaderMap(MapResponseHeaders), visibleBody: -1}
	s.initStreamInfo()
	switch {
	case vm.failed && p.cfg.failurePolicy() == FailurePolicyOpen:
		s.mode = streamSkipped
	case vm.failed:
		s.mode = streamNull
	default:
		s.id = vm.allocID()
		vm.streams[s.id] = s
	}
	p.streams++
	return s
}
