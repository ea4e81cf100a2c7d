package hostsim_test

import (
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

const guestDir = "testdata/guest"

var baseConfig = hostsim.PluginConfig{Name: "plugin-a", RootID: "root-a", VMID: "vm-a",
	VMConfiguration: []byte("vmcfg"), Configuration: []byte("cfg")}

func guest(t testing.TB) *hostsim.Module {
	t.Helper()
	return hostsimtest.Compile(t, hostsimtest.BuildGo(t, guestDir))
}

func messages(entries []hostsim.LogEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Message)
	}
	return out
}

// opLines returns the guest's "op=..." log lines.
func opLines(vm *hostsim.VM) []string {
	var out []string
	for _, m := range messages(vm.Logs()) {
		if strings.HasPrefix(m, "op=") {
			out = append(out, m)
		}
	}
	return out
}

func hdrs(kv ...string) hostsim.Headers {
	var h hostsim.Headers
	for i := 0; i < len(kv); i += 2 {
		h = append(h, hostsim.Header{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

func do(t *testing.T, vm *hostsim.VM, req hostsim.Request) hostsim.Outcome {
	t.Helper()
	out, err := vm.Do(context.Background(), req)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	return out
}

func TestStartupAndStreamLifecycle(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")})
	want := []string{
		"create 1 0",
		"vm_start size=5 status=0 config=vmcfg",
		"configure size=3 status=0 config=cfg",
		"create 2 1",
		"request_headers n=1 eos=1",
		"on_log path_status=0 path=/",
		"done 2",
		"delete 2",
	}
	if got := messages(vm.Logs()); !reflect.DeepEqual(got, want) {
		t.Errorf("logs:\n got %q\nwant %q", got, want)
	}
	if out.Upstream == nil || !reflect.DeepEqual(*out.Upstream, hdrs(":path", "/")) || out.LocalReply != nil {
		t.Errorf("outcome = %+v, want upstream [:path /]", out)
	}
	if vm.Failed() || len(vm.Diagnostics()) != 0 {
		t.Errorf("failed=%v diagnostics=%q", vm.Failed(), vm.Diagnostics())
	}
}

func TestHeaderMapPairsSerialisation(t *testing.T) {
	tests := []struct {
		name, ops string
		want      string
	}{{
		name: "count, sizes, then NUL-terminated names and values",
		ops:  "pairs",
		want: "op=pairs status=0 ptr_zero=false hex=02000000" + "05000000" + "01000000" + "05000000" + "05000000" +
			hex.EncodeToString([]byte(":path\x00/\x00x-ops\x00pairs\x00")),
	}, {
		name: "an empty map is a null pointer and size 0",
		ops:  "set-pairs-hex:00000000;pairs",
		want: "op=pairs status=0 ptr_zero=true hex=",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, guest(t), baseConfig)
			do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", tt.ops)})
			lines := opLines(vm)
			if len(lines) == 0 || lines[len(lines)-1] != tt.want {
				t.Errorf("got %q\nwant last %q", lines, tt.want)
			}
		})
	}
}

func TestHeaderMapOperations(t *testing.T) {
	tests := []struct {
		name     string
		headers  hostsim.Headers
		ops      string
		wantOps  []string
		upstream hostsim.Headers // without the x-ops header, which stays where it was
	}{{
		name:     "get returns the first value, case-insensitively; missing is NotFound",
		headers:  hdrs(":path", "/", "x-dup", "1", "x-dup", "2"),
		ops:      "get:x-dup;get:X-DUP;get:x-missing",
		wantOps:  []string{"op=get status=0 value=1", "op=get status=0 value=1", "op=get status=1 value="},
		upstream: hdrs(":path", "/", "x-dup", "1", "x-dup", "2", "x-ops", ""),
	}, {
		name:     "add appends a lowercased duplicate at the end",
		headers:  hdrs(":path", "/", "x-dup", "1", "x-dup", "2"),
		ops:      "add:X-Dup=3",
		wantOps:  []string{"op=add status=0"},
		upstream: hdrs(":path", "/", "x-dup", "1", "x-dup", "2", "x-ops", "", "x-dup", "3"),
	}, {
		name:     "replace collapses duplicates into one entry at the end",
		headers:  hdrs(":path", "/", "x-dup", "1", "x-dup", "2", "x-last", "l"),
		ops:      "replace:x-dup=9",
		wantOps:  []string{"op=replace status=0"},
		upstream: hdrs(":path", "/", "x-last", "l", "x-ops", "", "x-dup", "9"),
	}, {
		name:     "replace of a missing header adds it",
		headers:  hdrs(":path", "/"),
		ops:      "replace:x-new=n",
		wantOps:  []string{"op=replace status=0"},
		upstream: hdrs(":path", "/", "x-ops", "", "x-new", "n"),
	}, {
		name:     "remove drops every entry; removing a missing header is Ok",
		headers:  hdrs(":path", "/", "x-dup", "1", "x-dup", "2"),
		ops:      "remove:X-Dup;remove:x-absent",
		wantOps:  []string{"op=remove status=0", "op=remove status=0"},
		upstream: hdrs(":path", "/", "x-ops", ""),
	}, {
		name:     "set pairs replaces the whole map, pseudo-headers first",
		headers:  hdrs(":path", "/", "x-old", "o"),
		ops:      "set-pairs:B=2|a=1|:method=POST",
		wantOps:  []string{"op=set-pairs status=0"},
		upstream: hdrs(":method", "POST", "b", "2", "a", "1"),
	}, {
		name:     "malformed pairs empty the map and return Ok",
		headers:  hdrs(":path", "/", "x-old", "o"),
		ops:      "set-pairs-hex:0100",
		wantOps:  []string{"op=set-pairs-hex status=0"},
		upstream: nil,
	}, {
		name:     "adding an inline header joins the values with a comma",
		headers:  hdrs(":path", "/", "user-agent", "ua1"),
		ops:      "add:user-agent=ua2;get:user-agent",
		wantOps:  []string{"op=add status=0", "op=get status=0 value=ua1,ua2"},
		upstream: hdrs(":path", "/", "user-agent", "ua1,ua2", "x-ops", ""),
	}, {
		name:     "host is :authority; a replaced pseudo-header stays before the others",
		headers:  hdrs(":path", "/", "Host", "a.example"),
		ops:      "get:host;replace:host=b.example",
		wantOps:  []string{"op=get status=0 value=a.example", "op=replace status=0"},
		upstream: hdrs(":path", "/", ":authority", "b.example", "x-ops", ""),
	}, {
		name:     "size is the sum of name and value lengths",
		headers:  hdrs(":path", "/ab"),
		ops:      "size",
		wantOps:  []string{"op=size status=0 size=17"}, // ":path" "/ab" "x-ops" "size"
		upstream: hdrs(":path", "/ab", "x-ops", ""),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, guest(t), baseConfig)
			out := do(t, vm, hostsim.Request{Headers: append(tt.headers, hostsim.Header{Name: "x-ops", Value: tt.ops})})
			if got := opLines(vm); !reflect.DeepEqual(got, tt.wantOps) {
				t.Errorf("ops:\n got %q\nwant %q", got, tt.wantOps)
			}
			if out.Upstream == nil {
				t.Fatalf("not forwarded upstream: %+v", out)
			}
			want := tt.upstream
			for i := range want {
				if want[i].Name == "x-ops" {
					want[i].Value = tt.ops
				}
			}
			if !reflect.DeepEqual(*out.Upstream, want) {
				t.Errorf("upstream:\n got %q\nwant %q", *out.Upstream, want)
			}
		})
	}
}

