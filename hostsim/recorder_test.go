package hostsim_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

func recordingVM(t *testing.T, edit func(*hostsim.PluginConfig)) *hostsim.VM {
	t.Helper()
	cfg := baseConfig
	cfg.RecordCalls = true
	if edit != nil {
		edit(&cfg)
	}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	vm.ResetCalls()
	return vm
}

// assertTrace compares a trace line by line; a wanted line ending in " *"
// matches any line with the same beginning.
func assertTrace(t *testing.T, got []hostsim.Call, want []string) {
	t.Helper()
	match := func(g, w string) bool {
		if prefix, wild := strings.CutSuffix(w, "*"); wild {
			return strings.HasPrefix(g, prefix)
		}
		return g == w
	}
	if g := hostsim.Trace(got); !slices.EqualFunc(g, want, match) {
		t.Errorf("trace:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
}

// The guest logs in every callback and after every op, so its proxy_log calls
// interleave with the calls under test.
func TestTraceOfARequest(t *testing.T) {
	tests := []struct {
		name, ops string
		trapOn    string
		want      []string
	}{{
		name: "reads, writes and a missing key",
		ops:  "get:x-missing;pairs;set-pairs::path=/new|x-a=1",
		want: []string{
			"proxy_on_context_create(2)",
			"  proxy_log -> Ok",
			"proxy_on_request_headers(2) -> Continue",
			"  proxy_log -> Ok",
			"  proxy_get_header_map_value -> Ok", // x-ops
			"    proxy_on_memory_allocate",
			"  proxy_get_header_map_value -> NotFound",
			"  proxy_log -> Ok",
			"  proxy_get_header_map_pairs -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_log -> Ok",
			"  proxy_set_header_map_pairs -> Ok",
			"  proxy_log -> Ok",
			"proxy_on_log(2)",
			"  proxy_get_header_map_value -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_log -> Ok",
			"proxy_on_done(2) -> 1",
			"  proxy_log -> Ok",
			"proxy_on_delete(2)",
			"  proxy_log -> Ok",
		},
	}, {
		name: "misuse: bad pointers and an unknown map",
		ops:  "bad-key-ptr;bad-return-ptr;get-map:8;return:1",
		want: []string{
			"proxy_on_context_create(2)",
			"  proxy_log -> Ok",
			"proxy_on_request_headers(2) -> Pause",
			"  proxy_log -> Ok",
			"  proxy_get_header_map_value -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_get_header_map_value -> InvalidMemoryAccess", // key outside memory
			"  proxy_log -> Ok",
			"  proxy_get_header_map_value -> InvalidMemoryAccess", // return pointers: after the copy
			"    proxy_on_memory_allocate",
			"  proxy_log -> Ok",
			"  proxy_get_header_map_value -> BadArgument",
			"  proxy_log -> Ok",
			"proxy_on_log(2)",
			"  proxy_get_header_map_value -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_log -> Ok",
			"proxy_on_done(2) -> 1",
			"  proxy_log -> Ok",
			"proxy_on_delete(2)",
			"  proxy_log -> Ok",
		},
	}, {
		// Envoy runs the module's local reply through its own response callback.
		name: "local reply",
		ops:  "reply:403=denied",
		want: []string{
			"proxy_on_context_create(2)",
			"  proxy_log -> Ok",
			"proxy_on_request_headers(2) -> Continue",
			"  proxy_log -> Ok",
			"  proxy_get_header_map_value -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_send_local_response -> Ok",
			"  proxy_log -> Ok",
			"proxy_on_response_headers(2) -> Continue",
			"  proxy_log -> Ok",
			"  proxy_get_header_map_value -> Ok", // x-resp-ops
			"    proxy_on_memory_allocate",
			"  proxy_add_header_map_value -> Ok",
			"  proxy_log -> Ok",
			"proxy_on_response_body(2) -> Continue", // the reply's body "denied"
			"proxy_on_log(2)",
			"  proxy_get_header_map_value -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_log -> Ok",
			"proxy_on_done(2) -> 1",
			"  proxy_log -> Ok",
			"proxy_on_delete(2)",
			"  proxy_log -> Ok",
		},
	}, {
		// The VM fails: Envoy calls the module no more, not even to end the stream.
		name:   "trap in a host call",
		ops:    "pairs",
		trapOn: "proxy_get_header_map_pairs",
		want: []string{
			"proxy_on_context_create(2)",
			"  proxy_log -> Ok",
			"proxy_on_request_headers(2) trapped",
			"  proxy_log -> Ok",
			"  proxy_get_header_map_value -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_get_header_map_pairs trapped",
		},
	}, {
		// A restricted call traps malloc; the host call then fails and the VM with
		// it. The module's state after a trap inside it is undefined, so how the
		// callback ends is not part of the test.
		name: "restricted call inside malloc",
		ops:  "malloc-misuse;get::path",
		want: []string{
			"proxy_on_context_create(2)",
			"  proxy_log -> Ok",
			"proxy_on_request_headers(2) *",
			"  proxy_log -> Ok",
			"  proxy_get_header_map_value -> Ok",
			"    proxy_on_memory_allocate",
			"  proxy_get_header_map_value -> InvalidMemoryAccess",
			"    proxy_on_memory_allocate trapped",
			"      proxy_get_log_level trapped",
			"  proxy_log -> Ok",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := recordingVM(t, func(c *hostsim.PluginConfig) { c.TrapOn = tt.trapOn })
			req := hostsim.Request{Headers: hdrs(":path", "/", "x-ops", tt.ops)}
			do(t, vm, req)
			assertTrace(t, hostsim.WithoutWASI(vm.Calls()), tt.want)
			if vm.Failed() {
				vm.ResetCalls()
				do(t, vm, req)
				assertTrace(t, vm.Calls(), nil)
			}
		})
	}
}

// Start-up: the Go runtime's WASI calls inside _initialize depend on the Go
// version, so only their place is checked.
func TestTraceOfStartUp(t *testing.T) {
	cfg := baseConfig
	cfg.RecordCalls = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	calls := vm.Calls()
	wasi := 0
	for _, c := range calls {
		if c.Kind == hostsim.HostCall && c.Module == "wasi_snapshot_preview1" {
			wasi++
			if c.Export != "_initialize" || c.Depth != 1 || c.Context != 0 {
				t.Errorf("WASI call outside _initialize: %v", c)
			}
		}
	}
	if wasi == 0 {
		t.Errorf("no WASI call recorded in _initialize")
	}
	assertTrace(t, hostsim.WithoutWASI(calls), []string{
		"_initialize",
		"proxy_on_context_create(1)",
		"  proxy_log -> Ok",
		"proxy_on_vm_start(1) -> 1",
		"  proxy_get_buffer_bytes -> Ok",
		"    proxy_on_memory_allocate",
		"  proxy_log -> Ok",
		"proxy_on_configure(1) -> 1",
		"  proxy_get_buffer_bytes -> Ok",
		"    proxy_on_memory_allocate",
		"  proxy_log -> Ok",
	})
}

// Every Call says where it happened; String reads on its own in a failure.
func TestCallFields(t *testing.T) {
	vm := recordingVM(t, nil)
	s := vm.NewStream(t.Context())
	if _, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "get:x-none;stdout:hi"), true); err != nil {
		t.Fatal(err)
	}
	got := vm.Calls()
	var lines []string
	for _, c := range got {
		lines = append(lines, c.String())
	}
	want := []string{
		"proxy_on_context_create(2)",
		"proxy_log -> Ok [context 2, proxy_on_context_create]",
		"proxy_on_request_headers(2) -> Continue",
		"proxy_log -> Ok [context 2, proxy_on_request_headers]",
		"proxy_get_header_map_value -> Ok [context 2, proxy_on_request_headers]",
		"proxy_on_memory_allocate [context 2, proxy_on_request_headers]",
		"proxy_get_header_map_value -> NotFound [context 2, proxy_on_request_headers]",
		"proxy_log -> Ok [context 2, proxy_on_request_headers]",
		"wasi_snapshot_preview1.fd_write -> 0 [context 2, proxy_on_request_headers]",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("String():\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	notFound := got[6]
	wantCall := hostsim.Call{Kind: hostsim.HostCall, Module: "env", Name: "proxy_get_header_map_value",
		Export: "proxy_on_request_headers", Context: 2, Depth: 1, Result: uint32(hostsim.StatusNotFound), HasResult: true}
	if notFound != wantCall {
		t.Errorf("call = %#v\nwant %#v", notFound, wantCall)
	}
	if st, ok := notFound.Status(); st != hostsim.StatusNotFound || !ok {
		t.Errorf("Status() = %v, %v; want NotFound, true", st, ok)
	}
	for _, c := range []hostsim.Call{got[0], got[5], got[8]} { // export, malloc, WASI
		if st, ok := c.Status(); ok {
			t.Errorf("%v: Status() = %v, true; want none", c, st)
		}
	}
}

func TestCallsNotRecordedByDefault(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "pairs")})
	if calls := vm.Calls(); calls != nil {
		t.Errorf("Calls() = %v, want nil", calls)
	}
}
