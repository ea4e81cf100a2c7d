package hostsim_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// A configuration whose canary returns false from proxy_on_configure or traps
// there is rejected before the serving VM sees it (cpp-host
// WasmHandleBase::canary): the VM is not called and does not fail, the stream
// already open and new streams keep the old plugin, the canary's log lines
// reach the log, and the same key is refused again without calling the module.
func TestCanaryRejectsAnUpdateBeforeTheVMSeesIt(t *testing.T) {
	for _, c := range []struct {
		config, err string
		envoy       []string // VM.EnvoyLogs; a "*" suffix matches a prefix
	}{
		{"fail-configure", "hostsim: wasm plugin failed to configure: proxy_on_configure returned false",
			[]string{"Wasm VM failed Failed to configure base Wasm plugin"}},
		{"trap-configure", "hostsim: wasm plugin failed to configure: function: proxy_on_configure failed: *",
			[]string{"Function: proxy_on_configure failed: *", "Wasm VM failed Failed to configure base Wasm plugin"}},
	} {
		t.Run(c.config, func(t *testing.T) {
			ctx := context.Background()
			cfg := baseConfig
			cfg.RecordCalls = true
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			open := vm.NewStream(ctx)
			if _, err := open.RequestHeaders(hdrs(":path", "/open", "x-ops", "root-config:2"), true); err != nil {
				t.Fatal(err)
			}
			vm.ResetCalls()
			logged := len(vm.Logs())
			update := baseConfig
			update.Configuration = []byte(c.config)

			_, err := vm.Reconfigure(ctx, update)
			if !errors.Is(err, hostsim.ErrConfigure) || !matchLine(err.Error(), c.err) {
				t.Fatalf("Reconfigure = %v, want %s", err, c.err)
			}
			if vm.Failed() || vm.Plugin().RootID() != 1 {
				t.Fatalf("after the rejection: failed %v (%v), own plugin root %d; want not failed, root 1",
					vm.Failed(), vm.Failure(), vm.Plugin().RootID())
			}
			assertTrace(t, hostsim.WithoutWASI(vm.Calls()), nil)
			assertLines(t, messages(vm.Logs()[logged:]), []string{
				"create 1 0", // the canary's own root context
				"vm_start size=5 status=0 config=vmcfg",
				"configure size=" + strconv.Itoa(len(c.config)) + " status=0 config=" + c.config,
			})
			envoy := messages(vm.EnvoyLogs())
			if len(envoy) != len(c.envoy) {
				t.Fatalf("EnvoyLogs = %q, want %q", envoy, c.envoy)
			}
			for i := range envoy {
				if !matchLine(envoy[i], c.envoy[i]) {
					t.Errorf("EnvoyLogs[%d] = %q, want %q", i, envoy[i], c.envoy[i])
				}
			}

			// Refused again from the cache, by AddPlugin too: nothing runs.
			logged = len(vm.Logs())
			if _, err := vm.Reconfigure(ctx, update); !errors.Is(err, hostsim.ErrConfigure) {
				t.Errorf("second Reconfigure = %v, want ErrConfigure", err)
			}
			if p, err := vm.AddPlugin(ctx, update); !errors.Is(err, hostsim.ErrConfigure) || p.RootID() != 0 {
				t.Errorf("AddPlugin = root %d, %v; want root 0, ErrConfigure", p.RootID(), err)
			}
			if got := messages(vm.Logs()[logged:]); len(got) != 0 || len(vm.EnvoyLogs()) != len(c.envoy) {
				t.Errorf("the refused key called the module: logs %q, Envoy logs %q", got, messages(vm.EnvoyLogs()))
			}
			assertTrace(t, hostsim.WithoutWASI(vm.Calls()), nil)

			if _, err := open.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "root-config:2"), true); err != nil {
				t.Fatal(err)
			}
			if err := open.Close(); err != nil {
				t.Fatal(err)
			}
			do(t, vm, hostsim.Request{Headers: hdrs(":path", "/new", "x-ops", "root-config:3")})
			assertLines(t, opLines(vm), []string{
				"op=root-config stream=2 root=1 config=cfg",
				"op=root-config stream=2 root=1 config=cfg",
				"op=root-config stream=3 root=1 config=cfg",
			})
		})
	}
}

