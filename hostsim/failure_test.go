package hostsim_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

var failClosedReply = &hostsim.LocalReply{Status: 503, Headers: hdrs(":status", "503"), Details: hostsim.FailStreamDetails, GrpcStatus: 14}

// FAIL_RELOAD (Envoy wasm.cc PluginConfig::maybeReloadHandleIfNeeded): the
// trapping stream gets 503; streams within the backoff ([base, 1.5 base))
// fail closed; the first stream after it starts a fresh instance, configured
// again, and runs on it. A stream open across the reload stays on the failed
// instance and fails closed. (The backoff is an hour so that real time, which
// the backoff also counts, cannot end it during the test.)
func TestFailReloadStartsAFreshInstance(t *testing.T) {
	cfg := baseConfig
	cfg.FailurePolicy = hostsim.FailurePolicyReload
	cfg.ReloadBackoff = time.Hour
	vm := hostsimtest.NewVM(t, guest(t), cfg)

	open := vm.NewStream(context.Background())
	if res, err := open.RequestHeaders(hdrs(":path", "/open"), true); err != nil || !res.Continue {
		t.Fatalf("open stream: %+v, %v", res, err)
	}
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "trap")})
	if out.Upstream != nil || !reflect.DeepEqual(out.LocalReply, failClosedReply) {
		t.Errorf("trapping stream: %+v, want %+v", out, failClosedReply)
	}
	// cpp-host's message, then the runtime's words and stack trace (V8: its
	// own message and "Proxy-Wasm plugin in-VM backtrace:").
	envoy := vm.EnvoyLogs()
	const firstLine = "Function: proxy_on_request_headers failed: wasm error: out of bounds memory access"
	if len(envoy) != 1 || envoy[0].Level != hostsim.LogError ||
		strings.SplitN(envoy[0].Message, "\n", 2)[0] != firstLine {
		t.Errorf("EnvoyLogs = %q, want one error entry starting %q", envoy, firstLine)
	}

	logged := len(vm.Logs())
	out = do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "log:2=in backoff")})
	if out.Upstream != nil || !reflect.DeepEqual(out.LocalReply, failClosedReply) {
		t.Errorf("stream within the backoff: %+v, want %+v", out, failClosedReply)
	}
	if got, want := vm.ReloadStats(), (hostsim.ReloadStats{Backoff: 1}); got != want {
		t.Errorf("ReloadStats = %+v, want %+v", got, want)
	}
	if len(vm.Logs()) != logged {
		t.Errorf("the failed instance ran again: %q", messages(vm.Logs()[logged:]))
	}

	vm.Advance(90 * time.Minute) // past the largest jittered backoff
	out = do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "log:2=reloaded")})
	if out.LocalReply != nil || out.Upstream == nil {
		t.Errorf("stream after the backoff: %+v, want it sent upstream", out)
	}
	if got, want := vm.ReloadStats(), (hostsim.ReloadStats{Backoff: 1, Success: 1}); got != want {
		t.Errorf("ReloadStats = %+v, want %+v", got, want)
	}
	if vm.Failed() || vm.Plugin().RootID() != 1 {
		t.Errorf("after reload: failed=%v root=%d, want a fresh instance with root context 1", vm.Failed(), vm.Plugin().RootID())
	}
	var starts []string
	for _, m := range messages(vm.Logs()[logged:]) {
		if strings.HasPrefix(m, "vm_start") || strings.HasPrefix(m, "configure") || m == "reloaded" {
			starts = append(starts, m)
		}
	}
	assertLines(t, starts, []string{
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=3 status=0 config=cfg",
		"reloaded",
	})

	res, err := open.ResponseHeaders(hdrs(":status", "200"), true)
	if err != nil || res.Continue || !reflect.DeepEqual(res.LocalReply, failClosedReply) {
		t.Errorf("stream open across the reload: %+v, %v; want the fail-closed 503", res, err)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")}); out.Upstream == nil {
		t.Errorf("the reloaded instance after the old stream closed: %+v", out)
	}
}

