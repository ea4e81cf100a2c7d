package hostsim_test

import (
	"context"
	"errors"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// A plugin whose key (name, root_id, configuration) matches a live one gets
// that root context back without a call into the module (cpp-host
// getOrCreateThreadLocalPlugin finds its PluginHandle); a different name or
// configuration is a new root context. Each AddPlugin holds the plugin until
// its Remove, and an update with the same key changes nothing.
func TestAddPluginSameKeyReusesTheRootContext(t *testing.T) {
	ctx := context.Background()
	cfg := baseConfig
	cfg.RecordCalls = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	vm.ResetCalls()

	same, err := vm.AddPlugin(ctx, baseConfig)
	if err != nil {
		t.Fatal(err)
	}
	if same != vm.Plugin() {
		t.Fatalf("AddPlugin with the VM's key returned root %d, want the VM's own", same.RootID())
	}
	if again, err := vm.Reconfigure(ctx, baseConfig); err != nil || again != same {
		t.Fatalf("Reconfigure with the same key = root %d, %v; want the same plugin", again.RootID(), err)
	}
	assertTrace(t, hostsim.WithoutWASI(vm.Calls()), nil)

	renamed := baseConfig
	renamed.Name = "plugin-b"
	other, err := vm.AddPlugin(ctx, renamed)
	if err != nil {
		t.Fatal(err)
	}
	assertTrace(t, hostsim.WithoutWASI(vm.Calls()), []string{
		"proxy_on_context_create(2)",
		"  proxy_log -> Ok",
		"proxy_on_vm_start(2) -> 1",
		"  proxy_get_buffer_bytes -> Ok",
		"    proxy_on_memory_allocate",
		"  proxy_log -> Ok",
		"proxy_on_configure(2) -> 1",
		"  proxy_get_buffer_bytes -> Ok",
		"    proxy_on_memory_allocate",
		"  proxy_log -> Ok",
	})
	if again, _ := vm.AddPlugin(ctx, renamed); again != other {
		t.Errorf("second AddPlugin of plugin-b = root %d, want %d", again.RootID(), other.RootID())
	}

	// The AddPlugin above holds the VM's own plugin: its Remove leaves it serving.
	vm.ResetCalls()
	same.Remove()
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")})
	other.Remove() // one of two holders
	if _, err := other.Do(ctx, hostsim.Request{Headers: hdrs(":path", "/")}); err != nil {
		t.Fatalf("plugin-b after one of two Removes: %v", err)
	}
	other.Remove()
	if _, err := other.Do(ctx, hostsim.Request{Headers: hdrs(":path", "/")}); !errors.Is(err, hostsim.ErrPluginRemoved) {
		t.Fatalf("plugin-b after both Removes: %v, want ErrPluginRemoved", err)
	}
	var roots []string
	for _, c := range hostsim.WithoutWASI(vm.Calls()) {
		if c.Name == "proxy_on_context_create" || c.Name == "proxy_on_done" || c.Name == "proxy_on_delete" {
			roots = append(roots, c.String())
		}
	}
	assertLines(t, roots, []string{
		"proxy_on_context_create(3)",
		"proxy_on_done(3) -> 1",
		"proxy_on_delete(3)",
		"proxy_on_context_create(4)",
		"proxy_on_done(4) -> 1",
		"proxy_on_delete(4)",
		"proxy_on_done(2) -> 1",
		"proxy_on_delete(2)",
	})
}

// A removed plugin whose stream is still open keeps its PluginHandle alive, so
// adding its key again revives it: no new root context, and no shutdown when
// the stream closes.
func TestAddPluginRevivesARemovedPluginWithOpenStreams(t *testing.T) {
	ctx := context.Background()
	cfg := baseConfig
	cfg.RecordCalls = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	second := baseConfig
	second.Configuration = []byte("second")
	p, err := vm.AddPlugin(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	s := p.NewStream(ctx)
	if _, err := s.RequestHeaders(hdrs(":path", "/"), true); err != nil {
		t.Fatal(err)
	}
	p.Remove()
	vm.ResetCalls()
	if again, err := vm.AddPlugin(ctx, second); err != nil || again != p {
		t.Fatalf("AddPlugin of the removed key = root %d, %v; want root %d", again.RootID(), err, p.RootID())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Only the stream (3) ends; root context 2 stays.
	assertTrace(t, hostsim.WithoutWASI(vm.Calls()), []string{
		"proxy_on_log(3)",
		"  proxy_get_header_map_value -> Ok",
		"    proxy_on_memory_allocate",
		"  proxy_log -> Ok",
		"proxy_on_done(3) -> 1",
		"  proxy_log -> Ok",
		"proxy_on_delete(3)",
		"  proxy_log -> Ok",
	})
	if _, err := p.Do(ctx, hostsim.Request{Headers: hdrs(":path", "/")}); err != nil {
		t.Errorf("revived plugin: %v", err)
	}
}

// A configuration whose proxy_on_configure returns false is rejected, as Envoy
// refuses the update: AddPlugin and Reconfigure return ErrConfigure, the VM
// does not fail and its plugins keep serving, and the same key is refused
// again without calling the module (cpp-host's canary cache). The canary
// rejected it, so the VM itself never saw it (canary_test.go has more).
func TestAddPluginRejectedConfigurationKeepsTheVM(t *testing.T) {
	ctx := context.Background()
	cfg := baseConfig
	cfg.RecordCalls = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	vm.ResetCalls()
	bad := baseConfig
	bad.Configuration = []byte("fail-configure")

	p, err := vm.AddPlugin(ctx, bad)
	if !errors.Is(err, hostsim.ErrConfigure) || err.Error() != "hostsim: wasm plugin failed to configure: proxy_on_configure returned false" {
		t.Fatalf("AddPlugin = %v, want ErrConfigure", err)
	}
	assertTrace(t, hostsim.WithoutWASI(vm.Calls()), nil)
	if vm.Failed() {
		t.Fatalf("VM failed: %v", vm.Failure())
	}
	if _, err := p.Do(ctx, hostsim.Request{Headers: hdrs(":path", "/")}); !errors.Is(err, hostsim.ErrPluginRemoved) {
		t.Errorf("rejected plugin Do = %v, want ErrPluginRemoved", err)
	}

	vm.ResetCalls()
	if _, err := vm.Reconfigure(ctx, bad); !errors.Is(err, hostsim.ErrConfigure) {
		t.Fatalf("Reconfigure = %v, want ErrConfigure", err)
	}
	if vm.Plugin().RootID() != 1 {
		t.Errorf("VM's own plugin = root %d, want 1", vm.Plugin().RootID())
	}
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "root-config:2")})
	if out.Upstream == nil || out.LocalReply != nil {
		t.Errorf("outcome = %+v, want the request upstream", out)
	}
	assertLines(t, opLines(vm), []string{"op=root-config stream=2 root=1 config=cfg"})
	if err := vm.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, c := range hostsim.WithoutWASI(vm.Calls()) {
		if c.Depth == 0 && c.Name != "proxy_on_request_headers" && c.Name != "proxy_on_response_headers" {
			calls = append(calls, c.String())
		}
	}
	assertLines(t, calls, []string{
		"proxy_on_context_create(2)",
		"proxy_on_log(2)",
		"proxy_on_done(2) -> 1",
		"proxy_on_delete(2)",
		"proxy_on_done(1) -> 1",
		"proxy_on_delete(1)",
	})
}
