package main

import (
	"slices"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// dispatcher routes the host's callbacks, which name contexts by number, to
// the SDK-shaped context values. Envoy runs each VM on one worker thread, so
// there is no locking.
type dispatcher struct {
	vm types.VMContext
	// plugins are the root contexts, a handful per VM: a slice searched in
	// order beats a map in wasm.
	plugins []plugin
	streams ctxTable
	// unconfigured serves streams of no known plugin. It is a plugin that
	// was never configured, so it fails them closed.
	unconfigured types.PluginContext
}

type plugin struct {
	id  uint32
	ctx types.PluginContext
}

func (d *dispatcher) plugin(id uint32) (types.PluginContext, bool) {
	for _, p := range d.plugins {
		if p.id == id {
			return p.ctx, true
		}
	}
	return nil, false
}

func newDispatcher(vm types.VMContext) *dispatcher {
	return &dispatcher{
		vm:           vm,
		unconfigured: vm.NewPluginContext(0),
	}
}

// onContextCreate makes a plugin (root) context when parent is 0, else a
// stream context under the plugin that owns it.
func (d *dispatcher) onContextCreate(id, parent uint32) {
	if parent == 0 {
		d.plugins = append(d.plugins, plugin{id, d.vm.NewPluginContext(id)})
		return
	}
	p, ok := d.plugin(parent)
	if !ok {
		p = d.unconfigured
	}
	if h := p.NewHttpContext(id); h != nil {
		d.streams.put(id, h)
	}
}

func (d *dispatcher) onVMStart(vmConfigSize int) bool {
	return bool(d.vm.OnVMStart(vmConfigSize))
}

func (d *dispatcher) onConfigure(id uint32, size int) bool {
	p, ok := d.plugin(id)
	return ok && bool(p.OnPluginStart(size))
}

// onRequestHeaders fails a stream it does not know closed: the host never
// sends one, but a request the filter did not see must not go upstream.
func (d *dispatcher) onRequestHeaders(id uint32, n int, eos bool) types.Action {
	h, ok := d.streams.get(id)
	if !ok {
		h = d.unconfigured.NewHttpContext(id)
	}
	return h.OnHttpRequestHeaders(n, eos)
}

// onDone reports whether the context may be deleted now.
func (d *dispatcher) onDone(id uint32) bool {
	if h, ok := d.streams.get(id); ok {
		h.OnHttpStreamDone()
		return true
	}
	if p, ok := d.plugin(id); ok {
		return p.OnPluginDone()
	}
	return true
}

func (d *dispatcher) onDelete(id uint32) {
	if d.streams.delete(id) {
		return
	}
	d.plugins = slices.DeleteFunc(d.plugins, func(p plugin) bool { return p.id == id })
}