func TestLocalReplyStopsTheStream(t *testing.T) {
	for _, ops := range []string{"reply:403=denied", "reply:403=denied;return:0", "reply:403=denied;return:1"} {
		t.Run(ops, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, guest(t), baseConfig)
			s := vm.NewStream(context.Background())
			r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", ops), true)
			if err != nil {
				t.Fatal(err)
			}
			// The reply goes through the module's proxy_on_response_headers, which adds x-seen.
			want := &hostsim.LocalReply{Status: 403,
				Headers: hdrs(":status", "403", "x-reply", "yes", "x-reply", "again", "x-resp-ops", "add:x-seen=1",
					"content-length", "6", "content-type", "text/plain", "x-seen", "1"),
				Body: []byte("denied"), Details: "denied_by_test", GrpcStatus: -1}
			if !reflect.DeepEqual(r.LocalReply, want) {
				t.Errorf("local reply = %+v, want %+v", r.LocalReply, want)
			}
			if r.Continue {
				t.Errorf("Continue = true after a local reply (Action %v)", r.Action)
			}
			if got, want := opLines(vm), []string{"op=reply status=0", "op=add status=0"}; !reflect.DeepEqual(got, want) {
				t.Errorf("ops = %q, want %q", got, want)
			}
			if !slices.Contains(messages(vm.Logs()), "response_headers n=6 eos=0") {
				t.Errorf("the module did not see its reply's headers: %q", messages(vm.Logs()))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", ops)})
			if out.Upstream != nil || !reflect.DeepEqual(out.LocalReply, want) {
				t.Errorf("Do = %+v", out)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops",
		"log:0=t;log:5=c;log:6=bad;stdout:out line;stderr:err line;log-level")})
	var got []hostsim.LogEntry
	for _, e := range vm.Logs() {
		first, _, _ := strings.Cut(e.Message, " ")
		switch first {
		case "create", "vm_start", "configure", "request_headers", "on_log", "done", "delete":
		default:
			got = append(got, e)
		}
	}
	want := []hostsim.LogEntry{
		{Level: hostsim.LogTrace, Message: "t"},
		{Level: hostsim.LogInfo, Message: "op=log status=0"},
		{Level: hostsim.LogCritical, Message: "c"},
		{Level: hostsim.LogInfo, Message: "op=log status=0"},
		{Level: hostsim.LogInfo, Message: "op=log status=2"},
		{Level: hostsim.LogInfo, Message: "out line"},
		{Level: hostsim.LogError, Message: "err line"},
		{Level: hostsim.LogInfo, Message: "op=log-level status=0 level=2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("logs:\n got %v\nwant %v", got, want)
	}
}

func TestLogLevelReported(t *testing.T) {
	cfg := baseConfig
	cfg.LogLevel = hostsim.LogDebug
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs("x-ops", "log-level")})
	if got, want := opLines(vm), []string{"op=log-level status=0 level=1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMetrics(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs("x-ops", "metrics")})
	wantOps := []string{
		"op=define type=0 status=0 id=4",
		"op=define type=0 status=0 id=8", // same counter, new id
		"op=define type=1 status=0 id=5",
		"op=define type=2 status=0 id=6",
		"op=define type=3 status=2 id=0",
		"op=inc-counter status=0",
		"op=inc-counter-alias status=0",
		"op=inc-counter-negative status=2",
		"op=inc-gauge status=0",
		"op=dec-gauge status=0",
		"op=inc-histogram status=2",
		"op=record-histogram status=0",
		"op=record-gauge status=0",
		"op=get-counter status=0",
		"op=get-histogram status=2",
		"op=get-unknown status=1",
	}
	if got := opLines(vm); !reflect.DeepEqual(got, wantOps) {
		t.Errorf("ops:\n got %q\nwant %q", got, wantOps)
	}
	want := []hostsim.Metric{
		{Name: "guest.requests", Type: hostsim.MetricCounter, Value: 3},
		{Name: "guest.active", Type: hostsim.MetricGauge, Value: 7},
		{Name: "guest.sizes", Type: hostsim.MetricHistogram, Value: 1, Samples: []uint64{42}},
	}
	if got := vm.Metrics(); !reflect.DeepEqual(got, want) {
		t.Errorf("metrics:\n got %+v\nwant %+v", got, want)
	}
}

