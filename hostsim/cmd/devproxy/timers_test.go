package main

import (
	"context"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// newTickingProxy runs hostsim's scriptable test guest, which sets its tick
// period in proxy_on_configure and logs "tick id=<root>" on each tick.
func newTickingProxy(t *testing.T, configuration string) (*devProxy, *syncBuffer) {
	t.Helper()
	module, err := hostsim.Compile(context.Background(), hostsimtest.BuildGo(t, "../../testdata/guest"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cfg := hostsim.PluginConfig{Name: "ticker", Configuration: []byte(configuration)}
	p, err := newDevProxy(context.Background(), module, cfg, nil, true, log.New(&logs, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	return p, &logs
}

// The dev proxy fires proxy_on_tick at the module's period, as Envoy's
// dispatcher does, and no more once closed.
func TestTimerTicksTheRootContext(t *testing.T) {
	p, logs := newTickingProxy(t, "ops:tick-period:5")
	const tick = "[wasm info] tick id=1\n"
	for deadline := time.Now().Add(10 * time.Second); strings.Count(logs.String(), tick) < 3; {
		if time.Now().After(deadline) {
			p.Close()
			t.Fatalf("fewer than 3 ticks in 10s; log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	closed := logs.String()
	time.Sleep(20 * time.Millisecond) // four periods
	if got := logs.String(); got != closed {
		t.Errorf("ticks after Close:\n%s", strings.TrimPrefix(got, closed))
	}
}

// Without a period the module never ticks.
func TestTimerIdleWithoutPeriod(t *testing.T) {
	p, logs := newTickingProxy(t, "cfg")
	time.Sleep(2 * timerIdle)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "tick id=") {
		t.Errorf("ticked without a period:\n%s", logs.String())
	}
}
