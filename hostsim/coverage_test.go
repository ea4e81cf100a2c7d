package hostsim_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// untouched is what the guest leaves in a return slot before the call
// (0xdead), so a slot the host did not write shows as this number.
const untouched = "57005"

func TestCurrentTimeNanoseconds(t *testing.T) {
	cfg := baseConfig
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	cfg.Now = func() time.Time { return now }
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "time")})
	// Envoy's Context::getCurrentTimeNanoseconds: the system clock since the epoch, in ns.
	assertLines(t, opLines(vm), []string{"op=time status=0 ns=1767323045000000006"})
}

func TestTickPeriodAndTick(t *testing.T) {
	cfg := baseConfig
	cfg.Configuration = []byte("ops:tick-period:250;on-tick:time,get-status,buffer-status:7,close:0")
	cfg.Now = func() time.Time { return time.Unix(7, 0) }
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	if got := vm.TickPeriod(); got != 250*time.Millisecond {
		t.Errorf("TickPeriod after configure = %v, want 250ms", got)
	}
	vm.Tick()
	var lines []string
	for _, m := range messages(vm.Logs()) {
		if strings.HasPrefix(m, "op=") || strings.HasPrefix(m, "tick ") {
			lines = append(lines, m)
		}
	}
	assertLines(t, lines, []string{
		"op=tick-period status=0",
		// proxy_on_tick goes to the root context (id 1), as Envoy's timer calls it.
		"tick id=1",
		"op=time status=0 ns=7000000000",
		"op=get-status status=0 code=0 ptr_zero=true message=",
		// The plugin configuration is readable only in proxy_on_configure (NotFound).
		"op=buffer-status type=7 status=1 size=" + untouched + " flags=" + untouched,
		// The root context has no stream to close: Ok, nothing happens.
		"op=close type=0 status=0",
	})

	// A stream context sets the root context's period (cpp-host setTimerPeriod
	// uses root_context()->id()).
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "tick-period:1000")})
	if got := vm.TickPeriod(); got != time.Second {
		t.Errorf("TickPeriod after a stream set it = %v, want 1s", got)
	}
	if vm.Failed() {
		t.Errorf("vm failed: %v", vm.Failure())
	}
}

func TestSharedData(t *testing.T) {
	m := guest(t)
	a := hostsimtest.NewVM(t, m, baseConfig)
	do(t, a, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", strings.Join([]string{
		"shared-get:k",
		"shared-set:k|v1|0",
		"shared-get:k",
		"shared-set:k|v2|2", // not the stored cas
		"shared-set:k|v2|1",
		"shared-get:k",
		"shared-set:k|v3|1", // stale cas
		"shared-set:k|v4|0", // 0 sets unconditionally
		"shared-get:k",
		"shared-set:new|n|77", // a missing key is set whatever the cas
		"shared-get:new",
	}, ";"))})
	// cpp-host src/shared_data.cc: cas values count from 1, one per successful set;
	// a failed get writes nothing back.
	assertLines(t, opLines(a), []string{
		"op=shared-get key=k status=1 value= cas=" + untouched,
		"op=shared-set key=k status=0",
		"op=shared-get key=k status=0 value=v1 cas=1",
		"op=shared-set key=k status=8",
		"op=shared-set key=k status=0",
		"op=shared-get key=k status=0 value=v2 cas=2",
		"op=shared-set key=k status=8",
		"op=shared-set key=k status=0",
		"op=shared-get key=k status=0 value=v4 cas=3",
		"op=shared-set key=new status=0",
		"op=shared-get key=new status=0 value=n cas=4",
	})

	// Another VM with the same vm_id shares the data; one with another vm_id does
	// not, but the cas counter is one for the whole store.
	b := hostsimtest.NewVM(t, m, baseConfig)
	do(t, b, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "shared-get:k;shared-set:k|from-b|3")})
	assertLines(t, opLines(b), []string{
		"op=shared-get key=k status=0 value=v4 cas=3",
		"op=shared-set key=k status=0",
	})
	other := baseConfig
	other.VMID = "vm-other"
	c := hostsimtest.NewVM(t, m, other)
	do(t, c, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "shared-get:k;shared-set:k|from-c|0;shared-get:k")})
	assertLines(t, opLines(c), []string{
		"op=shared-get key=k status=1 value= cas=" + untouched,
		"op=shared-set key=k status=0",
		"op=shared-get key=k status=0 value=from-c cas=6",
	})
	a2 := hostsimtest.NewVM(t, m, baseConfig)
	do(t, a2, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "shared-get:k")})
	assertLines(t, opLines(a2), []string{"op=shared-get key=k status=0 value=from-b cas=5"})
}

