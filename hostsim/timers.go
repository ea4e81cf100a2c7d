package hostsim

import "time"

// timerState holds one timer per root context, as Envoy's Wasm keeps
// timer_period_ and timer_ by root context id (wasm.cc Wasm::setTimerPeriod),
// on the VM's test clock (VM.Advance).
type timerState struct {
	period map[uint32]time.Duration
	due    map[uint32]time.Duration // clock time of the next tick; absent: not armed
}

// setTimerPeriod is Envoy's Wasm::setTimerPeriod for a root context: a
// positive period (re)arms its timer one period from now; 0 disarms it.
func (vm *VM) setTimerPeriod(rootID uint32, period time.Duration) {
	t := &vm.timers
	if t.period == nil {
		t.period, t.due = map[uint32]time.Duration{}, map[uint32]time.Duration{}
	}
	t.period[rootID] = period
	if period > 0 {
		t.due[rootID] = vm.clock + period
	} else {
		delete(t.due, rootID)
	}
}

// TickPeriod is the plugin's root context timer period, last set with
// proxy_set_tick_period_milliseconds from that root context or one of its
// streams (0: no timer).
func (p *Plugin) TickPeriod() time.Duration { return p.vm.timers.period[p.rootID] }

// Advance moves the VM's test clock forward by d, firing timers as Envoy's
// dispatcher would: each root context whose period is set gets
// proxy_on_tick once per elapsed period, in time order (ties in creation
// order), and its timer is re-armed one period after each tick
// (Wasm::tickHandler). The clock also shifts what the module reads as the
// time (proxy_get_current_time_nanoseconds, WASI clocks): PluginConfig.Now
// (or the wall clock) plus everything Advance has added. A failed VM does
// not tick (ContextBase::onTick checks isFailed).
func (vm *VM) Advance(d time.Duration) {
	end := vm.clock + d
	for !vm.failed && !vm.released && vm.fns.tick != nil {
		id, due, ok := vm.nextTimer(end)
		if !ok {
			break
		}
		vm.clock = due
		p := vm.roots[id]
		delete(vm.timers.due, id)
		vm.stack[0] = uint64(id)
		vm.callRoot(p, vm.fns.tick, exportTick)
		// Re-armed from now unless the tick set a new period (already armed) or 0.
		if _, armed := vm.timers.due[id]; !armed && vm.timers.period[id] > 0 && vm.roots[id] != nil {
			vm.timers.due[id] = vm.clock + vm.timers.period[id]
		}
		vm.deliverPending()
	}
	vm.clock = end
}

// nextTimer is the live root context whose timer is due first, by end.
func (vm *VM) nextTimer(end time.Duration) (id uint32, due time.Duration, ok bool) {
	for rid, at := range vm.timers.due {
		if at > end || vm.roots[rid] == nil {
			continue
		}
		if !ok || at < due || at == due && rid < id {
			id, due, ok = rid, at, true
		}
	}
	return id, due, ok
}