func TestGuestMisuseStatuses(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops",
		"bad-key-ptr;bad-return-ptr;get-map:2;get-map:8;property:plugin_name;property:plugin_root_id;property:plugin_vm_id;property:request.path")})
	want := []string{
		"op=bad-key-ptr status=6",
		"op=bad-return-ptr status=6",
		"op=get-map status=2", // response headers do not exist yet
		"op=get-map status=2", // unknown map type
		"op=property status=0 value=plugin-a",
		"op=property status=0 value=root-a",
		"op=property status=0 value=vm-a",
		"op=property status=0 value=/", // properties_test.go covers the rest
	}
	if got := opLines(vm); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
	diags := strings.Join(vm.Diagnostics(), "\n")
	for _, w := range []string{
		"proxy_on_request_headers: proxy_get_header_map_value: InvalidMemoryAccess: key [4294967040, +512) is outside memory",
		"proxy_on_request_headers: proxy_get_header_map_value: BadArgument: unknown map type 8",
	} {
		if !strings.Contains(diags, w) {
			t.Errorf("diagnostics lack %q:\n%s", w, diags)
		}
	}
}

func TestResponseHeaders(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	if _, err := s.RequestHeaders(hdrs(":path", "/"), true); err != nil {
		t.Fatal(err)
	}
	r, err := s.ResponseHeaders(hdrs(":status", "200", "x-resp-ops", "add:x-r=1;get-map:0"), false)
	if err != nil {
		t.Fatal(err)
	}
	want := hdrs(":status", "200", "x-resp-ops", "add:x-r=1;get-map:0", "x-r", "1")
	if !r.Continue || !reflect.DeepEqual(r.Headers, want) {
		t.Errorf("result = %+v, want headers %q", r, want)
	}
	// The request continued, so its headers are gone (BadArgument), as in Envoy.
	if got, want := opLines(vm), []string{"op=add status=0", "op=get-map status=2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ops = %q, want %q", got, want)
	}
}

