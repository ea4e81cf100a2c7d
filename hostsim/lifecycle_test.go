package hostsim_test

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// Closing the VM shuts its root context down as cpp-host WasmBase::startShutdown
// does: proxy_on_done, and proxy_on_delete at once because it returned true.
func TestCloseRunsRootDoneAndDelete(t *testing.T) {
	cfg := baseConfig
	cfg.RecordCalls = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	vm.ResetCalls()
	if err := vm.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertTrace(t, hostsim.WithoutWASI(vm.Calls()), []string{
		"proxy_on_done(1) -> 1",
		"  proxy_log -> Ok",
		"proxy_on_delete(1)",
		"  proxy_log -> Ok",
	})
	if err := vm.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if got := len(vm.Calls()); got != 4 {
		t.Errorf("the second Close made %d calls, want none", got-4)
	}
}

// A root context whose proxy_on_done returns false waits for proxy_done, made
// here from proxy_on_tick; proxy_on_delete follows after that callback returns
// (cpp-host WasmBase::done defers it with addAfterVmCallAction). Before, and
// from a plugin that is not pending, proxy_done is NotFound.
func TestCloseWaitsForProxyDone(t *testing.T) {
	cfg := baseConfig
	cfg.RecordCalls = true
	cfg.Configuration = []byte("ops:done-pending;on-tick:proxy-done")
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "proxy-done")})
	vm.Tick()
	vm.ResetCalls()
	if err := vm.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	vm.Tick()
	vm.Tick() // the instance is gone: nothing runs
	assertTrace(t, hostsim.WithoutWASI(vm.Calls()), []string{
		"proxy_on_done(1) -> 0",
		"  proxy_log -> Ok",
		"proxy_on_tick(1)",
		"  proxy_log -> Ok",
		"  proxy_done -> Ok",
		"  proxy_log -> Ok",
		"proxy_on_delete(1)",
		"  proxy_log -> Ok",
	})
	assertLines(t, opLines(vm), []string{
		"op=proxy-done status=1", // from the stream: its plugin is not pending done
		"op=proxy-done status=1", // from proxy_on_tick before Close
		"op=proxy-done status=0",
	})

	// Inside proxy_on_done the root context is not pending yet: NotFound, and
	// the root context then waits as before.
	cfg.Configuration = []byte("ops:done-calls-done;done-pending;on-tick:proxy-done")
	vm = hostsimtest.NewVM(t, guest(t), cfg)
	vm.ResetCalls()
	if err := vm.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	vm.Tick()
	assertTrace(t, hostsim.WithoutWASI(vm.Calls()), []string{
		"proxy_on_done(1) -> 0",
		"  proxy_log -> Ok",
		"  proxy_done -> NotFound",
		"  proxy_log -> Ok",
		"proxy_on_tick(1)",
		"  proxy_log -> Ok",
		"  proxy_done -> Ok",
		"  proxy_log -> Ok",
		"proxy_on_delete(1)",
		"  proxy_log -> Ok",
	})
}

// Several plugins share one VM (the same vm_id and code): each has its own root
// context, configured in the same instance, with its own streams and properties.
func TestAddPluginSharesTheVM(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	second := baseConfig
	second.Name, second.RootID, second.Configuration = "plugin-b", "root-b", []byte("second")
	second.VMID = "ignored: the VM's vm_id stays"
	p, err := vm.AddPlugin(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	if p.RootID() != 2 || vm.Plugin().RootID() != 1 {
		t.Errorf("root ids = %d (added), %d (own), want 2, 1", p.RootID(), vm.Plugin().RootID())
	}
	ops := "root-config:3;prop:plugin_name;prop:plugin_root_id;prop:plugin_vm_id"
	if _, err := p.Do(context.Background(), hostsim.Request{Headers: hdrs(":path", "/", "x-ops", ops)}); err != nil {
		t.Fatal(err)
	}
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "root-config:4;prop:plugin_name")})
	if err := vm.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertLines(t, messages(vm.Logs()), []string{
		"create 1 0",
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=3 status=0 config=cfg",
		"create 1 0", // the canary, a throwaway instance (VM.canary)
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=6 status=0 config=second",
		"create 2 0",
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=6 status=0 config=second",
		"create 3 2",
		"request_headers n=2 eos=1",
		"op=root-config stream=3 root=2 config=second",
		"op=prop path=plugin_name status=0 hex=" + hexOf("plugin-b"),
		"op=prop path=plugin_root_id status=0 hex=" + hexOf("root-b"),
		"op=prop path=plugin_vm_id status=0 hex=" + hexOf("vm-a"),
		"on_log path_status=0 path=/",
		"done 3",
		"delete 3",
		"create 4 1",
		"request_headers n=2 eos=1",
		"op=root-config stream=4 root=1 config=cfg",
		"op=prop path=plugin_name status=0 hex=" + hexOf("plugin-a"),
		"on_log path_status=0 path=/",
		"done 4",
		"delete 4",
		"done 1",
		"delete 1",
		"done 2",
		"delete 2",
	})
}