func TestGetStatus(t *testing.T) {
	var seen []seenRequest
	cfg := baseConfig
	cfg.Clusters = map[string]http.Handler{"authz": authzCluster(&seen)}
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	// Envoy's Context::getStatus is (status_code_, status_message_), (0, "") until
	// an HTTP call fails (onHttpCallFailure: BrokenConnection "reset") or a gRPC
	// call closes. A successful call leaves it alone.
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops",
		"get-status;http-call:authz|0|GET|/check|authz.local;return:1",
		"x-callback-ops", "get-status;buffer-status:4;continue")})
	assertLines(t, opLines(vm), []string{
		"op=get-status status=0 code=0 ptr_zero=true message=",
		"op=http-call status=0 token=4",
		"op=effective status=0",
		"op=get-status status=0 code=0 ptr_zero=true message=",
		// The call's response body ("granted") exists during the callback.
		"op=buffer-status type=4 status=0 size=7 flags=0",
		"op=continue status=0",
	})
}

func TestCloseStream(t *testing.T) {
	// Envoy's Context::closeStream: request and response reset the HTTP stream;
	// downstream and upstream are network-filter streams, absent here, so Ok
	// with no effect; exports.cc refuses a type above upstream (BadArgument).
	tests := []struct {
		typ       string
		status    string
		wantReset bool
	}{
		{"0", "0", true},
		{"1", "0", true},
		{"2", "0", false},
		{"3", "0", false},
		{"4", "2", false},
	}
	for _, tt := range tests {
		t.Run("type "+tt.typ, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, guest(t), baseConfig)
			s := vm.NewStream(context.Background())
			r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "close:"+tt.typ), true)
			if err != nil {
				t.Fatal(err)
			}
			assertLines(t, opLines(vm), []string{"op=close type=" + tt.typ + " status=" + tt.status})
			if r.Reset != tt.wantReset {
				t.Errorf("Reset = %v, want %v", r.Reset, tt.wantReset)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestContinueStreamStatuses(t *testing.T) {
	// Envoy's Context::continueStream: request and response are Ok (and forget
	// the request maps), downstream is Ok (no network filter here), upstream is
	// Unimplemented; exports.cc refuses a type above upstream (BadArgument).
	tests := []struct {
		typ, status, pathAfter string
		wantRequested          bool
	}{
		{"0", "0", "op=get status=2 value=", true},
		{"1", "0", "op=get status=2 value=", true},
		{"2", "0", "op=get status=0 value=/", false},
		{"3", "12", "op=get status=0 value=/", false},
		{"4", "2", "op=get status=0 value=/", false},
	}
	for _, tt := range tests {
		t.Run("type "+tt.typ, func(t *testing.T) {
			vm := hostsimtest.NewVM(t, guest(t), baseConfig)
			s := vm.NewStream(context.Background())
			r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "continue-type:"+tt.typ+";get::path;return:1"), true)
			if err != nil {
				t.Fatal(err)
			}
			assertLines(t, opLines(vm), []string{"op=continue-type type=" + tt.typ + " status=" + tt.status, tt.pathAfter})
			if r.ContinueRequested != tt.wantRequested {
				t.Errorf("ContinueRequested = %v, want %v", r.ContinueRequested, tt.wantRequested)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBufferStatus(t *testing.T) {
	cfg := baseConfig
	// In proxy_on_configure, on the root context (exports.cc get_buffer_status,
	// Envoy's Context::getBuffer): the plugin configuration (its own length),
	// the VM configuration ("vmcfg"), an unknown type (BadArgument, nothing
	// written), the HTTP-call body outside its callback (NotFound), a request
	// body with no stream (empty), call data (empty: Envoy returns its scratch
	// buffer, which the previous call just emptied). Flags are always 0.
	cfg.Configuration = []byte("ops:buffer-status:7;buffer-status:6;buffer-status:9;buffer-status:4;buffer-status:0;buffer-status:8")
	vm := hostsimtest.NewVM(t, guest(t), cfg)
	do(t, vm, hostsim.Request{Headers: hdrs(":path", "/", "x-ops", "buffer-status:7;buffer-status:0;buffer-status:1")})
	assertLines(t, opLines(vm), []string{
		"op=buffer-status type=7 status=0 size=" + strconv.Itoa(len(cfg.Configuration)) + " flags=0",
		"op=buffer-status type=6 status=0 size=5 flags=0",
		"op=buffer-status type=9 status=2 size=" + untouched + " flags=" + untouched,
		"op=buffer-status type=4 status=1 size=" + untouched + " flags=" + untouched,
		"op=buffer-status type=0 status=0 size=0 flags=0",
		"op=buffer-status type=8 status=0 size=0 flags=0",
		// In a stream's headers callback: no plugin configuration, empty bodies.
		"op=buffer-status type=7 status=1 size=" + untouched + " flags=" + untouched,
		"op=buffer-status type=0 status=0 size=0 flags=0",
		"op=buffer-status type=1 status=0 size=0 flags=0",
	})
}

func TestHeadersCallbackStatus(t *testing.T) {
	// cpp-host ContextBase::convertVmCallResultToFilterHeadersStatus: above
	// StopAllIterationAndWatermark (4) becomes 4; StopIteration (1) becomes 4
	// unless allow_on_headers_stop_iteration. Continue (0) and
	// ContinueAndDontEndStream (2) continue; the rest stop.
	for _, allow := range []bool{false, true} {
		for _, tt := range []struct {
			ret  uint32
			cont bool
		}{{0, true}, {1, false}, {2, true}, {3, false}, {4, false}, {5, false}, {100, false}} {
			cfg := baseConfig
			cfg.AllowOnHeadersStopIteration = allow
			vm := hostsimtest.NewVM(t, guest(t), cfg)
			s := vm.NewStream(context.Background())
			r, err := s.RequestHeaders(hdrs(":path", "/", "x-ops", "return:"+strconv.Itoa(int(tt.ret))), true)
			if err != nil {
				t.Fatal(err)
			}
			if r.Action != hostsim.Action(tt.ret) || r.Continue != tt.cont {
				t.Errorf("allow=%v return %d: Action %v Continue %v, want Action %d Continue %v",
					allow, tt.ret, r.Action, r.Continue, tt.ret, tt.cont)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// emscriptenModule imports env.pthread_equal and
// env.emscripten_notify_memory_growth: _initialize notifies growth (allowed
// during start-up), proxy_on_vm_start returns pthread_equal(root id, VM
// configuration size), and, when initPthread is set, _initialize also calls
// pthread_equal, which Envoy restricts during start-up.
func emscriptenModule(initPthread bool) []byte {
	init := []byte{0x41, 0x00, 0x10, 0x01} // i32.const 0; call emscripten_notify_memory_growth
	if initPthread {
		init = append(init, 0x41, 0x00, 0x41, 0x00, 0x10, 0x00, 0x1a) // pthread_equal(0, 0); drop
	}
	return buildWasm([]wasmImport{
		{"env", "pthread_equal", wasmFunc{"ii", "i"}},
		{"env", "emscripten_notify_memory_growth", wasmFunc{"i", ""}},
	}, []wasmExport{abi021, allocator,
		{name: "_initialize", typ: wasmFunc{}, body: init},
		{name: "proxy_on_vm_start", typ: wasmFunc{"ii", "i"},
			body: []byte{0x20, 0x00, 0x20, 0x01, 0x10, 0x00}}, // pthread_equal(root_id, vm_config_size)
	})
}

func TestEmscriptenImports(t *testing.T) {
	ctx := context.Background()
	m := hostsimtest.Compile(t, emscriptenModule(false))
	// The root context is id 1: a one-byte VM configuration makes the two equal.
	vm, err := m.NewVM(ctx, hostsim.PluginConfig{VMConfiguration: []byte("x")})
	if err != nil {
		t.Fatalf("pthread_equal(1, 1) should be 1 and start the VM: %v", err)
	}
	_ = vm.Close(ctx)
	vm, err = m.NewVM(ctx, hostsim.PluginConfig{VMConfiguration: []byte("xy")})
	if !errors.Is(err, hostsim.ErrVMStart) || !strings.Contains(err.Error(), "proxy_on_vm_start returned false") {
		t.Errorf("pthread_equal(1, 2) = 0 should fail the start; got %v", err)
	}
	if vm != nil {
		_ = vm.Close(ctx)
	}

	restricted := hostsimtest.Compile(t, emscriptenModule(true))
	vm, err = restricted.NewVM(ctx, hostsim.PluginConfig{VMConfiguration: []byte("x")})
	if !errors.Is(err, hostsim.ErrVMStart) || !strings.Contains(err.Error(), "restricted_callback: env.pthread_equal") {
		t.Errorf("pthread_equal in _initialize should trap restricted_callback; got %v", err)
	}
	if vm != nil {
		_ = vm.Close(ctx)
	}
}
