// Package plugintest gives tests secretgate's module, built from this
// checkout's ./plugin with the standard Go toolchain exactly as `make build`
// builds it, once per test binary; a missing module is built, never skipped.
package plugintest

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/secretgate/secretgate/hostsim/hostsimtest"
)

// Wasm returns the module's bytes.
func Wasm(tb testing.TB) []byte {
	tb.Helper()
	return hostsimtest.BuildGo(tb, pluginDir())
}

var (
	pathOnce sync.Once
	path     string
	pathErr  error
)

// WasmPath returns the path of the module written to a temporary file that
// lives as long as the test binary, for tests of commands that take a path.
func WasmPath(tb testing.TB) string {
	tb.Helper()
	wasm := Wasm(tb)
	pathOnce.Do(func() {
		dir, err := os.MkdirTemp("", "secretgate-wasm-")
		if err != nil {
			pathErr = err
			return
		}
		path = filepath.Join(dir, "secretgate.wasm")
		pathErr = os.WriteFile(path, wasm, 0o644)
	})
	if pathErr != nil {
		tb.Fatalf("plugintest: %v", pathErr)
	}
	return path
}

// pluginDir is ../ from this source file, wherever the test runs from.
func pluginDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}
