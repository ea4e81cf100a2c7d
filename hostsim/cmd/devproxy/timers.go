package main

import (
	"time"

	"github.com/secretgate/secretgate/hostsim"
)

// timerIdle is how often the loop looks again while no tick period is set,
// and the longest it waits before noticing a new period.
const timerIdle = 50 * time.Millisecond

// timerLoop is Envoy's dispatcher timer for the VM's root context (wasm.cc
// Wasm::setTimerPeriod, tickHandler): every tick period, proxy_on_tick, with
// the VM to itself; none while the period is 0.
type timerLoop struct {
	quit chan struct{}
	done chan struct{}
}

func (l *timerLoop) start(p *devProxy) {
	l.quit, l.done = make(chan struct{}), make(chan struct{})
	go l.run(p)
}

// stop ends the loop and waits for it, so no tick runs once it returns.
// Calling it again does nothing.
func (l *timerLoop) stop() {
	if l.quit == nil {
		return
	}
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
}

func (l *timerLoop) run(p *devProxy) {
	defer close(l.done)
	var period time.Duration // the period the timer is armed with; 0: disarmed
	var due time.Time
	wait := time.NewTimer(timerIdle)
	defer wait.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-wait.C:
		}
		now := time.Now()
		if !p.call(func(vm *hostsim.VM) {
			// A new period re-arms the timer from now, as setTimerPeriod does.
			if current := vm.Plugin().TickPeriod(); current != period {
				period, due = current, now.Add(current)
			}
			if period > 0 && !now.Before(due) {
				vm.Tick()
				due = time.Now().Add(period) // re-armed after the tick (tickHandler)
			}
		}) {
			return
		}
		next := timerIdle
		if period > 0 {
			next = min(time.Until(due), timerIdle)
		}
		wait.Reset(max(next, 0))
	}
}