// A reload only follows a runtime failure, and only with FAIL_RELOAD.
func TestFailReloadOnlyAfterARuntimeFailure(t *testing.T) {
	cfg := baseConfig
	cfg.FailurePolicy = hostsim.FailurePolicyReload
	cfg.Configuration = []byte("fail-configure")
	vm, err := guest(t).NewVM(context.Background(), cfg)
	if err == nil {
		t.Fatal("NewVM: no error for a configure that fails")
	}
	t.Cleanup(func() { _ = vm.Close(context.Background()) })
	vm.Advance(time.Minute)
	if out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")}); !reflect.DeepEqual(out.LocalReply, failClosedReply) {
		t.Errorf("configure failure: %+v, want the fail-closed 503", out)
	}
	if got := vm.ReloadStats(); got != (hostsim.ReloadStats{}) {
		t.Errorf("ReloadStats = %+v, want none", got)
	}

	closed := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, closed, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "trap")})
	closed.Advance(time.Minute)
	if out := do(t, closed, hostsim.Request{Headers: hdrs(":path", "/")}); !reflect.DeepEqual(out.LocalReply, failClosedReply) {
		t.Errorf("FAIL_CLOSED: %+v, want the fail-closed 503", out)
	}
}

// failure_policy FAIL_OPEN differs from the legacy fail_open for the stream
// that traps: Envoy gives cpp-host only the legacy bool, so that stream gets
// 503; later streams skip the filter either way. Setting both is refused.
func TestFailurePolicyOpen(t *testing.T) {
	cfg := baseConfig
	cfg.FailurePolicy = hostsim.FailurePolicyOpen
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "trap")})
	if !reflect.DeepEqual(out.LocalReply, failClosedReply) {
		t.Errorf("trapping stream: %+v, want %+v", out, failClosedReply)
	}
	logged := len(vm.Logs())
	out = do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "add:x-b=1")})
	if out.LocalReply != nil || out.Upstream == nil || !reflect.DeepEqual(*out.Upstream, hdrs(":path", "/", "x-ops", "add:x-b=1")) {
		t.Errorf("later stream: %+v, want it sent upstream untouched", out)
	}
	if len(vm.Logs()) != logged {
		t.Errorf("the failed VM ran again: %q", messages(vm.Logs()[logged:]))
	}

	cfg.FailOpen = true
	if _, err := guest(t).NewVM(context.Background(), cfg); err == nil ||
		err.Error() != "hostsim: only one of fail_open or failure_policy can be set" {
		t.Errorf("NewVM with fail_open and failure_policy: %v", err)
	}
}

// reload_config.backoff.base_interval sets the backoff; every plugin of the
// VM gets a root context on the new instance, the VM's own first.
func TestFailReloadBackoffAndPlugins(t *testing.T) {
	cfg := baseConfig
	cfg.FailurePolicy = hostsim.FailurePolicyReload
	cfg.ReloadBackoff = 100 * time.Millisecond
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	second, err := vm.AddPlugin(context.Background(), hostsim.PluginConfig{Name: "plugin-b", RootID: "root-b",
		Configuration: []byte("cfg-b"), FailurePolicy: hostsim.FailurePolicyReload, ReloadBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "trap")})
	logged := len(vm.Logs())
	vm.Advance(150 * time.Millisecond) // past the largest jittered backoff
	out, err := second.Do(context.Background(), hostsim.Request{Headers: hdrs(":path", "/")})
	if err != nil || out.Upstream == nil {
		t.Fatalf("second plugin after the backoff: %+v, %v", out, err)
	}
	var configured []string
	for _, m := range messages(vm.Logs()[logged:]) {
		if strings.HasPrefix(m, "configure") {
			configured = append(configured, m)
		}
	}
	assertLines(t, configured, []string{
		"configure size=3 status=0 config=cfg",
		"configure size=5 status=0 config=cfg-b",
	})
	if vm.Plugin().RootID() != 1 || second.RootID() != 2 {
		t.Errorf("root contexts after reload: %d, %d; want 1, 2", vm.Plugin().RootID(), second.RootID())
	}
	if got, want := vm.ReloadStats(), (hostsim.ReloadStats{Success: 1}); got != want {
		t.Errorf("ReloadStats = %+v, want %+v", got, want)
	}
}
