// Package hostsimtest holds testing helpers for hostsim: build a Go proxy-wasm
// module once per test binary, compile it, and start VMs that close themselves.
package hostsimtest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/secretgate/secretgate/hostsim"
)

var (
	buildMu sync.Mutex
	builds  = map[string]built{}
)

type built struct {
	wasm []byte
	err  string
}

// BuildGo builds the Go main package in dir (GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared) and returns the module's bytes. Each directory is built
// once per test binary; a failed build fails every test that asks for it.
func BuildGo(t testing.TB, dir string) []byte {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("hostsimtest: %v", err)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	b, ok := builds[abs]
	if !ok {
		b = build(abs)
		builds[abs] = b
	}
	if b.err != "" {
		t.Fatalf("hostsimtest: build %s: %s", dir, b.err)
	}
	return b.wasm
}

func build(dir string) built {
	tmp, err := os.MkdirTemp("", "hostsimtest-")
	if err != nil {
		return built{err: err.Error()}
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "module.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return built{err: err.Error() + ": " + stderr.String()}
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return built{err: err.Error()}
	}
	return built{wasm: wasm}
}

// Compile compiles wasm and closes the module when the test ends.
func Compile(t testing.TB, wasm []byte, opts ...hostsim.Option) *hostsim.Module {
	t.Helper()
	m, err := hostsim.Compile(context.Background(), wasm, opts...)
	if err != nil {
		t.Fatalf("hostsimtest: compile: %v", err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// NewVM starts a VM, failing the test if it does not start and configure, and
// closes it when the test ends.
func NewVM(t testing.TB, m *hostsim.Module, cfg hostsim.PluginConfig) *hostsim.VM {
	t.Helper()
	vm, err := m.NewVM(context.Background(), cfg)
	if vm != nil {
		t.Cleanup(func() { _ = vm.Close(context.Background()) })
	}
	if err != nil {
		t.Fatalf("hostsimtest: new vm: %v", err)
	}
	return vm
}

// BenchmarkDo sends req through vm b.N times (a new stream each time, as Envoy
// creates one per request) and reports allocations. It stops the benchmark if a
// request fails or the VM fails.
func BenchmarkDo(b *testing.B, vm *hostsim.VM, req hostsim.Request) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := vm.Do(ctx, req); err != nil {
			b.Fatalf("hostsimtest: Do: %v", err)
		}
	}
	if vm.Failed() {
		b.Fatalf("hostsimtest: vm failed: %v", vm.Failure())
	}
}