func TestRequestBody(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/"), Body: []byte("replace:new body")})
	if string(out.UpstreamBody) != "new body" || out.Upstream == nil {
		t.Errorf("outcome = %+v, want upstream body %q", out, "new body")
	}
	out = do(t, vm, hostsim.Request{Headers: hdrs(":path", "/"), Body: []byte("pause")})
	if !out.Paused || out.Upstream != nil {
		t.Errorf("outcome = %+v, want paused", out)
	}
}

func TestTrapFailsClosed(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	want := &hostsim.LocalReply{Status: 503, Headers: hdrs(":status", "503"), Details: hostsim.FailStreamDetails, GrpcStatus: 14}
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "trap")})
	if out.Upstream != nil || !reflect.DeepEqual(out.LocalReply, want) {
		t.Errorf("trapping stream: %+v, want local reply %+v", out, want)
	}
	if !vm.Failed() || !strings.Contains(vm.Failure().Error(), "proxy_on_request_headers") {
		t.Errorf("failed=%v failure=%v", vm.Failed(), vm.Failure())
	}
	logged := len(vm.Logs())
	out = do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "log:2=still running")})
	if out.Upstream != nil || !reflect.DeepEqual(out.LocalReply, want) {
		t.Errorf("later stream: %+v, want local reply %+v", out, want)
	}
	if len(vm.Logs()) != logged {
		t.Errorf("the failed VM ran again: %q", messages(vm.Logs()[logged:]))
	}
}

