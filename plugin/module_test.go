package main

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// case-10: the module's shape. Envoy refuses a module that imports anything
// it does not provide, so a new import must be a deliberate change here.
func TestModuleImportsAndExports(t *testing.T) {
	m := module(t)
	wantImports := []string{
		"env.proxy_define_metric",
		"env.proxy_get_buffer_bytes",
		"env.proxy_get_header_map_pairs",
		"env.proxy_get_log_level",
		"env.proxy_increment_metric",
		"env.proxy_log",
		"env.proxy_send_local_response",
		"env.proxy_set_header_map_pairs",
		// What Go's wasip1 runtime and os package import; all are in
		// proxy-wasm-cpp-host's WASI list since Envoy 1.33.
		"wasi_snapshot_preview1.args_get",
		"wasi_snapshot_preview1.args_sizes_get",
		"wasi_snapshot_preview1.clock_time_get",
		"wasi_snapshot_preview1.environ_get",
		"wasi_snapshot_preview1.environ_sizes_get",
		"wasi_snapshot_preview1.fd_close",
		"wasi_snapshot_preview1.fd_fdstat_get",
		"wasi_snapshot_preview1.fd_fdstat_set_flags",
		"wasi_snapshot_preview1.fd_prestat_dir_name",
		"wasi_snapshot_preview1.fd_prestat_get",
		"wasi_snapshot_preview1.fd_write",
		"wasi_snapshot_preview1.poll_oneoff",
		"wasi_snapshot_preview1.proc_exit",
		"wasi_snapshot_preview1.random_get",
		"wasi_snapshot_preview1.sched_yield",
	}
	if got := m.Imports(); !reflect.DeepEqual(got, wantImports) {
		t.Errorf("imports\n got %q\nwant %q", got, wantImports)
	}
	wantExports := []string{
		"_initialize",
		"proxy_abi_version_0_2_1",
		"proxy_on_configure",
		"proxy_on_context_create",
		"proxy_on_delete",
		"proxy_on_done",
		"proxy_on_memory_allocate",
		"proxy_on_request_headers",
		"proxy_on_vm_start",
	}
	if got := m.Exports(); !reflect.DeepEqual(got, wantExports) {
		t.Errorf("exports\n got %q\nwant %q", got, wantExports)
	}
	if slices.Contains(m.Exports(), "_start") {
		t.Error("a command module (_start) is not a reactor")
	}
	if m.ABI() != hostsim.ABI021 {
		t.Errorf("ABI = %v, want 0.2.1", m.ABI())
	}
}

// case-10: a malformed configuration makes configure fail; Envoy refuses it,
// and a stream that reached the failed plugin anyway gets 503, nothing upstream.
func TestBadConfigurationFailsClosed(t *testing.T) {
	vm, err := module(t).NewVM(context.Background(), hostsim.PluginConfig{
		Name: "secretgate", RootID: "secretgate", VMID: "secretgate",
		Configuration: []byte(`{"session": "s", "secrets": {"OPENAI_API_KEY": {"placeholder": "short", "value": "` + valOpenAI + `"}}}`),
	})
	if !errors.Is(err, hostsim.ErrConfigure) {
		t.Fatalf("NewVM error = %v, want ErrConfigure", err)
	}
	defer vm.Close(context.Background())
	logs := messages(vm)
	capture(logs)
	want := "secretgate: invalid plugin configuration: secrets.OPENAI_API_KEY.placeholder: must be at least 16 bytes"
	if !slices.Contains(logs, want) {
		t.Errorf("logs %q lack %q", logs, want)
	}
	out, err := vm.Do(context.Background(), hostsim.Request{Headers: toHostsim(get("api.openai.com", "/v1/models", hdr{"authorization", "Bearer short"}))})
	if err != nil {
		t.Fatal(err)
	}
	if out.Upstream != nil || out.LocalReply == nil || out.LocalReply.Status != 503 {
		t.Fatalf("outcome %+v, want a 503 and nothing upstream", out)
	}
}