// An accepted update runs the module twice: vm_start and configure in the
// canary, then in the serving VM. A key whose canary passed, the VM's first
// one included, needs no canary again.
func TestCanaryAcceptedUpdateRunsInTheCanaryAndTheVM(t *testing.T) {
	ctx := context.Background()
	cfg := baseConfig
	cfg.RecordCalls = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	vm.ResetCalls()
	logged := len(vm.Logs())
	update := baseConfig
	update.Configuration = []byte("cfg-2")

	p, err := vm.Reconfigure(ctx, update)
	if err != nil || vm.Plugin() != p || p.RootID() != 2 {
		t.Fatalf("Reconfigure = root %d, %v; want the VM's own plugin, root 2", p.RootID(), err)
	}
	assertLines(t, messages(vm.Logs()[logged:]), []string{
		"create 1 0", // the canary
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=5 status=0 config=cfg-2",
		"create 2 0", // the serving VM
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=5 status=0 config=cfg-2",
		"done 1", // the old plugin, with no stream left
		"delete 1",
	})
	assertLines(t, topLevelCalls(vm), []string{
		"proxy_on_context_create(2)",
		"proxy_on_vm_start(2) -> 1",
		"proxy_on_configure(2) -> 1",
		"proxy_on_done(1) -> 1",
		"proxy_on_delete(1)",
	})
	if len(vm.EnvoyLogs()) != 0 {
		t.Errorf("EnvoyLogs = %q, want none", messages(vm.EnvoyLogs()))
	}

	logged = len(vm.Logs())
	if _, err := vm.Reconfigure(ctx, baseConfig); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Reconfigure(ctx, update); err != nil {
		t.Fatal(err)
	}
	assertLines(t, messages(vm.Logs()[logged:]), []string{
		"create 3 0",
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=3 status=0 config=cfg",
		"done 2",
		"delete 2",
		"create 4 0",
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=5 status=0 config=cfg-2",
		"done 3",
		"delete 3",
	})
}

// cpp-host caches only configure's verdict: a canary whose proxy_on_vm_start
// returns false is tried again with the next update. The VM here failed its
// own start (its vm configuration says fail-start), so every canary fails in
// vm_start too.
func TestCanaryStartFailureIsTriedAgain(t *testing.T) {
	ctx := context.Background()
	cfg := baseConfig
	cfg.VMConfiguration = []byte("fail-start")
	vm, err := guest(t).NewVM(ctx, cfg)
	if !errors.Is(err, hostsim.ErrVMStart) {
		t.Fatalf("NewVM = %v, want ErrVMStart", err)
	}
	t.Cleanup(func() { vm.Close(ctx) })
	logged := len(vm.Logs())
	second := baseConfig
	second.Configuration = []byte("second")
	for range 2 {
		if _, err := vm.AddPlugin(ctx, second); !errors.Is(err, hostsim.ErrVMStart) ||
			err.Error() != "hostsim: wasm vm failed to start: proxy_on_vm_start returned false" {
			t.Fatalf("AddPlugin = %v, want ErrVMStart", err)
		}
	}
	assertLines(t, messages(vm.Logs()[logged:]), []string{
		"create 1 0",
		"vm_start size=10 status=0 config=fail-start",
		"create 1 0",
		"vm_start size=10 status=0 config=fail-start",
	})
	assertLines(t, messages(vm.EnvoyLogs()), []string{
		"Wasm VM failed Failed to start base Wasm",
		"Wasm VM failed Failed to start base Wasm",
	})
}

// The canary shares the Module's stats, as Envoy's clone shares the base
// Wasm's scope: what its proxy_on_configure counts stays counted.
func TestCanaryMetricsAddIntoTheModulesStats(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	update := baseConfig
	update.Configuration = []byte("ops:metric-inc:0:updates=1;metric-get:0:updates")
	if _, err := vm.Reconfigure(context.Background(), update); err != nil {
		t.Fatal(err)
	}
	assertLines(t, opLines(vm), []string{
		"op=metric-inc id=4 status=0 value=0", // the canary
		"op=metric-get id=8 status=0 value=1",
		"op=metric-inc id=4 status=0 value=0", // the serving VM, its own ids
		"op=metric-get id=8 status=0 value=2",
	})
	if m, ok := vm.Metric(hostsim.MetricCounter, "updates"); !ok || m.Value != 2 {
		t.Errorf("Metric(updates) = %+v, %v; want 2", m, ok)
	}
}

// matchLine compares got with want, where a "*" suffix in want matches any rest.
func matchLine(got, want string) bool {
	if prefix, wild := strings.CutSuffix(want, "*"); wild {
		return strings.HasPrefix(got, prefix)
	}
	return got == want
}

// topLevelCalls lists the module's callbacks the VM recorded, without what
// they called.
func topLevelCalls(vm *hostsim.VM) []string {
	var out []string
	for _, c := range hostsim.WithoutWASI(vm.Calls()) {
		if c.Depth == 0 {
			out = append(out, c.String())
		}
	}
	return out
}