func TestTrapFailsOpen(t *testing.T) {
	cfg := baseConfig
	cfg.FailOpen = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "add:x-a=1;trap")})
	if out.LocalReply != nil || out.Upstream == nil ||
		!reflect.DeepEqual(*out.Upstream, hdrs(":path", "/", "x-ops", "add:x-a=1;trap", "x-a", "1")) {
		t.Errorf("trapping stream: %+v", out)
	}
	logged := len(vm.Logs())
	out = do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "add:x-b=1"), Body: []byte("replace:x")})
	if out.LocalReply != nil || out.Upstream == nil || !reflect.DeepEqual(*out.Upstream, hdrs(":path", "/", "x-ops", "add:x-b=1")) ||
		string(out.UpstreamBody) != "replace:x" {
		t.Errorf("later stream should skip the filter: %+v", out)
	}
	if len(vm.Logs()) != logged {
		t.Errorf("the failed VM ran again: %q", messages(vm.Logs()[logged:]))
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*hostsim.PluginConfig)
		want    error
		message string
	}{
		{"configure returns false", func(c *hostsim.PluginConfig) { c.Configuration = []byte("fail-configure") },
			hostsim.ErrConfigure, "proxy_on_configure returned false"},
		{"configure traps", func(c *hostsim.PluginConfig) { c.Configuration = []byte("trap-configure") },
			hostsim.ErrConfigure, "function: proxy_on_configure failed"},
		{"vm start returns false", func(c *hostsim.PluginConfig) { c.VMConfiguration = []byte("fail-start") },
			hostsim.ErrVMStart, "proxy_on_vm_start returned false"},
		{"restricted import during _initialize", func(c *hostsim.PluginConfig) {
			c.Environment = map[string]string{"GUEST_DEFINE_METRIC_IN_INIT": "1"}
		}, hostsim.ErrVMStart, "restricted_callback: env.proxy_define_metric may not be called in _initialize"},
	}
	m := guest(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig
			tt.mutate(&cfg)
			vm, err := m.NewVM(context.Background(), cfg)
			if vm == nil {
				t.Fatalf("NewVM returned no VM: %v", err)
			}
			t.Cleanup(func() { _ = vm.Close(context.Background()) })
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.want, tt.message)
			}
			out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")})
			if out.LocalReply == nil || out.LocalReply.Status != 503 || out.LocalReply.Details != hostsim.FailStreamDetails {
				t.Errorf("stream on a failed VM: %+v, want 503 %s", out, hostsim.FailStreamDetails)
			}
		})
	}
}

func TestLoadFailures(t *testing.T) {
	proxyLog := wasmImport{"env", "proxy_log", wasmFunc{"iii", "i"}}
	tests := []struct {
		name    string
		wasm    []byte
		opts    []hostsim.Option
		message string // empty: loads
	}{
		{"minimal module loads", buildWasm([]wasmImport{proxyLog}, []wasmExport{abi021, allocator}), nil, ""},
		{"unknown import", buildWasm([]wasmImport{{"env", "proxy_unknown", wasmFunc{"i", "i"}}},
			[]wasmExport{abi021, allocator}), nil, "missing import: env.proxy_unknown"},
		{"import with another signature", buildWasm([]wasmImport{{"env", "proxy_log", wasmFunc{"i", "i"}}},
			[]wasmExport{abi021, allocator}), nil, "import type mismatch: env.proxy_log, want: i->i, but host exports: iii->i"},
		{"proxy_get_log_level is not there for ABI 0.2.0", buildWasm(
			[]wasmImport{{"env", "proxy_get_log_level", wasmFunc{"i", "i"}}}, []wasmExport{abi020, allocator}),
			nil, "missing import: env.proxy_get_log_level"},
		{"proxy_get_log_level is there for ABI 0.2.1", buildWasm(
			[]wasmImport{{"env", "proxy_get_log_level", wasmFunc{"i", "i"}}}, []wasmExport{abi021, allocator}),
			nil, ""},
		{"WASI function the 2025 profile lacks", buildWasm(
			[]wasmImport{{"wasi_snapshot_preview1", "fd_filestat_get", wasmFunc{"ii", "i"}}}, []wasmExport{abi021, allocator}),
			[]hostsim.Option{hostsim.WithWASI(hostsim.WASI2025)}, "missing import: wasi_snapshot_preview1.fd_filestat_get"},
		{"the same WASI function with the 2026 profile", buildWasm(
			[]wasmImport{{"wasi_snapshot_preview1", "fd_filestat_get", wasmFunc{"ii", "i"}}}, []wasmExport{abi021, allocator}),
			[]hostsim.Option{hostsim.WithWASI(hostsim.WASI2026)}, ""},
		{"wasi_unstable is linked too", buildWasm(
			[]wasmImport{{"wasi_unstable", "fd_write", wasmFunc{"iiii", "i"}}}, []wasmExport{abi021, allocator}), nil, ""},
		{"no ABI version", buildWasm(nil, []wasmExport{allocator}), nil, "missing or unknown proxy-wasm ABI version"},
		{"no allocator", buildWasm(nil, []wasmExport{abi021}), nil, "missing malloc function"},
		{"callback with another signature", buildWasm(nil, []wasmExport{abi021, allocator,
			{name: "proxy_on_request_headers", typ: wasmFunc{"ii", "i"}, body: []byte{0x41, 0x00}}}),
			nil, "bad function signature for: proxy_on_request_headers, want: iii->i, but the module exports: ii->i"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := hostsim.Compile(context.Background(), tt.wasm, tt.opts...)
			if tt.message == "" {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				t.Cleanup(func() { _ = m.Close(context.Background()) })
				vm := hostsimtest.NewVM(t, m, baseConfig)
				out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")})
				if out.Upstream == nil || !reflect.DeepEqual(*out.Upstream, hdrs(":path", "/")) {
					t.Errorf("a module without callbacks should pass requests through: %+v", out)
				}
				return
			}
			if !errors.Is(err, hostsim.ErrLoad) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("err = %v, want ErrLoad containing %q", err, tt.message)
			}
		})
	}
}