// A configuration update while a stream is open: the new plugin is a new root
// context in the same VM; the open stream keeps the old one to its end, new
// streams get the new one, and the old root context is shut down when its last
// stream closes (Envoy's filter holds the old PluginHandle).
func TestReconfigureWhileAStreamIsOpen(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	old := vm.Plugin()
	s := vm.NewStream(context.Background())
	if _, err := s.RequestHeaders(hdrs(":path", "/old", "x-ops", "root-config:2"), true); err != nil {
		t.Fatal(err)
	}
	update := baseConfig
	update.Configuration = []byte("cfg-2")
	p, err := vm.Reconfigure(context.Background(), update)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Plugin() != p || p.RootID() != 3 {
		t.Errorf("VM's plugin = root %d, want the new one (root 3)", vm.Plugin().RootID())
	}
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/new", "x-ops", "root-config:4")})
	if _, err := s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "root-config:2"), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertLines(t, messages(vm.Logs()), []string{
		"create 1 0",
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=3 status=0 config=cfg",
		"create 2 1",
		"request_headers n=2 eos=1",
		"op=root-config stream=2 root=1 config=cfg",
		"create 1 0", // the canary
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=5 status=0 config=cfg-2",
		"create 3 0",
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=5 status=0 config=cfg-2",
		"create 4 3",
		"request_headers n=2 eos=1",
		"op=root-config stream=4 root=3 config=cfg-2",
		"on_log path_status=0 path=/new",
		"done 4",
		"delete 4",
		"response_headers n=2 eos=1",
		"op=root-config stream=2 root=1 config=cfg",
		"on_log path_status=0 path=/old",
		"done 2",
		"delete 2",
		"done 1", // the old plugin's last stream is gone
		"delete 1",
	})
	if _, err := old.Do(context.Background(), hostsim.Request{Headers: hdrs(":path", "/")}); !errors.Is(err, hostsim.ErrPluginRemoved) {
		t.Errorf("Do on the removed plugin = %v, want ErrPluginRemoved", err)
	}
}

// Removing a plugin with no open stream shuts its root context down at once;
// the VM's other plugins carry on.
func TestRemovePlugin(t *testing.T) {
	cfg := baseConfig
	cfg.RecordCalls = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	second := baseConfig
	second.Configuration = []byte("ops:done-pending")
	p, err := vm.AddPlugin(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	vm.ResetCalls()
	p.Remove()
	p.Remove()
	// Another plugin's stream acts for the pending root context through
	// proxy_set_effective_context: proxy_done takes the caller's plugin.
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "proxy-done;effective:2;proxy-done")})
	assertLines(t, opLines(vm), []string{
		"op=proxy-done status=1",
		"op=effective status=0",
		"op=proxy-done status=0",
	})
	var exports []string
	for _, c := range hostsim.WithoutWASI(vm.Calls()) {
		if c.Kind == hostsim.ExportCall && c.Depth == 0 {
			exports = append(exports, c.String())
		}
	}
	assertLines(t, exports, []string{
		"proxy_on_done(2) -> 0",
		"proxy_on_context_create(3)",
		"proxy_on_request_headers(3) -> Continue",
		"proxy_on_delete(2)", // after the callback that called proxy_done
		"proxy_on_log(3)",
		"proxy_on_done(3) -> 1",
		"proxy_on_delete(3)",
	})
}

func hexOf(s string) string { return hex.EncodeToString([]byte(s)) }

// An HTTP call goes out from the root context of the caller's plugin, which
// gets the response (cpp-host exports.cc http_call: root_context()).
func TestHTTPCallResponseGoesToThePluginsRoot(t *testing.T) {
	var seen []seenRequest
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"authz": authzCluster(&seen)}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	second := baseConfig
	second.Configuration = []byte("second")
	p, err := vm.AddPlugin(context.Background(), second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Do(context.Background(), hostsim.Request{Headers: hdrs(":path", "/", "x-ops",
		"http-call:authz|0|GET|/check|authz.local")}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range messages(vm.Logs()) {
		if strings.HasPrefix(m, "op=http-call") || strings.HasPrefix(m, "http_call_response") {
			got = append(got, m)
		}
	}
	assertLines(t, got, []string{
		"op=http-call status=0 token=4",
		"http_call_response id=2 token=4 headers=3 body=7 trailers=1",
	})
}
