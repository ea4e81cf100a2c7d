package hostsim_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

func tickLines(vm *hostsim.VM) []string {
	var out []string
	for _, m := range messages(vm.Logs()) {
		if strings.HasPrefix(m, "tick ") || strings.HasPrefix(m, "op=time") {
			out = append(out, m)
		}
	}
	return out
}

// Envoy's timer (wasm.cc Wasm::setTimerPeriod, tickHandler) fires once per
// period, re-armed after each tick; a new period re-arms it from now; 0
// stops it. The module reads the advanced clock.
func TestAdvanceFiresTicks(t *testing.T) {
	cfg := baseConfig
	cfg.Configuration = []byte("ops:tick-period:100;on-tick:time")
	cfg.Now = func() time.Time { return time.Unix(7, 0) }
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	vm.Advance(350 * time.Millisecond)
	assertLines(t, tickLines(vm), []string{
		"tick id=1", "op=time status=0 ns=7100000000",
		"tick id=1", "op=time status=0 ns=7200000000",
		"tick id=1", "op=time status=0 ns=7300000000",
	})

	// At 350ms a stream sets 200ms: ticks at 550 and 750, none at 400.
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "tick-period:200")})
	if got := vm.Plugin().TickPeriod(); got != 200*time.Millisecond {
		t.Errorf("Plugin.TickPeriod = %v, want 200ms", got)
	}
	n := len(tickLines(vm))
	vm.Advance(400 * time.Millisecond)
	assertLines(t, tickLines(vm)[n:], []string{
		"tick id=1", "op=time status=0 ns=7550000000",
		"tick id=1", "op=time status=0 ns=7750000000",
	})

	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "tick-period:0")})
	n = len(tickLines(vm))
	vm.Advance(time.Hour)
	if got := tickLines(vm)[n:]; len(got) != 0 {
		t.Errorf("ticks after period 0: %q", got)
	}
}

// Each root context has its own timer (Envoy keys timers by root context
// id); ticks due at the same time go in creation order.
func TestAdvanceTicksEachRootContext(t *testing.T) {
	cfg := baseConfig
	cfg.Configuration = []byte("ops:tick-period:100")
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	second, err := vm.AddPlugin(context.Background(), hostsim.PluginConfig{Name: "plugin-b", RootID: "root-b", Configuration: []byte("ops:tick-period:150")})
	if err != nil {
		t.Fatal(err)
	}
	if second.RootID() != 2 {
		t.Fatalf("second root context id = %d, want 2", second.RootID())
	}
	vm.Advance(300 * time.Millisecond)
	// Root 1 at 100, 200, 300; root 2 at 150, 300.
	assertLines(t, tickLines(vm), []string{"tick id=1", "tick id=2", "tick id=1", "tick id=1", "tick id=2"})

	// VM.Tick still ticks every root context at once, whatever the periods.
	vm.Tick()
	assertLines(t, tickLines(vm)[5:], []string{"tick id=1", "tick id=2"})
}

// A plugin without a period never ticks; a failed VM does not tick.
func TestAdvanceWithoutPeriodOrAfterFailure(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	vm.Advance(time.Hour)
	if got := tickLines(vm); len(got) != 0 {
		t.Errorf("ticks without a period: %q", got)
	}
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "tick-period:10;trap")})
	vm.Advance(time.Second)
	if got := tickLines(vm); len(got) != 0 {
		t.Errorf("ticks after a trap: %q", got)
	}
}