// case-10: a trap inside a callback fails that stream closed (503) and every
// later one, never open.
func TestTrapFailsClosed(t *testing.T) {
	vm := hostsimtest.NewVM(t, module(t), hostsim.PluginConfig{
		Name: "secretgate", RootID: "secretgate", VMID: "secretgate",
		Configuration: fixtureConfig("passthrough", ""), TrapOn: "proxy_set_header_map_pairs",
	})
	req := hostsim.Request{Headers: toHostsim(get("api.openai.com", "/v1/models", hdr{"authorization", "Bearer " + phOpenAI}))}
	for i := range 2 {
		out, err := vm.Do(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if out.Upstream != nil || out.LocalReply == nil || out.LocalReply.Status != 503 || out.LocalReply.Details != hostsim.FailStreamDetails {
			t.Fatalf("request %d: outcome %+v, want 503 %s and nothing upstream", i, out, hostsim.FailStreamDetails)
		}
	}
	capture(messages(vm))
}

// case-10: after a deny the callback returns Pause, and the VM serves the
// next request normally.
func TestDenyThenNextRequestWorks(t *testing.T) {
	vm := hostsimtest.NewVM(t, module(t), hostsim.PluginConfig{
		Name: "secretgate", RootID: "secretgate", VMID: "secretgate", Configuration: fixtureConfig("deny", ""),
	})
	denied := vm.NewStream(context.Background())
	res, err := denied.RequestHeaders(toHostsim(get("evil.example", "/", hdr{"authorization", "Bearer " + phOpenAI})), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != hostsim.ActionPause || res.LocalReply == nil || res.LocalReply.Status != 403 || res.Continue {
		t.Fatalf("deny: action %v, reply %+v, continue %v; want Pause with 403", res.Action, res.LocalReply, res.Continue)
	}
	if err := denied.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := vm.Do(context.Background(), hostsim.Request{Headers: toHostsim(get("api.openai.com", "/", hdr{"authorization", "Bearer " + phOpenAI}))})
	if err != nil {
		t.Fatal(err)
	}
	want := toHostsim(get("api.openai.com", "/", hdr{"authorization", "Bearer " + valOpenAI}))
	if out.Upstream == nil || !reflect.DeepEqual(*out.Upstream, want) {
		t.Fatalf("next request: %+v", out)
	}
	capture(messages(vm))
}

func messages(vm *hostsim.VM) []string {
	var out []string
	for _, l := range vm.Logs() {
		out = append(out, l.Message)
	}
	return out
}

// Envoy's host reads a header serialisation over 1 MiB or 1024 lines as an
// empty map (and says Ok), so a rewrite that large must fail closed rather
// than send the request on with no headers. A 4 KiB value injected 300
// times in one 10 KB header crosses the line.
func TestRewriteBeyondPairsLimitFailsClosed(t *testing.T) {
	value := strings.Repeat("v", 4096)
	config := []byte(`{"session": "s", "secrets": {"BIG_TOKEN": {"placeholder": "` + phJira + `", "value": "` + value + `", "hosts": ["api.example.com"]}}}`)
	request := get("api.example.com", "/", hdr{"x-many", strings.TrimSpace(strings.Repeat(phJira+" ", 300))})
	for name, run := range map[string]runner{"native": runNative, "wasm": wasmRunner(module(t))} {
		t.Run(name, func(t *testing.T) {
			got := run(t, config, request)
			if got.forwarded != nil || got.status != 500 || got.body != `{"error":"secretgate_internal_error"}` {
				t.Fatalf("outcome %d %s, forwarded %d lines; want 500 and nothing forwarded", got.status, got.body, len(got.forwarded))
			}
			want := "secretgate: writing request headers: the rewritten headers exceed proxy-wasm's limits of 1024 lines or 1048576 bytes; answering 500"
			if !slices.Contains(got.logs, want) || got.metrics["secretgate.injected.BIG_TOKEN"] != 0 {
				t.Errorf("logs %q, metrics %v", got.logs, got.metrics)
			}
		})
	}
}

// The request path costs one host call to read the headers and one to write
// them back (DESIGN.md's "one request, as data"); a request without a
// placeholder makes no write, and a deny writes nothing but the reply.
func TestHostCallTrace(t *testing.T) {
	for _, c := range []struct {
		name, mode string
		request    []hdr
		want       []string
	}{
		{"injected", "deny", get("api.openai.com", "/v1/models", hdr{"authorization", "Bearer " + phOpenAI}), []string{
			"proxy_on_context_create(2)",
			"proxy_on_request_headers(2) -> Continue",
			"  proxy_get_header_map_pairs -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_set_header_map_pairs -> Ok",
			"  proxy_increment_metric -> Ok",
			"  proxy_get_log_level -> Ok",
			"proxy_on_done(2) -> 1",
			"proxy_on_delete(2)",
		}},
		{"no placeholder", "deny", get("api.openai.com", "/v1/models", hdr{"authorization", "Bearer sk-live-not-ours"}), []string{
			"proxy_on_context_create(2)",
			"proxy_on_request_headers(2) -> Continue",
			"  proxy_get_header_map_pairs -> Ok",
			"    proxy_on_memory_allocate",
			"proxy_on_done(2) -> 1",
			"proxy_on_delete(2)",
		}},
		{"denied", "deny", get("evil.example", "/v1/models", hdr{"authorization", "Bearer " + phOpenAI}), []string{
			"proxy_on_context_create(2)",
			"proxy_on_request_headers(2) -> Pause",
			"  proxy_get_header_map_pairs -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_send_local_response -> Ok",
			"  proxy_increment_metric -> Ok",
			"  proxy_log -> Ok",
			"proxy_on_done(2) -> 1",
			"proxy_on_delete(2)",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, module(t), hostsim.PluginConfig{
				Name: "secretgate", RootID: "secretgate", VMID: "secretgate",
				Configuration: fixtureConfig(c.mode, ""), RecordCalls: true,
			})
			vm.ResetCalls()
			if _, err := vm.Do(context.Background(), hostsim.Request{Headers: toHostsim(c.request)}); err != nil {
				t.Fatal(err)
			}
			capture(messages(vm))
			if got := hostsim.Trace(hostsim.WithoutWASI(vm.Calls())); !reflect.DeepEqual(got, c.want) {
				t.Errorf("trace\n got %q\nwant %q", got, c.want)
			}
		})
	}
}