func TestImportsAndExports(t *testing.T) {
	m := hostsimtest.Compile(t, buildWasm(
		[]wasmImport{{"env", "proxy_log", wasmFunc{"iii", "i"}}, {"wasi_snapshot_preview1", "fd_write", wasmFunc{"iiii", "i"}},
			{"env", "proxy_log", wasmFunc{"iii", "i"}}},
		[]wasmExport{abi021, allocator}))
	if got, want := m.Imports(), []string{"env.proxy_log", "wasi_snapshot_preview1.fd_write"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Imports = %q, want %q", got, want)
	}
	if got, want := m.Exports(), []string{"proxy_abi_version_0_2_1", "proxy_on_memory_allocate"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Exports = %q, want %q", got, want)
	}
	if m.ABI() != hostsim.ABI021 {
		t.Errorf("ABI = %q", m.ABI())
	}
}

func TestWASIEnvironmentAndClock(t *testing.T) {
	cfg := baseConfig
	cfg.Environment = map[string]string{"GUEST_A": "1", "GUEST_B": "two=2"}
	cfg.Now = func() time.Time { return time.Unix(1700000000, 0) }
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs("x-ops", "env:GUEST_B;env:GUEST_C;clock")})
	want := []string{"op=env value=two=2 found=true", "op=env value= found=false", "op=clock unix=1700000000"}
	if got := opLines(vm); !reflect.DeepEqual(got, want) {
		t.Errorf("ops = %q, want %q", got, want)
	}
}

// Go's runtime sleeps through poll_oneoff, which Envoy's 2025 host refused
// (proxy-wasm-cpp-host issue 497): the module then dies.
func TestWASIProfilePollOneoff(t *testing.T) {
	wasm := hostsimtest.BuildGo(t, guestDir)
	for _, tt := range []struct {
		profile hostsim.WASIProfile
		fails   bool
	}{{hostsim.WASI2025, true}, {hostsim.WASI2026, false}} {
		vm := hostsimtest.NewVM(t, hostsimtest.Compile(t, wasm, hostsim.WithWASI(tt.profile)), baseConfig)
		out := do(t, vm, hostsim.Request{Headers: hdrs("x-ops", "sleep")})
		if vm.Failed() != tt.fails || (out.LocalReply != nil) != tt.fails {
			t.Errorf("profile %d: failed=%v (%v), outcome %+v; want failed=%v", tt.profile, vm.Failed(), vm.Failure(), out, tt.fails)
		}
	}
}

