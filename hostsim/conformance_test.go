package hostsim_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// Conformance of loading and start-up against the tiny modules in
// testdata/wat, whose shapes a Go guest cannot produce. Expected values come
// from proxy-wasm-cpp-host (src/wasm.cc, src/bytecode_util.cc, src/v8/v8.cc,
// include/proxy-wasm/wasm.h), each module naming the function it exercises.

const watDir = "testdata/wat"

// watWasm returns the committed binary of testdata/wat/<name>.wat.
func watWasm(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(watDir, name+".wasm"))
	if err != nil {
		t.Fatalf("%v (run `make wat` after adding a .wat)", err)
	}
	return b
}

// watVM compiles a module that must load and starts a VM on it, returning
// the start error, if any.
func watVM(t *testing.T, name string) (*hostsim.VM, error) {
	t.Helper()
	m := hostsimtest.Compile(t, watWasm(t, name))
	vm, err := m.NewVM(context.Background(), baseConfig)
	if vm == nil {
		t.Fatalf("NewVM(%s) returned no VM: %v", name, err)
	}
	t.Cleanup(func() { _ = vm.Close(context.Background()) })
	return vm, err
}

// TestWatModulesUpToDate rebuilds every .wat with wabt's wat2wasm and
// compares it with the committed .wasm, which the other tests read.
func TestWatModulesUpToDate(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not found: install wabt (apt-get install wabt) to check testdata/wat/*.wasm against their sources")
	}
	sources, err := filepath.Glob(filepath.Join(watDir, "*.wat"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no .wat files in %s: %v", watDir, err)
	}
	tmp := t.TempDir()
	for _, src := range sources {
		base := strings.TrimSuffix(filepath.Base(src), ".wat")
		out := filepath.Join(tmp, base+".wasm")
		if msg, err := exec.Command(wat2wasm, "--output="+out, src).CombinedOutput(); err != nil {
			t.Errorf("wat2wasm %s: %v\n%s", src, err, msg)
			continue
		}
		built, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(watDir, base+".wasm"))
		if err != nil || !bytes.Equal(built, committed) {
			t.Errorf("%s.wasm is not what wat2wasm makes of %s.wat (%v): run `make wat`", base, base, err)
		}
	}
	binaries, _ := filepath.Glob(filepath.Join(watDir, "*.wasm"))
	if len(binaries) != len(sources) {
		t.Errorf("%d .wasm for %d .wat in %s: remove binaries without a source", len(binaries), len(sources), watDir)
	}
}

// cpp-host src/wasm.cc getFunctions and startVm: a reactor (_initialize) runs
// main(0, 0), or __main_void when there is no main, and never _start; a
// command runs _start alone. Then the root context: proxy_on_context_create(1,
// 0), proxy_on_vm_start, proxy_on_configure (WasmBase::start, configure).
func TestConformanceStartOrder(t *testing.T) {
	root := []string{"proxy_on_context_create(1,0)", "proxy_on_vm_start", "proxy_on_configure"}
	tests := []struct {
		module string
		want   []string
	}{
		{"start_reactor_main", append([]string{"_initialize", "main(0,0)"}, root...)},
		{"start_reactor_main_void", append([]string{"_initialize", "__main_void"}, root...)},
		{"start_command", append([]string{"_start"}, root...)},
		// Exports cpp-host never looks up are not checked either.
		{"start_reactor_bad_start_ignored", []string{"_initialize"}},
		{"start_command_bad_main_ignored", []string{"_start"}},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			vm, err := watVM(t, tt.module)
			if err != nil {
				t.Fatalf("NewVM: %v", err)
			}
			if got := messages(vm.Logs()); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("calls:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// cpp-host BytecodeUtil::getAbiVersion takes the first function export named
// proxy_abi_version_* in the export section.
func TestConformanceABIVersion(t *testing.T) {
	tests := []struct {
		module string
		want   hostsim.ABIVersion
		err    string // not empty: the load fails with this
	}{
		{"abi_none", "", "missing or unknown proxy-wasm ABI version"},
		// Envoy loads 0.1.0 modules; hostsim does not model that ABI (DEVIATIONS.md).
		{"abi_0_1_0", "", "proxy-wasm ABI 0.1.0 is not supported by hostsim"},
		{"abi_0_1_0_then_0_2_1", "", "proxy-wasm ABI 0.1.0 is not supported by hostsim"},
		{"abi_0_2_0", hostsim.ABI020, ""},
		{"abi_0_2_1", hostsim.ABI021, ""},
		{"abi_0_2_0_then_0_2_1", hostsim.ABI020, ""},
		{"abi_0_2_1_then_0_2_0", hostsim.ABI021, ""},
		{"abi_global_then_0_2_0", hostsim.ABI020, ""},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			m, err := hostsim.Compile(context.Background(), watWasm(t, tt.module))
			if tt.err != "" {
				if !errors.Is(err, hostsim.ErrLoad) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Compile err = %v, want ErrLoad containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			t.Cleanup(func() { _ = m.Close(context.Background()) })
			if m.ABI() != tt.want {
				t.Errorf("ABI = %q, want %q", m.ABI(), tt.want)
			}
		})
	}
}

// Modules Envoy refuses at load, and look-alikes it accepts.
func TestConformanceLoad(t *testing.T) {
	tests := []struct {
		module string
		err    string // empty: loads, starts and passes a request through
	}{
		{"memory_none", "module exports no memory"},
		{"memory_not_exported", "module exports no memory"},
		{"memory_imported", "imported memory env.memory is not supported by hostsim"},
		{"allocator_none", "wasm module is missing malloc function"},
		{"allocator_malloc_bad_signature", "bad function signature for: malloc, want: i->i, but the module exports: I->i"},
		{"allocator_alias_bad_signature_ignored", ""},
		{"callback_bad_signature",
			"bad function signature for: proxy_on_request_headers, want: iii->i, but the module exports: ii->i"},
		{"callback_bad_signature_network",
			"bad function signature for: proxy_on_downstream_data, want: iii->i, but the module exports: ii->i"},
		{"start_reactor_bad_main", "bad function signature for: main, want: ii->i, but the module exports: ->i"},
		{"import_unknown", "failed to load wasm module due to a missing import: env.proxy_does_not_exist"},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			m, err := hostsim.Compile(context.Background(), watWasm(t, tt.module))
			if tt.err != "" {
				if !errors.Is(err, hostsim.ErrLoad) || err.Error() != "hostsim: module does not load: "+tt.err {
					t.Fatalf("Compile err = %v, want ErrLoad: %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			t.Cleanup(func() { _ = m.Close(context.Background()) })
			vm := hostsimtest.NewVM(t, m, baseConfig)
			out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")})
			if out.Upstream == nil || !reflect.DeepEqual(*out.Upstream, hdrs(":path", "/")) {
				t.Errorf("outcome %+v, want the request passed through", out)
			}
		})
	}
}

// WASI linked under wasi_unstable works like wasi_snapshot_preview1, during
// start-up too: fd_write on stdout is Envoy's info log.
func TestConformanceWASIUnstable(t *testing.T) {
	vm, err := watVM(t, "import_wasi_unstable")
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	want := []hostsim.LogEntry{{Level: hostsim.LogInfo, Message: "from wasi_unstable"}}
	if got := vm.Logs(); !reflect.DeepEqual(got, want) {
		t.Errorf("logs = %+v, want %+v", got, want)
	}
}

// Which allocator Envoy calls, and what a host call returns when the
// allocator answers nothing usable: InvalidMemoryAccess, the VM unharmed
// (include/proxy-wasm/wasm.h allocMemory, copyToPointerSize).
func TestConformanceAllocator(t *testing.T) {
	tests := []struct {
		module string
		want   []string
	}{
		{"allocator_both", []string{"malloc", "status=0"}},
		{"malloc_returns_zero", []string{"status=6"}},
		{"malloc_out_of_bounds", []string{"status=6"}},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			vm, err := watVM(t, tt.module)
			if err != nil {
				t.Fatalf("NewVM: %v", err)
			}
			if got := messages(vm.Logs()); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("logs = %q, want %q", got, tt.want)
			}
			if vm.Failed() {
				t.Errorf("VM failed: %v", vm.Failure())
			}
		})
	}
}

// A trap in a start function fails the VM before any root context exists:
// Envoy rejects the configuration ("Failed to initialize Wasm code"), hostsim
// returns ErrVMStart and fails every stream closed.
func TestConformanceStartTraps(t *testing.T) {
	tests := []struct {
		module, function string
		calls            []string
	}{
		// cpp-host startVm calls main even after a trapped _initialize.
		{"trap_initialize", "_initialize", []string{"_initialize", "main(0,0)"}},
		{"trap_main", "main", []string{"_initialize", "main(0,0)"}},
		{"trap_start", "_start", []string{"_start"}},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			vm, err := watVM(t, tt.module)
			if !errors.Is(err, hostsim.ErrVMStart) ||
				!strings.HasPrefix(err.Error(), "hostsim: wasm vm failed to start: function: "+tt.function+" failed: wasm error: unreachable") {
				t.Fatalf("NewVM err = %v, want ErrVMStart from a trap in %s", err, tt.function)
			}
			if got := messages(vm.Logs()); !reflect.DeepEqual(got, tt.calls) {
				t.Errorf("calls = %q, want %q (no root context)", got, tt.calls)
			}
			if logs := vm.EnvoyLogs(); len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "Function: "+tt.function+" failed: ") {
				t.Errorf("Envoy logs = %+v, want one line for %s", logs, tt.function)
			}
			out := do(t, vm, hostsim.Request{Headers: hdrs(":path", "/")})
			if out.LocalReply == nil || out.LocalReply.Status != 503 || out.LocalReply.Details != hostsim.FailStreamDetails {
				t.Errorf("stream on the failed VM: %+v, want 503 %s", out, hostsim.FailStreamDetails)
			}
		})
	}
}

// proxy_on_vm_start returning 0: WasmBase::start fails and proxy_on_configure
// is never called.
func TestConformanceVMStartFalse(t *testing.T) {
	vm, err := watVM(t, "vm_start_false")
	if !errors.Is(err, hostsim.ErrVMStart) || err.Error() != "hostsim: wasm vm failed to start: proxy_on_vm_start returned false" {
		t.Fatalf("NewVM err = %v, want ErrVMStart: proxy_on_vm_start returned false", err)
	}
	if got, want := messages(vm.Logs()), []string{"proxy_on_context_create", "proxy_on_vm_start"}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
}
