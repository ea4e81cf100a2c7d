package hostsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// A plugin with the same key (Name, RootID, Configuration) that is still held,
// by a configuration or by an open stream, is returned again without calling
// the module (getOrCreateThreadLocalPlugin finds its live PluginHandle); the
// other fields of cfg are then ignored, and Remove must be called once per
// AddPlugin that returned it.
//
// When proxy_on_vm_start or proxy_on_configure returns false the error wraps
// ErrVMStart or ErrConfigure and the configuration is rejected: the VM and
// its other plugins keep serving, the returned plugin is removed, and adding
// the same key again fails the same way without calling the module (the
// canary cache of cpp-host WasmHandleBase::canary). Its root context stays
// in the VM until the VM closes, as cpp-host leaves it in root_contexts_. A
// trap in those callbacks fails the VM, as in NewVM.
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
	if vm.failed {
		return p, nil // Envoy adds no root context to a failed VM; streams fail as configured
	}
	key := pc.key()
	if err := vm.rejected[key]; err != nil {
		p.removed = true
		return p, err
	}
	if live := vm.livePlugin(key); live != nil {
		if live.removed {
			live.removed = false
		} else {
			live.refs++
		}
		return live, nil
	}
	step, cause := vm.startRoot(p)
	if step != nil && !vm.failed {
		err := fmt.Errorf("%w: %v", step, cause)
		if vm.rejected == nil {
			vm.rejected = map[pluginKey]error{}
		}
		vm.rejected[key] = err
		p.removed = true
		vm.deliverPending()
		return p, err
	}
	var err error
	if step != nil {
		err = fmt.Errorf("%w: %v", step, vm.failure)
	}
	vm.deliverPending()
	return p, err
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
// plugin is rejected (AddPlugin) the old one stays the VM's own and serves.
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