func TestEffectiveContext(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	s := vm.NewStream(context.Background())
	r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "effective:99;effective:1;get-map:0;effective:0;get::path;continue"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"op=effective status=2", // unknown context
		"op=effective status=0", // the root context, which has no header maps
		"op=get-map status=2",
		"op=effective status=0", // 0 falls back to the running stream
		"op=get status=0 value=/",
		"op=continue status=0",
	}
	if got := opLines(vm); !reflect.DeepEqual(got, want) {
		t.Errorf("ops:\n got %q\nwant %q", got, want)
	}
	if !r.ContinueRequested || !r.Continue {
		t.Errorf("result = %+v", r)
	}
}

// A trap inside malloc fails the VM but, as in Envoy, only the host call
// fails at once (InvalidMemoryAccess); the stream then fails closed.
func TestRestrictedImportInMalloc(t *testing.T) {
	vm := hostsimtest.NewVM(t, guest(t), baseConfig)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "malloc-misuse;get::path")})
	if got, want := opLines(vm), []string{"op=get status=6 value="}; !reflect.DeepEqual(got, want) {
		t.Errorf("ops = %q, want %q", got, want)
	}
	if out.LocalReply == nil || out.LocalReply.Status != 503 ||
		!strings.Contains(vm.Failure().Error(), "restricted_callback: env.proxy_get_log_level may not be called in malloc") {
		t.Errorf("outcome %+v, failure %v", out, vm.Failure())
	}
}

func TestInterpreter(t *testing.T) {
	m := hostsimtest.Compile(t, hostsimtest.BuildGo(t, guestDir), hostsim.WithInterpreter())
	vm := hostsimtest.NewVM(t, m, baseConfig)
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "add:x-a=1")})
	if out.Upstream == nil || !reflect.DeepEqual(*out.Upstream, hdrs(":path", "/", "x-ops", "add:x-a=1", "x-a", "1")) {
		t.Errorf("outcome = %+v", out)
	}
}

// TrapOn traps the callback that makes the named host call: the stream and
// every later one fail closed, and the module is never called again.
func TestTrapOnInjectsATrap(t *testing.T) {
	cfg := baseConfig
	cfg.TrapOn = "proxy_add_header_map_value"
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	want := &hostsim.LocalReply{Status: 503, Headers: hdrs(":status", "503"), Details: hostsim.FailStreamDetails, GrpcStatus: 14}
	out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "add:x-a=1")})
	if out.Upstream != nil || !reflect.DeepEqual(out.LocalReply, want) {
		t.Errorf("trapping stream: %+v, want local reply %+v", out, want)
	}
	if !vm.Failed() || !strings.Contains(vm.Failure().Error(), "trap injected by PluginConfig.TrapOn at env.proxy_add_header_map_value in proxy_on_request_headers") {
		t.Errorf("failure = %v", vm.Failure())
	}
}

func TestGuestTime(t *testing.T) {
	req := hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "log:2=hello")}
	plain := hostsimtest.NewVM(t, guest(t), baseConfig)
	do(t, plain, req)
	if plain.GuestTime() != 0 {
		t.Errorf("GuestTime without MeasureGuest = %v, want 0", plain.GuestTime())
	}
	cfg := baseConfig
	cfg.MeasureGuest = true
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	started := vm.GuestTime() // _initialize, vm start and configure
	start := time.Now()
	do(t, vm, req)
	elapsed := time.Since(start)
	if started <= 0 {
		t.Errorf("GuestTime after start-up = %v, want > 0", started)
	}
	if g := vm.GuestTime() - started; g <= 0 || g > elapsed {
		t.Errorf("GuestTime of one request = %v, want within (0, %v]", g, elapsed)
	}
}
