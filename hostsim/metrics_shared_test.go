package hostsim_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// Two VMs of one Module (two workers) add into one counter and set one gauge,
// as Envoy's VMs of a plugin share its stats scope: proxy_get_metric and
// VM.Metrics read the shared values in either VM, while each VM numbers its
// own metric ids.
func TestMetricsSharedByTheModulesVMs(t *testing.T) {
	m := guest(t)
	a := hostsimtest.NewVM(t, m, baseConfig)
	b := hostsimtest.NewVM(t, m, baseConfig)
	do(t, a, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "metric-inc:0:shared.requests=2;metric-set:1:shared.active=7")})
	do(t, b, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "metric-inc:0:shared.requests=3;metric-get:0:shared.requests;metric-get:1:shared.active")})
	do(t, a, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "metric-get:0:shared.requests;metric-set:1:shared.active=9")})
	do(t, b, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "metric-get:1:shared.active")})
	assertLines(t, opLines(a), []string{
		"op=metric-inc id=4 status=0 value=0",
		"op=metric-set id=5 status=0 value=0",
		"op=metric-get id=8 status=0 value=5",
		"op=metric-set id=9 status=0 value=0",
	})
	assertLines(t, opLines(b), []string{
		"op=metric-inc id=4 status=0 value=0",
		"op=metric-get id=8 status=0 value=5",
		"op=metric-get id=5 status=0 value=7",
		"op=metric-get id=9 status=0 value=9",
	})
	want := []hostsim.Metric{
		{Name: "shared.requests", Type: hostsim.MetricCounter, Value: 5},
		{Name: "shared.active", Type: hostsim.MetricGauge, Value: 9},
	}
	for name, vm := range map[string]*hostsim.VM{"a": a, "b": b} {
		if got := vm.Metrics(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s.Metrics() = %+v, want %+v", name, got, want)
		}
	}
	if got, ok := b.Metric(hostsim.MetricGauge, "shared.active"); !ok || got.Value != 9 {
		t.Errorf("b.Metric(gauge shared.active) = %+v, %v; want 9", got, ok)
	}
	if _, ok := b.Metric(hostsim.MetricCounter, "shared.active"); ok {
		t.Error("a counter named shared.active exists; only the gauge was defined")
	}
}

// A reloaded instance (FAIL_RELOAD) numbers its metric ids from the start, as
// Envoy's new VM does, while the stat keeps its value.
func TestMetricIDsStartAgainAfterAReload(t *testing.T) {
	cfg := baseConfig
	cfg.FailurePolicy = hostsim.FailurePolicyReload
	cfg.ReloadBackoff = 10 * time.Millisecond
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "metric-inc:0:reloads=1;metric-inc:0:reloads=1;trap")})
	vm.Advance(20 * time.Millisecond) // past the largest jittered backoff
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "metric-inc:0:reloads=1;metric-get:0:reloads")})
	assertLines(t, opLines(vm), []string{
		"op=metric-inc id=4 status=0 value=0",
		"op=metric-inc id=8 status=0 value=0",
		"op=metric-inc id=4 status=0 value=0",
		"op=metric-get id=8 status=0 value=3",
	})
	if got := vm.ReloadStats(); got.Success != 1 {
		t.Errorf("ReloadStats = %+v, want one success", got)
	}
}

// VMs of one Module run on their own goroutines (Envoy's workers); their
// increments to one counter all count.
func TestMetricsSharedAcrossGoroutines(t *testing.T) {
	m := guest(t)
	const vms, requests = 2, 25
	var wg sync.WaitGroup
	for range vms {
		vm := hostsimtest.NewVM(t, m, baseConfig)
		wg.Go(func() {
			for range requests {
				if _, err := vm.Do(context.Background(), hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "metric-inc:0:parallel=1")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// A third VM that never defined it reads the stat too.
	got, ok := hostsimtest.NewVM(t, m, baseConfig).Metric(hostsim.MetricCounter, "parallel")
	if !ok || got.Value != vms*requests {
		t.Errorf("parallel = %+v, %v; want %d", got, ok, vms*requests)
	}
}
